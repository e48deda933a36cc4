"""personas(query:): every smart condition alone and combined with AND, and the
smart condition list, each of whose conditions parses and runs."""

from __future__ import annotations

import pytest

from tests import search_support
from tests.conftest import GraphQLClient
from tests.search_cast import SEARCH, Cast, names
from tests.search_support import ANN, ANNABEL, BOB, JOANN

CONDITIONS = """
{ smartSearchConditions { label condition description } }
"""

cast = search_support.cast

ALONE = [
    ("has:mobile_phone", [BOB, JOANN, ANN]),
    ("has:email", [BOB, ANNABEL, ANN]),
    ("is:loyalty_member", [BOB, JOANN, ANN]),
    ("is:archived", []),
    ("opted_in:TEXT", [ANN]),
    ("opted_in:email", []),
    ("opted_out:EMAIL", [ANNABEL]),
    ("opted_out:text", [JOANN]),
    ("source:loyalty", [JOANN]),
    ("source:raw_file", [ANNABEL]),
    ("source:test-pos", [BOB, ANN]),
    ("source:TEST-POS", [BOB, ANN]),
    ("source:other-pos", []),
    ("tag:VIP", [ANN]),
    ("tag:vip", [ANN]),
    ('tag:"big spender"', [ANNABEL]),
    ("attr:tier=gold", [ANN]),
    ("attr:TIER=GOLD", [ANN]),
    ('attr:tier="gold plus"', [ANNABEL]),
    ('store:"Main Street"', [ANN]),
    ("store:downtown", [BOB]),
    ("store:Uptown", []),
    ("points>=150", [BOB]),
    ("points>0", [BOB, ANN]),
    ("points=20", [ANN]),
    ("points<=20", [JOANN, ANNABEL, ANN]),
    ("points<20", [JOANN, ANNABEL]),
    ("spent>100", [BOB]),
    ("spent>=22", [BOB, ANN]),
    ("spent=$22.00", [ANN]),
    ("spent<22.01", [JOANN, ANNABEL, ANN]),
    ("orders=3", [BOB]),
    ("orders>=1", [BOB, ANN]),
    ("orders<1", [JOANN, ANNABEL]),
    ("last_seen<30", [BOB]),
    ("last_seen<=9", []),
    ("last_seen=10", [BOB]),
    ("last_seen>90", [ANN]),
    ("last_seen>=100", [ANN]),
    ("last_seen>100", []),
    ("signed_up>=2025-01-01", [JOANN]),
    ("signed_up<2024-03-10", [BOB]),
    ("signed_up=2024-03-10", [ANN]),
    ("signed_up<=2024-03-10", [BOB, ANN]),
    ("signed_up>2024-03-10", [JOANN]),
    ("points >= 150", [BOB]),
    ("points:150", [BOB]),
    ("points:>=150", [BOB]),
]


@pytest.mark.usefixtures("cast")
async def test_each_smart_condition_alone(staff_client: GraphQLClient) -> None:
    for query, expected in ALONE:
        data = (await staff_client.data(SEARCH, {"q": query}))["personas"]
        assert [n["fullName"] for n in data["nodes"]] == expected, query
        assert data["totalCount"] == len(expected), query


COMBINED = [
    ("has:email is:loyalty_member", [BOB, ANN]),
    ("ann lee has:mobile_phone", [ANN, JOANN]),
    ("is:loyalty_member points>=100 store:Downtown", [BOB]),
    ("source:test-pos tag:VIP opted_in:TEXT attr:tier=gold", [ANN]),
    ("ann@example.com has:mobile_phone", [ANN]),
    ("annabel@example.com has:mobile_phone", []),
    ("415-555-0104 orders=3 last_seen<30", [BOB]),
    ('"Joann Kaleel" signed_up>=2025-01-01 opted_out:TEXT', [JOANN]),
    ('"Joann Kaleel" is:archived', []),
    ("has:mobile_phone has:email spent>100 last_seen>90", []),
]


@pytest.mark.usefixtures("cast")
async def test_smart_conditions_combine_with_and(staff_client: GraphQLClient) -> None:
    for query, expected in COMBINED:
        assert await names(staff_client, query) == expected, query


async def test_every_listed_smart_condition_parses_and_runs(
    cast: Cast, staff_client: GraphQLClient, analyst_client: GraphQLClient
) -> None:
    listed = (await analyst_client.data(CONDITIONS))["smartSearchConditions"]
    conditions = {c["condition"]: c for c in listed}
    assert conditions["has:mobile_phone"]["label"] == "Phone (mobile) on file"
    assert conditions["is:loyalty_member"]["label"] == "Loyalty member"
    assert {"has:email", "is:archived", "opted_in:TEXT", "opted_out:EMAIL", "source:loyalty", "points>=500"} <= set(
        conditions
    )
    assert all(c["label"] and c["description"] for c in listed)
    for entry in listed:
        body = await staff_client.execute(SEARCH, {"q": entry["condition"]})
        assert not body.get("errors"), (entry, body.get("errors"))
    assert await names(staff_client, conditions["tag:VIP"]["condition"]) == [ANN]
    del cast
