"""The benchmarks' entry point: a user mistake (an unknown preset, a bad count) is one error line and exit 2,
as in the audionas commands, not a traceback."""

from __future__ import annotations

import sys
from pathlib import Path


def run_main(main) -> None:
    from audionas.errors import UserError

    try:
        main()
    except UserError as e:
        print(f"{Path(sys.argv[0]).name}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
