"""The operator console at `/console`: pages rendered on the server for the people who run the
hub, and `/docs` with Swagger UI served from the files vendored here (it works offline)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from hub.console import connection_pages
from hub.console.endpoints import render, router
from hub.console.session import Forbidden, NotSignedIn

STATIC = Path(__file__).parent / "static"
SWAGGER = "/console/static/vendor/swagger-ui"


def install(app: FastAPI) -> None:
    """Serve the console, its static files, and /docs on `app`."""
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    app.include_router(router)
    app.include_router(connection_pages.router)

    @app.exception_handler(NotSignedIn)
    async def _sign_in(_: Request, exc: NotSignedIn) -> RedirectResponse:
        return RedirectResponse(
            "/console/login?" + urlencode({"next": exc.next_path}), status_code=303
        )

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> HTMLResponse:
        return render(request, None, "forbidden.html", reason=str(exc), status_code=403)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png",
        )
