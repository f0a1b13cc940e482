"""``/docs``: FastAPI's Swagger UI over ``/openapi.json``, served with a Content-Security-Policy of
its own (its script and style come from :data:`SWAGGER_CDN`). ReDoc is not served: it would need
inline styles and third-party fonts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from meetgate.gateway.deps import Settings
from meetgate.gateway.security_headers import page_policy

#: where FastAPI's Swagger UI page loads its script and style from
SWAGGER_CDN = "https://cdn.jsdelivr.net"

router = APIRouter()


@router.get("/docs", include_in_schema=False)
async def swagger_ui(request: Request, settings: Settings) -> HTMLResponse:
    """The Swagger UI page (not in the OpenAPI document)."""
    page = get_swagger_ui_html(
        openapi_url=request.scope.get("root_path", "") + (request.app.openapi_url or "/openapi.json"),
        title=f"{settings.title} - Swagger UI",
        oauth2_redirect_url=None,  # API keys only: no OAuth flow to come back from
    )
    html = bytes(page.body).decode()
    policy = page_policy(
        html,
        script_src=[SWAGGER_CDN],
        style_src=[SWAGGER_CDN],
        img_src=["'self'", "data:", "https://fastapi.tiangolo.com"],
        connect_src=["'self'"],
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": policy})
