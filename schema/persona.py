"""Persona: the header and General tab of the card."""

from __future__ import annotations

import datetime as dt
from typing import Any

import strawberry

from permissions.fields import guarded
from permissions.matrix import Permission
from schema.context import Info
from schema.enums import SourceKind
from schema.ids import to_global_id
from schema.relay import Node


@strawberry.type(description="Where a persona first came from.")
class Source:
    kind: SourceKind
    integration: str | None = strawberry.field(
        description="The integrated system's name when kind is INTEGRATION (e.g. the point-of-sale)."
    )


@strawberry.type(description="One customer: the persona card.")
class Persona(Node):
    row: strawberry.Private[Any]
    number: int = strawberry.field(description="The short number people read aloud and type into a merge form.")
    first_name: str | None
    last_name: str | None
    created_at: dt.datetime
    archived_at: dt.datetime | None
    loyalty_member: bool
    loyalty_signup_at: dt.datetime | None
    email: str | None = guarded(Permission.VIEW_CONTACT, description="Normalized, lower-case email.")
    phone: str | None = guarded(Permission.VIEW_CONTACT, description="Mobile phone in E.164.")
    birthday: dt.date | None = guarded(Permission.VIEW_CONTACT)

    @classmethod
    def from_row(cls, row: Any) -> Persona:
        return cls(
            row=row,
            id=strawberry.ID(to_global_id("Persona", row.id)),
            number=row.number,
            first_name=row.first_name,
            last_name=row.last_name,
            created_at=row.created_at,
            archived_at=row.archived_at,
            loyalty_member=row.loyalty_member,
            loyalty_signup_at=row.loyalty_signup_at,
            email=row.email,
            phone=row.phone,
            birthday=row.birthday,
        )

    @strawberry.field(description="First and last name together, or null when neither is known.")
    def full_name(self) -> str | None:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or None

    @strawberry.field(description="Where the persona first came from.")
    def sourced_from(self) -> Source:
        return Source(kind=SourceKind(self.row.source_kind), integration=self.row.source_name)

    @strawberry.field(description="Set on a persona that was merged away; points at the survivor.")
    async def merged_into(self, info: Info) -> Persona | None:
        if self.row.merged_into_id is None:
            return None
        row = await info.context.loaders.persona_by_id.load(self.row.merged_into_id)
        return Persona.from_row(row) if row is not None else None
