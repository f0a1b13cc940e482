"""A uvicorn HTTP protocol that lets the app drop the TCP connection without answering.

Real networks lose connections mid-request; clients must survive it. The app cannot reach the
socket through ASGI, so these protocols (uvicorn's, passed as ``http=``) offer a callable
in ``scope["extensions"]["meetgate.drop_connection"]`` that aborts the transport. The cycle is
marked disconnected first, so uvicorn does not try to send a 500 on the dead connection.

The server uses the httptools variant: its C parser costs about 0.6 ms less CPU per request than
h11 (``benchmarks/bench_sandbox.py``), which is most of the sandbox's own per-request cost.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from meetgate_sandbox.middleware import DROP_EXTENSION


class _DropConnection:
    """The drop extension, mixed into a uvicorn HTTP protocol class."""

    app: Any
    transport: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inner = self.app

        async def app_with_drop(scope: dict[str, Any], receive: Any, send: Any) -> None:
            extensions = scope.get("extensions")
            if extensions is None:
                extensions = scope["extensions"] = {}
            extensions[DROP_EXTENSION] = self._drop_connection
            await inner(scope, receive, send)

        self.app = app_with_drop

    def shutdown(self) -> None:
        """On server stop, idle keep-alive connections are aborted: a TLS close would wait for the
        client's close_notify, which an idle pooled client never sends."""
        super().shutdown()  # type: ignore[misc]
        cycle = getattr(self, "cycle", None)
        if cycle is None or cycle.response_complete:
            self.transport.abort()

    def _drop_connection(self) -> None:
        cycle = getattr(self, "cycle", None)
        if cycle is not None:
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.abort()


class DroppingH11Protocol(_DropConnection, H11Protocol):
    """uvicorn's h11 protocol (pure Python) with the drop extension."""


class DroppingHttpToolsProtocol(_DropConnection, HttpToolsProtocol):
    """uvicorn's httptools protocol (C parser: less CPU per request) with the drop extension."""
