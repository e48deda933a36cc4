"""The floor's SQL for the lists: the History tab (every connection with
edges and cursors, and the timeline) and the Personas page with each kind of
search. See bench/floor_sql.py for the helpers and the card."""

# S608: every statement here is assembled from this module's constants; values go in as parameters.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass, replace

from bench.floor_sql import HISTORY, F, History, _obj

PAGE_INFO = (
    "json_build_object('hasNextPage', {more}, 'hasPreviousPage', false, "
    "'startCursor', (array_agg({cursor} ORDER BY x.rn) FILTER (WHERE x.rn <= %(first)s))[1], "
    "'endCursor', (array_agg({cursor} ORDER BY x.rn DESC) FILTER (WHERE x.rn <= %(first)s))[1])"
)

# The History tab's fragments ask a little more of some nodes than the card does.
TAB_NODES: dict[str, History] = {
    **HISTORY,
    "points": replace(
        HISTORY["points"],
        node=HISTORY["points"].node[:-1]
        + ", 'redemption', (SELECT "
        + _obj(id=f"{F}.gid('Redemption', z.id)", discount_name="z.discount_name")
        + " FROM redemptions z WHERE z.org_id = x.org_id AND z.id = x.redemption_id))",
    ),
    "redemptions": replace(
        HISTORY["redemptions"],
        node=HISTORY["redemptions"].node[:-1]
        + ", 'discount', (SELECT "
        + _obj(id=f"{F}.gid('Discount', d.id)", name="d.name", points_cost="d.points_cost")
        + " FROM discounts d WHERE d.org_id = x.org_id AND d.id = x.discount_id))",
    ),
    "merges": replace(
        HISTORY["merges"],
        node=HISTORY["merges"].node.replace(
            "'number', s.number)",
            "'number', s.number, 'fullName', nullif(concat_ws(' ', nullif(s.first_name, ''),"
            " nullif(s.last_name, '')), ''))",
        ),
    ),
}


def edges_connection(h: History) -> str:
    cursor = f"{F}.cursor(x.{h.time}, x.id)"
    page = (
        f"SELECT x.*, row_number() OVER (ORDER BY x.{h.time} DESC, x.id DESC) AS rn FROM {h.table} x"
        f" WHERE {h.owner} ORDER BY x.{h.time} DESC, x.id DESC LIMIT %(first)s + 1"
    )
    edge = f"json_build_object('cursor', {cursor}, 'node', {h.node})"
    return (
        "(SELECT json_build_object("
        f"'totalCount', (SELECT count(*) FROM {h.table} x WHERE {h.owner}), "
        f"'pageInfo', {PAGE_INFO.format(more='count(*) > %(first)s', cursor=cursor)}, "
        f"'edges', coalesce(json_agg({edge} ORDER BY x.rn) FILTER (WHERE x.rn <= %(first)s), '[]')"
        f") FROM ({page}) x)"
    )


@dataclass(frozen=True)
class TimelineKind:
    table: str
    time: str
    type_name: str
    node: str  # the fields after __typename and id, as json_build_object arguments


TIMELINE = [
    TimelineKind("points_entries", "created_at", "PointsEntry",
                 f"'pointsKind', x.kind, 'delta', x.delta, 'note', x.note, 'createdAt', {F}.iso(x.created_at)"),
    TimelineKind("orders", "placed_at", "Order",
                 f"'externalId', x.external_id, 'total', {F}.money(x.total_cents), 'placedAt', {F}.iso(x.placed_at)"),
    TimelineKind("messages", "sent_at", "Message",
                 f"'direction', x.direction, 'channel', x.channel, 'body', x.body, 'sentAt', {F}.iso(x.sent_at)"),
    TimelineKind("redemptions", "redeemed_at", "Redemption",
                 "'discountName', x.discount_name, 'points', x.points, 'redemptionStatus', x.status, "
                 f"'redeemedAt', {F}.iso(x.redeemed_at)"),
    TimelineKind("merges", "merged_at", "Merge",
                 f"'mergeKind', x.kind, 'mergedNumber', x.merged_number, 'mergedAt', {F}.iso(x.merged_at)"),
    TimelineKind("survey_submissions", "submitted_at", "SurveySubmission",
                 "'surveyName', x.survey_name, 'surveyStatus', x.status, "
                 f"'submittedAt', {F}.iso(x.submitted_at)"),
    TimelineKind("persona_actions", "occurred_at", "PersonaAction",
                 "'actionKind', x.kind, 'campaign', x.campaign, 'detail', x.detail, "
                 f"'occurredAt', {F}.iso(x.occurred_at)"),
    TimelineKind("pixel_events", "occurred_at", "PixelEvent",
                 f"'site', x.site, 'event', x.event, 'url', x.url, 'occurredAt', {F}.iso(x.occurred_at)"),
]  # fmt: skip


def timeline() -> str:
    """Each table cut to one page first, merged, then the page's nodes."""
    branches = []
    for k in TIMELINE:
        owner = HISTORY_OWNER.get(k.table, "x.org_id = p.org_id AND x.persona_id = p.id")
        branches.append(
            f"(SELECT x.{k.time} AS at, x.id, json_build_object('__typename', '{k.type_name}', "
            f"'id', {F}.gid('{k.type_name}', x.id), {k.node}) AS node FROM {k.table} x WHERE {owner}"
            f" ORDER BY x.{k.time} DESC, x.id DESC LIMIT %(first)s + 1)"
        )
    merged = " UNION ALL ".join(branches)
    page = f"SELECT t.*, row_number() OVER (ORDER BY t.at DESC, t.id DESC) AS rn FROM ({merged}) t"
    page += " ORDER BY t.at DESC, t.id DESC LIMIT %(first)s + 1"
    cursor = f"{F}.cursor(x.at, x.id)"
    edge = f"json_build_object('cursor', {cursor}, 'node', x.node)"
    return (
        f"(SELECT json_build_object('pageInfo', {PAGE_INFO.format(more='count(*) > %(first)s', cursor=cursor)}, "
        f"'edges', coalesce(json_agg({edge} ORDER BY x.rn) FILTER (WHERE x.rn <= %(first)s), '[]')) FROM ({page}) x)"
    )


HISTORY_OWNER = {"merges": "x.org_id = p.org_id AND (x.survivor_id = p.id OR x.merged_id = p.id)"}

HISTORY_TAB = (
    "SELECT json_build_object('data', json_build_object('persona', (SELECT json_build_object("
    f"'id', {F}.gid('Persona', p.id), 'number', p.number, 'history', json_build_object("
    + ", ".join(f"'{name}', {edges_connection(h)}" for name, h in TAB_NODES.items())
    + f"), 'timeline', {timeline()}) FROM personas p WHERE p.org_id = %(org)s AND p.id = %(id)s)))::text"
)

# ---------------------------------------------------------------- personas page

FULL_NAME = "lower(coalesce(p.first_name, '') || ' ' || coalesce(p.last_name, ''))"
LISTED = "p.org_id = %(org)s AND p.merged_into_id IS NULL AND p.erased_at IS NULL AND p.archived_at IS NULL"
PERSONA_NODE = _obj(
    id=f"{F}.gid('Persona', p.id)", number="p.number", first_name="p.first_name", last_name="p.last_name",
    full_name="nullif(concat_ws(' ', nullif(p.first_name, ''), nullif(p.last_name, '')), '')", email="p.email",
    phone="p.phone", loyalty_member="p.loyalty_member", created_at=f"{F}.iso(p.created_at)",
    reward_points="(SELECT coalesce(r.points_balance, 0) FROM (SELECT 1) one LEFT JOIN persona_rollups r"
    " ON r.org_id = p.org_id AND r.persona_id = p.id)",
    tags="(SELECT coalesce(json_agg(t.tag ORDER BY t.tag), '[]') FROM persona_tags t"
    " WHERE t.org_id = p.org_id AND t.persona_id = p.id)",
)  # fmt: skip


def _like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_conditions(query: str | None, region_code: str = "1") -> tuple[str, str, dict[str, object]]:
    """(WHERE, rank, parameters) for what the benchmark types into the search bar; rank
    ONE_WORD for one name word (its first page: one_word_top).

    The floor understands just the forms the benchmark sends: a phone, an
    email, a "quoted name", name words, and `tag:NAME points>=N`."""
    text = (query or "").strip()
    params: dict[str, object] = {}
    conditions = [LISTED]
    rank = "0"
    keys = "p.id IN (SELECT k.persona_id FROM identity_keys k WHERE k.org_id = %(org)s AND k.kind = %(kind)s"
    keys += " AND k.value = %(value)s)"
    if not text:
        pass
    elif "@" in text:
        conditions.append(keys)
        params.update(kind="email", value=text.lower())
    elif text.startswith('"') and text.endswith('"'):
        name = " ".join(text.strip('"').lower().split())
        words = name.split(" ")
        params.update(name=name, splits=[" ".join(words[:k]) for k in range(1, len(words) + 1)])
        conditions.append(
            f"(lower(p.first_name) = ANY(%(splits)s) OR lower(p.last_name) = %(name)s) AND trim({FULL_NAME}) = %(name)s"
        )
    elif text.startswith("tag:"):
        tag, points = text.split()
        params.update(tag=tag.removeprefix("tag:").lower(), points=int(points.removeprefix("points>=")))
        conditions.append(
            "p.id IN (SELECT t.persona_id FROM persona_tags t WHERE t.org_id = %(org)s AND lower(t.tag) = %(tag)s)"
        )
        conditions.append(
            "p.id IN (SELECT r.persona_id FROM persona_rollups r WHERE r.org_id = %(org)s"
            " AND r.points_balance >= %(points)s)"
        )
    elif sum(c.isdigit() for c in text) >= 7:
        digits = "".join(c for c in text if c.isdigit())
        conditions.append(keys)
        params.update(kind="phone", value="+" + (digits if len(digits) > 10 else region_code + digits))
    else:
        words = text.lower().split()
        whole, starts = [], []
        for n, word in enumerate(words):
            w = _like(word)
            params.update({f"w{n}": f"%{w}%", f"s{n}": f"% {w}%", f"i{n}": f"% {w} %"})
            conditions.append(f"{FULL_NAME} LIKE %(w{n})s")
            # A whole word: the name spaced on both sides holds it spaced; a word start: spaced before.
            whole.append(f"(' ' || {FULL_NAME} || ' ' LIKE %(i{n})s)")
            starts.append(f"(' ' || {FULL_NAME} LIKE %(s{n})s)")
        params["typed"] = " ".join(words)
        # The app's relevance: the exact name, then whole words, then word starts, then the rest.
        rank = (
            f"CASE WHEN trim({FULL_NAME}) = %(typed)s THEN 0 WHEN {' AND '.join(whole)} THEN 1"
            f" WHEN {' AND '.join(starts)} THEN 2 ELSE 3 END"
        )
        if len(words) == 1:
            rank = ONE_WORD
    return " AND ".join(conditions), rank, params


ONE_WORD = "one word"


def _newest_of_part(name: str) -> str:
    return (
        f"SELECT c.* FROM parts, LATERAL (SELECT p.id, p.created_at, parts.rank FROM personas p WHERE {LISTED}"
        f" AND lower(p.{name}) = parts.part ORDER BY p.created_at DESC, p.id DESC LIMIT %(first)s + 1) c"
    )


def one_word_top() -> str:
    """One name word's first page (id, created_at, rank, total) from the organization's name parts,
    as the app reads it (resolvers/search_names.py): the newest personas of each part holding the
    word and those named exactly it, then the best rank of each; the total from the name indexes."""
    parts = (
        "SELECT part, CASE WHEN ' ' || part || ' ' LIKE %(i0)s THEN 1 WHEN ' ' || part LIKE %(s0)s THEN 2"
        " ELSE 3 END AS rank FROM persona_name_parts WHERE org_id = %(org)s AND part LIKE %(w0)s"
    )
    exact = (
        f"SELECT p.id, p.created_at, 0 FROM personas p WHERE {LISTED} AND trim({FULL_NAME}) = %(typed)s"
        " ORDER BY p.created_at DESC, p.id DESC LIMIT %(first)s + 1"
    )
    by_first = f"SELECT count(*) FROM parts JOIN personas p ON {LISTED} AND lower(p.first_name) = parts.part"
    by_last = (
        f"SELECT count(*) FROM parts JOIN personas p ON {LISTED} AND lower(p.last_name) = parts.part"
        " AND (lower(p.first_name) = ANY(ARRAY(SELECT part FROM parts))) IS NOT TRUE"
    )
    return (
        f"WITH parts AS MATERIALIZED ({parts}), candidates AS ({_newest_of_part('first_name')}"
        f" UNION ALL {_newest_of_part('last_name')} UNION ALL ({exact}))"
        f" SELECT id, created_at, min(rank) AS rank, ({by_first}) + ({by_last}) AS total FROM candidates"
        " GROUP BY id, created_at ORDER BY min(rank), created_at DESC, id DESC LIMIT %(first)s + 1"
    )


def personas_statement(where: str, rank: str) -> str:
    """{"data": {"personas": {totalCount, pageInfo, nodes}}}: the Personas page (search) order.

    A ranked search (name words) ranks narrow rows of every match, counting them in the
    same pass (count(*) OVER ()), and builds the nodes of the page's rows only."""
    cursor = f"{F}.b64(x.rank || '|' || {F}.iso(x.created_at) || '|' || replace(x.id::text, '-', ''))"
    if rank == "0":
        order = "p.created_at DESC, p.id DESC"
        page = (
            f"SELECT p.*, {rank} AS rank, row_number() OVER (ORDER BY {order}) AS rn,"
            f" {PERSONA_NODE} AS node FROM personas p WHERE {where} ORDER BY {order} LIMIT %(first)s + 1"
        )
        total = f"(SELECT count(*) FROM personas p WHERE {where})"
    else:
        matches = f"SELECT p.id, p.created_at, {rank} AS rank, count(*) OVER () AS total FROM personas p WHERE {where}"
        order = "m.rank, m.created_at DESC, m.id DESC"
        top = f"SELECT m.* FROM ({matches}) m ORDER BY {order} LIMIT %(first)s + 1"
        if rank == ONE_WORD:
            top = one_word_top()
        page = (
            "SELECT p.*, m.rank, m.total, row_number() OVER (ORDER BY m.rank, p.created_at DESC, p.id DESC) AS rn,"
            f" {PERSONA_NODE} AS node FROM ({top}) m JOIN personas p ON p.org_id = %(org)s AND p.id = m.id"
        )
        total = "coalesce(max(x.total), 0)"
    return (
        "SELECT json_build_object('data', json_build_object('personas', json_build_object("
        f"'totalCount', {total}, "
        "'pageInfo', json_build_object('hasNextPage', count(*) > %(first)s, 'endCursor', "
        f"(array_agg({cursor} ORDER BY x.rn DESC) FILTER (WHERE x.rn <= %(first)s))[1]), "
        "'nodes', coalesce(json_agg(x.node ORDER BY x.rn) FILTER (WHERE x.rn <= %(first)s), '[]')"
        f")))::text FROM ({page}) x"
    )
