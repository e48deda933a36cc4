"""A history page's nodes as JSON that PostgreSQL builds, for a selection known
before the page is read.

The History tab shows ~80 nodes per card. Read as rows, each value became a
Python object (a UUID, a datetime, a Decimal), then a node, then its serialized
leaf again: a third of the card's CPU. Here each node type says, per GraphQL
field, which column feeds it and in which form (a global id, an ISO time, an
amount of money, the value as it is) or which related rows make it (an order's
store and lines, the order of a points entry, a merge's survivor); a selection
of those fields becomes one `json_build_object` per row, and the node arrives
already in its response form.

A selection with a field not described here (or a fragment, or a directive)
has no JSON form (None): the page is read as rows and its nodes built by the
schema's types, as always. The two forms answer the same bytes
(tests/test_history_json_*.py compare them field by field).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Numeric, Select, Table, Text, case, cast, func, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from models.tables import (
    ENTRIES,
    MERGES,
    MESSAGES,
    ORDER_LINES,
    ORDERS,
    PERSONA_ACTIONS,
    PERSONAS,
    PIXEL_EVENTS,
    REDEMPTIONS,
    STORES,
    SURVEY_SUBMISSIONS,
)
from resolvers.pagination import Selection
from resolvers.points import EARNED_KINDS

# A field's SQL: from the node's row (a FROM clause) and the field's own selection, its value
# in response form, or None when that selection has no JSON form.
FieldSql = Callable[[FromClause, "Selection | None"], "ColumnElement[Any] | None"]


def _sql_string(text: str) -> ColumnElement[Any]:
    """A constant string inlined in the statement (a type name, a format): not a parameter."""
    if "'" in text or "%" in text:
        raise ValueError(f"not a plain constant: {text!r}")
    return literal_column(f"'{text}'", Text)


def global_id(type_name: str, id_: ColumnElement[Any]) -> ColumnElement[Any]:
    """schema.ids.to_global_id in SQL: URL-safe base64 of "Type:<uuid hex>", unpadded."""
    raw = _sql_string(f"{type_name}:").op("||")(func.replace(cast(id_, Text), _sql_string("-"), _sql_string("")))
    encoded = func.encode(func.convert_to(raw, _sql_string("UTF8")), _sql_string("base64"))
    # PostgreSQL's base64 breaks lines every 76 characters: the newline goes with + and /.
    return func.rtrim(func.translate(encoded, literal_column("E'+/\\n'", Text), _sql_string("-_")), _sql_string("="))


_SECONDS = 'YYYY-MM-DD"T"HH24:MI:SS'


def iso_time(time: ColumnElement[Any]) -> ColumnElement[Any]:
    """datetime.isoformat() of a UTC time in SQL: microseconds only when there are some."""
    utc = func.timezone(_sql_string("UTC"), time)
    whole = func.date_trunc(_sql_string("second"), time) == time
    format_ = case((whole, literal_column(f"'{_SECONDS}'", Text)), else_=literal_column(f"'{_SECONDS}.US'", Text))
    return func.to_char(utc, format_).op("||")(_sql_string("+00:00"))


def money(cents: ColumnElement[Any]) -> ColumnElement[Any]:
    """str(cents_to_decimal(cents)) in SQL: two decimals always ('0.00', '-1.50')."""
    return cast(cast(cents, Numeric) * literal_column("0.01", Numeric), Text)


def json_object(pairs: list[tuple[str, ColumnElement[Any]]]) -> ColumnElement[Any]:
    """json_build_object over response keys (GraphQL names: letters, digits and _ only)."""
    args: list[ColumnElement[Any]] = []
    for key, value in pairs:
        args += [_sql_string(key), value]
    return func.json_build_object(*args)


@dataclass(frozen=True)
class NodeType:
    """A node type's fields in SQL, each over the row (a FROM clause) the node is made of."""

    name: str
    fields: Mapping[str, FieldSql]

    def json(self, row: FromClause, selection: Selection) -> ColumnElement[Any] | None:
        pairs: list[tuple[str, ColumnElement[Any]]] = []
        for key, name, below in selection:
            if name == "__typename":
                value: ColumnElement[Any] | None = None if below else _sql_string(self.name)
            else:
                make = self.fields.get(name)
                value = make(row, below) if make is not None else None
            if value is None:
                return None
            pairs.append((key, value))
        return json_object(pairs)


def _leaf(value: Callable[[FromClause], ColumnElement[Any]]) -> FieldSql:
    return lambda row, below: value(row) if below is None else None


def column(name: str) -> FieldSql:
    """The column as it is: a string, a number, a boolean, or an enum whose names are its values."""
    return _leaf(lambda row: row.c[name])


def node_id(type_name: str) -> FieldSql:
    return _leaf(lambda row: global_id(type_name, row.c.id))


def time(name: str) -> FieldSql:
    return _leaf(lambda row: iso_time(row.c[name]))


def amount(name: str) -> FieldSql:
    return _leaf(lambda row: money(row.c[name]))


def related(node: Callable[[], NodeType], table: Table, via: str) -> FieldSql:
    """The node made of the row of `table` whose id is in column `via` (null when it has none)."""

    def make(row: FromClause, below: Selection | None) -> ColumnElement[Any] | None:
        other = table.alias()
        value = node().json(other, below) if below else None
        if value is None:
            return None
        return select(value).where(other.c.org_id == row.c.org_id, other.c.id == row.c[via]).scalar_subquery()

    return make


def _json_list(
    value: ColumnElement[Any] | None, order: ColumnElement[Any], rows: Select[Any]
) -> ColumnElement[Any] | None:
    """The nodes of `rows` as a JSON array in `order` ([] when there are none); None without a value."""
    if value is None:
        return None
    found = func.json_agg(aggregate_order_by(value, order))
    return rows.add_columns(func.coalesce(found, literal_column("'[]'::json"))).scalar_subquery()


def _order_lines(row: FromClause, below: Selection | None) -> ColumnElement[Any] | None:
    """Order.lines: the order's lines in ticket order."""
    line = ORDER_LINES.alias()
    mine = select().select_from(line).where(line.c.org_id == row.c.org_id, line.c.order_id == row.c.id)
    return _json_list(ORDER_LINE.json(line, below) if below else None, line.c.line_no, mine)


def _points_earned(row: FromClause, below: Selection | None) -> ColumnElement[Any] | None:
    """Order.pointsEarned: the ORDER, VISIT and AUDIENCE_BOOST entries tied to the order."""
    if below is not None:
        return None
    entry = ENTRIES.alias()
    earned = select(func.coalesce(func.sum(entry.c.delta), literal_column("0"))).where(
        entry.c.org_id == row.c.org_id,
        entry.c.order_id == row.c.id,
        entry.c.kind.in_([_sql_string(kind) for kind in EARNED_KINDS]),
    )
    return earned.scalar_subquery()


def _answer(name: str) -> FieldSql:
    """A key of one stored answer, as text (null when absent)."""
    return _leaf(lambda answer: answer.c.value.op("->>")(_sql_string(name)))


SURVEY_ANSWER = NodeType("SurveyAnswer", {"question": _answer("question"), "answer": _answer("answer")})


def _survey_answers(row: FromClause, below: Selection | None) -> ColumnElement[Any] | None:
    """SurveySubmission.answers: each stored {question, answer} in order."""
    stored = func.json_array_elements(row.c.answers).table_valued("value", with_ordinality="n")
    answers = stored.render_derived(name="answer")
    value = SURVEY_ANSWER.json(answers, below) if below else None
    return _json_list(value, answers.c.n, select().select_from(answers))


STORE = NodeType("Store", {"id": node_id("Store"), "name": column("name")})
PERSONA = NodeType("Persona", {"id": node_id("Persona"), "number": column("number")})
ORDER_LINE = NodeType(
    "OrderLine",
    {
        "product": column("product"),
        "brand": column("brand"),
        "category": column("category"),
        "quantity": column("quantity"),
        "unitPrice": amount("unit_price_cents"),
    },
)
ORDER = NodeType(
    "Order",
    {
        "id": node_id("Order"),
        "externalId": column("external_id"),
        "placedAt": time("placed_at"),
        "subtotal": amount("subtotal_cents"),
        "tax": amount("tax_cents"),
        "total": amount("total_cents"),
        "itemCount": column("item_count"),
        "pointsEarned": _points_earned,
        "store": related(lambda: STORE, STORES, "store_id"),
        "lines": _order_lines,
    },
)
REDEMPTION = NodeType(
    "Redemption",
    {
        "id": node_id("Redemption"),
        "discountName": column("discount_name"),
        "points": column("points"),
        "status": column("status"),
        "redeemedAt": time("redeemed_at"),
        "actor": column("actor"),
    },
)
POINTS_ENTRY = NodeType(
    "PointsEntry",
    {
        "id": node_id("PointsEntry"),
        "kind": column("kind"),
        "delta": column("delta"),
        "balanceAfter": column("balance_after"),
        "note": column("note"),
        "actor": column("actor"),
        "createdAt": time("created_at"),
        "order": related(lambda: ORDER, ORDERS, "order_id"),
        "redemption": related(lambda: REDEMPTION, REDEMPTIONS, "redemption_id"),
    },
)
MESSAGE = NodeType(
    "Message",
    {
        "id": node_id("Message"),
        "direction": column("direction"),
        "channel": column("channel"),
        "body": column("body"),
        "campaign": column("campaign"),
        "sentAt": time("sent_at"),
    },
)
MERGE = NodeType(
    "Merge",
    {
        "id": node_id("Merge"),
        "kind": column("kind"),
        "mergedNumber": column("merged_number"),
        "reason": column("reason"),
        "actor": column("actor"),
        "mergedAt": time("merged_at"),
        "undoneAt": time("undone_at"),
        "survivor": related(lambda: PERSONA, PERSONAS, "survivor_id"),
    },
)
SURVEY_SUBMISSION = NodeType(
    "SurveySubmission",
    {
        "id": node_id("SurveySubmission"),
        "surveyName": column("survey_name"),
        "status": column("status"),
        "submittedAt": time("submitted_at"),
        "answers": _survey_answers,
    },
)
PERSONA_ACTION = NodeType(
    "PersonaAction",
    {
        "id": node_id("PersonaAction"),
        "kind": column("kind"),
        "campaign": column("campaign"),
        "detail": column("detail"),
        "occurredAt": time("occurred_at"),
    },
)
PIXEL_EVENT = NodeType(
    "PixelEvent",
    {
        "id": node_id("PixelEvent"),
        "site": column("site"),
        "event": column("event"),
        "url": column("url"),
        "occurredAt": time("occurred_at"),
    },
)

# Each history table's node type, by table name.
NODE_TYPES: dict[str, NodeType] = {
    table.name: node
    for table, node in (
        (ENTRIES, POINTS_ENTRY),
        (ORDERS, ORDER),
        (MESSAGES, MESSAGE),
        (REDEMPTIONS, REDEMPTION),
        (MERGES, MERGE),
        (SURVEY_SUBMISSIONS, SURVEY_SUBMISSION),
        (PERSONA_ACTIONS, PERSONA_ACTION),
        (PIXEL_EVENTS, PIXEL_EVENT),
    )
}

__all__ = ["NODE_TYPES", "NodeType", "global_id", "iso_time", "money"]
