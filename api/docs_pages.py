"""GET /docs (Swagger UI) and GET /redoc (ReDoc) with their files served by the service.

FastAPI's own pages load Swagger UI and ReDoc from a public CDN, so on a warehouse network
without internet they stay blank. These are the same pages (FastAPI's HTML builders) with
every asset served from the Python package: the files come from the `fastapi-offline`
wheel (MIT; it ships Swagger UI's and ReDoc's release bundles, Apache-2.0 and MIT), read
from its package directory. Only its files are used; its app factory would replace our
`FastAPI` subclass (api/app.py).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"  # FastAPI's default, kept for Swagger UI
# Under /docs so one proxy rule (`/docs*`) covers the page and its files.
ASSETS_URL = "/docs/assets"
ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")

# The pages may load from this origin only, so the browser itself keeps them offline.
# ReDoc 2.5.3 always shows Redocly's logo from cdn.redoc.ly in its menu (hidden if it
# fails to load): refused here before any request. Inline script and style: FastAPI's
# pages start the bundles with an inline script, and both bundles inject style elements.
# ReDoc builds its search worker from a blob: URL.
PAGES_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'self'"
)


def offline(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = PAGES_CSP
    return page


def assets_dir() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def install(app: FastAPI) -> None:
    """Serve the pages and their files; the app must be built with docs_url=None and
    redoc_url=None so that FastAPI's CDN pages are not registered first."""
    directory = assets_dir()
    missing = [name for name in ASSET_FILES if not (directory / name).is_file()]
    if missing:  # a changed wheel layout: fail at start-up, not with a blank page
        raise RuntimeError(f"fastapi-offline ships no {', '.join(missing)} in {directory}")
    app.mount(ASSETS_URL, StaticFiles(directory=directory), name="docs-assets")

    def prefix(request: Request) -> str:
        # Behind a proxy that strips a path prefix (uvicorn --root-path), as FastAPI does.
        return str(request.scope.get("root_path", "")).rstrip("/")

    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = prefix(request)
        return offline(
            get_swagger_ui_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
                swagger_ui_parameters=app.swagger_ui_parameters,
            )
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = prefix(request)
        return offline(
            get_redoc_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                with_google_fonts=False,  # fonts from Google would be a request to the internet
            )
        )
