"""Coalesced reads, the card: the full persona card (operations/card.graphql) over
HTTP answers the same with coalescing on and off, and on PostgreSQL takes a
fraction of the statements. On SQLite each read runs as is.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from database import Database
from models import Organization, SignupSubmission
from tests.coalesced_reads_support import coalescing, counting
from tests.conftest import GraphQLClient, StatementCounter
from tests.history_support import FIELDS, given_history

CARD = (Path(__file__).resolve().parent.parent / "operations" / "card.graphql").read_text()


async def _card_with_everything(db: Database, org: Organization) -> str:
    history = await given_history(
        db,
        org,
        "+14155550177",
        first_name="Zoë",
        last_name="Ñúñez 中文",
        email="zoe@example.com",
        birthday=dt.date(1990, 2, 28),
        attributes=[("budtender", "Sam 🌿"), ("medical", "yes")],
        tags=["vip", "veteran"],
    )
    at = dt.datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
    for n, name in enumerate(FIELDS * 2):
        await history.add(name, at - dt.timedelta(hours=n))
    async with db.session() as session, session.begin():
        session.add(
            SignupSubmission(
                org_id=org.id,
                persona_id=history.persona.id,
                form_name="Join “now”",
                url="https://example.com/join?x=1&y=ü",
                signature="data:image/png;base64,AAAA",
            )
        )
    return history.persona.gid


async def test_the_full_card_takes_far_fewer_statements_and_answers_the_same(
    owner_client: GraphQLClient, db: Database, org: Organization, statements: StatementCounter, backend: str
) -> None:
    # Given a persona with every kind of history, tags, attributes and a sign-up
    gid = await _card_with_everything(db, org)
    await owner_client.data(CARD, {"id": gid})  # warm up: the key's last-used time is written once a minute

    # When the full card is read with coalescing on, then off
    answers, counts = {}, {}
    for on in (True, False):
        with coalescing(db, on), counting(statements):
            answers[on] = await owner_client.execute(CARD, {"id": gid})
        counts[on] = statements.count

    # Then the answers are identical, and on PostgreSQL the card takes a fraction of the statements
    assert not answers[True].get("errors")
    assert not answers[False].get("errors")
    # The wallet and referral links carry tokens signed with the current second: not compared.
    for answer in answers.values():
        answer["data"]["persona"].pop("links")
    assert answers[True]["data"] == answers[False]["data"]
    assert answers[True]["data"]["persona"]["history"]["merges"]["totalCount"] == 2
    if backend == "postgresql":
        assert counts[True] <= 6, counts
        assert counts[False] >= 4 * counts[True], counts
    else:
        assert counts[True] == counts[False]
