"""Microsoft Graph and Entra client: auth, HTTP, retry, errors, models, services.

Imports nothing else of meetgate. The public names are re-exported from :mod:`meetgate` (lazily);
import submodules directly inside meetgate (``from meetgate.graph.client import GraphClient``).
"""
