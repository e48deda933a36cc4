"""Profile mutations through GraphQL, the rules every one of them shares
(archivePersona, restorePersona, updatePersona, updateCustomAttributes, setTags,
setOptIn): permissions, tenant isolation, malformed and merged personas, and one
audit entry per mutation."""

from __future__ import annotations

import datetime as dt

import pytest

from database import Database
from models import Organization
from permissions.matrix import Role
from resolvers.audit import audit_log
from tests import profile_support
from tests.conftest import ClientFactory, GraphQLClient
from tests.factories import MadePersona
from tests.profile_support import MUTATIONS, errors_at, profile, send

MERGE = """
mutation ($input: MergePersonasInput!) { mergePersonas(input: $input) { userErrors { code } } }
"""

ann = profile_support.ann
bea = profile_support.bea


# Rules every profile mutation shares --------------------------------------------------


@pytest.mark.parametrize("name", list(MUTATIONS))
async def test_a_role_without_the_permission_gets_forbidden_and_nothing_changes(
    client_for: ClientFactory, db: Database, org: Organization, ann: MadePersona, name: str
) -> None:
    analyst = await client_for(Role.ANALYST)
    before = await profile(await client_for(Role.OWNER), ann)
    payload = await send(analyst, name, ann, **MUTATIONS[name][1])
    assert errors_at(payload) == [("FORBIDDEN", None)]
    assert payload["persona"] is None
    assert await profile(await client_for(Role.OWNER), ann) == before
    async with db.session() as session:
        audit = await audit_log(session, org.id)
    assert [(a.operation, a.outcome) for a in audit] == [(name, "FORBIDDEN")]


@pytest.mark.parametrize("name", list(MUTATIONS))
async def test_another_organizations_persona_is_not_found(
    client_for: ClientFactory, other_org: Organization, ann: MadePersona, name: str
) -> None:
    rival = await client_for(Role.OWNER, other_org)
    payload = await send(rival, name, ann, **MUTATIONS[name][1])
    assert errors_at(payload) == [("NOT_FOUND", ["input", "personaId"])]


@pytest.mark.parametrize("name", list(MUTATIONS))
async def test_a_malformed_persona_id_is_invalid(owner_client: GraphQLClient, name: str) -> None:
    document, extra = MUTATIONS[name]
    payload = (await owner_client.data(document, {"input": {"personaId": "nope", **extra}}))[name]
    assert errors_at(payload) == [("INVALID", ["input", "personaId"])]


@pytest.mark.parametrize("name", [n for n in MUTATIONS if n not in {"archivePersona", "restorePersona"}])
async def test_a_merged_persona_is_edited_through_its_survivor(
    owner_client: GraphQLClient, ann: MadePersona, bea: MadePersona, name: str
) -> None:
    merged = await owner_client.data(MERGE, {"input": {"survivorId": ann.gid, "mergedId": bea.gid}})
    assert merged["mergePersonas"]["userErrors"] == []
    payload = await send(owner_client, name, bea, **MUTATIONS[name][1])
    assert errors_at(payload) == [("ALREADY_MERGED", ["input", "personaId"])]


async def test_each_profile_mutation_writes_one_audit_entry(
    owner_client: GraphQLClient, db: Database, org: Organization, ann: MadePersona
) -> None:
    since = dt.datetime.now(dt.UTC)
    for name, (_, extra) in MUTATIONS.items():
        assert (await send(owner_client, name, ann, **extra))["userErrors"] == []
    async with db.session() as session:
        audit = await audit_log(session, org.id, since)
    assert [(a.operation, a.outcome, a.target_ids) for a in audit] == [(n, "OK", ann.gid) for n in MUTATIONS]
