"""Two organizations with look-alike data: a key of one never reads the
other's rows, by any root field or id, and lists never count them."""

from __future__ import annotations

from database import Database
from models import Discount, Organization
from permissions.matrix import Role
from tests.conftest import ClientFactory
from tests.factories import make_persona

READS = {
    "persona": "query ($id: ID!) { persona(id: $id) { id firstName } }",
    "node": "query ($id: ID!) { node(id: $id) { id } }",
}
LISTS = """
{
  personas(first: 100, includeArchived: true) { totalCount nodes { id firstName email } }
  discounts(activeOnly: false) { id name }
  viewer { organization { slug } }
  loyaltySettings { pointsPerDollar }
}
"""


async def test_one_organization_never_sees_the_other(
    client_for: ClientFactory, db: Database, org: Organization, other_org: Organization
) -> None:
    # given both organizations have a customer with the same phone and email, and a discount
    mine = await make_persona(db, org, first_name="Ann", phone="+14155550134", email="ann@example.com")
    theirs = await make_persona(db, other_org, first_name="Ann", phone="+14155550134", email="ann@example.com")
    async with db.session() as session, session.begin():
        session.add_all(
            [
                Discount(org_id=org.id, name="Ours", points_cost=10),
                Discount(org_id=other_org.id, name="Theirs", points_cost=10),
            ]
        )
    client = await client_for(Role.OWNER)

    # when one organization reads by the other's ids, it is as if they did not exist
    for name, query in READS.items():
        body = await client.execute(query, {"id": theirs.gid})
        assert body["data"][name] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
        assert (await client.data(query, {"id": mine.gid}))[name]["id"] == mine.gid

    # and lists hold and count only its own rows
    data = await client.data(LISTS)
    assert data["personas"]["totalCount"] == 1
    assert [p["id"] for p in data["personas"]["nodes"]] == [mine.gid]
    assert [d["name"] for d in data["discounts"]] == ["Ours"]
    assert data["viewer"]["organization"]["slug"] == "acme"

    # and by number each organization gets its own persona #n
    assert mine.number == theirs.number
    by_number = await client.data("query ($n: Int!) { personaByNumber(number: $n) { id } }", {"n": theirs.number})
    assert by_number["personaByNumber"]["id"] == mine.gid
