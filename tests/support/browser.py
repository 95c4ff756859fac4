"""A real browser for the console's tests and the browser client example: Playwright (PyPI) driving
Debian's `chromium`, since Playwright's own browser download is not reachable from every machine.
`make test` installs chromium (tools/install_chromium.sh); `KALLO_CHROMIUM` points at another build."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, sync_playwright


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
