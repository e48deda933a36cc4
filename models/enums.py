"""The enumerations stored in the database, as plain strings.

They are stored as VARCHAR rather than native enums so adding a value is a
code change, not a migration; the GraphQL enums in schema/ reuse these.
"""

from __future__ import annotations

from enum import StrEnum


class SourceKind(StrEnum):
    LOYALTY = "LOYALTY"
    RAW_FILE = "RAW_FILE"
    INTEGRATION = "INTEGRATION"


class IdentityKind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"


class Channel(StrEnum):
    LOYALTY = "LOYALTY"
    TEXT = "TEXT"
    EMAIL = "EMAIL"
    MOBILE_PUSH = "MOBILE_PUSH"
    BROWSER_PUSH = "BROWSER_PUSH"
    VOICE_DROP = "VOICE_DROP"
    WALLET_PASS = "WALLET_PASS"  # noqa: S105 (a consent channel, not a password)
    AGE_GATE = "AGE_GATE"


class OptInStatus(StrEnum):
    OPTED_IN = "OPTED_IN"
    OPTED_OUT = "OPTED_OUT"
    UNKNOWN = "UNKNOWN"


class ConsentSource(StrEnum):
    CUSTOMER = "CUSTOMER"
    DEVICE = "DEVICE"
    STAFF = "STAFF"
    IMPORT = "IMPORT"
    INTEGRATION = "INTEGRATION"
    PRIVACY_REQUEST = "PRIVACY_REQUEST"
    MERGE = "MERGE"


class AttributeSource(StrEnum):
    BULK_IMPORT = "BULK_IMPORT"
    POS_GROUP = "POS_GROUP"
    MANUAL = "MANUAL"


class PointsEntryKind(StrEnum):
    ORDER = "ORDER"
    VISIT = "VISIT"
    REFERRAL_SALE = "REFERRAL_SALE"
    REDEMPTION = "REDEMPTION"
    STAFF_ADJUSTMENT = "STAFF_ADJUSTMENT"
    AUDIENCE_BOOST = "AUDIENCE_BOOST"
    CAMPAIGN_GIFT = "CAMPAIGN_GIFT"
    FLOW_GIFT = "FLOW_GIFT"
    COLLECTIBLE = "COLLECTIBLE"
    LEGACY_IMPORT = "LEGACY_IMPORT"
    EXPIRATION = "EXPIRATION"


class RedemptionStatus(StrEnum):
    REDEEMED = "REDEEMED"
    REVERSED = "REVERSED"


class MergeKind(StrEnum):
    AUTOMATIC = "AUTOMATIC"
    MANUAL = "MANUAL"


class MessageDirection(StrEnum):
    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"


class MessageChannel(StrEnum):
    SMS = "SMS"
    MMS = "MMS"
    EMAIL = "EMAIL"
    PUSH = "PUSH"
    VOICE = "VOICE"


class SurveyStatus(StrEnum):
    COMPLETE = "COMPLETE"
    PARTIAL = "PARTIAL"


class PersonaActionKind(StrEnum):
    RECEIVED = "RECEIVED"
    OPENED = "OPENED"
    CLICKED = "CLICKED"
    LANDING_PAGE_VISIT = "LANDING_PAGE_VISIT"
    CAMPAIGN_SENT = "CAMPAIGN_SENT"


class PrivacyAction(StrEnum):
    DELETE_DATA = "DELETE_DATA"
    OPT_OUT = "OPT_OUT"


class PrivacyRequestStatus(StrEnum):
    PENDING_VERIFICATION = "PENDING_VERIFICATION"
    COMPLETED = "COMPLETED"


class PurchaseDimension(StrEnum):
    BRAND = "brand"
    CATEGORY = "category"
    PRODUCT = "product"
