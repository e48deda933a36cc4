"""The operation documents the frontend teams and the staff app copy stay
valid against the served schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import parse, validate

from schema import schema

OPERATIONS = sorted((Path(__file__).resolve().parent.parent / "operations").glob("*.graphql"))


def test_there_is_a_document_per_card_tab_and_the_full_card() -> None:
    assert {p.stem for p in OPERATIONS} >= {"header", "general", "points", "history", "discounts", "card"}


@pytest.mark.parametrize("path", OPERATIONS, ids=lambda p: p.stem)
def test_operation_document_validates_against_the_schema(path: Path) -> None:
    errors = validate(schema._schema, parse(path.read_text()))
    assert not errors, [e.message for e in errors]
