"""``/healthz`` (liveness), ``/readyz`` (the store, Redis and a Graph token) and ``/metrics``
(Prometheus), for the operator's probes and scraper: no API key.

The endpoints carry comments, not docstrings: FastAPI would publish a docstring as the operation's
``description`` in ``/openapi.json``.
"""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from meetgate.gateway.deps import AppStore, Metrics, RateLimiter, ReadyTokenCheck
from meetgate.gateway.schemas import Health

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    summary="The store answers and a Graph token can be taken",
    responses={503: {"model": Health}},
)
async def readyz(store: AppStore, limiter: RateLimiter, token_check: ReadyTokenCheck) -> JSONResponse:
    # 200 when every check passes, else 503 naming the failed one
    checks: dict[str, str] = {}
    try:
        await to_thread.run_sync(store.ping)
        checks["store"] = "ok"
    except Exception as exc:
        checks["store"] = f"failed: {type(exc).__name__}"
    ping = getattr(limiter, "ping", None)
    if ping is not None:
        try:
            await ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"failed: {type(exc).__name__}"
    if token_check is not None:
        try:
            await token_check()
            checks["graph_token"] = "ok"
        except Exception as exc:
            checks["graph_token"] = f"failed: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        Health(status="ok" if ok else "unavailable", checks=checks).model_dump(),
        status_code=200 if ok else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus(metrics: Metrics) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
