"""Headless Chromium for page tests: Debian's /usr/bin/chromium driven by Playwright.

``chromium_browser()`` is a context manager (sync Playwright API). The fixtures
``browser`` (module scope) and ``page`` (per test) wrap it; register them from
conftest.py with ``from browser import browser, page  # noqa: F401``.

While sync Playwright is alive, its event loop stays marked as running in this
thread, so pytest-asyncio tests and async fixtures fail ("cannot be called from a
running event loop"). Hence module scope: keep browser tests in their own modules,
as sync tests with sync fixtures (e.g. tests/live_server.py's uvicorn in a thread),
and set data up with ``on_database``, which runs async work in a thread with an
event loop of its own. ``CHROMIUM_PATH`` overrides the executable. A missing
browser is an error, not a skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from database import Database
from engines import create_engine
from settings import Settings

T = TypeVar("T")

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


def on_database(settings: Settings, work: Callable[[Database], Coroutine[Any, Any, T]]) -> T:
    """Run `work` on the test database in a thread with its own event loop (Playwright's owns this one)."""

    async def main() -> T:
        db = Database(create_engine(settings))
        try:
            return await work(db)
        finally:
            await db.dispose()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()
