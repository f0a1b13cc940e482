"""``/admin/dashboard`` (HTML) and ``/admin/dashboard.json`` (data): the monitoring dashboard of
:mod:`meetgate.gateway.dashboard`, behind the admin key (:func:`~meetgate.gateway.deps.require_admin`).

Not in ``/openapi.json``: that document is for the third-party apps, the dashboard is the
administrator's.
"""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, JSONResponse

from meetgate.gateway.dashboard import Hours, dashboard_data, dashboard_html
from meetgate.gateway.deps import AppStore, require_admin
from meetgate.gateway.security_headers import page_policy

router = APIRouter(
    prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)], include_in_schema=False
)


@router.get("/dashboard.json", summary="Dashboard data (admin key)")
async def data(store: AppStore, hours: Hours = 24.0) -> JSONResponse:
    """The dashboard's data as JSON."""
    return JSONResponse(await to_thread.run_sync(lambda: dashboard_data(store, hours=hours)))


@router.get("/dashboard", response_class=HTMLResponse, summary="Monitoring dashboard (admin key)")
async def page(store: AppStore, hours: Hours = 24.0) -> HTMLResponse:
    """The dashboard page: inline SVG charts, one stylesheet allowed by its hash."""
    content = await to_thread.run_sync(lambda: dashboard_data(store, hours=hours))
    html = dashboard_html(content)
    return HTMLResponse(html, headers={"Content-Security-Policy": page_policy(html)})
