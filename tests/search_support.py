"""What the search tests share (tests/test_search_*.py): the full names of the
cast tests/search_cast.py makes, and ``cast``, the fixture that makes it.

``cast`` is a fixture; a test module registers it with ``cast = search_support.cast``.
"""

from __future__ import annotations

import pytest

from database import Database
from models import Organization
from tests.search_cast import Cast, make_cast

ANN, ANNABEL, JOANN, BOB = "Ann Lee", "Annabel Leeds", "Joann Kaleel", "Bob Stone"


@pytest.fixture
async def cast(db: Database, org: Organization) -> Cast:
    return await make_cast(db, org)
