from meetgate.cli.main import run

run()
