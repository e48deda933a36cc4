"""CSV import: `personagraph import-csv` and POST /import/contacts, with a
report per line, and clear refusals of files that cannot be imported."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from pathlib import Path
from typing import IO, Any, cast

import pytest
from sqlalchemy import text

from database import Database
from models import Organization
from permissions.matrix import Role
from resolvers import statistics
from resolvers.csv_import import CsvFileError, import_csv
from settings import Settings
from tests.conftest import ClientFactory, GraphQLClient

ROOT = Path(__file__).resolve().parent.parent
GOOD_AND_BAD = (
    "First_Name,last_name,Email,phone,birthday,loyalty_member,tags,attr:Budtender\n"
    "Ann,Lee,ann@example.com,(415) 867-5309,1990-04-20,yes,vip;medical,Sam\n"
    "\n"
    "Bea,,bea@@example,,,,,\n"
    '"Cal\nthe Second",Zed,,12,04/31/2000,maybe,,\n'
    "Dee,,dee@example.com,646-783-0134,,no,,\n"
    "Eve,,,,,,\n"
    "Ann,,ANN@EXAMPLE.COM,,,,,Alex\n"
    "Walk-in,,none@none.com,555-555-5555,,,,\n"
)
PERSONAS = """
query {
  personas { totalCount nodes {
    number firstName lastName email phone birthday loyaltyMember sourcedFrom { kind integration }
    tags customAttributes { key value source }
  } }
}
"""


async def cli(settings: Settings, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "DATABASE_URL": settings.database_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import cli; cli.main()",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=180)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def write(tmp_path: Path, content: str | bytes, name: str = "contacts.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


async def test_the_cli_imports_good_lines_and_reports_each_bad_one(
    settings: Settings, org: Organization, owner_client: GraphQLClient, tmp_path: Path
) -> None:
    csv_file = write(tmp_path, GOOD_AND_BAD)
    report = tmp_path / "report.jsonl"

    status, out, err = await cli(settings, "import-csv", "--org", org.slug, "--report", str(report), str(csv_file))

    assert status == 0, err
    assert out.splitlines() == [
        "line 4: REJECTED: email: This email is not valid: "
        "The part after the @-sign contains invalid characters: '@'. (INVALID_EMAIL)",
        "line 5: REJECTED: birthday: '04/31/2000' is not a date: use YYYY-MM-DD. (INVALID); "
        "loyalty_member: 'maybe' is not yes or no: use true or false. (INVALID); "
        "phone: This phone number is not valid. (INVALID_PHONE)",
        "line 8: REJECTED: line: This line has 7 fields; the header names 8 columns. (INVALID)",
        "line 10: REJECTED: line: A contact needs a valid phone or email (placeholders do not count). "
        "(NO_CONTACT_INFO)",
        "imported contacts.csv: 7 lines: 2 created, 1 updated, 0 merged, 4 rejected",
    ]
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [(r["line"], r["outcome"]) for r in lines] == [
        (2, "CREATED"),
        (4, "REJECTED"),
        (5, "REJECTED"),
        (7, "CREATED"),
        (8, "REJECTED"),
        (9, "UPDATED"),
        (10, "REJECTED"),
    ]
    assert lines[0]["persona"] == lines[5]["persona"]
    assert [e["column"] for e in lines[2]["errors"]] == ["birthday", "loyalty_member", "phone"]

    personas = (await owner_client.data(PERSONAS))["personas"]
    assert personas["totalCount"] == 2
    ann = next(p for p in personas["nodes"] if p["firstName"] == "Ann")
    assert (ann["lastName"], ann["email"], ann["phone"], ann["birthday"]) == (
        "Lee",
        "ann@example.com",
        "+14158675309",
        "1990-04-20",
    )
    assert ann["loyaltyMember"] is True
    assert ann["sourcedFrom"] == {"kind": "RAW_FILE", "integration": None}
    assert sorted(ann["tags"]) == ["medical", "vip"]
    assert ann["customAttributes"] == [{"key": "Budtender", "value": "Alex", "source": "BULK_IMPORT"}]


async def test_the_cli_names_an_integration_source(
    settings: Settings, org: Organization, owner_client: GraphQLClient, tmp_path: Path
) -> None:
    csv_file = write(tmp_path, "email\nann@example.com\n")

    status, out, err = await cli(settings, "import-csv", "--org", org.slug, "--source", "old-pos", str(csv_file))

    assert status == 0, err
    assert out.strip() == "imported contacts.csv: 1 lines: 1 created, 0 updated, 0 merged, 0 rejected"
    (persona,) = (await owner_client.data(PERSONAS))["personas"]["nodes"]
    assert persona["sourcedFrom"] == {"kind": "INTEGRATION", "integration": "old-pos"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "first_name,email\nJos\xe9,jose@example.com\n".encode("latin-1"),
            "The file is not UTF-8 text: byte 0xe9 on line 2 is not UTF-8. "
            "Save it as UTF-8 (in Excel: 'CSV UTF-8') and import it again.",
        ),
        (
            b"",
            "The file is empty. The first line must name the columns, e.g. first_name,last_name,email,phone.",
        ),
        (
            b"Ann,Lee,ann@example.com\n",
            "The first line is not a header: none of its 3 cells names a column. "
            "The first line must name the columns, e.g. first_name,last_name,email,phone.",
        ),
        (
            b"first_name,email,Zip Code,notes\n",
            "Unknown columns 'Zip Code', 'notes' in the header (line 1). The columns are: first_name, last_name, "
            "email, phone, birthday, loyalty_member, tags, and attr:<key> for custom attributes.",
        ),
        (b"email,phone,EMAIL\n", "Column 'email' appears twice in the header (line 1)."),
        (b"first_name,email,\n", "Column 3 of the header (line 1) has no name: name it or remove it."),
        (
            b"first_name,last_name\nAnn,Lee\n",
            "The header (line 1) names neither an email nor a phone column: every contact needs one.",
        ),
    ],
)
async def test_a_file_that_cannot_be_imported_is_refused_whole_with_a_clear_message(
    settings: Settings, org: Organization, owner_client: GraphQLClient, tmp_path: Path, content: bytes, message: str
) -> None:
    csv_file = write(tmp_path, content)

    status, _, err = await cli(settings, "import-csv", "--org", org.slug, str(csv_file))

    assert status == 2
    assert err.strip().splitlines() == [f"personagraph: error: {message}"]
    assert "Traceback" not in err
    assert (await owner_client.data(PERSONAS))["personas"]["totalCount"] == 0


async def test_a_byte_order_mark_and_windows_line_ends_are_fine(
    settings: Settings, org: Organization, owner_client: GraphQLClient, tmp_path: Path
) -> None:
    csv_file = write(tmp_path, "\ufeffemail,tags\r\nann@example.com,a;b\r\nbea@example.com,\r\n".encode())

    status, out, err = await cli(settings, "import-csv", "--org", org.slug, str(csv_file))

    assert status == 0, err
    assert out.strip() == "imported contacts.csv: 2 lines: 2 created, 0 updated, 0 merged, 0 rejected"


async def test_a_stream_that_breaks_part_way_keeps_the_lines_before_the_break(
    db: Database, org: Organization, owner_client: GraphQLClient
) -> None:
    rows = "".join(f"ann{i}@example.com\n" for i in range(12))
    data = ("email\n" + rows).encode() + b"caf\xe9@example.com\n" + b"zed@example.com\n"
    seen: list[tuple[int, str]] = []

    async def run() -> None:
        async for report in import_csv(db, org.id, _unseekable(data), batch_size=5):
            seen.append((report.line, report.outcome))

    with pytest.raises(CsvFileError, match=r"byte 0xe9 at or after line 1[34] is not UTF-8") as broken:
        await run()

    # Every line reported before the break was imported; the error names where to start again.
    assert seen == [(line, "CREATED") for line in range(2, 2 + len(seen))]
    assert len(seen) >= 11
    assert f"line {seen[-1][0] + 1}" in broken.value.message
    assert (await owner_client.data(PERSONAS))["personas"]["totalCount"] == len(seen)


async def test_many_lines_commit_in_batches(db: Database, org: Organization, owner_client: GraphQLClient) -> None:
    data = ("phone,email\n" + "".join(f"+1415555{i:04d},p{i}@example.com\n" for i in range(23))).encode()

    reports = [r async for r in import_csv(db, org.id, _unseekable(data), batch_size=5)]

    assert [r.line for r in reports] == list(range(2, 25))
    assert {r.outcome for r in reports} == {"CREATED"}
    assert (await owner_client.data(PERSONAS))["personas"]["totalCount"] == 23


async def test_an_import_keeps_the_planners_statistics_up_with_the_tables_it_grows(
    db: Database, org: Organization
) -> None:
    # Given tables PostgreSQL last analyzed empty (what a new database has, until autovacuum comes)
    if not db.is_sqlite:
        async with db.engine.connect() as conn:
            await conn.execute(text(f"ANALYZE {', '.join(statistics.TABLES)}"))
            await conn.commit()
    data = ("phone\n" + "".join(f"+1415555{i:04d}\n" for i in range(1500))).encode()

    # When 1,500 contacts are imported
    reports = [r async for r in import_csv(db, org.id, io.BytesIO(data))]

    # Then they are all in, and PostgreSQL plans the personas table with the rows the import wrote
    # (analyzed as the import doubled it), not as the empty table that makes every foreign-key
    # check a sequential scan; SQLite keeps no plan to mend
    assert {r.outcome for r in reports} == {"CREATED"}
    assert len(reports) == 1500
    if not db.is_sqlite:
        async with db.engine.connect() as conn:
            estimate = await conn.scalar(text("SELECT reltuples FROM pg_class WHERE oid = 'personas'::regclass"))
        assert estimate is not None
        assert estimate >= statistics.MIN_ROWS, estimate


def _unseekable(data: bytes) -> IO[bytes]:
    return cast("IO[bytes]", _Unseekable(data))


class _Unseekable(io.RawIOBase):
    """A byte stream that can only be read forward, like a pipe or a socket."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(min(len(buffer), 7))
        buffer[: len(chunk)] = chunk
        return len(chunk)


# POST /import/contacts ---------------------------------------------------------------------


async def upload(client: GraphQLClient, content: bytes, **form: str) -> Any:
    files = {"file": ("contacts.csv", content, "text/csv")}
    return await client.http.post("/import/contacts", files=files, data=form)


async def test_an_upload_answers_the_report_of_every_line(
    operator_client: GraphQLClient, owner_client: GraphQLClient
) -> None:
    response = await upload(operator_client, GOOD_AND_BAD.encode(), source="old-pos")

    assert response.status_code == 200, response.text
    body = response.json()
    assert [(line["line"], line["outcome"]) for line in body["lines"]] == [
        (2, "CREATED"),
        (4, "REJECTED"),
        (5, "REJECTED"),
        (7, "CREATED"),
        (8, "REJECTED"),
        (9, "UPDATED"),
        (10, "REJECTED"),
    ]
    assert body["lines"][1]["errors"] == [
        {
            "column": "email",
            "code": "INVALID_EMAIL",
            "message": "This email is not valid: The part after the @-sign contains invalid characters: '@'.",
        }
    ]
    assert body["summary"] == {"lines": 7, "created": 2, "updated": 1, "merged": 0, "rejected": 4}
    assert "error" not in body
    nodes = (await owner_client.data(PERSONAS))["personas"]["nodes"]
    assert {p["sourcedFrom"]["integration"] for p in nodes} == {"old-pos"}


async def test_an_upload_of_a_broken_file_is_a_400_with_the_reason(operator_client: GraphQLClient) -> None:
    response = await upload(operator_client, "first_name,email\nJos\xe9,j@example.com\n".encode("cp1252"))

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith("The file is not UTF-8 text: byte 0xe9 on line 2")


async def test_an_upload_needs_a_file(operator_client: GraphQLClient) -> None:
    response = await operator_client.http.post("/import/contacts", data={"source": "x"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_an_upload_needs_a_key_with_the_ingest_permission(client_for: ClientFactory) -> None:
    anonymous = await client_for(None)
    staff = await client_for(Role.STAFF)

    unauthenticated = await upload(anonymous, b"email\nann@example.com\n")
    forbidden = await upload(staff, b"email\nann@example.com\n")

    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert forbidden.status_code == 403
    assert forbidden.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
