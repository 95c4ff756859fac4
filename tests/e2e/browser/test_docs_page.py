"""/docs in a real browser on the local stack: Swagger UI renders the API's operations from the
vendored files under the page's Content-Security-Policy, and every request the page makes stays on the
stack's origin (no CDN, no validator badge)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Request, expect

from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e


def test_swagger_ui_shows_the_operations_with_nothing_from_another_origin(
    browser: Browser, stack: RunningStack
) -> None:
    origin = urlsplit(stack.base_url)[:2]
    context = browser.new_context()
    page = context.new_page()
    requests: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: _record_error(message, problems))
    page.on("requestfailed", lambda request: problems.append(_failure(request)))
    try:
        page.goto(f"{stack.base_url}/docs")
        # The operations come from openapi.json, rendered by the vendored Swagger UI.
        expect(page.get_by_text("/teams/{teamId}").first).to_be_visible(timeout=30_000)
        expect(page.locator(".opblock-tag", has_text="Convos")).to_be_visible()
        expect(page.get_by_role("button", name="Authorize")).to_be_visible()
    finally:
        context.close()
    assert problems == []  # a script or style refused by the policy would show here
    assert any(url.endswith("/openapi.json") for url in requests)
    for url in requests:
        parts = urlsplit(url)
        assert parts.scheme == "data" or parts[:2] == origin, url


def _record_error(message: ConsoleMessage, problems: list[str]) -> None:
    if message.type == "error":
        problems.append(f"{message.location.get('url')}: {message.text}")


def _failure(request: Request) -> str:
    return f"{request.url}: {request.failure}"
