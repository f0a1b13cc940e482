"""Runbook steps 4–5: the Teams application access policy as declared desired state.

``model`` (desired state + tenant facts), ``loader`` (TOML/YAML/CSV), ``planner`` (pure diff and
warnings), ``ports`` (what a backend must do), ``apply`` (journaled, resumable execution),
``script`` (a reviewed ``.ps1``), ``powershell`` and ``graph`` (backends), ``verify`` (proof through
Graph), ``fakes`` (in-memory tenant for tests and benchmarks).
"""
