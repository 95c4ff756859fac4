"""Browser tests: the console and the browser client example in a real chromium, against a local stack
of their own (tests/e2e/conftest.py starts it the same way) whose default model is the scripted
endpoint (tests/support/scripted_endpoint.py): answers stream word by word in about a second, with
nothing to load, so the browser suite stays fast. The embedded model stays allowed."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.support.browser import launched_browser
from tests.support.e2e import start_stack
from tests.support.local_stack import RunningStack
from tests.support.oidc import OidcIssuer
from tests.support.scripted_endpoint import ScriptedEndpoint, stack_environment

# Playwright's assertions wait 5 s by default: too short when eight test runs share two cores.
expect.set_options(timeout=20_000)


@pytest.fixture(scope="package")
def browser(stack: RunningStack) -> Iterator[Browser]:
    """Closed before the stack stops (it depends on it), so no connection of its holds up the stop; and
    at the end of this package, not the session: Playwright's sync API runs an asyncio loop in the main
    thread while it is open, and the tests collected after these (Mangum's, asyncio.run) need it free."""
    with launched_browser() as running:
        yield running


@pytest.fixture(autouse=True)
def _close_pages(browser: Browser) -> Iterator[None]:
    """Every test's pages go at its end: their WebSockets would otherwise stay open and hold up the
    stack's graceful stop past its bound."""
    yield
    for context in browser.contexts:
        context.close()


@pytest.fixture(scope="session")
def scripted_endpoint() -> Iterator[ScriptedEndpoint]:
    endpoint = ScriptedEndpoint()
    yield endpoint
    endpoint.close()


@pytest.fixture(scope="session")
def stack(oidc_issuer: OidcIssuer, scripted_endpoint: ScriptedEndpoint) -> Iterator[RunningStack]:
    """The browser tests' stack (it overrides tests/e2e's `stack` here); it must stop on SIGTERM."""
    with start_stack(oidc_issuer, **stack_environment(scripted_endpoint)) as running:
        yield running
        code = running.stop(signal.SIGTERM)
        assert code == 0, f"the stack exited with {code} on SIGTERM:\n{running.output()}"
