"""The one typed per-request context, and the Info alias every field uses."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry
from starlette.requests import Request

from database import Database
from loaders import Loaders
from permissions.viewer import Viewer
from settings import Settings


@dataclass
class Context:
    request: Request
    viewer: Viewer
    db: Database
    loaders: Loaders
    settings: Settings
    # Set while the compiled executor runs the request (schema/fast_exec.py): fields may then
    # answer a list already in response form (schema.fast_plan.Completed), which it passes on.
    compiled: bool = False
    # Set when schema/vetted.py's run of the compiled plan raised: graphql-core answers.
    plan_failed: bool = False


Info = strawberry.Info[Context, None]
