"""The SQL of the CSV export: each column's cell as the database builds it (times in
ISO 8601, money, the persona's tags and consents, and the `'` that stops a
spreadsheet from running a cell as a formula), the statement over a search's
personas, newest first, and on PostgreSQL that statement inside `COPY (...) TO
STDOUT (FORMAT csv)`, built and compiled once per column set
(`resolvers/export.py` streams it). A persona's tags and consents are read as the
triggers of migration 0007 keep them, one row per persona (models.PersonaExportCells).

The columns follow the viewer's field permissions exactly as the card does
(a column is there only if the viewer may see that field).
"""

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal_column,
    null,
    select,
    type_coerce,
)
from sqlalchemy.engine import Dialect as SQLDialect

from models.enums import Channel, OptInStatus
from models.export import consent_column
from models.tables import EXPORT_CELLS, PERSONAS, ROLLUPS, STORES
from permissions.matrix import ROLE_PERMISSIONS, Permission
from resolvers.search_sql import CompiledSearch

P = PERSONAS.c

# What a spreadsheet reads as the start of a formula (OWASP's list adds tab and CR).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _sql_text(value: str) -> ColumnElement[str]:
    """A constant string written into the statement (not a parameter: it stays one cached statement)."""
    return literal_column("'" + value.replace("'", "''") + "'", String)


QUOTE = _sql_text("'")
FORMULA_CODES: list[ColumnElement[Any]] = [literal_column(str(ord(c))) for c in FORMULA_STARTS]


class Cells:
    """SQL that gives each CSV cell as text (NULL for an empty cell), in one dialect's functions."""

    def __init__(self, *, sqlite: bool) -> None:
        self.sqlite = sqlite

    def text(self, column: Any) -> ColumnElement[str]:
        """Free text: a leading formula character gets a `'`; an empty string is an empty cell."""
        if self.sqlite:
            # The csv module writes NULL and '' alike; `column` may be a subquery, so it is named twice only.
            escaped = QUOTE.concat(column)
            return case((func.unicode(column).in_(FORMULA_CODES), escaped), else_=type_coerce(column, String))
        # COPY writes '' as "" and NULL as nothing: an empty string becomes NULL, as the csv module writes it.
        return case(
            (func.ascii(column).in_(FORMULA_CODES), QUOTE.concat(column)),
            (column != _sql_text(""), type_coerce(column, String)),
            else_=null(),
        )

    def time(self, column: Any) -> ColumnElement[str]:
        """ISO 8601 in UTC as Python writes it: `2024-03-10T15:00:00+00:00`, microseconds only when there are some."""
        if self.sqlite:
            # Stored as naive UTC text, 'YYYY-MM-DD HH:MM:SS.ffffff'.
            with_t = func.replace(column, _sql_text(" "), _sql_text("T"))
            iso = func.replace(with_t, _sql_text(".000000"), _sql_text(""), type_=String)
            return iso.concat(_sql_text("+00:00"))
        # A zero offset (not the zone name 'UTC', which PostgreSQL parses again for every value).
        utc = func.timezone(literal_column("INTERVAL '0'"), column)
        written = func.to_char(utc, _sql_text('YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'))
        return func.replace(written, _sql_text(".000000+"), _sql_text("+"), type_=String)

    def date(self, column: Any) -> ColumnElement[str]:
        if self.sqlite:
            return type_coerce(column, String)
        return func.to_char(column, _sql_text("YYYY-MM-DD"), type_=String)

    def flag(self, column: Any) -> ColumnElement[str]:
        return case((column, _sql_text("true")), else_=_sql_text("false"))

    def count(self, column: Any) -> ColumnElement[str]:
        number = func.coalesce(column, literal_column("0"))
        written = cast(number, String)
        return case((number < literal_column("0"), QUOTE.concat(written)), else_=written)

    def money(self, cents_column: Any) -> ColumnElement[str]:
        """Cents as a decimal amount with two places, `22.00`."""
        cents = func.coalesce(cents_column, literal_column("0"))
        written: ColumnElement[str]
        if self.sqlite:
            written = func.printf(_sql_text("%.2f"), cents * literal_column("0.01"), type_=String)
        else:
            written = cast(cents * literal_column("0.01"), String)
        return case((cents < literal_column("0"), QUOTE.concat(written)), else_=written)

    def tags(self) -> ColumnElement[str]:
        """The persona's tags, in code point order as Python sorts them, joined by '; '."""
        return self.text(EXPORT_CELLS.c.tags)

    def consent(self, channel: Channel) -> ColumnElement[str]:
        status = EXPORT_CELLS.c[consent_column(channel)]
        return func.coalesce(status, _sql_text(OptInStatus.UNKNOWN.value), type_=String)


@dataclass(frozen=True)
class ExportColumn:
    name: str
    permission: Permission | None
    cell: Callable[[Cells], ColumnElement[Any]]


def _consent(channel: Channel) -> ExportColumn:
    return ExportColumn(consent_column(channel), None, lambda c: c.consent(channel))


# In the order they appear in the file; README.md ("CSV export") documents each.
COLUMNS: tuple[ExportColumn, ...] = (
    ExportColumn("number", None, lambda c: P.number),
    ExportColumn("first_name", None, lambda c: c.text(P.first_name)),
    ExportColumn("last_name", None, lambda c: c.text(P.last_name)),
    ExportColumn("email", Permission.VIEW_CONTACT, lambda c: c.text(P.email)),
    ExportColumn("phone", Permission.VIEW_CONTACT, lambda c: c.text(P.phone)),
    ExportColumn("birthday", Permission.VIEW_CONTACT, lambda c: c.date(P.birthday)),
    ExportColumn("source", None, lambda c: P.source_kind),
    ExportColumn("integration", None, lambda c: c.text(P.source_name)),
    ExportColumn("source_id", None, lambda c: c.text(P.source_id)),
    ExportColumn("favorite_store", None, lambda c: c.text(STORES.c.name)),
    ExportColumn("loyalty_member", None, lambda c: c.flag(P.loyalty_member)),
    ExportColumn("loyalty_signup_at", None, lambda c: c.time(P.loyalty_signup_at)),
    ExportColumn("created_at", None, lambda c: c.time(P.created_at)),
    ExportColumn("archived_at", None, lambda c: c.time(P.archived_at)),
    ExportColumn("tags", None, lambda c: c.tags()),
    *(_consent(channel) for channel in Channel),
    ExportColumn("points", Permission.VIEW_POINTS, lambda c: c.count(ROLLUPS.c.points_balance)),
    ExportColumn("orders", Permission.VIEW_SHOPPING, lambda c: c.count(ROLLUPS.c.orders_count)),
    ExportColumn("spent", Permission.VIEW_SHOPPING, lambda c: c.money(ROLLUPS.c.spend_total_cents)),
    ExportColumn("last_order_at", Permission.VIEW_SHOPPING, lambda c: c.time(ROLLUPS.c.last_order_at)),
    ExportColumn("browser", Permission.VIEW_TECHNICAL_TRAITS, lambda c: c.text(P.browser)),
    ExportColumn("ip_address", Permission.VIEW_TECHNICAL_TRAITS, lambda c: c.text(P.ip_address)),
)


def columns_for(permissions: Iterable[Permission]) -> list[ExportColumn]:
    """The columns a viewer with these permissions may export."""
    held = set(permissions)
    return [c for c in COLUMNS if c.permission is None or c.permission in held]


def csv_select(columns: list[ExportColumn], search: CompiledSearch, *, sqlite: bool) -> Select[Any]:
    """One statement: the search's personas, newest first, each as its cells."""
    return _cells_select(columns, search.conditions, sqlite=sqlite)


def _cells_select(columns: list[ExportColumn], conditions: Sequence[Any], *, sqlite: bool) -> Select[Any]:
    found = (
        PERSONAS.outerjoin(ROLLUPS, _ROLLUP_OF_PERSONA)
        .outerjoin(STORES, _STORE_OF_PERSONA)
        .outerjoin(EXPORT_CELLS, _CELLS_OF_PERSONA)
    )
    cells = Cells(sqlite=sqlite)
    return (
        select(*(column.cell(cells).label(column.name) for column in columns))
        .select_from(found)
        .where(*conditions)
        .order_by(*NEWEST_FIRST)
    )


_ROLLUP_OF_PERSONA = and_(ROLLUPS.c.org_id == P.org_id, ROLLUPS.c.persona_id == P.id)
_STORE_OF_PERSONA = and_(STORES.c.org_id == P.org_id, STORES.c.id == P.favorite_store_id)
_CELLS_OF_PERSONA = and_(EXPORT_CELLS.c.org_id == P.org_id, EXPORT_CELLS.c.persona_id == P.id)
NEWEST_FIRST = (P.created_at.desc(), P.id.desc())


# Stands for the search's conditions in a cached COPY statement (an identifier nothing else uses).
_SEARCH_MARK = "personagraph_export_search_conditions"


@functools.lru_cache(maxsize=64)
def _copy_template(names: tuple[str, ...], dialect: SQLDialect) -> tuple[str, str]:
    """COPY (the export's statement) TO STDOUT for these columns, built and compiled once per
    process (10-20 ms each time otherwise, 25-40 ms the first time): the text before and after
    the search's conditions, which are compiled on their own for each export."""
    by_name = {c.name: c for c in COLUMNS}
    mark = literal_column(_SEARCH_MARK, Boolean)
    stmt = _cells_select([by_name[n] for n in names], [mark], sqlite=False)
    sql = str(stmt.compile(dialect=dialect))
    before, found, after = sql.partition(_SEARCH_MARK)
    assert found
    assert _SEARCH_MARK not in after
    return f"COPY ({before}", f"{after}) TO STDOUT WITH (FORMAT csv)"


def _conditions_sql(search: CompiledSearch, dialect: SQLDialect) -> tuple[str, dict[str, Any]]:
    """The search's WHERE as SQL text and its parameters, compiled inside a statement over personas
    (so a subquery in it correlates as it would in the export's statement)."""
    compiled = (
        select(P.id).where(*search.conditions).compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    )
    head, where, conditions = compiled.string.partition("\nWHERE ")
    assert where, compiled.string
    assert head.split() == ["SELECT", "personas.id", "FROM", "personas"], compiled.string
    params = dict(compiled.construct_params())
    # What SQLAlchemy applies to each parameter before it executes a statement (e.g. UTCDateTime's checks).
    processors: dict[str, Any] = dict(compiled._bind_processors)
    for name, process in processors.items():
        if name in params and callable(process):
            params[name] = process(params[name])
    return conditions, params


def prepare_statements(dialect: SQLDialect) -> None:
    """Compile the COPY statements of every role that may export, so that no export pays for it
    (for an app's start-up). Nothing to do on SQLite."""
    if dialect.name != "postgresql":
        return
    for permissions in {frozenset(p) for p in ROLE_PERMISSIONS.values() if Permission.EXPORT in p}:
        _copy_template(tuple(c.name for c in columns_for(permissions)), dialect)


def copy_statement(
    columns: list[ExportColumn], search: CompiledSearch, dialect: SQLDialect
) -> tuple[str, dict[str, Any]]:
    """PostgreSQL: COPY (csv_select(...)) TO STDOUT as CSV, and its parameters: the cached statement
    for these columns around this search's conditions."""
    before, after = _copy_template(tuple(c.name for c in columns), dialect)
    conditions, params = _conditions_sql(search, dialect)
    sql = before + conditions + after
    # psycopg merges parameters into COPY on the client, turning SQLAlchemy's %% back into %.
    return (sql if params else sql.replace("%%", "%")), params
