"""The app in a real uvicorn, in a thread, on a free loopback port.

For the tests that need a real server: browsers (tests/browser.py), the
GraphQL-over-HTTP audit, the fuzzer, the soak and fault tests. ``live`` is a
module-scoped fixture around ``live_server``; a module registers it with
``live = live_server.live`` (after ``from tests import live_server``). The server
builds its own engine in its own event loop, so tests set data up through
their own connections (the `db`/`session_db` fixtures, or a thread with an
event loop of its own beside sync Playwright) and talk to it over HTTP.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette

from app import create_app
from resolvers.notifier import Notifier
from settings import Settings

START_SECONDS = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Live:
    url: str
    app: Starlette
    settings: Settings

    @property
    def graphql(self) -> str:
        return f"{self.url}/graphql"


@contextlib.contextmanager
def live_server(settings: Settings, notifier: Notifier | None = None, **overrides: Any) -> Iterator[Live]:
    """Serve the app until the block ends; its settings' public_base_url is the server's own URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    served = dataclasses.replace(settings, public_base_url=url, **overrides)
    app = create_app(served, notifier=notifier)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield Live(url, app, served)
    finally:
        server.should_exit = True
        thread.join(timeout=START_SECONDS)


@pytest.fixture(scope="module")
def live(settings: Settings) -> Iterator[Live]:
    """The app served for one test module, against the test database."""
    with live_server(settings) as served:
        yield served
