"""Every role against every mutation, from the one permission matrix: a role
without the permission gets a payload with one FORBIDDEN userError and
nothing is written; a role with it is never refused for permission."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel

from database import Database
from models import Audience, Discount, Organization, Persona
from models.enums import MergeKind, PointsEntryKind
from permissions.matrix import MATRIX, MUTATION_PERMISSIONS, Role
from resolvers import merges
from resolvers.discounts import redeem
from resolvers.points import post_entry
from schema import schema
from schema.ids import to_global_id
from tests.conftest import ClientFactory
from tests.factories import make_persona

# Tables a refused mutation must leave exactly as they were (the audit log records the refusal).
WATCHED = [t.name for t in SQLModel.metadata.sorted_tables if t.name not in {"audit_log", "api_keys"}]
NOW = dt.datetime.now(dt.UTC).isoformat()


def inputs(ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    """A valid input for every mutation, against the fixture's rows."""
    return {
        "adjustPoints": {"personaId": ids["ann"], "delta": 10, "note": "goodwill"},
        "awardPoints": {"personaId": ids["ann"], "kind": "CAMPAIGN_GIFT", "points": 5},
        "redeemDiscount": {"personaId": ids["ann"], "discountId": ids["discount"]},
        "reverseRedemption": {"redemptionId": ids["redemption"]},
        "createDiscount": {"name": "Free grinder", "pointsCost": 300},
        "mergePersonas": {"survivorId": ids["ann"], "mergedId": ids["bo"]},
        "undoMerge": {"mergeId": ids["merge"]},
        "archivePersona": {"personaId": ids["ann"]},
        "restorePersona": {"personaId": ids["ann"]},
        "updateCustomAttributes": {"personaId": ids["ann"], "set": [{"key": "budtender", "value": "Sam"}]},
        "setTags": {"personaId": ids["ann"], "add": ["vip"]},
        "setOptIn": {"personaId": ids["ann"], "channel": "EMAIL", "status": "OPTED_OUT"},
        "updatePersona": {"personaId": ids["ann"], "firstName": "Annie"},
        "requestPrivacyAction": {"email": "ann@example.com", "action": "OPT_OUT"},
        "ingestContacts": {"source": "pos", "contacts": [{"email": "new@example.com", "firstName": "New"}]},
        "recordOrders": {
            "orders": [
                {
                    "externalId": "t-1",
                    "source": "pos",
                    "customer": {"email": "ann@example.com"},
                    "placedAt": NOW,
                    "subtotal": "10.00",
                    "tax": "1.00",
                    "total": "11.00",
                    "lines": [{"product": "Pre-roll", "quantity": 1, "unitPrice": "10.00"}],
                }
            ]
        },
        "recordEvents": {
            "events": [
                {
                    "externalId": "e-1",
                    "source": "sms",
                    "kind": "ACTION",
                    "email": "ann@example.com",
                    "occurredAt": NOW,
                    "actionKind": "OPENED",
                }
            ]
        },
        "sendLink": {"personaId": ids["ann"], "link": "WALLET", "channel": "EMAIL"},
        "saveAudience": {"name": "VIPs", "query": "tag:vip"},
        "deleteAudience": {"id": ids["audience"]},
    }


def _input_type(mutation: str) -> str:
    field = schema._schema.mutation_type.fields[mutation]  # type: ignore[union-attr]
    return str(field.args["input"].type)


async def _fixture(db: Database, org: Organization) -> dict[str, str]:
    ann = await make_persona(db, org, first_name="Ann", phone="+14155550134", email="ann@example.com")
    bo = await make_persona(db, org, first_name="Bo", phone="+14155550135")
    cy = await make_persona(db, org, first_name="Cy", phone="+14155550136")
    dee = await make_persona(db, org, first_name="Dee", phone="+14155550137")
    async with db.session() as session, session.begin():
        discount = Discount(org_id=org.id, name="$5 off", points_cost=100)
        audience = Audience(org_id=org.id, name="Regulars", query="orders>=3")
        session.add_all([discount, audience])
        await session.flush()
        await post_entry(session, org_id=org.id, persona_id=ann.id, kind=PointsEntryKind.CAMPAIGN_GIFT, delta=500)
        redemption = await redeem(session, org_id=org.id, persona_id=ann.id, discount=discount, actor="test")
        survivor, merged = await session.get(Persona, (org.id, cy.id)), await session.get(Persona, (org.id, dee.id))
        assert survivor is not None
        assert merged is not None
        merge = await merges.merge_personas(
            session, org_id=org.id, survivor=survivor, merged=merged, kind=MergeKind.MANUAL, reason=None, actor="test"
        )
    return {
        "ann": ann.gid,
        "bo": bo.gid,
        "discount": to_global_id("Discount", discount.id),
        "redemption": to_global_id("Redemption", redemption.id),
        "merge": to_global_id("Merge", merge.id),
        "audience": to_global_id("Audience", audience.id),
    }


async def _row_counts(db: Database) -> dict[str, int]:
    query = "SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}") AS "{t}"' for t in WATCHED)
    async with db.read() as conn:
        row = (await conn.execute(text(query))).one()
    return dict(zip(WATCHED, row, strict=True))


@pytest.mark.parametrize("role", list(Role))
async def test_each_role_may_call_exactly_the_mutations_its_permissions_allow(
    client_for: ClientFactory, db: Database, org: Organization, role: Role
) -> None:
    ids = await _fixture(db, org)
    client = await client_for(role)
    for mutation, variables in inputs(ids).items():
        payload = f"{mutation}(input: $input) {{ userErrors {{ code field }} }}"
        document = f"mutation ($input: {_input_type(mutation)}) {{ {payload} }}"
        allowed = role in MATRIX[MUTATION_PERMISSIONS[mutation]]
        before = None if allowed else await _row_counts(db)
        body = await client.data(document, {"input": variables})
        codes = [e["code"] for e in body[mutation]["userErrors"]]
        if allowed:
            assert "FORBIDDEN" not in codes, (mutation, role, codes)
        else:
            assert codes == ["FORBIDDEN"], (mutation, role, codes)
            assert await _row_counts(db) == before, (mutation, role)
