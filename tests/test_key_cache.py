"""The keys a server process keeps (permissions.keys.KeyCache): a request with a key the
process authenticated within API_KEY_CACHE_SECONDS sends no key statement, and a key
revoked elsewhere (the CLI) is refused once that time has passed."""

from __future__ import annotations

import asyncio
import dataclasses

from sqlalchemy import update

from database import Database
from models import ApiKey, Organization
from permissions.keys import _hash as key_hash
from permissions.keys import revoke_key
from permissions.matrix import Role
from settings import Settings
from tests.conftest import StatementCounter
from tests.hardening import world

VIEWER = "{ viewer { name role } }"
READS = "{ viewer { name } loyaltySettings { pointsPerOrder } personas(first: 1) { totalCount } }"
ANSWER = {
    "viewer": {"name": "hardening OWNER"},
    "loyaltySettings": {"pointsPerOrder": 0},
    "personas": {"totalCount": 0},
}


def _prefix(key: str) -> str:
    return key.split("_", 2)[1]


async def _statements_of_a_second_request(
    db: Database, settings: Settings, statements: StatementCounter, query: str
) -> tuple[int, dict[str, object]]:
    async with world(db, settings) as made:
        http = made.client()
        assert (await http.post("/graphql", json={"query": query})).status_code == 200
        await asyncio.sleep(0.05)  # the key's first use recorded (a write after the response)
        statements.count, statements.active = 0, True
        again = await http.post("/graphql", json={"query": query})
        statements.active = False
        assert again.status_code == 200
        data: dict[str, object] = again.json()["data"]
        return statements.count, data


async def test_a_kept_key_sends_no_statement_of_its_own(
    session_db: Database, settings: Settings, statements: StatementCounter
) -> None:
    kept, off = (dataclasses.replace(settings, api_key_cache_seconds=s) for s in (60, 0))
    # The page and its count; without the cache, the key (with its organization) first
    assert await _statements_of_a_second_request(session_db, kept, statements, READS) == (2, ANSWER)
    assert await _statements_of_a_second_request(session_db, off, statements, READS) == (3, ANSWER)
    # The viewer is the key's alone
    assert (await _statements_of_a_second_request(session_db, kept, statements, VIEWER))[0] == 0


async def test_a_key_revoked_elsewhere_is_refused_once_the_cache_time_has_passed(
    session_db: Database, settings: Settings
) -> None:
    async with world(session_db, dataclasses.replace(settings, api_key_cache_seconds=0.4)) as made:
        http = made.client()
        assert (await http.post("/graphql", json={"query": VIEWER})).status_code == 200
        async with session_db.session() as session, session.begin():  # as `personagraph revoke-key` does
            assert await revoke_key(session, _prefix(made.keys[Role.OWNER])) is not None
        revoked_at = asyncio.get_running_loop().time()
        await asyncio.sleep(0.4)
        refused = await http.post("/graphql", json={"query": VIEWER})
        assert refused.status_code == 401, f"still accepted {asyncio.get_running_loop().time() - revoked_at:.2f} s on"
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_without_the_cache_a_revoked_key_is_refused_at_once(session_db: Database, settings: Settings) -> None:
    async with world(session_db, dataclasses.replace(settings, api_key_cache_seconds=0)) as made:
        http = made.client()
        assert (await http.post("/graphql", json={"query": VIEWER})).status_code == 200
        async with session_db.session() as session, session.begin():
            await revoke_key(session, _prefix(made.keys[Role.OWNER]))
        assert (await http.post("/graphql", json={"query": VIEWER})).status_code == 401


async def test_organization_settings_changed_elsewhere_show_once_the_cache_time_has_passed(
    session_db: Database, settings: Settings
) -> None:
    async with world(session_db, dataclasses.replace(settings, api_key_cache_seconds=0.4)) as made:
        http = made.client()
        before = await http.post("/graphql", json={"query": READS})
        assert before.json()["data"]["loyaltySettings"] == {"pointsPerOrder": 0}
        async with session_db.session() as session, session.begin():
            await session.execute(
                update(Organization).where(Organization.id == made.org.id).values(points_per_order=25)  # type: ignore[arg-type]
            )
        await asyncio.sleep(0.4)
        after = await http.post("/graphql", json={"query": READS})
        assert after.json()["data"]["loyaltySettings"] == {"pointsPerOrder": 25}


async def test_a_refusal_is_never_kept(session_db: Database, settings: Settings) -> None:
    async with world(session_db, dataclasses.replace(settings, api_key_cache_seconds=60)) as made:
        plaintext = "pgk_0123abcd_" + "x" * 27
        http = made.client(None, Authorization=f"Bearer {plaintext}")
        assert (await http.post("/graphql", json={"query": VIEWER})).status_code == 401
        # When that key comes to exist, it works at once
        async with session_db.session() as session, session.begin():
            session.add(
                ApiKey(org_id=made.org.id, name="late", role="OWNER", prefix="0123abcd", key_hash=key_hash(plaintext))
            )
        answered = await http.post("/graphql", json={"query": VIEWER})
        assert answered.status_code == 200
        assert answered.json()["data"] == {"viewer": {"name": "late", "role": "OWNER"}}
