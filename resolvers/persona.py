"""The Personas page's rule for which personas it lists (the search compiles it into its SQL)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement

from models.tables import PERSONAS


def listed_personas(org_id: uuid.UUID | ColumnElement[Any], *, include_archived: bool) -> Any:
    """The Personas page's WHERE: this org, with PII, not merged away or erased."""
    conditions = [
        PERSONAS.c.org_id == org_id,
        PERSONAS.c.merged_into_id.is_(None),
        PERSONAS.c.erased_at.is_(None),
    ]
    if not include_archived:
        conditions.append(PERSONAS.c.archived_at.is_(None))
    return conditions
