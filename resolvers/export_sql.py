"""The SQL of the CSV export: each column's cell as the database builds it (times in
ISO 8601, money, the persona's tags and consents, and the `'` that stops a
spreadsheet from running a cell as a formula), the statement over a search's
personas, newest first, and on PostgreSQL that statement inside `COPY (...) TO
STDOUT (FORMAT csv)`, built and compiled once per column set and plan shape
(`resolvers/export.py` streams it).

The columns follow the viewer's field permissions exactly as the card does
(a column is there only if the viewer may see that field).
"""

import functools
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    null,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Dialect as SQLDialect

from models.enums import Channel, OptInStatus
from models.tables import CONSENTS, PERSONAS, ROLLUPS, STORES, TAGS
from permissions.matrix import ROLE_PERMISSIONS, Permission
from resolvers.search_sql import CompiledSearch

P = PERSONAS.c

# What a spreadsheet reads as the start of a formula (OWASP's list adds tab and CR).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TAG_SEPARATOR = "; "
# PostgreSQL: from this share of the organization's personas on, an export aggregates the whole
# organization's tags and consents once (hash joins) rather than per found persona (index lookups).
SETWISE_SHARE = 0.5


def _sql_text(value: str) -> ColumnElement[str]:
    """A constant string written into the statement (not a parameter: it stays one cached statement)."""
    return literal_column("'" + value.replace("'", "''") + "'", String)


QUOTE = _sql_text("'")
FORMULA_CODES: list[ColumnElement[Any]] = [literal_column(str(ord(c))) for c in FORMULA_STARTS]


class Cells:
    """SQL that gives each CSV cell as text (NULL for an empty cell), in one dialect's functions."""

    def __init__(self, *, sqlite: bool, per_persona: Sequence[Any] = ()) -> None:
        self.sqlite = sqlite
        # PostgreSQL reads the tags and consents as one row per persona that the cells refer to: the
        # organization's rows aggregated once and hash joined (set-wise), or per found persona (lateral).
        self.per_persona = list(per_persona)

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
        """The persona's tags, sorted by code point as Python sorts them, joined by '; '."""
        if not self.sqlite:
            return self.text(self.per_persona[0].c.tags)
        # SQLite's BINARY collation is code point order; group_concat keeps the subquery's order.
        mine = and_(TAGS.c.org_id == P.org_id, TAGS.c.persona_id == P.id)
        ordered = select(TAGS.c.tag).where(mine).order_by(TAGS.c.tag).correlate(PERSONAS).subquery()
        return self.text(select(func.group_concat(ordered.c.tag, _sql_text(TAG_SEPARATOR))).scalar_subquery())

    def consent(self, channel: Channel) -> ColumnElement[str]:
        if not self.sqlite:
            status: Any = self.per_persona[1].c[channel.value]
        else:
            status = (
                select(CONSENTS.c.status)
                .where(
                    CONSENTS.c.org_id == P.org_id,
                    CONSENTS.c.persona_id == P.id,
                    CONSENTS.c.channel == _sql_text(channel.value),
                )
                .scalar_subquery()
            )
        return func.coalesce(status, _sql_text(OptInStatus.UNKNOWN.value), type_=String)


def _tag_row() -> Select[Any]:
    """PostgreSQL: a persona's tags in one cell, in code point order (the C collation)."""
    by_code_point = aggregate_order_by(_sql_text(TAG_SEPARATOR), TAGS.c.tag.collate("C"))
    return select(func.string_agg(TAGS.c.tag, by_code_point).label("tags")).select_from(TAGS)


def _consent_row() -> Select[Any]:
    """PostgreSQL: a persona's status per channel (one consent row per channel at most)."""
    statuses = (
        func.max(CONSENTS.c.status).filter(CONSENTS.c.channel == _sql_text(channel.value)).label(channel.value)
        for channel in Channel
    )
    return select(*statuses).select_from(CONSENTS)


def _lateral(aggregate: Select[Any], org_id: Any, persona_id: Any) -> Any:
    """The aggregate over one found persona's rows (an index range): always one row."""
    (table,) = aggregate.get_final_froms()
    return aggregate.where(table.c.org_id == org_id, table.c.persona_id == persona_id).lateral()


def _setwise(aggregate: Select[Any], org_id: uuid.UUID) -> Any:
    """The aggregate over the organization's rows, one row per persona that has some."""
    (table,) = aggregate.get_final_froms()
    per_persona = aggregate.add_columns(table.c.persona_id).where(table.c.org_id == org_id)
    return per_persona.group_by(table.c.persona_id).subquery()


@dataclass(frozen=True)
class ExportColumn:
    name: str
    permission: Permission | None
    cell: Callable[[Cells], ColumnElement[Any]]


def _consent(channel: Channel) -> ExportColumn:
    return ExportColumn(f"consent_{channel.value.lower()}", None, lambda c: c.consent(channel))


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


def csv_select(
    columns: list[ExportColumn], search: CompiledSearch, *, sqlite: bool, org_id: uuid.UUID | None = None
) -> Select[Any]:
    """One statement: the search's personas, newest first, each as its cells.

    With `org_id` (PostgreSQL), the tags and consents of the whole organization are aggregated once
    and hash joined: for an export of most of the organization. Without, per found persona."""
    return _cells_select(columns, search.conditions, sqlite=sqlite, org_id=org_id)


def _cells_select(columns: list[ExportColumn], conditions: Sequence[Any], *, sqlite: bool, org_id: Any) -> Select[Any]:
    """csv_select over any conditions; `org_id` may be a bound parameter (a cached statement's)."""
    found: Any = PERSONAS.outerjoin(ROLLUPS, _ROLLUP_OF_PERSONA).outerjoin(STORES, _STORE_OF_PERSONA)
    per_persona: list[Any] = []
    if not sqlite and org_id is not None:
        per_persona = [_setwise(_tag_row(), org_id), _setwise(_consent_row(), org_id)]
        for rows in per_persona:
            found = found.outerjoin(rows, rows.c.persona_id == P.id)  # personas with none are kept
    elif not sqlite:
        per_persona = [_lateral(_tag_row(), P.org_id, P.id), _lateral(_consent_row(), P.org_id, P.id)]
        for rows in per_persona:
            found = found.join(rows, true())  # a lateral aggregate: always one row
    cells = Cells(sqlite=sqlite, per_persona=per_persona)
    return (
        select(*(column.cell(cells).label(column.name) for column in columns))
        .select_from(found)
        .where(*conditions)
        .order_by(*NEWEST_FIRST)
    )


_ROLLUP_OF_PERSONA = and_(ROLLUPS.c.org_id == P.org_id, ROLLUPS.c.persona_id == P.id)
_STORE_OF_PERSONA = and_(STORES.c.org_id == P.org_id, STORES.c.id == P.favorite_store_id)
NEWEST_FIRST = (P.created_at.desc(), P.id.desc())


# Stands for the search's conditions in a cached COPY statement (an identifier nothing else uses).
_SEARCH_MARK = "personagraph_export_search_conditions"
_ORG_PARAM = "personagraph_export_org_id"


@functools.lru_cache(maxsize=64)
def _copy_template(names: tuple[str, ...], setwise: bool, dialect: SQLDialect) -> tuple[str, str]:
    """COPY (the export's statement) TO STDOUT for these columns and plan shape, built and compiled
    once per process (10-20 ms each time otherwise, 25-40 ms the first time): the text before and
    after the search's conditions, which are compiled on their own for each export."""
    by_name = {c.name: c for c in COLUMNS}
    org = bindparam(_ORG_PARAM, type_=ROLLUPS.c.org_id.type) if setwise else None
    mark = literal_column(_SEARCH_MARK, Boolean)
    stmt = _cells_select([by_name[n] for n in names], [mark], sqlite=False, org_id=org)
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
    assert _ORG_PARAM not in params
    return conditions, params


def prepare_statements(dialect: SQLDialect) -> None:
    """Compile the COPY statements of every role that may export, in both plan shapes, so that no
    export pays for it (for an app's start-up: ~70 ms). Nothing to do on SQLite."""
    if dialect.name != "postgresql":
        return
    for permissions in {frozenset(p) for p in ROLE_PERMISSIONS.values() if Permission.EXPORT in p}:
        names = tuple(c.name for c in columns_for(permissions))
        for setwise in (False, True):
            _copy_template(names, setwise, dialect)


def copy_statement(
    columns: list[ExportColumn], search: CompiledSearch, dialect: SQLDialect, org_id: uuid.UUID | None = None
) -> tuple[str, dict[str, Any]]:
    """PostgreSQL: COPY (csv_select(...)) TO STDOUT as CSV, and its parameters: the cached statement
    for these columns and plan shape around this search's conditions."""
    before, after = _copy_template(tuple(c.name for c in columns), org_id is not None, dialect)
    conditions, params = _conditions_sql(search, dialect)
    if org_id is not None:
        params[_ORG_PARAM] = org_id
    sql = before + conditions + after
    # psycopg merges parameters into COPY on the client, turning SQLAlchemy's %% back into %.
    return (sql if params else sql.replace("%%", "%")), params
