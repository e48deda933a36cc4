"""Settings, read once from the environment. Every variable is in the README."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEFAULT_SQLITE_PATH = ROOT / "var" / "personagraph.sqlite3"
# Development only: production refuses to start without PERSONAGRAPH_SECRET.
DEVELOPMENT_SECRET = "personagraph-development-secret-do-not-use-in-production"  # noqa: S105


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from None


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value < 0:
        raise SystemExit(f"{name} must be a number of seconds (0 or more), got {raw!r}")
    return value


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _roles(name: str) -> frozenset[str]:
    from permissions.matrix import Role

    raw = {part.strip().upper() for part in os.environ.get(name, "").split(",") if part.strip()}
    unknown = raw - {role.value for role in Role}
    if unknown:
        raise SystemExit(f"{name} names unknown roles: {', '.join(sorted(unknown))}")
    return frozenset(raw)


def production_problems(settings: Settings) -> list[str]:
    """Why the server must not start with these settings (empty when it may)."""
    problems = []
    if settings.is_production and settings.is_sqlite and not settings.allow_sqlite_in_production:
        problems.append("refusing to serve production on SQLite; set DATABASE_URL or ALLOW_SQLITE_IN_PRODUCTION=1")
    if settings.is_production and not settings.secret:
        problems.append("PERSONAGRAPH_SECRET must be set in production")
    return problems


def default_database_url() -> str:
    return f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}"


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=default_database_url)
    environment: str = "development"
    secret: str = DEVELOPMENT_SECRET
    public_base_url: str = "http://127.0.0.1:8000"
    staff_app_base_url: str = "https://staff.personagraph.app"
    db_pool_size: int = 10
    # Connections one request's reads may use at once (database.RequestDatabase).
    db_reads_per_request: int = 1
    # Statements a request's reads issue in the same event-loop tick go to PostgreSQL as one (database.py).
    coalesce_reads: bool = True
    # Queries the compiled executor can run skip graphql-core's field-by-field execution (schema/fast_exec.py).
    fast_execution: bool = True
    persona_number_block: int = 50
    graphiql: bool = True
    allow_sqlite_in_production: bool = False
    cost_bucket_size: int = 10_000
    cost_restore_rate: int = 500
    request_timeout_seconds: float = 10.0
    # How long a process keeps a key it authenticated (permissions.keys.KeyCache); 0: not at all.
    api_key_cache_seconds: float = 2.0
    max_body_bytes: int = 2_000_000
    # Roles whose keys may run only the registered operations (operations/*.graphql).
    persisted_only_roles: frozenset[str] = frozenset()
    link_token_max_age_days: int = 365

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def normalize_database_url(url: str) -> str:
    """Accept the common spellings and pick this project's async drivers."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    return url


def load_settings() -> Settings:
    environment = os.environ.get("PERSONAGRAPH_ENV", "development").strip().lower()
    production = environment == "production"
    return Settings(
        database_url=normalize_database_url(os.environ.get("DATABASE_URL") or default_database_url()),
        environment=environment,
        secret=os.environ.get("PERSONAGRAPH_SECRET") or ("" if production else DEVELOPMENT_SECRET),
        public_base_url=os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
        staff_app_base_url=os.environ.get("STAFF_APP_BASE_URL", "https://staff.personagraph.app").rstrip("/"),
        db_pool_size=_int("DB_POOL_SIZE", 10),
        db_reads_per_request=max(1, _int("DB_READS_PER_REQUEST", 1)),
        coalesce_reads=_flag("COALESCE_READS", True),
        fast_execution=_flag("FAST_EXECUTION", True),
        persona_number_block=_int("PERSONA_NUMBER_BLOCK", 50),
        graphiql=_flag("GRAPHIQL", not production),
        allow_sqlite_in_production=_flag("ALLOW_SQLITE_IN_PRODUCTION", False),
        cost_bucket_size=_int("COST_BUCKET_SIZE", 10_000),
        cost_restore_rate=_int("COST_RESTORE_RATE", 500),
        request_timeout_seconds=float(_int("REQUEST_TIMEOUT_SECONDS", 10)),
        api_key_cache_seconds=_float("API_KEY_CACHE_SECONDS", 2.0),
        max_body_bytes=_int("MAX_BODY_BYTES", 2_000_000),
        persisted_only_roles=_roles("PERSISTED_ONLY_ROLES"),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
