"""What partial-name search reads besides the personas themselves."""

from __future__ import annotations

import uuid

from sqlmodel import Field, SQLModel

from models.tenancy import org_id_field


class NamePart(SQLModel, table=True):
    """Every distinct lower-cased first name and last name of an organization's personas.

    A name word typed into the search is found in the whole name exactly when it is in the
    first name or in the last name (a word holds no space), so the parts holding it, a few
    of the organization's thousands, name every persona to look at through the name
    indexes, without reading a persona row (resolvers/search_names.py). Kept by triggers on
    personas (migration 0006) in the transaction of every write, whatever path wrote it;
    never written by the application, except that an erasure forgets the parts no
    persona has any more (resolvers/privacy_erasure.py)."""

    __tablename__ = "persona_name_parts"

    org_id: uuid.UUID = org_id_field()
    part: str = Field(primary_key=True, max_length=200)
