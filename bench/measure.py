"""Measuring one read operation on each server, and checking that the floor
answers with the same data as the app (the parity check)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from bench.client import Latency, Target, latency, one, post, throughput


@dataclass
class Figures:
    """One server's figures for one operation."""

    p50_ms: float
    p95_ms: float
    p99_ms: float
    rps_8: float
    samples: int

    @classmethod
    def of(cls, lat: Latency, rps: float) -> Figures:
        return cls(lat.p50_ms, lat.p95_ms, lat.p99_ms, rps, lat.samples)


@dataclass
class Measured:
    name: str
    app: Figures | None = None
    floor: Figures | None = None
    peer: Figures | None = None
    parity: list[str] = field(default_factory=list)
    note: str = ""

    def ratios(self) -> dict[str, float | None]:
        def r(a: float | None, b: float | None) -> float | None:
            return round(a / b, 2) if a and b else None

        app, floor, peer = self.app, self.floor, self.peer
        return {
            "p50_vs_floor": r(app.p50_ms, floor.p50_ms) if app and floor else None,
            "rps_vs_floor": r(app.rps_8, floor.rps_8) if app and floor else None,
            "p50_vs_peer": r(app.p50_ms, peer.p50_ms) if app and peer else None,
            "rps_vs_peer": r(app.rps_8, peer.rps_8) if app and peer else None,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratios": self.ratios()}


@dataclass(frozen=True)
class Settings:
    requests: int  # at one client
    seconds: float  # at eight clients
    clients: int = 8
    warmup: int = 20


def graphql_request(document: str, variables: dict[str, Any], key: str, path: str = "/graphql") -> bytes:
    body = orjson.dumps({"query": document, "variables": variables})
    return post(path, body, {"Authorization": f"Bearer {key}"})


def floor_request(path: str, variables: dict[str, Any]) -> bytes:
    return post(path, orjson.dumps({"variables": variables}))


async def figures(target: Target, requests: Sequence[bytes], settings: Settings) -> Figures:
    await latency(target, requests, settings.warmup)
    lat = await latency(target, requests, settings.requests)
    rps = await throughput(target, requests, settings.clients, settings.seconds)
    return Figures.of(lat, rps)


async def answer(target: Target, request: bytes) -> Any:
    status, body = await one(target, request)
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
    return orjson.loads(body)


# ------------------------------------------------------------------ parity

# The wallet and referral links carry tokens signed with the app's secret: the floor does not sign.
# extensions.cost is the app's query-cost report, which the floor has no use for.
IGNORED = {"links.wallet", "links.referral", "extensions"}
TOLERANCE = {"lastSeenDays": 1.0, "itemsPerOrder": 0.011, "shopsEveryDays": 0.011, "progress": 1e-9}


def differences(app: Any, floor: Any, path: str = "") -> list[str]:
    """Where the floor's JSON differs from the app's (paths), with numeric tolerances."""
    if any(path.endswith(i) for i in IGNORED):
        return []
    if isinstance(app, dict) and isinstance(floor, dict):
        out: list[str] = []
        for key in app.keys() | floor.keys():
            out += differences(app.get(key, "<missing>"), floor.get(key, "<missing>"), f"{path}.{key}".lstrip("."))
        return out
    if isinstance(app, list) and isinstance(floor, list):
        if len(app) != len(floor):
            return [f"{path}: {len(app)} items vs {len(floor)}"]
        return [d for n, (a, f) in enumerate(zip(app, floor, strict=True)) for d in differences(a, f, f"{path}[{n}]")]
    if isinstance(app, int | float) and isinstance(floor, int | float) and not isinstance(app, bool):
        leaf = path.rsplit(".", 1)[-1]
        tolerance = TOLERANCE.get(leaf, 0.0)
        if math.isclose(app, floor, abs_tol=tolerance):
            return []
    if app == floor:
        return []
    return [f"{path}: app {str(app)[:60]!r} floor {str(floor)[:60]!r}"]
