"""The history counts the triggers keep (models.HistoryCount, migration 0005) are the
rows each persona has, after every write path: ingestion, orders, the ledger, redemptions
and their reversal, events, merges and their undoing, privacy erasure, bulk SQL."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import delete, insert, select, text, update
from sqlmodel import col

from database import Database
from models import Merge, Message, Organization, Persona, PointsEntry
from models.enums import MergeKind
from resolvers.history import KINDS, HistoryKind
from resolvers.merges import merge_personas, undo_merge
from tests.conftest import GraphQLClient
from tests.execution_parity_world import build_world
from tests.factories import make_persona

Counted = dict[tuple[uuid.UUID, uuid.UUID, str], int]


async def counted_rows(db: Database) -> Counted:
    """count(*) per (organization, persona, kind), as the connections list them."""
    found: Counted = {}
    async with db.engine.connect() as conn:
        for kind, spec in KINDS.items():
            for name in spec.persona_columns:
                column = spec.table.c[name]
                statement = select(spec.table.c.org_id, column, text("count(*)")).group_by(spec.table.c.org_id, column)
                for org_id, persona_id, count in await conn.execute(statement):
                    key = (org_id, persona_id, kind.value)
                    found[key] = found.get(key, 0) + count
    return found


async def kept_counts(db: Database) -> Counted:
    async with db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT org_id, persona_id, kind, count FROM history_counts"))
        kept = {(uuid.UUID(str(o)), uuid.UUID(str(p)), k): n for o, p, k, n in rows}
    return {key: n for key, n in kept.items() if n != 0}


async def test_counts_follow_every_write_path(db: Database) -> None:
    # Given two organizations written through every write path the API has (the
    # differential test's world: orders, the ledger, redemptions and a reversal, events,
    # a manual and an automatic merge, an archive, a privacy erasure)
    await build_world(db)
    kept = await kept_counts(db)

    # Then the kept counts are the rows, for every persona and kind
    assert kept == await counted_rows(db)
    assert {kind for _, _, kind in kept} == {k.value for k in HistoryKind}


async def test_counts_follow_a_merge_undone_and_bulk_sql(db: Database, org: Organization) -> None:
    # Given two personas with history
    ann = await make_persona(db, org, first_name="Ann", phone="(415) 555-0101")
    bea = await make_persona(db, org, first_name="Bea", phone="(415) 555-0102")
    now = dt.datetime.now(dt.UTC)
    async with db.engine.begin() as conn:
        for persona, n in ((ann, 3), (bea, 5)):
            # n rows of each kind, a minute apart, straight into the tables.
            mine = [{"org_id": org.id, "id": uuid.uuid4(), "persona_id": persona.id} for _ in range(n)]
            minutes = [now - dt.timedelta(minutes=i) for i in range(n)]
            messages = [
                {**row, "source": "bulk", "external_id": f"{persona.number}-{i}", "direction": "OUTBOUND"}
                | {"channel": "SMS", "body": "hi", "sent_at": minutes[i]}
                for i, row in enumerate(mine)
            ]
            entries = [
                {**row, "id": uuid.uuid4(), "kind": "CAMPAIGN_GIFT", "delta": 10, "balance_after": 10 * (i + 1)}
                | {"created_at": minutes[i]}
                for i, row in enumerate(mine)
            ]
            await conn.execute(insert(Message.__table__), messages)  # type: ignore[attr-defined]
            await conn.execute(insert(PointsEntry.__table__), entries)  # type: ignore[attr-defined]
    assert await kept_counts(db) == await counted_rows(db)

    # When Bea is merged into Ann (her rows move), then the merge is undone
    async with db.session() as session, session.begin():
        kept_persona = await session.get(Persona, (org.id, ann.id))
        gone = await session.get(Persona, (org.id, bea.id))
        assert kept_persona is not None
        assert gone is not None
        merge = await merge_personas(
            session, org_id=org.id, survivor=kept_persona, merged=gone, kind=MergeKind.MANUAL, reason="x", actor="t"
        )
    merged = await kept_counts(db)
    assert merged == await counted_rows(db)
    assert merged[(org.id, ann.id, "MESSAGE")] == 8
    assert merged[(org.id, bea.id, "MERGE")] == merged[(org.id, ann.id, "MERGE")] == 1
    async with db.session() as session, session.begin():
        loaded = await session.get(Merge, (org.id, merge.id))
        assert loaded is not None
        await undo_merge(session, org_id=org.id, merge=loaded, actor="t")
    undone = await kept_counts(db)
    assert undone == await counted_rows(db)
    assert undone[(org.id, ann.id, "MESSAGE")] == 3

    # And rows moved, deleted and rolled back in bulk SQL
    async with db.engine.begin() as conn:
        await conn.execute(
            update(Message.__table__)  # type: ignore[attr-defined]
            .where(col(Message.org_id) == org.id, col(Message.persona_id) == ann.id)
            .values(persona_id=bea.id)
        )
        await conn.execute(delete(PointsEntry.__table__).where(col(PointsEntry.persona_id) == bea.id))  # type: ignore[attr-defined]
    async with db.engine.connect() as conn:
        transaction = await conn.begin()
        await conn.execute(delete(Message.__table__))  # type: ignore[attr-defined]
        await transaction.rollback()
    final = await kept_counts(db)
    assert final == await counted_rows(db)
    assert final[(org.id, bea.id, "MESSAGE")] == 8
    assert (org.id, bea.id, "POINTS") not in final


CARD_TOTALS = """
query ($id: ID!) {
  persona(id: $id) {
    history {
      points(first: 1) { totalCount }
      orders(first: 1) { totalCount }
      messages(first: 1) { totalCount }
      merges(first: 1) { totalCount }
    }
  }
}
"""


async def test_the_card_reads_its_totals_from_the_kept_counts(
    db: Database, org: Organization, owner_client: GraphQLClient
) -> None:
    # Given a persona whose kept count of messages is set apart from its rows
    ann = await make_persona(db, org, first_name="Ann", phone="(415) 555-0101")
    async with db.engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO history_counts (org_id, persona_id, kind, count) VALUES (:o, :p, 'MESSAGE', 41)"),
            {"o": org.id if not db.is_sqlite else org.id.hex, "p": ann.id if not db.is_sqlite else ann.id.hex},
        )

    # When the card's totals are read
    data = await owner_client.data(CARD_TOTALS, {"id": ann.gid})

    # Then they are the kept counts (no count over the history), zero where none is kept
    totals = {name: c["totalCount"] for name, c in data["persona"]["history"].items()}
    assert totals == {"points": 0, "orders": 0, "messages": 41, "merges": 0}
