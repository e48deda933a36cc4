"""Batches take turns to plan (resolvers/turns.py): one batch's Python at a time in a process, the
turn handed on as its statements are sent. Sent at once, batches of the same customers land as
they would one by one; a batch that fails or is cancelled never keeps the next one waiting."""

from __future__ import annotations

import asyncio

import pytest

from models import Organization
from permissions.matrix import Role
from resolvers.turns import planning_turn
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
