"""SQLModel tables, one module per card area; Alembic migrations beside them."""

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

__all__ = [
    "ApiKey",
    "Audience",
    "AuditEntry",
    "Consent",
    "ConsentEvent",
    "CustomAttribute",
    "Discount",
    "HistoryCount",
    "IdempotencyRecord",
    "IdentityKey",
    "LegacyPointImport",
    "Merge",
    "Message",
    "NamePart",
    "Order",
    "OrderLine",
    "Organization",
    "Persona",
    "PersonaAction",
    "PersonaExportCells",
    "PersonaRollup",
    "PersonaTag",
    "PixelEvent",
    "PointsEntry",
    "PrivacyRequest",
    "PurchaseCount",
    "Redemption",
    "SignupSubmission",
    "Store",
    "Suppression",
    "SurveySubmission",
]
