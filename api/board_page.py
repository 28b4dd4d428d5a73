"""GET /board: the live packing board, a page of plain JavaScript served from the package.

The page (api/board/) calls the same API as any client, with a token it reads from the
URL fragment (`/board#tenant=..&token=..`): a fragment never leaves the browser, so the
token reaches no server log or proxy. The route itself carries no tenant data and needs
no token. Its Content-Security-Policy lets the page load and call this origin only, run
no inline script and submit no form anywhere: the token form is handled in the page, and
a browser without JavaScript cannot send the token in a query string.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

BOARD_URL = "/board"
ASSETS_URL = "/board/assets"
ASSET_FILES = ("board.js", "board.css")

BOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
BOARD_HEADERS = {
    "Content-Security-Policy": BOARD_CSP,
    # The page's address holds the token (after '#', never sent; kept out of Referer too).
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def board_dir() -> Path:
    return Path(str(files("api") / "board"))


def install(app: FastAPI) -> None:
    directory = board_dir()
    assets = directory / "assets"
    missing = [name for name in ASSET_FILES if not (assets / name).is_file()]
    if missing or not (directory / "index.html").is_file():  # a broken install: fail now
        raise RuntimeError(f"the board's files are missing from {directory}")
    page = (directory / "index.html").read_bytes()
    app.mount(ASSETS_URL, StaticFiles(directory=assets), name="board-assets")

    @app.get(BOARD_URL, include_in_schema=False)
    def board() -> HTMLResponse:
        return HTMLResponse(page, headers=BOARD_HEADERS)
