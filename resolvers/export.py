"""CSV and signature exports, streamed so memory stays flat however many
personas there are.

The CSV is one statement over the search's personas (`resolvers/export_sql.py`):
the database turns each persona into its cells, so Python never builds a row
object. On PostgreSQL the statement runs inside `COPY (...) TO STDOUT (FORMAT
csv)`: the server writes the CSV and the app forwards it (each CopyData message
is one row, so its LF becomes the CRLF of RFC 4180). On SQLite the cursor
streams the cells and the csv module writes them. Both give the same bytes.
"""

import csv
import io
from collections.abc import AsyncIterator, Generator, Iterable
from typing import Any

import psycopg
from psycopg import pq
from psycopg.generators import fetch_many
from psycopg.waiting import Wait
from sqlalchemy import (
    Select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from database import Database
from permissions.matrix import Permission
from resolvers.export_sql import (
    ExportColumn,
    columns_for,
    copy_statement,
    csv_select,
)
from resolvers.search_sql import CompiledSearch

# The stream is handed on in chunks of about this many bytes (a few hundred rows).
CSV_CHUNK_BYTES = 64 * 1024
# SQLite: rows per fetch from the cursor.
SQLITE_FETCH_ROWS = 2000


def _header(columns: list[ExportColumn]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([c.name for c in columns])
    return buffer.getvalue().encode()


async def stream_csv(
    db: Database,
    search: CompiledSearch,
    permissions: Iterable[Permission],
) -> AsyncIterator[bytes]:
    """The CSV file (UTF-8, header row first) in chunks of about CSV_CHUNK_BYTES."""
    columns = columns_for(permissions)
    yield _header(columns)
    async with db.read() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            rows = _written_rows(conn, csv_select(columns, search, sqlite=True))
        else:
            rows = _copied_rows(conn, *copy_statement(columns, search, conn.dialect))
        try:
            async for chunk in rows:
                yield chunk
        except BaseException:
            # Cut off mid-stream (the client went away, or the driver failed): the connection may be
            # mid-COPY or already closed by the driver, so it goes back invalid, never to the next user.
            await conn.invalidate()
            raise


async def _copied_rows(conn: AsyncConnection, copy_sql: str, params: dict[str, Any]) -> AsyncIterator[bytes]:
    """PostgreSQL: the COPY ... TO STDOUT (FORMAT csv) statement's rows, with CRLF line ends."""
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection  # psycopg's AsyncConnection
    async with driver.cursor() as cursor, cursor.copy(copy_sql, params):
        # Every row that has arrived is taken in one wait, not one wait (and one await) per row.
        reader = _CopyReader(driver.pgconn)
        while not reader.over:
            if block := await driver.wait(reader.block()):
                yield block


class _CopyReader:
    """Reads COPY TO STDOUT rows off libpq in blocks, with psycopg's wait protocol."""

    def __init__(self, pgconn: Any) -> None:
        self.pgconn = pgconn
        self.over = False

    def block(self) -> Generator[Any, Any, bytes]:
        """A wait generator: the rows already received (at least one, about CSV_CHUNK_BYTES at most)
        as CSV with CRLF line ends; at the end of the COPY, the last rows and its result read."""
        pgconn, rows, size = self.pgconn, list[memoryview](), 0
        while size < CSV_CHUNK_BYTES:
            nbytes, data = pgconn.get_copy_data(1)  # 1: do not block
            if nbytes > 0:
                rows.append(data)
                size += nbytes
            elif nbytes == 0 and rows:
                break  # the rest is still on its way: hand on what is here
            elif nbytes == 0:
                while not (yield Wait.R):
                    continue
                pgconn.consume_input()
            else:  # -1: the COPY is over; its command result follows
                self.over = True
                results = yield from fetch_many(pgconn)
                failed = [r for r in results if r.status != pq.ExecStatus.COMMAND_OK]
                if failed:
                    raise psycopg.errors.error_from_result(failed[0])
                break
        # A CopyData message is exactly one row ending in LF (a newline inside a value is quoted):
        # each LF that ends a message becomes CRLF, and only those.
        block = b"".join(rows)
        if block.count(b"\n") == len(rows):
            return block.replace(b"\n", b"\r\n")
        return b"".join(bytes(row[:-1]) + b"\r\n" for row in rows)


async def _written_rows(conn: AsyncConnection, stmt: Select[Any]) -> AsyncIterator[bytes]:
    """SQLite: the cursor's cells, written by the csv module."""
    result = await conn.stream(stmt.execution_options(yield_per=SQLITE_FETCH_ROWS))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    async for rows in result.partitions():
        writer.writerows(rows)
        if buffer.tell() >= CSV_CHUNK_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()
