"""Signature exports: the ZIP holds each persona's newest signature, named by number (and narrowed
by the query), and an empty one is still a ZIP."""

from __future__ import annotations

import base64
import io
import uuid
import zipfile

import pytest

from database import Database
from models import Organization, SignupSubmission
from tests.conftest import GraphQLClient
from tests.export_support import get
from tests.factories import days_ago
from tests.search_cast import Cast, make_cast

PNG = b"\x89PNG\r\n\x1a\n" + b"signature-pixels"


@pytest.fixture
async def cast(db: Database, org: Organization) -> Cast:
    return await make_cast(db, org)


def data_url(payload: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode()}"


async def sign(db: Database, org: Organization, persona_id: uuid.UUID, signature: str | None, days: float) -> None:
    async with db.session() as session, session.begin():
        session.add(
            SignupSubmission(
                org_id=org.id,
                persona_id=persona_id,
                form_name="Loyalty sign-up",
                url="https://example.com/join",
                signature=signature,
                submitted_at=days_ago(days),
            )
        )


async def test_signatures_zip_holds_each_personas_newest_signature_named_by_number(
    db: Database, org: Organization, cast: Cast, manager_client: GraphQLClient
) -> None:
    await sign(db, org, cast.ann.id, data_url(b"old"), days=30)
    await sign(db, org, cast.ann.id, data_url(PNG), days=1)
    await sign(db, org, cast.bob.id, data_url(b"<svg/>", "image/svg+xml"), days=2)
    await sign(db, org, cast.joann.id, None, days=2)
    await sign(db, org, cast.annabel.id, "not a data url", days=2)
    response = await get(manager_client, "/export/signatures.zip")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    archive_ = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive_.namelist()) == sorted([f"{cast.ann.number}.png", f"{cast.bob.number}.svg"])
    assert archive_.read(f"{cast.ann.number}.png") == PNG
    assert archive_.read(f"{cast.bob.number}.svg") == b"<svg/>"
    # And the query narrows it
    response = await get(manager_client, "/export/signatures.zip", query="tag:VIP")
    assert zipfile.ZipFile(io.BytesIO(response.content)).namelist() == [f"{cast.ann.number}.png"]


async def test_an_empty_signatures_zip_is_still_a_zip(manager_client: GraphQLClient) -> None:
    response = await get(manager_client, "/export/signatures.zip")
    assert zipfile.ZipFile(io.BytesIO(response.content)).namelist() == []
