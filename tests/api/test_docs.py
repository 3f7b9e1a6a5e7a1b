"""The API documentation pages (``/docs`` Swagger UI, ``/redoc`` ReDoc) work without internet: their HTML names
no host but the server's own, and every script, stylesheet and icon it names is served by the app itself
(docs/operations.md, "HTTP API")."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from psa.api.app import create_app
from psa.config import Settings
from tests.helpers import BASE_URL

# An absolute or protocol-relative URL anywhere in the page: markup, inline script or comment.
ABSOLUTE_URL = re.compile(r"(?:[a-z][a-z0-9+.-]*:)?//[^\s'\"<>()]+", re.IGNORECASE)
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


class _Assets(HTMLParser):
    """The URLs of the page's ``<script src>`` and ``<link href>`` elements."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href"}.get(tag)
        self.urls += [value for name, value in attrs if name == wanted and value]


@pytest.fixture(scope="module")
async def docs_http():
    """The real app in process; the docs pages touch neither the database nor Temporal."""
    app = create_app(Settings(database_url="postgresql://unused@localhost/unused"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client:
        yield client
    await app.state.api.close()


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_page_names_only_the_server_and_its_assets_are_served(docs_http, page):
    response = await docs_http.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    foreign = {urlsplit(url).hostname for url in ABSOLUTE_URL.findall(html)} - {urlsplit(BASE_URL).hostname}
    assert foreign == set(), f"{page} loads from {foreign}"

    parser = _Assets()
    parser.feed(html)
    suffixes = {urlsplit(url).path.rpartition(".")[2] for url in parser.urls}
    assert {"js"} <= suffixes  # the page's application itself is among the assets
    for url in parser.urls:
        asset = await docs_http.get(urljoin(BASE_URL + page, url))
        assert asset.status_code == 200, url
        expected = CONTENT_TYPES["." + urlsplit(url).path.rpartition(".")[2]]
        assert expected in asset.headers["content-type"], (url, asset.headers["content-type"])
        assert len(asset.content) > 1000, url  # the asset itself, not an empty placeholder


async def test_swagger_ui_reads_the_servers_own_schema(docs_http):
    html = (await docs_http.get("/docs")).text
    assert "url: '/openapi.json'" in html
    assert (await docs_http.get("/openapi.json")).json()["info"]["title"] == "psa API"
