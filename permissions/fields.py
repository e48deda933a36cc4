"""The enforcing half of permissions: a field extension that checks the
viewer's permission and a schema directive that shows it in the SDL.

`guarded(Permission.X)` is the one declaration a guarded field needs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import strawberry
from strawberry.extensions.field_extension import FieldExtension
from strawberry.schema_directive import Location

from permissions.matrix import Permission
from permissions.viewer import PermissionDenied

# Registered once, here, before any schema type names it in an annotation.
if not hasattr(Permission, "__strawberry_definition__"):
    strawberry.enum(Permission, description="What a role may see or do; see the role matrix.")


__all__ = ["Permission", "PermissionCheck", "RequiresPermission", "guarded"]


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="requiresPermission",
    description="The viewer needs this permission; without it the field is null with a FORBIDDEN error.",
)
class RequiresPermission:
    permission: Permission


class PermissionCheck(FieldExtension):
    """O(1): the viewer's permission set is computed once per request."""

    def __init__(self, permission: Permission) -> None:
        super().__init__()
        self.permission = permission

    def _check(self, info: strawberry.Info) -> None:
        if self.permission not in info.context.viewer.permissions:
            raise PermissionDenied(self.permission)

    def resolve(self, next_: Callable[..., Any], source: Any, info: strawberry.Info, **kwargs: Any) -> Any:
        self._check(info)
        return next_(source, info, **kwargs)

    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: strawberry.Info, **kwargs: Any
    ) -> Any:
        self._check(info)
        return await next_(source, info, **kwargs)


def guarded(permission: Permission, **field_kwargs: Any) -> Any:
    """A strawberry field (or field decorator) that requires `permission`."""
    return strawberry.field(
        directives=[RequiresPermission(permission=permission)],
        extensions=[PermissionCheck(permission)],
        **field_kwargs,
    )
