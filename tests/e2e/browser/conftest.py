"""Browser tests: the console and the browser client example in a real chromium, against the session's
local stack (tests/e2e/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.support.browser import launched_browser


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with launched_browser() as running:
        yield running
