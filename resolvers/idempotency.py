"""Idempotency keys for the mutations that move points.

A call sent with an idempotencyKey claims the key inside its own transaction
and stores the ids of its result there; a replay finds them and returns the
same result without doing the work again. The key is bound to a hash of the
mutation name and its arguments, so the same key with anything else is
IDEMPOTENCY_CONFLICT. A call that fails leaves no record (its transaction
rolls back), so it can be retried with the same key.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models import IdempotencyRecord
from resolvers.errors import UserError

Result = dict[str, str]
MAX_KEY_LENGTH = 200
FIELD = ["input", "idempotencyKey"]


def request_hash(operation: str, arguments: Mapping[str, Any]) -> str:
    """The same mutation with the same arguments hashes the same, whatever the key order."""
    canonical = json.dumps({"operation": operation, "arguments": arguments}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _stored(session: AsyncSession, org_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
    found = await session.execute(
        select(IdempotencyRecord)
        .where(col(IdempotencyRecord.org_id) == org_id, col(IdempotencyRecord.key) == key)
        .execution_options(populate_existing=True)
    )
    return found.scalar_one_or_none()


def _replay(record: IdempotencyRecord, operation: str, digest: str) -> Result:
    if record.operation != operation or record.request_hash != digest:
        raise UserError(
            "IDEMPOTENCY_CONFLICT",
            "This idempotencyKey was already used with other arguments: send a new key for a new request.",
            FIELD,
        )
    stored: Result = json.loads(record.result)
    return stored


async def run_once(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    key: str | None,
    operation: str,
    arguments: Mapping[str, Any],
    work: Callable[[], Awaitable[Result]],
) -> Result:
    """Run ``work`` once per key: its result (ids as strings) is stored, and a replay returns it."""
    if key is None:
        return await work()
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise UserError("INVALID", f"An idempotencyKey has 1 to {MAX_KEY_LENGTH} characters.", FIELD)
    digest = request_hash(operation, arguments)
    existing = await _stored(session, org_id, key)
    if existing is not None:
        return _replay(existing, operation, digest)
    record = IdempotencyRecord(org_id=org_id, key=key, operation=operation, request_hash=digest, result="{}")
    # Claim the key before the work: a concurrent call with the same key waits
    # on this row (PostgreSQL) or on the write lock (SQLite), then replays.
    savepoint = await session.begin_nested()
    try:
        session.add(record)
        await session.flush()
    except IntegrityError:
        await savepoint.rollback()
        existing = await _stored(session, org_id, key)
        if existing is None:
            raise
        return _replay(existing, operation, digest)
    await savepoint.commit()
    result = await work()
    record.result = json.dumps(result, sort_keys=True)
    await session.flush()
    return result
