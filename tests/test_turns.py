"""Batches take turns to plan (resolvers/turns.py): one batch's Python at a time in a process, the
turn handed on as its statements are sent. Sent at once, batches of the same customers land as
they would one by one; a batch that fails or is cancelled never keeps the next one waiting."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from database import Database
from models import Organization
from permissions.matrix import Role
from resolvers.turns import planning_turn
from schema.ids import from_global_id
from settings import Settings
from tests.conftest import ClientFactory
from tests.ingest_support import ingest, outcomes
from tests.test_ingest_batch import assert_rollups_and_ledgers_hold, record, ticket


async def test_batches_of_the_same_customers_sent_at_once_all_land_exactly(
    client_for: ClientFactory, db: object, org: Organization
) -> None:
    # Given twelve loyalty members, and eight clients
    clients = [await client_for(Role.OPERATOR) for _ in range(8)]
    members = [{"phone": f"+1415555{i:04d}", "loyaltyMember": True} for i in range(12)]
    await ingest(clients[0], *members)

    # When each client sends, at once, a batch of orders of every member, with new contacts beside them
    def orders(client: int) -> list[dict[str, object]]:
        return [ticket(f"c{client}-{i}", {"phone": m["phone"]}, f"{10 + client + i}.00") for i, m in enumerate(members)]

    sent = [record(c, *orders(k)) for k, c in enumerate(clients[:6])]
    sent += [ingest(c, {"phone": f"+1415556{k:04d}", "tags": ["new"]}) for k, c in enumerate(clients[6:])]
    answers = await asyncio.gather(*sent)

    # Then every order is recorded once, every contact is created, and each member's ledger runs
    # without a gap to the balance its rollup holds
    assert [outcomes(a) for a in answers] == [["RECORDED"] * 12] * 6 + [["CREATED"]] * 2
    await assert_rollups_and_ledgers_hold(db, org, [r for a in answers[:6] for r in a])


async def test_a_batch_that_plans_first_and_writes_last_still_keeps_the_ledger_in_order(
    client_for: ClientFactory, db: Database, org: Organization, settings: Settings
) -> None:
    # Given a loyalty member, and (PostgreSQL) another transaction holding a phone number a batch
    # will claim, so that the batch which plans first waits in its write
    first, second = await client_for(Role.OPERATOR), await client_for(Role.OPERATOR)
    (member,) = await ingest(first, {"phone": "+14155550100", "loyaltyMember": True})
    held = None
    if not db.is_sqlite:
        url = make_url(settings.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        held = await psycopg.AsyncConnection.connect(url)
        persona_id = from_global_id(member["persona"]["id"], "Persona")
        await held.execute(
            "INSERT INTO identity_keys (org_id, kind, value, persona_id, created_at)"
            " VALUES (%s, 'phone', %s, %s, now())",
            (org.id, "+14155550199", persona_id),
        )

    # When one batch plans the member's orders first and waits in its write, another batch of the
    # member's orders plans and commits meanwhile, and then the first goes on
    planned_first = asyncio.create_task(
        record(first, ticket("a-1", {"phone": "+14155550100"}, "30.00"), ticket("a-2", {"phone": "+14155550199"}))
    )
    if held is not None:
        for _ in range(1500):
            if await _waiting_for_a_lock(held):
                break
            assert not planned_first.done(), "the first batch did not wait for the held phone"
            await asyncio.sleep(0.02)
    try:
        written_first = await record(second, ticket("b-1", {"phone": "+14155550100"}, "20.00"))
    finally:
        if held is not None:
            await held.rollback()
            await held.close()
    answers = await planned_first

    # Then the ledger, in its order, runs to each balance it states, and to the rollup's
    assert outcomes(answers) == ["RECORDED", "RECORDED"]
    assert outcomes(written_first) == ["RECORDED"]
    await assert_rollups_and_ledgers_hold(db, org, [*written_first, *answers])


async def _waiting_for_a_lock(conn: psycopg.AsyncConnection[Any]) -> bool:
    found = await conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    row = await found.fetchone()
    return bool(row and row[0])


async def test_a_batch_that_fails_or_is_cancelled_hands_its_turn_on() -> None:
    # Given a batch that fails while planning, and one that is cancelled while it holds its turn
    async def failing() -> None:
        async with planning_turn():
            raise RuntimeError("a bug while planning")

    holding = asyncio.Event()

    async def cancelled() -> None:
        async with planning_turn():
            holding.set()
            await asyncio.sleep(3600)

    with pytest.raises(RuntimeError):
        await failing()
    task = asyncio.create_task(cancelled())
    await holding.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # Then the next batch gets its turn at once, and ending it twice changes nothing
    async with asyncio.timeout(5), planning_turn() as turn:
        assert turn.held
        turn.end()
        turn.end()
        assert not turn.held
    async with asyncio.timeout(5), planning_turn() as again:
        assert again.held
