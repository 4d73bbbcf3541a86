from audionas.console import run

run()
