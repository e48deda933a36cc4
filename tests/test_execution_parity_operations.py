"""Differential test: every registered operation answers exactly as the reference path does.

Every registered operation (operations/*.graphql) for every role and every kind of
persona (and historyFirst 0, 1, 3, 10 and left out, where the operation has it), and
with bad ids, goes over HTTP to the reference app and the fast one
(tests/execution_parity_support.py); the status, the media type and the whole body
must be the same, byte for byte, after `normalise`.

The data (tests/execution_parity_world.py) is built once per backend, under two
organizations of this module's own (nothing else is emptied or read).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from permissions.matrix import Role
from tests import execution_parity_support
from tests.execution_parity_support import DOCUMENTS, OPERATION_LIST, World, assert_same_answer, resolve

# The data and the two apps, built once per backend for this module.
world = execution_parity_support.world

# The personas every operation is read for (see `build_world` in tests/execution_parity_world.py).
PERSONAS = ["full", "merged", "archived", "erased", "empty", "long", "rival"]
HISTORY_FIRST = [0, 1, 3, 10]
# historyFirst values; None leaves it out (the document's default).
SIZES: list[int | None] = [None, *HISTORY_FIRST]


# Which (role, persona) pairs read each registered operation: every role reads every
# operation, every persona is read by every operation, and the pairs in between are
# sampled (the whole product, 49 pairs an operation, took twice the module's time budget).
# The card and the History tab (the others select subsets of the card's fields) are read
# by every role for the personas whose answers differ most by role, and by three roles
# that see different subsets (everything; no engagement; no contact) for every persona.
# The other operations: every role on the full persona, two of those roles for every persona.
ALL_ROLES_READ: dict[str, set[str]] = {
    "card": {"full", "long", "merged", "rival"},
    "history": {"full", "long", "merged", "rival"},
}
EVERY_PERSONA_ROLES: dict[str, set[Role]] = {
    "card": {Role.OWNER, Role.STAFF, Role.ANALYST},
    "history": {Role.OWNER, Role.STAFF, Role.ANALYST},
}
OTHER_ALL_ROLES_READ = {"full"}
OTHER_EVERY_PERSONA_ROLES = {Role.OWNER, Role.ANALYST}


def _reads(stem: str, role: Role, persona: str) -> bool:
    return persona in ALL_ROLES_READ.get(stem, OTHER_ALL_ROLES_READ) or role in EVERY_PERSONA_ROLES.get(
        stem, OTHER_EVERY_PERSONA_ROLES
    )


def _operation_cases() -> Iterator[Any]:
    """The registered operations by role and persona (see `_reads`). Where the operation
    takes historyFirst each pair gets the size (or leaving it out) its role and its persona
    have met least, so that each meets as many sizes as it has pairs (up to all five), and
    the owner reads the two personas with history at every size."""
    for stem, name, _, variables in OPERATION_LIST:
        met: dict[str, set[int | None]] = {}
        for n, (role, persona) in enumerate((r, p) for r in Role for p in PERSONAS if _reads(stem, r, p)):
            sizes: list[int | None] = [None]
            if "historyFirst" in variables:
                by_role, by_persona = met.setdefault(role.value, set()), met.setdefault(persona, set())
                turn = SIZES[n % len(SIZES) :] + SIZES[: n % len(SIZES)]
                sizes = [min(turn, key=lambda size: (size in by_role) + (size in by_persona))]
                if role is Role.OWNER and persona in ("full", "long"):
                    sizes = SIZES
                by_role.update(sizes)
                by_persona.update(sizes)
            for size in sizes:
                suffix = "" if size is None else f"-historyFirst{size}"
                yield pytest.param(stem, name, role.value, persona, size, id=f"{stem}-{role.value}-{persona}{suffix}")


@pytest.mark.parametrize(("stem", "name", "role", "persona", "size"), list(_operation_cases()))
async def test_every_operation_answers_the_same_for_every_role_and_persona(
    world: World, stem: str, name: str, role: str, persona: str, size: int | None
) -> None:
    # Given a registered operation, a role and a persona (of another organization, for "rival")
    variables: dict[str, Any] = {"id": world.ids[persona]}
    if size is not None:
        variables["historyFirst"] = size

    # When both apps run it, then they answer the same
    payload = {"query": DOCUMENTS[stem, name], "operationName": name, "variables": variables}
    await assert_same_answer(world, role, payload)


BAD_IDS = {
    "malformed": "not-an-id",
    "not-a-uuid": "UGVyc29uYTpub3BlOm5vcGU",  # base64 of "Persona:nope:nope"
    "store-id": "@store",
    "organization-id": "@organization",
    "unknown-persona": "@unknown",
}


def _bad_id_cases() -> Iterator[Any]:
    """Every bad id for the card; an unknown and a malformed one for the rest."""
    for stem, name, _, _ in OPERATION_LIST:
        for bad in BAD_IDS if stem == "card" else ["malformed", "unknown-persona"]:
            yield pytest.param(stem, name, bad, id=f"{stem}-{bad}")


@pytest.mark.parametrize(("stem", "name", "bad"), list(_bad_id_cases()))
async def test_every_operation_answers_a_bad_id_the_same(world: World, stem: str, name: str, bad: str) -> None:
    # Given an id that names no persona of the organization; when both apps run the operation, then the same
    variables = resolve({"id": BAD_IDS[bad]}, world)
    payload = {"query": DOCUMENTS[stem, name], "operationName": name, "variables": variables}
    await assert_same_answer(world, Role.OWNER.value, payload)
