"""Use cases for runbook steps 1-8. Return data; never print; never import typer, rich or fastapi."""
