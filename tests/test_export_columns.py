"""CSV and signature exports: the key and permissions they need, the columns per role (contact and
technical traits only for those who may see them), every column documented in the README, and
a row carrying the persona's card figures."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from database import Database
from models import Organization
from permissions.matrix import ROLE_PERMISSIONS, Permission, Role
from resolvers.export_sql import COLUMNS, columns_for
from tests.conftest import ClientFactory, GraphQLClient
from tests.export_support import get, read_csv
from tests.search_cast import Cast, make_cast

EXPORTERS = sorted((r for r in Role if Permission.EXPORT in ROLE_PERMISSIONS[r]), key=str)
CONTACT_COLUMNS = {"email", "phone", "birthday"}
TECHNICAL_COLUMNS = {"browser", "ip_address"}


@pytest.fixture
async def cast(db: Database, org: Organization) -> Cast:
    return await make_cast(db, org)


def header(response: httpx.Response) -> list[str]:
    return next(csv.reader(io.StringIO(response.content.decode("utf-8"))))


# ------------------------------------------------------------ who may export


async def test_exports_need_a_valid_key(client_for: ClientFactory) -> None:
    anonymous = await client_for(None)
    for path in ("/export/personas.csv", "/export/signatures.zip"):
        response = await anonymous.http.get(path)
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        response = await anonymous.http.get(path, headers={"Authorization": "Bearer pgk_00000000_" + "x" * 30})
        assert response.status_code == 401


@pytest.mark.parametrize("role", sorted(Role, key=str))
async def test_exports_need_export_and_signatures_need_technical_traits(client_for: ClientFactory, role: Role) -> None:
    client = await client_for(role)
    held = ROLE_PERMISSIONS[role]
    personas = await get(client, "/export/personas.csv")
    signatures = await get(client, "/export/signatures.zip")
    assert personas.status_code == (200 if Permission.EXPORT in held else 403)
    can_sign = Permission.EXPORT in held and Permission.VIEW_TECHNICAL_TRAITS in held
    assert signatures.status_code == (200 if can_sign else 403)
    for refused in (r for r in (personas, signatures) if r.status_code == 403):
        assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


# ---------------------------------------------------------------- columns


@pytest.mark.usefixtures("cast")
@pytest.mark.parametrize("role", EXPORTERS)
async def test_the_columns_follow_the_viewers_field_permissions(client_for: ClientFactory, role: Role) -> None:
    client = await client_for(role)
    response = await get(client, "/export/personas.csv")
    columns = header(response)
    held = ROLE_PERMISSIONS[role]
    assert columns == [c.name for c in columns_for(held)]
    assert (set(columns) >= CONTACT_COLUMNS) == (Permission.VIEW_CONTACT in held)
    assert not (CONTACT_COLUMNS & set(columns)) or Permission.VIEW_CONTACT in held
    assert (set(columns) >= TECHNICAL_COLUMNS) == (Permission.VIEW_TECHNICAL_TRAITS in held)
    assert {"number", "first_name", "points", "orders", "spent", "tags", "consent_text"} <= set(columns)
    assert len(read_csv(response)) == 4


@pytest.mark.usefixtures("cast")
async def test_an_analysts_file_has_no_email_or_phone(analyst_client: GraphQLClient) -> None:
    response = await get(analyst_client, "/export/personas.csv")
    assert not {"email", "phone", "birthday", "browser", "ip_address"} & set(header(response))
    body = response.content.decode()
    assert "ann@example.com" not in body
    assert "4155550101" not in body


async def test_every_column_is_documented_in_the_readme() -> None:
    from settings import ROOT

    readme = (ROOT / "README.md").read_text()
    for column in COLUMNS:
        assert f"`{column.name}`" in readme, column.name


async def test_a_row_carries_the_personas_card_figures(cast: Cast, owner_client: GraphQLClient) -> None:
    rows = {r["number"]: r for r in read_csv(await get(owner_client, "/export/personas.csv"))}
    ann = rows[str(cast.ann.number)]
    assert ann["first_name"] == "Ann"
    assert ann["last_name"] == "Lee"
    assert ann["email"] == "ann@example.com"
    # E.164 starts with "+", so it is escaped like any cell a spreadsheet would evaluate.
    assert ann["phone"] == "'+14155550101"
    assert ann["source"] == "INTEGRATION"
    assert ann["integration"] == "test-pos"
    assert ann["favorite_store"] == "Main Street"
    assert ann["loyalty_member"] == "true"
    assert ann["loyalty_signup_at"].startswith("2024-03-10T15:00:00")
    assert ann["tags"] == "VIP"
    assert ann["consent_text"] == "OPTED_IN"
    assert ann["consent_email"] == "UNKNOWN"
    assert ann["points"] == "20"
    assert ann["orders"] == "1"
    assert ann["spent"] == "22.00"
    assert ann["archived_at"] == ""
    bob = rows[str(cast.bob.number)]
    assert (bob["orders"], bob["spent"], bob["points"]) == ("3", "165.00", "150")
