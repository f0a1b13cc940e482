"""The composition root: the one place where configuration meets what it configures.

A profile (``meetgate.config``) becomes a Graph client (:mod:`.graph`), a store (:mod:`.store`), a
policy backend (:mod:`.policy`), the mailbox-scope backend (:mod:`.mailbox_scope`) or the gateway's
Graph side and policy scope (:mod:`.gateway`). The CLI commands parse, get what they need from here,
call the use case and render; nothing else builds clients from settings.
"""

from meetgate.composition.graph import (
    async_graph_client_from_profile,
    graph_client_from_profile,
    graph_client_with_token,
    graph_settings_from_profile,
    limiter_from_profile,
)

__all__ = [
    "async_graph_client_from_profile",
    "graph_client_from_profile",
    "graph_client_with_token",
    "graph_settings_from_profile",
    "limiter_from_profile",
]
