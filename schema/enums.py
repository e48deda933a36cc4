"""The GraphQL enums, registered from the Python enums that models/ and
permissions/ define, before any schema type names them."""

from __future__ import annotations

import strawberry

from models.enums import (
    AttributeSource,
    Channel,
    ConsentSource,
    MergeKind,
    MessageChannel,
    MessageDirection,
    OptInStatus,
    PersonaActionKind,
    PointsEntryKind,
    PrivacyAction,
    PrivacyRequestStatus,
    RedemptionStatus,
    SourceKind,
    SurveyStatus,
)
from permissions.fields import Permission
from permissions.matrix import Role

for enum_class, description in (
    (Role, "The role an API key carries."),
    (SourceKind, "Where a persona first came from."),
    (Channel, "A consent channel."),
    (OptInStatus, "Consent status on a channel."),
    (ConsentSource, "Who or what set a consent."),
    (AttributeSource, "How a custom attribute was set."),
    (PointsEntryKind, "Why points changed."),
    (RedemptionStatus, "Whether a redemption still stands."),
    (MergeKind, "Who decided a merge."),
    (MessageDirection, "To or from the customer."),
    (MessageChannel, "How a message travelled."),
    (SurveyStatus, "Whether every question was answered."),
    (PersonaActionKind, "A campaign interaction."),
    (PrivacyAction, "What a privacy request asks for."),
    (PrivacyRequestStatus, "Where a privacy request stands."),
):
    if not hasattr(enum_class, "__strawberry_definition__"):
        strawberry.enum(enum_class, description=description)

__all__ = [
    "AttributeSource",
    "Channel",
    "ConsentSource",
    "MergeKind",
    "MessageChannel",
    "MessageDirection",
    "OptInStatus",
    "Permission",
    "PersonaActionKind",
    "PointsEntryKind",
    "PrivacyAction",
    "PrivacyRequestStatus",
    "RedemptionStatus",
    "Role",
    "SourceKind",
    "SurveyStatus",
]
