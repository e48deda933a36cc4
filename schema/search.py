"""Search: the smart search conditions, and the persona connection that
`personas(query:)` and `Audience.personas` share."""

from __future__ import annotations

import strawberry

from resolvers.search import parse_search
from resolvers.search_conditions import SMART_CONDITIONS
from resolvers.search_pages import (
    Carry,
    SearchPageRequest,
    carried_tags,
    search_count,
    search_page,
    search_page_counted,
)
from resolvers.search_sql import CompiledSearch, compile_search
from resolvers.search_terms import Dialect
from schema.context import Info
from schema.persona import Persona
from schema.relay import Connection, asks_total_count, selected_names

PersonaConnection = Connection[Persona]


@strawberry.type(description="A smart search condition the dashboard offers.")
class SmartSearchCondition:
    label: str = strawberry.field(description="What the dashboard shows, e.g. 'Phone (mobile) on file'.")
    condition: str = strawberry.field(description="What to paste into the search, e.g. 'has:mobile_phone'.")
    description: str = strawberry.field(description="What the condition matches.")


async def compile_for_viewer(
    info: Info, query: str | None, *, include_archived: bool = False, with_pii: bool = False
) -> CompiledSearch:
    """Parse and compile a search for the viewer's organization; BAD_QUERY when malformed."""
    parsed = parse_search(query)
    org_id = info.context.viewer.org_id
    region = "US"
    if parsed.has_phone:
        org = await info.context.loaders.organization.load(org_id)
        assert org is not None, "the viewer's organization exists"
        region = org.default_region
    dialect = Dialect(sqlite=info.context.db.is_sqlite)
    return compile_search(parsed, org_id, dialect, region=region, include_archived=include_archived, with_pii=with_pii)


def _carry(info: Info) -> Carry:
    """What the page's statement reads beside each persona: what the nodes select of it."""
    wanted = {name for path in (("nodes",), ("edges", "node")) for name in selected_names(info, path)}
    return Carry(points="rewardPoints" in wanted, tags="tags" in wanted)


async def persona_connection(info: Info, search: CompiledSearch, request: SearchPageRequest) -> PersonaConnection:
    """The page, and totalCount when selected: from the page's own statement where that
    costs no pass of its own (search_page_counted), else a count statement of its own.

    The page's statement also reads the points balance and the tags of its personas
    when the nodes select them (Carry): the tags go into the request's tags loader,
    the balance rides on the row (Persona.reward_points), so neither takes a statement."""
    db = info.context.db
    total: int | None = None
    carry = _carry(info)
    async with db.read() as conn:
        if asks_total_count(info):
            page, total = await search_page_counted(conn, search, request, carry)
        else:
            page = await search_page(conn, search, request, carry)
    if carry.tags:
        tags = info.context.loaders.tags_by_persona
        for row in page.items:
            tags.prime(row.id, carried_tags(row))

    async def count() -> int:
        if total is not None:
            return total
        async with db.read() as conn:
            return await search_count(conn, search)

    return PersonaConnection.of(page, Persona.from_row, count)


@strawberry.type
class SearchQuery:
    @strawberry.field(description="Every smart search condition, with its label and the text to paste.")
    def smart_search_conditions(self) -> list[SmartSearchCondition]:
        return [
            SmartSearchCondition(label=c.label, condition=c.condition, description=c.description)
            for c in SMART_CONDITIONS
        ]
