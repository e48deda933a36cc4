"""What the profile-mutation tests (tests/test_profile_mutations_*.py) share: the
archivePersona, restorePersona, updatePersona, updateCustomAttributes, setTags and
setOptIn documents with one valid input each, the persona query, the helpers that send
them, and Ann (a loyalty member) and Bea, with their phones and emails.

``ann`` and ``bea`` are fixtures; a test module registers them with
``ann = profile_support.ann`` (and the same for ``bea``).
"""

from __future__ import annotations

from typing import Any

import pytest

from database import Database
from models import Organization
from tests.conftest import GraphQLClient
from tests.factories import MadePersona, make_persona

ANN_PHONE, ANN_EMAIL = "(415) 867-5309", "ann@example.com"
BEA_PHONE, BEA_EMAIL = "(646) 783-0134", "bea@example.com"

PROFILE = """
    id number firstName lastName fullName archivedAt email phone birthday rewardPoints
    traits { mobilePhone emailAddress favoriteStore { name } }
    customAttributes { key value source }
    tags
    optIns { channel status source updatedAt }
    logs { smsOptOutAt }
"""
ARCHIVE = f"""
mutation ($input: PersonaRefInput!) {{
  archivePersona(input: $input) {{ persona {{ {PROFILE} }} userErrors {{ field message code }} }}
}}
"""
RESTORE = f"""
mutation ($input: PersonaRefInput!) {{
  restorePersona(input: $input) {{ persona {{ {PROFILE} }} userErrors {{ field message code }} }}
}}
"""
UPDATE_PERSONA = f"""
mutation ($input: UpdatePersonaInput!) {{
  updatePersona(input: $input) {{ persona {{ {PROFILE} }} userErrors {{ field message code }} }}
}}
"""
UPDATE_ATTRIBUTES = f"""
mutation ($input: UpdateCustomAttributesInput!) {{
  updateCustomAttributes(input: $input) {{ persona {{ {PROFILE} }} userErrors {{ field message code }} }}
}}
"""
SET_TAGS = f"""
mutation ($input: SetTagsInput!) {{
  setTags(input: $input) {{ persona {{ {PROFILE} }} userErrors {{ field message code }} }}
}}
"""
SET_OPT_IN = f"""
mutation ($input: SetOptInInput!) {{
  setOptIn(input: $input) {{ persona {{ {PROFILE} }} userErrors {{ field message code }} }}
}}
"""
PERSONA = f"query ($id: ID!) {{ persona(id: $id) {{ {PROFILE} }} }}"

# One valid input per profile mutation, for the rules every mutation shares.
MUTATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "archivePersona": (ARCHIVE, {}),
    "restorePersona": (RESTORE, {}),
    "updatePersona": (UPDATE_PERSONA, {"firstName": "Annie"}),
    "updateCustomAttributes": (UPDATE_ATTRIBUTES, {"set": [{"key": "tier", "value": "gold"}]}),
    "setTags": (SET_TAGS, {"add": ["vip"]}),
    "setOptIn": (SET_OPT_IN, {"channel": "EMAIL", "status": "OPTED_IN"}),
}


def errors_at(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def send(client: GraphQLClient, name: str, persona: MadePersona, **input_: Any) -> dict[str, Any]:
    document, _ = MUTATIONS[name]
    payload: dict[str, Any] = (await client.data(document, {"input": {"personaId": persona.gid, **input_}}))[name]
    return payload


async def profile(client: GraphQLClient, persona: MadePersona) -> dict[str, Any]:
    data: dict[str, Any] = (await client.data(PERSONA, {"id": persona.gid}))["persona"]
    return data


@pytest.fixture
async def ann(db: Database, org: Organization) -> MadePersona:
    return await make_persona(
        db, org, first_name="Ann", last_name="Lee", phone=ANN_PHONE, email=ANN_EMAIL, loyalty_member=True
    )


@pytest.fixture
async def bea(db: Database, org: Organization) -> MadePersona:
    return await make_persona(db, org, first_name="Bea", phone=BEA_PHONE, email=BEA_EMAIL)
