"""Roles, permissions and the matrix between them: the one source of truth.

It encodes ../shared/contract/permissions.md. The SDL shows each guarded
field's permission and the tests are generated from this table.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    STAFF = "STAFF"
    MANAGER = "MANAGER"
    ANALYST = "ANALYST"
    MARKETING = "MARKETING"
    MARKETING_ANALYST = "MARKETING_ANALYST"
    OPERATOR = "OPERATOR"
    OWNER = "OWNER"


class Permission(StrEnum):
    VIEW_PROFILE = "VIEW_PROFILE"
    VIEW_CONTACT = "VIEW_CONTACT"
    VIEW_TECHNICAL_TRAITS = "VIEW_TECHNICAL_TRAITS"
    VIEW_SHOPPING = "VIEW_SHOPPING"
    VIEW_POINTS = "VIEW_POINTS"
    VIEW_ENGAGEMENT = "VIEW_ENGAGEMENT"
    ADJUST_POINTS = "ADJUST_POINTS"
    AWARD_POINTS = "AWARD_POINTS"
    REDEEM_DISCOUNTS = "REDEEM_DISCOUNTS"
    MANAGE_DISCOUNTS = "MANAGE_DISCOUNTS"
    EDIT_PROFILE = "EDIT_PROFILE"
    MERGE_PERSONAS = "MERGE_PERSONAS"
    ARCHIVE_PERSONAS = "ARCHIVE_PERSONAS"
    PRIVACY_REQUESTS = "PRIVACY_REQUESTS"
    EXPORT = "EXPORT"
    INGEST = "INGEST"
    MANAGE_AUDIENCES = "MANAGE_AUDIENCES"
    MANAGE_KEYS = "MANAGE_KEYS"


_S, _M, _A, _MK, _MA, _OP, _OW = (
    Role.STAFF,
    Role.MANAGER,
    Role.ANALYST,
    Role.MARKETING,
    Role.MARKETING_ANALYST,
    Role.OPERATOR,
    Role.OWNER,
)

# Permission -> the roles that hold it, row for row as in permissions.md.
MATRIX: dict[Permission, frozenset[Role]] = {
    Permission.VIEW_PROFILE: frozenset({_S, _M, _A, _MK, _MA, _OP, _OW}),
    Permission.VIEW_CONTACT: frozenset({_S, _M, _MK, _OP, _OW}),
    Permission.VIEW_TECHNICAL_TRAITS: frozenset({_M, _OP, _OW}),
    Permission.VIEW_SHOPPING: frozenset({_S, _M, _A, _MK, _MA, _OP, _OW}),
    Permission.VIEW_POINTS: frozenset({_S, _M, _A, _MK, _MA, _OP, _OW}),
    Permission.VIEW_ENGAGEMENT: frozenset({_M, _A, _MK, _MA, _OW}),
    Permission.ADJUST_POINTS: frozenset({_M, _OP, _OW}),
    Permission.AWARD_POINTS: frozenset({_M, _MK, _OP, _OW}),
    Permission.REDEEM_DISCOUNTS: frozenset({_S, _M, _OP, _OW}),
    Permission.MANAGE_DISCOUNTS: frozenset({_M, _OW}),
    Permission.EDIT_PROFILE: frozenset({_S, _M, _MK, _OP, _OW}),
    Permission.MERGE_PERSONAS: frozenset({_M, _OW}),
    Permission.ARCHIVE_PERSONAS: frozenset({_M, _OW}),
    Permission.PRIVACY_REQUESTS: frozenset({_M, _OW}),
    Permission.EXPORT: frozenset({_M, _A, _MK, _MA, _OW}),
    Permission.INGEST: frozenset({_OP, _OW}),
    Permission.MANAGE_AUDIENCES: frozenset({_M, _MK, _OW}),
    Permission.MANAGE_KEYS: frozenset({_OW}),
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    role: frozenset(p for p, roles in MATRIX.items() if role in roles) for role in Role
}

# Mutation (GraphQL field name) -> the permission it needs, from permissions.md.
MUTATION_PERMISSIONS: dict[str, Permission] = {
    "adjustPoints": Permission.ADJUST_POINTS,
    "awardPoints": Permission.AWARD_POINTS,
    "redeemDiscount": Permission.REDEEM_DISCOUNTS,
    "reverseRedemption": Permission.REDEEM_DISCOUNTS,
    "createDiscount": Permission.MANAGE_DISCOUNTS,
    "mergePersonas": Permission.MERGE_PERSONAS,
    "undoMerge": Permission.MERGE_PERSONAS,
    "archivePersona": Permission.ARCHIVE_PERSONAS,
    "restorePersona": Permission.ARCHIVE_PERSONAS,
    "updatePersona": Permission.EDIT_PROFILE,
    "updateCustomAttributes": Permission.EDIT_PROFILE,
    "setTags": Permission.EDIT_PROFILE,
    "setOptIn": Permission.EDIT_PROFILE,
    "requestPrivacyAction": Permission.PRIVACY_REQUESTS,
    "ingestContacts": Permission.INGEST,
    "recordOrders": Permission.INGEST,
    "recordEvents": Permission.INGEST,
    "sendLink": Permission.EDIT_PROFILE,
    "saveAudience": Permission.MANAGE_AUDIENCES,
    "deleteAudience": Permission.MANAGE_AUDIENCES,
}


def permissions_of(role: Role) -> frozenset[Permission]:
    return ROLE_PERMISSIONS[role]
