"""Each table model's Core table, typed, under one name: the handles the statements
in resolvers/ and loaders/ are built from (SQLModel's `__table__` is untyped)."""

from __future__ import annotations

from sqlalchemy import Table

from models.audiences import Audience
from models.discounts import Discount, Redemption
from models.export import PersonaExportCells
from models.history import HistoryCount, Message, Order, OrderLine, PersonaAction, PixelEvent, SurveySubmission
from models.merges import Merge
from models.organization import ApiKey, AuditEntry, IdempotencyRecord, Organization, Store
from models.persona import Consent, ConsentEvent, CustomAttribute, IdentityKey, Persona, PersonaTag, SignupSubmission
from models.points import LegacyPointImport, PersonaRollup, PointsEntry, PurchaseCount
from models.privacy import PrivacyRequest, Suppression
from models.search import NamePart


def table_of(model: type) -> Table:
    """The Core table of a SQLModel table model."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


API_KEYS = table_of(ApiKey)
ATTRIBUTES = table_of(CustomAttribute)
AUDIENCES = table_of(Audience)
AUDIT_LOG = table_of(AuditEntry)
CONSENTS = table_of(Consent)
CONSENT_EVENTS = table_of(ConsentEvent)
DISCOUNTS = table_of(Discount)
ENTRIES = table_of(PointsEntry)
EXPORT_CELLS = table_of(PersonaExportCells)
HISTORY_COUNTS = table_of(HistoryCount)
IDEMPOTENCY = table_of(IdempotencyRecord)
KEYS = table_of(IdentityKey)
LEGACY = table_of(LegacyPointImport)
MERGES = table_of(Merge)
MESSAGES = table_of(Message)
NAME_PARTS = table_of(NamePart)
ORDERS = table_of(Order)
ORDER_LINES = table_of(OrderLine)
ORGANIZATIONS = table_of(Organization)
PERSONAS = table_of(Persona)
PERSONA_ACTIONS = table_of(PersonaAction)
PIXEL_EVENTS = table_of(PixelEvent)
PURCHASE_COUNTS = table_of(PurchaseCount)
REDEMPTIONS = table_of(Redemption)
REQUESTS = table_of(PrivacyRequest)
ROLLUPS = table_of(PersonaRollup)
SIGNUPS = table_of(SignupSubmission)
STORES = table_of(Store)
SUPPRESSIONS = table_of(Suppression)
SURVEY_SUBMISSIONS = table_of(SurveySubmission)
TAGS = table_of(PersonaTag)
