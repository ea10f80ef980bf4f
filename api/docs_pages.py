"""/docs (Swagger UI) and /redoc with every asset served by the app itself, so they render offline.

The assets come from the fastapi-offline package (Swagger UI and ReDoc's own bundles, shipped in
its wheel); only its files are used, not its FastAPI factory. The pages' Content-Security-Policy
keeps them on this origin: Swagger UI's online validator badge is switched off, and ReDoc's
decorative Redocly logo (loaded from a CDN, dropped by ReDoc when it fails) is never requested.
"""

from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_PATH = "/docs/assets"
ASSETS = StaticFiles(directory=str(files("fastapi_offline") / "static"))
# The pages' own inline start-up script and styles are the only things not loaded from 'self';
# ReDoc runs its search in a worker started from a blob: URL.
CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    )
)


def install(app: FastAPI) -> None:
    """Serve the assets under ASSETS_PATH and the two pages that load them."""
    app.mount(ASSETS_PATH, ASSETS, name="docs-assets")

    def asset(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{ASSETS_PATH}/{name}"

    def openapi_url(request: Request) -> str:
        return f"{request.scope.get('root_path', '')}{app.openapi_url}"

    def guarded(page: HTMLResponse) -> HTMLResponse:
        page.headers["Content-Security-Policy"] = CSP
        return page

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} — API reference",
            swagger_js_url=asset(request, "swagger-ui-bundle.js"),
            swagger_css_url=asset(request, "swagger-ui.css"),
            swagger_favicon_url=asset(request, "favicon.png"),
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
        )
        return guarded(page)

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} — API reference",
            redoc_js_url=asset(request, "redoc.standalone.js"),
            redoc_favicon_url=asset(request, "favicon.png"),
            with_google_fonts=False,
        )
        return guarded(page)
