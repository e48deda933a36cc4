"""The leaf forms history nodes built as JSON by PostgreSQL (resolvers/history_json.py)
are made of (global ids, ISO times, money), and the cursors of a JSON page, are checked
against the Python functions they stand for, for any value.

The card's history read both ways over these forms is tests/test_history_json_both_ways.py."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, Text, bindparam, cast, create_engine, select
from sqlalchemy.types import BigInteger, DateTime, Uuid

from coalesce import row_of
from models.base import UTCDateTime
from resolvers.amounts import cents_to_decimal
from resolvers.history import _cursor_of_text
from resolvers.history_json import global_id, iso_time, money
from resolvers.pagination import Cursor
from schema.ids import to_global_id


@pytest.fixture(scope="module")
def postgres(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine(postgres_url)
    yield engine
    engine.dispose()


TYPE_NAMES = ["Order", "PointsEntry", "SurveySubmission", "PersonaAction", "Store", "Persona"]
TIMES = st.datetimes(
    min_value=dt.datetime(1, 1, 2),  # noqa: DTZ001 (made aware by timezones=)
    max_value=dt.datetime(9999, 12, 30),  # noqa: DTZ001
    timezones=st.just(dt.UTC),
)


@settings(max_examples=300, deadline=None)
@given(
    type_name=st.sampled_from(TYPE_NAMES),
    id_=st.uuids(),
    time=TIMES | st.builds(lambda t: t.replace(microsecond=0), TIMES),
    cents=st.integers(min_value=-(2**62), max_value=2**62),
)
def test_leaf_forms_in_sql_are_the_python_ones(
    postgres: Engine, type_name: str, id_: uuid.UUID, time: dt.datetime, cents: int
) -> None:
    # Given a value of each form, when PostgreSQL writes it as the JSON path does
    statement = select(
        global_id(type_name, bindparam("id", type_=Uuid())),
        iso_time(bindparam("time", type_=DateTime(timezone=True))),
        money(bindparam("cents", type_=BigInteger())),
    )
    with postgres.connect() as conn:
        row = conn.execute(statement, {"id": id_, "time": time, "cents": cents}).one()

    # Then it is what the schema's types serialize: the global id, isoformat(), str(Decimal)
    assert tuple(row) == (to_global_id(type_name, id_), time.isoformat(), str(cents_to_decimal(cents)))


@settings(max_examples=200, deadline=None)
@given(
    id_=st.uuids(),
    time=TIMES | st.builds(lambda t: t.replace(microsecond=0), TIMES),
    zone=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata", "Pacific/Chatham"]),
)
def test_a_json_pages_cursor_from_its_text_is_the_row_paths_cursor(
    postgres: Engine, id_: uuid.UUID, time: dt.datetime, zone: str
) -> None:
    # Given a row's time and id, written as text by a session in any time zone (a JSON page's
    # rows carry them so) and read as values by the driver (a page of rows)
    stored_time, stored_id = bindparam("time", type_=UTCDateTime()), bindparam("id", type_=Uuid())
    statement = select(cast(stored_time, Text), cast(stored_id, Text), stored_time, stored_id)
    with postgres.connect() as conn:
        conn.exec_driver_sql(f"SET TIME ZONE '{zone}'")
        time_text, id_text, value, same_id = conn.execute(statement, {"time": time, "id": id_}).one()

    # Then both make the same cursor, to the byte
    from_text = _cursor_of_text(row_of(("cursor_time", "cursor_id"), [time_text, id_text]))
    assert from_text == Cursor(value, same_id)
    assert from_text.encode() == Cursor(value, same_id).encode() == Cursor(time, id_).encode()
