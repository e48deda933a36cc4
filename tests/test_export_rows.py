"""CSV exports: which rows a file holds and how it writes them: UTF-8 and escaping of cells a
spreadsheet would run, byte for byte Python's csv on either database, the same rows for a few
personas and the whole organization, the query filtering the file, searches and roles one after
another, archived only when asked (erased or merged never), batches, and an audience's size ==
the rows its export holds."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlalchemy import insert
from sqlmodel import SQLModel

from database import Database
from models import Organization
from models.base import new_id, utcnow
from permissions.matrix import Role
from resolvers.export import CSV_CHUNK_BYTES
from resolvers.export_sql import COLUMNS, prepare_statements
from tests.conftest import ClientFactory, GraphQLClient
from tests.export_support import get, read_csv
from tests.factories import days_ago, make_persona
from tests.search_cast import Cast, archive, erase, make_cast, merged_pair

AUDIENCES = "{ audiences { id name size } }"
SAVE = """
mutation ($input: SaveAudienceInput!) { saveAudience(input: $input) { audience { id size } userErrors { code } } }
"""


@pytest.fixture
async def cast(db: Database, org: Organization) -> Cast:
    return await make_cast(db, org)


# ------------------------------------------------------------- the content


async def test_utf8_names_and_cells_a_spreadsheet_would_run_are_escaped(
    db: Database, org: Organization, owner_client: GraphQLClient
) -> None:
    await make_persona(
        db,
        org,
        first_name='=HYPERLINK("http://evil.example","click")',
        last_name="@SUM(A1:A9)",
        email="mallory@example.com",
        tags=["-2+3", "+cmd|' /C calc'!A0"],
        attributes=[("note", "=1+1")],
    )
    await make_persona(db, org, first_name="José", last_name="Núñez-Ærø 李", email="jose@example.com")
    rows = read_csv(await get(owner_client, "/export/personas.csv"))
    jose, mallory = rows
    assert mallory["first_name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert mallory["last_name"] == "'@SUM(A1:A9)"
    assert mallory["tags"] == "'+cmd|' /C calc'!A0; -2+3"
    assert jose["first_name"] == "José"
    assert jose["last_name"] == "Núñez-Ærø 李"
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@")), value


async def test_the_file_is_the_csv_that_pythons_csv_module_writes_on_either_database(
    db: Database, org: Organization, owner_client: GraphQLClient
) -> None:
    # Given a persona whose cells need quoting, escaping, sorting and exact formats
    signed_up = dt.datetime(2024, 3, 10, 15, 0, 0, 120000, tzinfo=dt.UTC)
    made = await make_persona(
        db,
        org,
        first_name='Ann, "Nan"',
        last_name="Lee",
        email="ann@example.com",
        phone="415-555-0101",
        birthday=dt.date(1990, 2, 3),
        source_id="pos,17",
        loyalty_member=True,
        loyalty_signup_at=signed_up,
        tags=["zeta", "Alpha", "éclair", "-minus"],
        browser='Mozilla/5.0 "quoted"\nsecond line',
    )
    # When it is exported
    response = await get(owner_client, "/export/personas.csv")
    # Then each line ends in CRLF, and the row is byte for byte what the csv module makes of its cells
    cells = {
        "number": str(made.number),
        "first_name": 'Ann, "Nan"',
        "last_name": "Lee",
        "email": "ann@example.com",
        "phone": "'+14155550101",
        "birthday": "1990-02-03",
        "source": "INTEGRATION",
        "integration": "test-pos",
        "source_id": "pos,17",
        "favorite_store": "",
        "loyalty_member": "true",
        "loyalty_signup_at": "2024-03-10T15:00:00.120000+00:00",
        "created_at": made.row.created_at.astimezone(dt.UTC).isoformat(),
        "archived_at": "",
        "tags": "'-minus; Alpha; zeta; éclair",
        **{c.name: "UNKNOWN" for c in COLUMNS if c.name.startswith("consent_")},
        "points": "0",
        "orders": "0",
        "spent": "0.00",
        "last_order_at": "",
        "browser": 'Mozilla/5.0 "quoted"\nsecond line',
        "ip_address": "",
    }
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\r\n")
    writer.writerow([c.name for c in COLUMNS])
    writer.writerow([cells[c.name] for c in COLUMNS])
    assert response.content == expected.getvalue().encode()


async def test_a_few_personas_and_the_whole_organization_give_the_same_rows(
    db: Database, org: Organization, cast: Cast, owner_client: GraphQLClient
) -> None:
    # Given personas with several tags beside the cast (Ann has a tag and a consent)
    for n in range(6):
        await make_persona(db, org, first_name=f"Extra{n}", email=f"extra{n}@example.com", tags=["b", "A", f"t{n}"])
    # When the whole organization is exported (PostgreSQL: tags and consents aggregated for all at once)
    # and a search finds a small share of it (PostgreSQL: read per found persona)
    whole = (await get(owner_client, "/export/personas.csv")).content.split(b"\r\n")
    few = (await get(owner_client, "/export/personas.csv", query="tag:VIP")).content.split(b"\r\n")
    # Then the found persona's line is byte for byte the same in both files
    assert few[0] == whole[0]
    assert few[2:] == [b""]
    assert few[1] in whole[1:]
    ann = next(csv.DictReader(io.StringIO(b"\r\n".join(few).decode())))
    assert (ann["first_name"], ann["tags"], ann["consent_text"]) == ("Ann", "VIP", "OPTED_IN")
    extra = read_csv(await get(owner_client, "/export/personas.csv", query="Extra3"))
    assert [r["tags"] for r in extra] == ["A; b; t3"]


@pytest.mark.usefixtures("cast")
async def test_the_query_filters_the_file_and_a_bad_query_is_refused(owner_client: GraphQLClient) -> None:
    rows = read_csv(await get(owner_client, "/export/personas.csv", query="tag:VIP"))
    assert [(r["first_name"], r["last_name"]) for r in rows] == [("Ann", "Lee")]
    rows = read_csv(await get(owner_client, "/export/personas.csv", query="has:email is:loyalty_member"))
    assert [r["first_name"] for r in rows] == ["Bob", "Ann"]
    # An exact phone or email (whose page statement is built once per kind) filters the file too
    for typed, found in [("bob@example.com", ["Bob"]), ("(415) 555-0101", ["Ann"]), ("415-555-0199", [])]:
        rows = read_csv(await get(owner_client, "/export/personas.csv", query=typed))
        assert [r["first_name"] for r in rows] == found, typed
    response = await get(owner_client, "/export/personas.csv", query="points>>5")
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_QUERY"
    assert "at character 8" in error["message"]


async def test_searches_and_roles_exported_one_after_another_each_get_their_own_rows(
    db: Database, cast: Cast, owner_client: GraphQLClient, analyst_client: GraphQLClient
) -> None:
    # Given the export statements prepared as at the app's start-up (PostgreSQL keeps one per columns and
    # plan, and puts each search's conditions in it)
    prepare_statements(db.engine.dialect)
    # When several searches are exported one after another, by two roles
    vip = read_csv(await get(owner_client, "/export/personas.csv", query="tag:VIP"))
    members = read_csv(await get(owner_client, "/export/personas.csv", query="has:email is:loyalty_member"))
    whole = read_csv(await get(owner_client, "/export/personas.csv"))
    analysts_vip = read_csv(await get(analyst_client, "/export/personas.csv", query="tag:VIP"))
    # Then each file holds its own search's rows, in its viewer's columns
    assert [r["first_name"] for r in vip] == ["Ann"]
    assert [r["first_name"] for r in members] == ["Bob", "Ann"]
    assert len(whole) > len(members)
    assert {r["number"] for r in members} <= {r["number"] for r in whole}
    assert [r["first_name"] for r in analysts_vip] == ["Ann"]
    assert "email" in vip[0]
    assert "email" not in analysts_vip[0]


async def test_archived_only_when_asked_and_erased_or_merged_never(
    db: Database, org: Organization, cast: Cast, owner_client: GraphQLClient
) -> None:
    await archive(owner_client, cast.annabel)
    await erase(owner_client, phone="415-555-0103")
    await merged_pair(db, org, "Zed", "415-555-0177", "zed@example.com")
    first_names = [r["first_name"] for r in read_csv(await get(owner_client, "/export/personas.csv"))]
    assert first_names == ["Zed", "Bob", "Ann"]
    everything = read_csv(await get(owner_client, "/export/personas.csv", includeArchived="true"))
    assert [r["first_name"] for r in everything] == ["Zed", "Bob", "Annabel", "Ann"]
    assert everything[2]["archived_at"] != ""


async def test_a_large_export_streams_every_row_once_in_batches(
    db: Database, org: Organization, owner_client: GraphQLClient
) -> None:
    # Given more personas than two batches hold, many made at the same instant
    count = 2 * CSV_CHUNK_BYTES // 100 + 37
    now = utcnow()
    rows = [
        {
            "org_id": org.id,
            "id": new_id(),
            "number": 1000 + n,
            "first_name": f"P{n}",
            "email": f"p{n}@example.com",
            "source_kind": "RAW_FILE",
            "loyalty_member": False,
            "created_at": now if n % 3 else days_ago(n / 1000),
            "updated_at": now,
        }
        for n in range(count)
    ]
    async with db.session() as session, session.begin():
        await session.execute(insert(SQLModel.metadata.tables["personas"]), rows)
    # When it is exported, then every persona is there once, newest first
    exported = read_csv(await get(owner_client, "/export/personas.csv"))
    assert len(exported) == count
    assert len({r["number"] for r in exported}) == count
    times = [r["created_at"] for r in exported]
    assert times == sorted(times, reverse=True)


# ---------------------------------------------------------------- audiences


async def test_an_audiences_size_is_the_number_of_rows_its_export_holds(
    db: Database, org: Organization, cast: Cast, owner_client: GraphQLClient, analyst_client: GraphQLClient
) -> None:
    # Given hidden personas beside the cast, and a saved audience
    await archive(owner_client, cast.annabel)
    await erase(owner_client, phone="415-555-0103")
    await merged_pair(db, org, "Zed", "415-555-0177", "zed@example.com")
    saved = (await owner_client.data(SAVE, {"input": {"name": "Texters", "query": "has:mobile_phone"}}))["saveAudience"]
    assert saved["userErrors"] == []
    archived = {"name": "Archived", "query": "is:archived"}
    assert (await owner_client.data(SAVE, {"input": archived}))["saveAudience"]["userErrors"] == []
    audiences = (await analyst_client.data(AUDIENCES))["audiences"]
    assert [a["name"] for a in audiences] == ["ALL", "Archived", "Texters"]
    assert [a["size"] for a in audiences] == [3, 1, 3]
    # Then each audience's file holds exactly its size in rows
    for audience in audiences:
        response = await get(analyst_client, f"/export/audiences/{audience['id']}.csv")
        assert len(read_csv(response)) == audience["size"], audience["name"]
        assert audience["name"] in response.headers["content-disposition"]


async def test_an_unknown_or_foreign_audience_is_not_found(
    other_org: Organization, client_for: ClientFactory, owner_client: GraphQLClient
) -> None:
    rival = await client_for(Role.OWNER, other_org)
    theirs = (await rival.data(AUDIENCES))["audiences"][0]["id"]
    response = await get(owner_client, f"/export/audiences/{theirs}.csv")
    assert response.status_code == 404
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    response = await get(owner_client, "/export/audiences/nonsense.csv")
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
