"""Headless Chromium for page tests: Debian's /usr/bin/chromium driven by Playwright.

``chromium_browser()`` is a context manager (sync Playwright API). The fixtures
``browser`` (module scope) and ``page`` (per test) wrap it; register them from
conftest.py with ``from browser import browser, page  # noqa: F401``.

While sync Playwright is alive, its event loop stays marked as running in this
thread, so pytest-asyncio tests and async fixtures fail ("cannot be called from a
running event loop"). Hence module scope: keep browser tests in their own modules,
as sync tests with sync fixtures (e.g. a uvicorn server started in a thread).
``CHROMIUM_PATH`` overrides the executable. A missing browser is an error, not a skip.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # we run as root in CI containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium_browser() -> Iterator[Browser]:
    """Launch headless Chromium; closed (and the Playwright driver stopped) at exit."""
    if not Path(CHROMIUM_PATH).is_file():
        raise RuntimeError(f"{CHROMIUM_PATH} not found: `apt-get install chromium` (or `make install`)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM_PATH, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium_browser() as b:
        yield b


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()
