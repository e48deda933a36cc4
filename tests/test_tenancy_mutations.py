"""Every mutation, sent by one organization with the other organization's
ids, answers NOT_FOUND and changes nothing of the other organization."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from database import Database
from models import Organization
from permissions.matrix import Role
from tests.conftest import ClientFactory
from tests.test_mutation_permissions import WATCHED, _fixture, _input_type, inputs

# Mutations that name no existing object: they act on the caller's own organization.
OWN_ONLY = {"createDiscount", "requestPrivacyAction", "ingestContacts", "recordOrders", "recordEvents", "saveAudience"}


async def _rows_of(db: Database, org: Organization) -> dict[str, int]:
    tables = [t for t in WATCHED if t != "organizations"]
    query = "SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}" WHERE org_id = :org) AS "{t}"' for t in tables)
    async with db.read() as conn:
        row = (await conn.execute(text(query), {"org": org.id.hex if db.is_sqlite else org.id})).one()
    return dict(zip(tables, row, strict=True))


@pytest.mark.parametrize(
    "mutation",
    sorted(set(inputs(dict.fromkeys(("ann", "bo", "discount", "redemption", "merge", "audience"), ""))) - OWN_ONLY),
)
async def test_a_mutation_with_another_organizations_ids_is_not_found(
    client_for: ClientFactory, db: Database, org: Organization, other_org: Organization, mutation: str
) -> None:
    # given the other organization has the rows the mutation names
    theirs = await _fixture(db, other_org)
    before = await _rows_of(db, other_org)
    client = await client_for(Role.OWNER)

    # when this organization's owner sends the mutation with those ids
    payload = f"{mutation}(input: $input) {{ userErrors {{ code }} }}"
    body = await client.data(
        f"mutation ($input: {_input_type(mutation)}) {{ {payload} }}", {"input": inputs(theirs)[mutation]}
    )

    # then it is as if they did not exist, and nothing of theirs changed
    assert "NOT_FOUND" in [e["code"] for e in body[mutation]["userErrors"]], body
    assert await _rows_of(db, other_org) == before
