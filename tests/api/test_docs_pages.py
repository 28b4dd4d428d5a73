"""/docs and /redoc are served with their files by the service, and the routes that answer
without a token are exactly the ones docs/reference/api.md lists."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Sequence
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Mount, Route

from api.app import create_app
from api.docs_pages import ASSET_FILES, ASSETS_URL, install
from devtools.harness.service import Service

ROOT = Path(__file__).resolve().parents[2]


class Sources(HTMLParser):
    """Every URL a page loads: script src, link href, img src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and name in ("src", "href"):
                self.urls.append(value)


def loaded_urls(html: str) -> list[str]:
    parser = Sources()
    parser.feed(html)
    # The pages hand the spec's URL to the bundle in a script, not as a tag.
    return parser.urls + re.findall(r"(?:url|spec-url)[\"']?\s*[:=]\s*[\"']([^\"']+)", html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_page_loads_only_files_the_service_serves(service: Service, page: str) -> None:
    answer = service.client.get(page)
    assert answer.status_code == 200
    urls = loaded_urls(answer.text)
    assert any(u.startswith(ASSETS_URL) and u.endswith(".js") for u in urls), urls
    for url in urls:
        assert url.startswith("/"), f"{page} loads {url} from elsewhere"
        assert service.client.get(url).status_code == 200, url


def test_the_assets_are_served_with_their_types(service: Service) -> None:
    js = service.client.get(f"{ASSETS_URL}/swagger-ui-bundle.js")
    assert js.status_code == 200
    assert "javascript" in js.headers["content-type"]
    assert len(js.content) > 100_000  # the bundle itself, not an error page
    css = service.client.get(f"{ASSETS_URL}/swagger-ui.css")
    assert css.headers["content-type"].startswith("text/css")
    assert service.client.get(f"{ASSETS_URL}/redoc.standalone.js").status_code == 200
    assert service.client.get(f"{ASSETS_URL}/../app.py").status_code == 404


def unauthenticated_routes_documented() -> set[str]:
    """The paths in docs/reference/api.md's table of routes that answer without a token."""
    text = (ROOT / "docs" / "reference" / "api.md").read_text()
    section = text.split("## Routes without a token", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(?:GET|POST) ([^` ]+)`", section, flags=re.MULTILINE))


def every_route(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, BaseRoute]]:
    """(full path, route) for each route, inside included routers too: FastAPI 0.165 keeps
    an included router as one entry of `app.routes` holding the original router."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from every_route(included.routes, prefix + getattr(context, "prefix", ""))
        else:
            yield prefix + str(getattr(route, "path", "")), route


def test_every_route_that_answers_without_a_token_is_listed(service: Service) -> None:
    """Every route of the app, called without a token (path parameters filled in): the ones
    that answer anything but 401 are exactly the documented ones. Mounted files (no auth
    there) are listed as `<mount>/*`."""
    answered: set[str] = set()
    for path, route in every_route(create_app(service.runtime).routes):
        if isinstance(route, Mount):
            answered.add(f"{path}/*")
            continue
        assert isinstance(route, APIRoute | Route), route
        concrete = re.sub(r"\{[^}]+\}", "x1", path)
        for method in sorted(route.methods or ()):
            if method == "HEAD":
                continue
            status = service.client.request(method, concrete, json={}).status_code
            if status != 401:
                answered.add(path)
    assert "/health" in answered  # the check itself reaches the routes
    assert unauthenticated_routes_documented() == answered
    served = service.client.get(f"{ASSETS_URL}/{ASSET_FILES[0]}")
    assert served.status_code == 200


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_behind_a_prefix_the_page_loads_its_files_under_it(page: str) -> None:
    """Behind a proxy that strips `/pp` (uvicorn --root-path /pp) the browser must ask for
    `/pp/...`, or it reaches another app: every URL the page loads carries the prefix."""
    app = FastAPI(docs_url=None, redoc_url=None)
    install(app)

    async def get(path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, root_path="/pp")
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
            return await client.get(path)

    answer = asyncio.run(get(f"/pp{page}"))
    assert answer.status_code == 200
    urls = loaded_urls(answer.text)
    assert urls
    assert all(url.startswith("/pp/") for url in urls), urls
    assert asyncio.run(get(f"/pp{ASSETS_URL}/{ASSET_FILES[0]}")).status_code == 200


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_page_allows_loading_from_the_service_only(service: Service, page: str) -> None:
    policy = service.client.get(page).headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'self'"
    for name in ("script-src", "style-src", "img-src", "font-src", "connect-src"):
        assert "http" not in directives[name] and "*" not in directives[name], name
