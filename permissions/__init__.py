"""Roles, permissions, the matrix, the viewer and API keys, as plain Python.

The enforcing half that knows GraphQL lives in permissions/fields.py.
"""

from permissions.matrix import MATRIX, MUTATION_PERMISSIONS, Permission, Role, permissions_of
from permissions.viewer import PermissionDenied, Viewer

__all__ = ["MATRIX", "MUTATION_PERMISSIONS", "Permission", "PermissionDenied", "Role", "Viewer", "permissions_of"]
