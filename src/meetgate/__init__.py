"""meetgate: governed Microsoft Teams online meetings through Microsoft Graph.

The public surface is re-exported here lazily, so ``import meetgate`` (and ``meetgate --help``) stays
fast: heavy modules load on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> module that defines it. Extend as public pieces land; tests check every name resolves.
_EXPORTS: dict[str, str] = {
    "Profile": "meetgate.config",
    "ConfigError": "meetgate.config",
    "load_profile": "meetgate.config",
    "CertificateError": "meetgate.certificates",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'meetgate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
