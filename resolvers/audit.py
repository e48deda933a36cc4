"""The audit log: one row per mutation, with ids and outcome but no PII."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models import AuditEntry
from permissions.viewer import Viewer


def target_text(target_ids: Sequence[str]) -> str:
    return " ".join(target_ids)


def audit_entry(
    viewer: Viewer, operation: str, target_ids: Sequence[str], outcome: str, detail: str = ""
) -> AuditEntry:
    return AuditEntry(
        org_id=viewer.org_id,
        api_key_id=viewer.api_key_id,
        actor=viewer.name,
        role=viewer.role.value,
        operation=operation,
        target_ids=target_text(target_ids),
        outcome=outcome,
        detail=detail,
    )


async def audit_log(session: AsyncSession, org_id: uuid.UUID, since: dt.datetime | None = None) -> list[AuditEntry]:
    stmt = select(AuditEntry).where(col(AuditEntry.org_id) == org_id)
    if since is not None:
        stmt = stmt.where(col(AuditEntry.occurred_at) >= since)
    stmt = stmt.order_by(col(AuditEntry.occurred_at), col(AuditEntry.id))
    return list((await session.execute(stmt)).scalars())
