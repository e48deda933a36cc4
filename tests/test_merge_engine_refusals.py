"""The merge engine: the merges it refuses: a persona into itself, a merged persona again, the
second of two merges of one persona at once (nothing half-done), and personas of two organizations.

Personas are made through ingestion, as the API makes them. Every test runs on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from sqlmodel import col

from database import Database
from models import IdentityKey, Merge, Organization, Persona
from models.enums import MergeKind
from resolvers import merges
from resolvers.errors import UserError
from resolvers.ingest import ContactData
from tests.merge_engine_support import ANN_PHONE, BEA_PHONE, CAL_PHONE, ingest, merge


async def test_a_persona_cannot_be_merged_into_itself(db: Database, org: Organization) -> None:
    (ann,) = await ingest(db, org, ContactData(phone=ANN_PHONE))

    with pytest.raises(UserError) as refused:
        await merge(db, org, ann.persona_id, ann.persona_id)
    assert refused.value.code == "SAME_PERSONA"


async def test_a_merged_persona_cannot_merge_again(db: Database, org: Organization) -> None:
    ann, bea, cal = await ingest(
        db, org, ContactData(phone=ANN_PHONE), ContactData(phone=BEA_PHONE), ContactData(phone=CAL_PHONE)
    )
    await merge(db, org, ann.persona_id, bea.persona_id)

    for survivor, merged in ((cal.persona_id, bea.persona_id), (bea.persona_id, cal.persona_id)):
        with pytest.raises(UserError) as refused:
            await merge(db, org, survivor, merged)
        assert refused.value.code == "ALREADY_MERGED"


async def test_two_merges_of_one_persona_at_once_give_one_merge(db: Database, org: Organization) -> None:
    # given three personas, and two staff members folding the same one into different survivors
    ann, bea, cal = await ingest(
        db, org, ContactData(phone=ANN_PHONE), ContactData(phone=BEA_PHONE), ContactData(phone=CAL_PHONE)
    )

    # when both merges run at the same time
    outcomes = await asyncio.gather(
        merge(db, org, ann.persona_id, bea.persona_id),
        merge(db, org, cal.persona_id, bea.persona_id),
        return_exceptions=True,
    )

    # then one merged and the other was refused, with nothing half-done
    assert sorted(type(o).__name__ for o in outcomes) == ["Merge", "UserError"]
    refused = next(o for o in outcomes if isinstance(o, UserError))
    assert refused.code == "ALREADY_MERGED"
    async with db.session() as session:
        merged_rows = (await session.execute(select(Merge).where(col(Merge.org_id) == org.id))).scalars().all()
        keys = (await session.execute(select(IdentityKey).where(col(IdentityKey.org_id) == org.id))).scalars().all()
    assert len(merged_rows) == 1
    holders = {k.value: k.persona_id for k in keys}
    assert holders["+16467830134"] == merged_rows[0].survivor_id


async def test_personas_of_two_organizations_never_merge(
    db: Database, org: Organization, other_org: Organization
) -> None:
    (ours,) = await ingest(db, org, ContactData(phone=ANN_PHONE))
    (theirs,) = await ingest(db, other_org, ContactData(phone=BEA_PHONE))

    async with db.session() as session:
        survivor = await session.get(Persona, (org.id, ours.persona_id))
        merged = await session.get(Persona, (other_org.id, theirs.persona_id))
        assert survivor is not None
        assert merged is not None
        with pytest.raises(UserError) as refused:
            await merges.merge_personas(
                session, org_id=org.id, survivor=survivor, merged=merged, kind=MergeKind.MANUAL, reason=None, actor="x"
            )
    assert refused.value.code == "NOT_FOUND"
