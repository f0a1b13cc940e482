"""``POST /graph/notifications`` and ``POST /graph/lifecycle``: where Graph delivers change
notifications and lifecycle events. Public (Graph has no API key): the validation handshake
echoes the decoded ``validationToken`` as ``text/plain``; a notification is persisted first and
answered ``202`` at once, then processed (clientState, validation tokens, signature, decryption) —
nothing Graph sends is trusted before those checks. Not in the OpenAPI document (not for consumers).

The endpoints carry comments, not docstrings: FastAPI would publish a docstring.
"""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, BackgroundTasks, Request, Response
from fastapi.responses import PlainTextResponse

from meetgate.gateway.notifications.service import NotificationService
from meetgate.gateway.problems import http_problem

router = APIRouter(include_in_schema=False)

#: a body larger than this is not a Graph notification
MAX_BODY = 4 * 1024 * 1024


async def _receive(channel: str, request: Request, background: BackgroundTasks) -> Response:
    service: NotificationService | None = getattr(request.app.state, "notifications", None)
    if service is None:
        raise http_problem(404, "Not Found", {})
    token = request.query_params.get("validationToken")
    if token is not None:  # the handshake: Starlette has URL-decoded it
        return PlainTextResponse(token, status_code=200)
    body = await request.body()
    if not body or len(body) > MAX_BODY:
        raise http_problem(400, "Bad Request", {})
    seq = await to_thread.run_sync(service.store.receive, channel, body.decode("utf-8", "replace"))
    background.add_task(service.processor.process, seq)
    return Response(status_code=202)


# Graph's change notifications (rich ones for transcripts and recordings)
@router.post("/graph/notifications")
async def graph_notifications(request: Request, background: BackgroundTasks) -> Response:
    return await _receive("notify", request, background)


# Graph's lifecycle events: reauthorizationRequired, subscriptionRemoved, missed
@router.post("/graph/lifecycle")
async def graph_lifecycle(request: Request, background: BackgroundTasks) -> Response:
    return await _receive("lifecycle", request, background)
