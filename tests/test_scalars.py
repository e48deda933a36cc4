"""DateTime input is read exactly as strawberry's own parser (dateutil's
isoparse) reads it: the shortcut schema/scalars.py takes for RFC 3339 with an
explicit offset gives the same instant and offset, and every other text the
same value or the same refusal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.schema.types.base_scalars import DateTimeDefinition

from schema.scalars import parse_datetime

GENERAL = DateTimeDefinition.parse_value
TWO = st.integers(min_value=0, max_value=99).map(lambda n: f"{n:02d}")
FRACTION = st.one_of(st.just(""), st.text(alphabet="0123456789", min_size=1, max_size=7).map(lambda d: f".{d}"))
OFFSET = st.one_of(
    st.sampled_from(["Z", "z", "", "+00:00", "-00:00"]), st.tuples(st.sampled_from("+-"), TWO, TWO).map("".join)
)


def read(parse: Callable[[object], object] | None, value: str) -> tuple[dt.datetime | None, str | None]:
    """The datetime a parser reads, or its refusal."""
    assert parse is not None
    try:
        parsed = parse(value)
    except StrawberryInputCoercionError as exc:
        return None, str(exc)
    assert isinstance(parsed, dt.datetime)
    return parsed, None


@settings(max_examples=600, deadline=None)
@given(
    year=st.integers(min_value=1, max_value=9999).map(lambda n: f"{n:04d}"),
    month=TWO,
    day=TWO,
    hour=TWO,
    minute=TWO,
    second=TWO,
    fraction=FRACTION,
    offset=OFFSET,
)
def test_a_datetime_reads_as_strawberrys_parser_reads_it(
    year: str, month: str, day: str, hour: str, minute: str, second: str, fraction: str, offset: str
) -> None:
    # Given a timestamp in the shape clients send, valid or not in any of its fields
    value = f"{year}-{month}-{day}T{hour}:{minute}:{second}{fraction}{offset}"
    # Then it reads to the same instant and offset (or the same refusal) as with strawberry's parser
    mine, expected = read(parse_datetime, value), read(GENERAL, value)
    assert mine == expected
    if mine[0] is not None and expected[0] is not None:
        assert mine[0].utcoffset() == expected[0].utcoffset()


@pytest.mark.parametrize(
    "value", ["2025-01-01", "2025-01-01T12:00", "20250101T120000Z", "nope", "", "2025-01-01 12:00:00Z"]
)
def test_other_forms_are_left_to_strawberrys_parser(value: str) -> None:
    assert read(parse_datetime, value) == read(GENERAL, value)
