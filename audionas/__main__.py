from audionas.cli import main

raise SystemExit(main())
