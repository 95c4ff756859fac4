"""The API documents' function (`docs.app`, Starlette on Mangum) invoked as API Gateway does, with the
proxy events of its four public routes: the documents it serves are the committed ones, byte for byte,
and its Swagger UI page loads nothing from another origin (no CDN)."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from tests.support.api import LambdaContext, Result, sample_event

ROOT = Path(__file__).resolve().parents[2]


def get(path: str, resource: str | None = None) -> Result:
    """GET `path` through the function's Lambda handler, on `resource` (its template route)."""
    from docs import app

    event = sample_event("docs.app")
    resource = resource or path
    event.update(
        resource=resource,
        path=path,
        pathParameters={"proxy": path.removeprefix("/docs/")} if "{proxy+}" in resource else None,
    )
    event["requestContext"].update(resourcePath=resource, path=f"/v1{path}")
    response: dict[str, Any] = app.lambda_handler(event, LambdaContext())
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    headers.update({k.lower(): v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()})
    assert not response.get("isBase64Encoded"), "API Gateway would need binary media types for it"
    return Result(response["statusCode"], headers, response.get("body") or "")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def page_urls(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize("name", ["openapi.json", "asyncapi.json"])
def test_the_served_document_is_the_committed_one(name: str) -> None:
    response = get(f"/{name}")
    assert response.status == 200 and response.headers["content-type"] == "application/json"
    assert response.body == (ROOT / "docs" / name).read_text()
    assert response.headers["cache-control"] == "no-cache"


def test_the_docs_page_loads_only_files_of_its_own_origin() -> None:
    page = get("/docs")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "default-src 'none'" in csp
    urls = page_urls(page.body)
    assert {"docs/swagger-ui.css", "docs/swagger-ui-bundle.js", "openapi.json", "asyncapi.json"} <= set(urls)
    # Behind a stage (https://<api>/v1/docs) every URL stays on the API's origin and under its stage.
    base = "https://api.example.com/v1/docs"
    for url in urls:
        if url.startswith("data:"):
            continue  # the page's empty icon: nothing to fetch
        resolved = urlsplit(urljoin(base, url))
        assert (resolved.scheme, resolved.netloc) == ("https", "api.example.com"), url
        assert resolved.path.startswith("/v1/"), url
    for url in urls:
        if url.startswith("docs/"):
            asset = get(f"/{url}", "/docs/{proxy+}")
            assert asset.status == 200 and asset.body, url
            assert asset.headers["x-content-type-options"] == "nosniff"
    script = get("/docs/swagger-init.js", "/docs/{proxy+}").body
    assert 'url: "openapi.json"' in script and "validatorUrl: null" in script  # no call to the validator


def test_the_swagger_ui_files_are_served_with_their_media_types() -> None:
    assert (
        get("/docs/swagger-ui-bundle.js", "/docs/{proxy+}")
        .headers["content-type"]
        .startswith("text/javascript")
    )
    css = get("/docs/swagger-ui.css", "/docs/{proxy+}")
    assert css.headers["content-type"].startswith("text/css")
    assert css.body == (ROOT / "sites" / "docs" / "docs" / "static" / "swagger-ui.css").read_text()


@pytest.mark.parametrize(
    "path",
    ["/docs/app.py", "/docs/../app.py", "/docs/README.md", "/docs/LICENSE", "/docs/documents/openapi.json"],
)
def test_only_the_pages_files_are_served(path: str) -> None:
    assert get(path, "/docs/{proxy+}").status == 404


def test_a_trailing_slash_goes_back_to_the_page() -> None:
    response = get("/docs/", "/docs/{proxy+}")
    assert response.status == 308 and response.headers["location"] == "../docs"


def test_the_document_is_json_that_names_the_api() -> None:
    document = json.loads(get("/openapi.json").body)
    assert document["info"]["title"] == "Kallo API"
