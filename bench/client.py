"""A small HTTP/1.1 keep-alive client for load: latency at one client and
requests per second at several, the same for every server measured.

Requests are prepared as bytes once; each client holds one connection. The
client does only the HTTP framing (Content-Length or chunked bodies), so
its own cost per request stays in the tens of microseconds and is the same
for the app, the floor and the peer. Loops are bounded in count and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    host: str
    port: int


def post(path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def get(path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class HttpError(Exception):
    pass


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, target: Target) -> Connection:
        reader, writer = await asyncio.open_connection(target.host, target.port, limit=1 << 24)
        return cls(reader, writer)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in header_lines:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._chunked()
        else:
            raise HttpError(f"response without length: {status_line}")
        return status, body

    async def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


@dataclass(frozen=True)
class Latency:
    samples: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def summarize(seconds: list[float]) -> Latency:
    ms = sorted(s * 1000 for s in seconds)
    return Latency(len(ms), statistics.median(ms), percentile(ms, 95), percentile(ms, 99), statistics.fmean(ms))


async def one(target: Target, request: bytes) -> tuple[int, bytes]:
    conn = await Connection.open(target)
    try:
        return await conn.send(request)
    finally:
        await conn.close()


async def latency(target: Target, requests: Sequence[bytes], count: int, max_seconds: float = 60.0) -> Latency:
    """One client, one request at a time: `count` requests cycling through `requests`."""
    conn = await Connection.open(target)
    seconds: list[float] = []
    deadline = time.perf_counter() + max_seconds
    try:
        for n in range(count):
            started = time.perf_counter()
            status, body = await conn.send(requests[n % len(requests)])
            seconds.append(time.perf_counter() - started)
            if status != 200:
                raise HttpError(f"HTTP {status}: {body[:300]!r}")
            if started > deadline:
                break
    finally:
        await conn.close()
    return summarize(seconds)


async def throughput(target: Target, requests: Sequence[bytes], clients: int, seconds: float) -> float:
    """Requests per second with `clients` connections each sending back to back for `seconds`."""
    done = 0
    failed: list[str] = []
    stop = time.perf_counter() + seconds

    async def client(offset: int) -> None:
        nonlocal done
        conn = await Connection.open(target)
        n = offset
        try:
            while time.perf_counter() < stop:
                status, body = await conn.send(requests[n % len(requests)])
                if status != 200:
                    failed.append(f"HTTP {status}: {body[:200]!r}")
                    return
                done += 1
                n += 1
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(k * 7) for k in range(clients)))
    elapsed = time.perf_counter() - started
    if failed:
        raise HttpError(failed[0])
    return done / elapsed
