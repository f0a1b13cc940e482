"""The `meetgate` command line (typer). The only layer that renders with rich."""
