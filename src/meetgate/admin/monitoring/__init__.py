"""Monitoring (runbook step 7): collect Entra's logs, policy snapshots and the gateway's activity,
apply rules, raise alerts. Returns data; rendering is the CLI's (``meetgate monitor``)."""
