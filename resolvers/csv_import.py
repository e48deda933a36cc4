"""Importing contacts from a CSV file: a streaming parser and a batched importer.

The file is UTF-8 (a byte-order mark is fine) with a header line naming its
columns, in any order and case:

    first_name, last_name, email, phone, birthday, loyalty_member, tags, attr:<key>

- ``birthday``: YYYY-MM-DD (or MM/DD/YYYY);
- ``loyalty_member``: true/false, yes/no, y/n, 1/0 (empty: leave as is);
- ``tags``: separated by semicolons, e.g. ``vip;medical``;
- ``attr:<key>``: one column per custom attribute; an empty cell sets nothing.

Every contact needs an email or a phone, so the header must name one of them.
A file-level problem (not UTF-8, no header, unknown or duplicate columns) is
refused with a message saying what and where (CsvFileError), before anything
is written when the file can be checked ahead (a seekable file). Each data line
then goes through the same identity rules as ingestContacts (resolvers/ingest.py)
and gets a report: its line number, outcome, persona number and errors by column.

Memory stays flat however long the file: lines are read one at a time through
the csv module over a text stream, and each batch of BATCH_SIZE lines is
written in its own transaction and session (set-wise: resolvers/ingest_batch.py), then forgotten.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import IO

from database import Database
from models import Organization
from resolvers.errors import BadUserInput, UserError, UserErrors
from resolvers.ingest import (
    RAW_FILE,
    ContactData,
    IngestOutcome,
    check_source,
    errors_of,
    validate_contact,
)
from resolvers.ingest_batch import ingest_at
from resolvers.statistics import GrowthStatistics

BATCH_SIZE = 500
COLUMNS = ("first_name", "last_name", "email", "phone", "birthday", "loyalty_member", "tags")
ATTRIBUTE_PREFIX = "attr:"
TAG_SEPARATOR = ";"
TRUE_WORDS = frozenset({"true", "yes", "y", "1", "x"})
FALSE_WORDS = frozenset({"false", "no", "n", "0"})
_SCAN_CHUNK = 1 << 20
# The ingest input field each column feeds, for errors: (first path element) -> column.
_COLUMN_OF_FIELD = {"firstName": "first_name", "lastName": "last_name", "email": "email", "phone": "phone"}
_COLUMN_OF_FIELD |= {"birthday": "birthday", "tags": "tags"}


class CsvFileError(BadUserInput):
    """The file as a whole cannot be imported; nothing (more) is written."""


@dataclass(frozen=True)
class LineError:
    column: str | None
    code: str
    message: str


@dataclass
class LineReport:
    line: int
    outcome: str
    persona_number: int | None = None
    errors: list[LineError] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "line": self.line,
            "outcome": self.outcome,
            "persona": self.persona_number,
            "errors": [{"column": e.column, "code": e.code, "message": e.message} for e in self.errors],
        }


@dataclass
class ImportSummary:
    lines: int = 0
    created: int = 0
    updated: int = 0
    merged: int = 0
    rejected: int = 0

    def add(self, report: LineReport) -> None:
        self.lines += 1
        name = report.outcome.lower()
        setattr(self, name, getattr(self, name) + 1)

    def as_dict(self) -> dict[str, int]:
        return {
            "lines": self.lines,
            "created": self.created,
            "updated": self.updated,
            "merged": self.merged,
            "rejected": self.rejected,
        }


@dataclass(frozen=True)
class Header:
    """Which field of a line feeds which column; attribute keys in column order."""

    columns: list[str]

    @property
    def attribute_columns(self) -> list[str]:
        return [c for c in self.columns if c.startswith(ATTRIBUTE_PREFIX)]


@dataclass
class CsvLine:
    """A data line: its contact, or what is wrong with it (a line with errors is not imported)."""

    line: int
    contact: ContactData | None
    errors: list[LineError] = field(default_factory=list)


def text_stream(binary: IO[bytes]) -> io.TextIOWrapper:
    """UTF-8 text over the bytes (a byte-order mark is skipped), decoded as it is read."""
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="strict", newline="")


def check_utf8(binary: IO[bytes]) -> None:
    """Refuse a file that is not UTF-8 before any line is imported; rewinds the file."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    line = 1
    start = binary.tell()
    while chunk := binary.read(_SCAN_CHUNK):
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as e:
            raise _not_utf8(line + chunk.count(b"\n", 0, e.start), chunk[e.start]) from None
        line += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise CsvFileError(f"The file is not UTF-8 text: it ends inside a character (line {line}).") from None
    binary.seek(start)


def _not_utf8(line: int, byte: int) -> CsvFileError:
    return CsvFileError(
        f"The file is not UTF-8 text: byte 0x{byte:02x} on line {line} is not UTF-8. "
        "Save it as UTF-8 (in Excel: 'CSV UTF-8') and import it again."
    )


def read_header(reader: Iterator[list[str]]) -> Header:
    """The first line, checked: every column known, none twice, an email or a phone among them."""
    try:
        cells = next(reader)
    except StopIteration:
        raise CsvFileError(_header_hint("The file is empty.")) from None
    names = [cell.strip() for cell in cells]
    columns = [_column_name(n) for n in names]
    known = [c for c in columns if c in COLUMNS or (c.startswith(ATTRIBUTE_PREFIX) and len(c) > len(ATTRIBUTE_PREFIX))]
    if not known:
        # Never echo the cells: a first line that is not a header is a customer's data.
        raise CsvFileError(
            _header_hint(f"The first line is not a header: none of its {len(names)} cells names a column.")
        )
    for position, name in enumerate(names, start=1):
        if not name:
            raise CsvFileError(f"Column {position} of the header (line 1) has no name: name it or remove it.")
    unknown = [name for name, column in zip(names, columns, strict=True) if column not in known]
    if unknown:
        listed = ", ".join(repr(n) for n in unknown)
        raise CsvFileError(
            f"Unknown column{'s' if len(unknown) > 1 else ''} {listed} in the header (line 1). "
            f"The columns are: {', '.join(COLUMNS)}, and attr:<key> for custom attributes."
        )
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            raise CsvFileError(f"Column {column!r} appears twice in the header (line 1).")
        seen.add(column)
    if "email" not in seen and "phone" not in seen:
        raise CsvFileError("The header (line 1) names neither an email nor a phone column: every contact needs one.")
    return Header(columns)


def _column_name(name: str) -> str:
    if name.lower().startswith(ATTRIBUTE_PREFIX):
        return ATTRIBUTE_PREFIX + name[len(ATTRIBUTE_PREFIX) :].strip()
    return name.lower()


def _header_hint(problem: str) -> str:
    return f"{problem} The first line must name the columns, e.g. first_name,last_name,email,phone."


def parse_lines(text: IO[str]) -> tuple[Header, Iterator[CsvLine]]:
    """The header (checked now) and the data lines, parsed one at a time as they are read."""
    reader = csv.reader(text, strict=False)
    header = read_header(_guarded(reader, 1))
    return header, _lines(reader, header)


def _guarded(reader: Iterator[list[str]], first_line: int) -> Iterator[list[str]]:
    """The csv rows, with decoding and csv errors turned into CsvFileError naming the line."""
    line = first_line
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as e:
            # Decoding runs ahead of the csv reader: the bad byte is on this line or a later one.
            raise CsvFileError(
                f"The file is not UTF-8 text: byte 0x{e.object[e.start]:02x} at or after line {line} is not UTF-8. "
                "Save it as UTF-8 (in Excel: 'CSV UTF-8') and import it again."
            ) from None
        except csv.Error as e:
            raise CsvFileError(f"Line {line} cannot be read as CSV: {e}.") from None
        yield row
        line = getattr(reader, "line_num", line) + 1


def _lines(reader: Iterator[list[str]], header: Header) -> Iterator[CsvLine]:
    next_line = getattr(reader, "line_num", 1) + 1
    for row in _guarded(reader, next_line):
        # A quoted field may span lines: a line's number is where its record starts.
        line, next_line = next_line, getattr(reader, "line_num", next_line) + 1
        if not any(cell.strip() for cell in row):
            continue  # blank lines are no contacts
        yield _parse_line(line, row, header)


def _parse_line(line: int, row: list[str], header: Header) -> CsvLine:
    if len(row) != len(header.columns):
        message = f"This line has {len(row)} fields; the header names {len(header.columns)} columns."
        return CsvLine(line, None, [LineError(None, "INVALID", message)])
    cells = {column: cell.strip() for column, cell in zip(header.columns, row, strict=True)}
    errors: list[LineError] = []
    contact = ContactData(
        first_name=cells.get("first_name") or None,
        last_name=cells.get("last_name") or None,
        email=cells.get("email") or None,
        phone=cells.get("phone") or None,
        birthday=_birthday(cells.get("birthday", ""), errors),
        loyalty_member=_flag(cells.get("loyalty_member", ""), errors),
        tags=[t.strip() for t in cells.get("tags", "").split(TAG_SEPARATOR) if t.strip()],
        attributes=[
            (column[len(ATTRIBUTE_PREFIX) :], cells[column]) for column in header.attribute_columns if cells[column]
        ],
    )
    return CsvLine(line, contact, errors)


def _birthday(value: str, errors: list[LineError]) -> dt.date | None:
    if not value:
        return None
    for pattern in ("%Y-%m-%d", "%m/%d/%Y"):
        try:
            return dt.datetime.strptime(value, pattern).date()  # noqa: DTZ007 (a calendar date, no time)
        except ValueError:
            continue
    errors.append(LineError("birthday", "INVALID", f"{value!r} is not a date: use YYYY-MM-DD."))
    return None


def _flag(value: str, errors: list[LineError]) -> bool | None:
    word = value.lower()
    if not word:
        return None
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    errors.append(LineError("loyalty_member", "INVALID", f"{value!r} is not yes or no: use true or false."))
    return None


def _line_errors(errors: list[UserError], header: Header, contact: ContactData) -> list[LineError]:
    """Ingest errors (paths like ['phone'] or ['attributes', '2', 'key']) by CSV column."""
    found = []
    for error in errors:
        where = error.field or []
        column = _COLUMN_OF_FIELD.get(where[0]) if where else None
        if where[:1] == ["attributes"] and len(where) > 1:
            column = ATTRIBUTE_PREFIX + contact.attributes[int(where[1])][0]
        found.append(LineError(column, error.code, error.message))
    return found


async def import_csv(
    db: Database,
    org_id: uuid.UUID,
    binary: IO[bytes],
    *,
    source: str = RAW_FILE,
    actor: str = "csv import",
    batch_size: int = BATCH_SIZE,
    number_block: int = 50,
) -> AsyncIterator[LineReport]:
    """Import the file line by line; yields one report per data line, in file order.

    File-level problems raise CsvFileError: at once for the header and (for a
    seekable file) the encoding, else at the line where they are met, after the
    lines before it were imported and reported.
    """
    try:
        check_source(source, ["source"])
    except UserError as e:
        raise BadUserInput(e.message) from None
    if binary.seekable():
        check_utf8(binary)
    text = text_stream(binary)
    try:
        header, lines = parse_lines(text)
        statistics = GrowthStatistics(db)
        batch: list[CsvLine] = []
        broken: CsvFileError | None = None
        while True:
            try:
                parsed = next(lines, None)
            except CsvFileError as e:
                broken, parsed = e, None  # the lines read before the break are still imported
            if parsed is not None:
                batch.append(parsed)
            if batch and (parsed is None or len(batch) >= batch_size):
                for report in await _import_batch(db, org_id, source, actor, header, batch, number_block):
                    yield report
                await statistics.wrote(len(batch))
                batch = []
            if parsed is None:
                break
        if broken is not None:
            raise broken
    finally:
        text.detach()  # leave the caller's file open: it owns it


async def _import_batch(
    db: Database,
    org_id: uuid.UUID,
    source: str,
    actor: str,
    header: Header,
    batch: list[CsvLine],
    number_block: int,
) -> list[LineReport]:
    """One transaction for the batch; its good lines go in set-wise (resolvers/ingest_batch.py),
    each still atomic: a refused line writes nothing."""
    reports: dict[int, LineReport] = {}
    async with db.session() as session, session.begin():
        org = await session.get(Organization, org_id)
        if org is None:
            raise BadUserInput("The organization no longer exists.")
        readable: list[tuple[CsvLine, ContactData]] = []
        for parsed in batch:
            if parsed.contact is None:
                reports[parsed.line] = LineReport(parsed.line, IngestOutcome.REJECTED.value, None, parsed.errors)
            elif parsed.errors:  # refused, with whatever else the identity rules find wrong too
                try:
                    validate_contact(org, parsed.contact, [])
                    more = []
                except (UserError, UserErrors) as e:
                    more = [e for e in errors_of(e) if e.code != "NO_CONTACT_INFO"]
                errors = parsed.errors + _line_errors(more, header, parsed.contact)
                reports[parsed.line] = LineReport(parsed.line, IngestOutcome.REJECTED.value, None, errors)
            else:
                readable.append((parsed, parsed.contact))
        results = await ingest_at(
            session, org, source, [(contact, []) for _, contact in readable], actor=actor, number_block=number_block
        )
        for (parsed, contact), result in zip(readable, results, strict=True):
            errors = _line_errors(result.errors, header, contact)
            reports[parsed.line] = LineReport(parsed.line, result.outcome.value, result.number, errors)
    return [reports[parsed.line] for parsed in batch]
