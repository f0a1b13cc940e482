"""``python -m meetgate_sandbox.pwsh``: the stand-in's command line (the package registered the cmdlets)."""

from meetgate_sandbox.pwsh.cli import run

if __name__ == "__main__":
    run()
