"""A real browser for the console's tests and the browser client example: Playwright (PyPI) driving
Debian's `chromium`, since Playwright's own browser download is not reachable from every machine.
`make test` installs chromium (tools/install_chromium.sh); `KALLO_CHROMIUM` points at another build.
Then helpers for the console's pages: sign in, watch for dialogs."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, Dialog, Page, sync_playwright


def chromium_path() -> str:
    path = os.environ.get("KALLO_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("no chromium on PATH: run tools/install_chromium.sh (make test does)")
    return path


@contextmanager
def launched_browser() -> Iterator[Browser]:
    # --no-sandbox: CI runs as root, where chromium refuses its sandbox.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def console_url(base_url: str) -> str:
    return f"{base_url}/console/"


def no_dialogs(page: Page) -> list[str]:
    """Records every dialog the page opens (and dismisses it): a test asserts the list stays empty.
    (A failure raised inside Playwright's event handler would not reach the test.)"""
    opened: list[str] = []

    def record(dialog: Dialog) -> None:
        opened.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", record)
    return opened


def sign_in_with_key(page: Page, base_url: str, api_key: str, email: str, *, keep: bool = False) -> None:
    """Opens the console and signs in as the user `email` of the service account of `api_key`."""
    page.goto(console_url(base_url))
    page.get_by_label("Service account API key").fill(api_key)
    page.get_by_label("User email").fill(email)
    if keep:
        page.get_by_label("Keep the key for this tab").check()
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()


def signed_in_page(browser: Browser, base_url: str, api_key: str, email: str) -> Page:
    """A page in a context of its own (its own storage), signed in to the console as `email`."""
    page = browser.new_context(viewport={"width": 1200, "height": 800}).new_page()
    sign_in_with_key(page, base_url, api_key, email)
    return page
