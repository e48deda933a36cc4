"""Who sees the History tab: connections a role may not see are null with
FORBIDDEN while the rest render, and another organization's persona and its
history stay invisible.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from database import Database
from models import Organization
from tests.conftest import ClientFactory, GraphQLClient
from tests.factories import days_ago
from tests.history_support import ANN_PHONE, EVERY_CONNECTION, FIELDS, TIMELINE_PAGE, given_history


async def test_connections_a_role_may_not_see_are_forbidden_and_the_rest_renders(
    db: Database, org: Organization, staff_client: GraphQLClient
) -> None:
    # Given a persona with orders and messages
    ann = await given_history(db, org, ANN_PHONE)
    await ann.add("orders", days_ago(2))
    await ann.add("messages", days_ago(1))

    # When staff (no VIEW_ENGAGEMENT) open the History tab
    body = await staff_client.execute(EVERY_CONNECTION, {"id": ann.persona.gid})
    timeline = await staff_client.execute(TIMELINE_PAGE, {"id": ann.persona.gid})

    # Then engagement history is null with FORBIDDEN, and orders and points still render
    history = body["data"]["persona"]["history"]
    forbidden = {tuple(e["path"]) for e in body["errors"] if e["extensions"]["code"] == "FORBIDDEN"}
    engagement = {"messages", "surveys", "actions", "pixelEvents"}
    assert forbidden == {("persona", "history", name) for name in engagement}
    assert all(history[name] is None for name in engagement)
    assert history["orders"]["totalCount"] == 1
    assert history["points"]["totalCount"] == 1
    assert timeline["data"]["persona"]["timeline"] is None
    assert [e["extensions"]["code"] for e in timeline["errors"]] == ["FORBIDDEN"]


async def test_another_organizations_persona_and_history_stay_invisible(
    db: Database, org: Organization, other_org: Organization, client_for: ClientFactory
) -> None:
    # Given a rival organization's persona with history
    rival = await given_history(db, other_org, ANN_PHONE)
    for name in FIELDS:
        await rival.add(name, days_ago(1))
    ours = await given_history(db, org, ANN_PHONE)
    client = await client_for(organization=org)

    # When our key asks for their persona's history and timeline
    body = await client.execute(EVERY_CONNECTION, {"id": rival.persona.gid})
    timeline = await client.execute(TIMELINE_PAGE, {"id": rival.persona.gid})
    own = (await client.data(TIMELINE_PAGE, {"id": ours.persona.gid, "first": 100}))["persona"]["timeline"]

    # Then it does not exist for us, and none of their rows reach our timeline
    assert body["data"]["persona"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
    assert timeline["data"]["persona"] is None
    theirs = {gid for name in FIELDS for gid in rival.newest_first(name)}
    assert not theirs & {e["node"]["id"] for e in own["edges"]}
