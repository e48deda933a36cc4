"""Who is asking: the API key's role and organization, resolved once per request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from permissions.matrix import Permission, Role, permissions_of


class PermissionDenied(Exception):
    """The viewer's role lacks the permission; shown as FORBIDDEN."""

    def __init__(self, permission: Permission) -> None:
        super().__init__(f"Your role may not do this: it needs the {permission.value} permission.")
        self.permission = permission


@dataclass(frozen=True)
class Viewer:
    org_id: uuid.UUID
    role: Role
    name: str
    api_key_id: uuid.UUID | None = None
    permissions: frozenset[Permission] = field(default=frozenset())

    @classmethod
    def for_key(cls, *, org_id: uuid.UUID, role: Role, name: str, api_key_id: uuid.UUID | None) -> Viewer:
        return cls(org_id=org_id, role=role, name=name, api_key_id=api_key_id, permissions=permissions_of(role))

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def require(self, permission: Permission) -> None:
        if permission not in self.permissions:
            raise PermissionDenied(permission)
