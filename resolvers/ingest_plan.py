"""A batch of contacts planned in memory, row by row in input order, before
anything is written (resolvers/ingest_batch.py writes the plan set-wise).

The plan starts from what the database holds for the batch's identity keys
(Known: one read) and keeps a key -> persona map as it goes, so two rows of
the same new customer land on one persona (CREATED, then UPDATED), exactly as
the row-by-row path would have it. A row whose keys name two personas needs a
merge: the plan does not take it (the caller runs it through the row-by-row
path, resolvers/ingest.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from models.base import new_id
from models.enums import PointsEntryKind
from resolvers.identity import ContactKeys
from resolvers.ingest_rules import (
    ContactData,
    IngestOutcome,
    attribute_source,
    clean,
    consent_changes,
    may_need_suppression,
    new_persona_row,
    opts_out_of_text,
    trait_changes,
    wanted_attributes,
    wanted_tags,
)
from resolvers.rollup_batch import Posting, RollupBatch


@dataclass
class ContactRow:
    """A validated row: its place in the input, and where its contact comes from."""

    index: int
    source: str
    contact: ContactData
    keys: ContactKeys
    path: list[str]


@dataclass
class Known:
    """What the database holds for a batch's rows, read before planning."""

    owner_of: dict[tuple[str, str], uuid.UUID] = field(default_factory=dict)
    # The owners' persona rows, as dicts the plan updates in place.
    personas: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    # persona -> channel -> (status, source)
    consents: dict[uuid.UUID, dict[str, tuple[str, str]]] = field(default_factory=dict)
    # The batch's phones and emails that are on the suppression list (which holds their hashes).
    suppressed: set[str] = field(default_factory=set)
    # (source, sourceId) whose legacy points were imported already.
    legacy: set[tuple[str, str]] = field(default_factory=set)


class BatchPlan:
    """The rows' writes, accumulated: rows for multi-row INSERTs and upserts."""

    def __init__(self, org_id: uuid.UUID, known: Known, actor: str) -> None:
        self.org_id = org_id
        self.known = known
        self.actor = actor
        self.rollups = RollupBatch()
        self.new: dict[uuid.UUID, dict[str, Any]] = {}
        # Known personas and the columns the batch changed on them.
        self.changed: dict[uuid.UUID, set[str]] = {}
        self.keys: list[dict[str, Any]] = []
        self.attributes: dict[tuple[uuid.UUID, str], dict[str, Any]] = {}
        self.tags: dict[tuple[uuid.UUID, str], dict[str, Any]] = {}
        self.consents: dict[tuple[uuid.UUID, str], dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.legacy: list[tuple[dict[str, Any], Posting]] = []

    def persona(self, persona_id: uuid.UUID) -> dict[str, Any]:
        return self.new.get(persona_id) or self.known.personas[persona_id]

    def owners(self, keys: ContactKeys) -> list[uuid.UUID]:
        """The distinct personas holding the keys now (the batch's earlier rows included)."""
        found = (self.known.owner_of.get(pair) for pair in keys.pairs())
        return list(dict.fromkeys(owner for owner in found if owner is not None))

    def set(self, persona_id: uuid.UUID, changes: dict[str, Any]) -> None:
        """Change columns of a persona of the plan."""
        if not changes:
            return
        self.persona(persona_id).update(changes)
        if persona_id not in self.new:
            self.changed.setdefault(persona_id, set()).update(changes)

    def apply(self, row: ContactRow, now: dt.datetime) -> tuple[uuid.UUID, IngestOutcome]:
        """Plan the row onto its persona (made if no key has one); at most one owner (no merge)."""
        contact = row.contact
        owners = self.owners(row.keys)
        assert len(owners) <= 1, "a row that needs a merge goes row by row"
        if owners:
            persona_id, outcome = owners[0], IngestOutcome.UPDATED
            self.set(persona_id, trait_changes(self.persona(persona_id), contact, row.keys, now))
        else:
            persona = new_persona_row(self.org_id, row.source, contact, row.keys, now)
            persona_id, outcome = persona["id"], IngestOutcome.CREATED
            self.new[persona_id] = persona
            self.rollups.create(persona_id)
        for kind, value in row.keys.pairs():
            if (kind, value) not in self.known.owner_of:
                self.known.owner_of[(kind, value)] = persona_id
                self.keys.append(
                    {"org_id": self.org_id, "kind": kind, "value": value, "persona_id": persona_id, "created_at": now}
                )
        source = attribute_source(row.source).value
        for key, value in wanted_attributes(contact).items():
            self.attributes[(persona_id, key)] = {
                "org_id": self.org_id,
                "persona_id": persona_id,
                "key": key,
                "value": value,
                "source": source,
                "updated_at": now,
            }
        for tag in wanted_tags(contact):
            self.tags.setdefault(
                (persona_id, tag), {"org_id": self.org_id, "persona_id": persona_id, "tag": tag, "created_at": now}
            )
        self._plan_consents(persona_id, contact, now)
        self._plan_legacy_points(persona_id, row.source, contact, now)
        return persona_id, outcome

    def _suppressed(self, persona_id: uuid.UUID) -> bool:
        persona = self.persona(persona_id)
        return persona["phone"] in self.known.suppressed or persona["email"] in self.known.suppressed

    def _plan_consents(self, persona_id: uuid.UUID, contact: ContactData, now: dt.datetime) -> None:
        if not contact.consents:
            return
        current = self.known.consents.setdefault(persona_id, {})
        suppressed = may_need_suppression(contact.consents) and self._suppressed(persona_id)
        for item in consent_changes(current, contact.consents, suppressed):
            self.consents[(persona_id, item.channel)] = {
                "org_id": self.org_id,
                "persona_id": persona_id,
                "channel": item.channel,
                "status": item.status,
                "source": item.source,
                "updated_at": now,
            }
            self.events.append(
                {
                    "org_id": self.org_id,
                    "id": new_id(),
                    "persona_id": persona_id,
                    "channel": item.channel,
                    "status": item.status,
                    "source": item.source,
                    "occurred_at": now,
                }
            )
            if opts_out_of_text(item):
                self.set(persona_id, {"sms_opt_out_at": now})

    def _plan_legacy_points(self, persona_id: uuid.UUID, source: str, contact: ContactData, now: dt.datetime) -> None:
        source_id = clean(contact.source_id)
        if not contact.legacy_points or source_id is None or (source, source_id) in self.known.legacy:
            return
        self.known.legacy.add((source, source_id))
        posting = self.rollups.post(
            persona_id,
            PointsEntryKind.LEGACY_IMPORT,
            contact.legacy_points,
            now,
            note=f"legacy points from {source}",
            actor=self.actor,
        )
        self.legacy.append(({"org_id": self.org_id, "source": source, "source_id": source_id}, posting))
