"""The floor's SQL: for each read operation, one hand-written statement that
builds the operation's whole JSON response in PostgreSQL.

Each statement answers with the same data and the same shape as the GraphQL
document (bench/harness.py compares the two), so the floor is what the
database alone costs for that answer. The helpers below live in a schema of
their own (`bench_floor`), created by `install()`; PostGraphile only looks at
`public`, so the peer never sees them.

Parameters: %(org)s the organization, %(id)s the persona, %(first)s page sizes.
"""

# S608: every statement here is assembled from this module's constants; values go in as parameters.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass

HELPERS = r"""
CREATE SCHEMA IF NOT EXISTS bench_floor;
CREATE OR REPLACE FUNCTION bench_floor.b64(raw text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT rtrim(translate(encode(convert_to(raw, 'UTF8'), 'base64'), E'+/\n', '-_'), '=') $$;
CREATE OR REPLACE FUNCTION bench_floor.gid(type_name text, id uuid) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT bench_floor.b64(type_name || ':' || replace(id::text, '-', '')) $$;
CREATE OR REPLACE FUNCTION bench_floor.iso(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
          || CASE WHEN date_part('microseconds', t)::int % 1000000 <> 0
                  THEN to_char(t AT TIME ZONE 'UTC', '.US') ELSE '' END || '+00:00' $$;
CREATE OR REPLACE FUNCTION bench_floor.money(cents bigint) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT (cents / 100.0)::numeric(20, 2)::text $$;
CREATE OR REPLACE FUNCTION bench_floor.cursor(t timestamptz, id uuid) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT bench_floor.b64(bench_floor.iso(t) || '|' || replace(id::text, '-', '')) $$;
CREATE OR REPLACE FUNCTION bench_floor.signed(n bigint) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE WHEN n > 0 THEN '+' || n ELSE n::text END $$;
"""

CHANNELS = ("LOYALTY", "TEXT", "EMAIL", "MOBILE_PUSH", "BROWSER_PUSH", "VOICE_DROP", "WALLET_PASS", "AGE_GATE")
# resolvers/card.py's reconciliation lines, in its order, as SQL format() templates.
EXPLAIN = (
    ("VISIT", "%s points for visits: each order placed as a member earns a flat visit bonus."),
    ("REFERRAL_SALE", "%s points for friends' purchases made with this customer's referral link."),
    ("REDEMPTION", "%s points spent on discounts (net of reversed redemptions)."),
    ("STAFF_ADJUSTMENT", "%s points adjusted by staff by hand."),
    ("AUDIENCE_BOOST", "%s extra points from audience multipliers on orders."),
    ("CAMPAIGN_GIFT", "%s points gifted by marketing campaigns."),
    ("FLOW_GIFT", "%s points gifted by automated flows."),
    ("COLLECTIBLE", "%s points from collectibles."),
    ("LEGACY_IMPORT", "%s points carried over from a previous loyalty program."),
    ("EXPIRATION", "%s points expired unused."),
)
ORDER_LINE = (
    "Orders earned %s points where %s per dollar of member spend gives %s: the rate changed since, or orders "
    "were placed while archived or before enrolment, or whole points were rounded down per order."
)


def _q(text: str) -> str:
    """A SQL string literal, with % doubled: every statement here runs with psycopg parameters."""
    return "'" + text.replace("'", "''").replace("%", "%%") + "'"


def _obj(**fields: str) -> str:
    """json_build_object over camelCase keys (Python names with _ become camelCase)."""
    parts = []
    for key, value in fields.items():
        camel = key.split("_")[0] + "".join(w.title() for w in key.split("_")[1:])
        parts.append(f"'{camel}', {value}")
    return f"json_build_object({', '.join(parts)})"


F = "bench_floor"
P_OWN = "x.org_id = p.org_id AND x.persona_id = p.id"


@dataclass(frozen=True)
class History:
    """One history connection of a persona: its table, order and node."""

    table: str
    time: str
    node: str  # JSON of one row `x`
    owner: str = P_OWN


HISTORY: dict[str, History] = {
    "points": History(
        "points_entries",
        "created_at",
        _obj(
            id=f"{F}.gid('PointsEntry', x.id)", kind="x.kind", delta="x.delta", balance_after="x.balance_after",
            note="x.note", actor="x.actor", created_at=f"{F}.iso(x.created_at)",
            order="(SELECT " + _obj(id=f"{F}.gid('Order', o.id)", external_id="o.external_id")
            + " FROM orders o WHERE o.org_id = x.org_id AND o.id = x.order_id)",
        ),
    ),
    "orders": History(
        "orders",
        "placed_at",
        _obj(
            id=f"{F}.gid('Order', x.id)", external_id="x.external_id", placed_at=f"{F}.iso(x.placed_at)",
            subtotal=f"{F}.money(x.subtotal_cents)", tax=f"{F}.money(x.tax_cents)", total=f"{F}.money(x.total_cents)",
            item_count="x.item_count",
            points_earned="(SELECT coalesce(sum(e.delta), 0) FROM points_entries e WHERE e.org_id = x.org_id"
            " AND e.order_id = x.id AND e.kind IN ('ORDER', 'VISIT', 'AUDIENCE_BOOST'))",
            store="(SELECT " + _obj(id=f"{F}.gid('Store', s.id)", name="s.name")
            + " FROM stores s WHERE s.org_id = x.org_id AND s.id = x.store_id)",
            lines="(SELECT coalesce(json_agg(" + _obj(
                product="l.product", brand="l.brand", category="l.category", quantity="l.quantity",
                unit_price=f"{F}.money(l.unit_price_cents)",
            ) + " ORDER BY l.line_no), '[]') FROM order_lines l WHERE l.org_id = x.org_id AND l.order_id = x.id)",
        ),
    ),
    "messages": History(
        "messages",
        "sent_at",
        _obj(
            id=f"{F}.gid('Message', x.id)", direction="x.direction", channel="x.channel", body="x.body",
            campaign="x.campaign", sent_at=f"{F}.iso(x.sent_at)",
        ),
    ),
    "redemptions": History(
        "redemptions",
        "redeemed_at",
        _obj(
            id=f"{F}.gid('Redemption', x.id)", discount_name="x.discount_name", points="x.points",
            status="x.status", redeemed_at=f"{F}.iso(x.redeemed_at)", actor="x.actor",
        ),
    ),
    "merges": History(
        "merges",
        "merged_at",
        _obj(
            id=f"{F}.gid('Merge', x.id)", kind="x.kind", merged_number="x.merged_number", reason="x.reason",
            actor="x.actor", merged_at=f"{F}.iso(x.merged_at)", undone_at=f"{F}.iso(x.undone_at)",
            survivor="(SELECT " + _obj(id=f"{F}.gid('Persona', s.id)", number="s.number")
            + " FROM personas s WHERE s.org_id = x.org_id AND s.id = x.survivor_id)",
        ),
        owner="x.org_id = p.org_id AND (x.survivor_id = p.id OR x.merged_id = p.id)",
    ),
    "surveys": History(
        "survey_submissions",
        "submitted_at",
        _obj(
            id=f"{F}.gid('SurveySubmission', x.id)", survey_name="x.survey_name", status="x.status",
            submitted_at=f"{F}.iso(x.submitted_at)", answers="x.answers",
        ),
    ),
    "actions": History(
        "persona_actions",
        "occurred_at",
        _obj(
            id=f"{F}.gid('PersonaAction', x.id)", kind="x.kind", campaign="x.campaign", detail="x.detail",
            occurred_at=f"{F}.iso(x.occurred_at)",
        ),
    ),
    "pixelEvents": History(
        "pixel_events",
        "occurred_at",
        _obj(
            id=f"{F}.gid('PixelEvent', x.id)", site="x.site", event="x.event", url="x.url",
            occurred_at=f"{F}.iso(x.occurred_at)",
        ),
    ),
}  # fmt: skip


def connection(h: History) -> str:
    """A first-page connection: totalCount, pageInfo {hasNextPage endCursor}, nodes."""
    page = (
        f"SELECT x.*, row_number() OVER (ORDER BY x.{h.time} DESC, x.id DESC) AS rn FROM {h.table} x"
        f" WHERE {h.owner} ORDER BY x.{h.time} DESC, x.id DESC LIMIT %(first)s + 1"
    )
    return (
        "(SELECT json_build_object("
        f"'totalCount', (SELECT count(*) FROM {h.table} x WHERE {h.owner}), "
        "'pageInfo', json_build_object('hasNextPage', count(*) > %(first)s, 'endCursor', "
        f"(array_agg({F}.cursor(x.{h.time}, x.id) ORDER BY x.rn DESC) FILTER (WHERE x.rn <= %(first)s))[1]), "
        f"'nodes', coalesce(json_agg({h.node} ORDER BY x.rn) FILTER (WHERE x.rn <= %(first)s), '[]')"
        f") FROM ({page}) x)"
    )


def _preference(dimension: str) -> str:
    top = f"pc.by_dim -> '{dimension}'"
    return (
        f"CASE WHEN {top} IS NOT NULL THEN json_build_object('name', {top} -> 0 ->> 'name', "
        f"'count', ({top} -> 0 ->> 'count')::int, 'top', {top}) END"
    )


def _reasons() -> str:
    kinds = ", ".join(f"({n}, '{kind}', {_q(text)})" for n, (kind, text) in enumerate(EXPLAIN, start=1))
    expected = "(coalesce(r.spend_member_subtotal_cents, 0)::bigint * o.points_per_dollar_milli / 100000)"
    earned = "coalesce(r.points_order, 0)"
    rate = "rtrim(rtrim((o.points_per_dollar_milli / 1000.0)::text, '0'), '.')"
    order_line = (
        f"SELECT 0 AS n, 'ORDER' AS kind, {earned} - {expected} AS points, "
        f"format({_q(ORDER_LINE)}, {earned}, {rate}, {expected}) AS explanation WHERE {earned} <> {expected}"
    )
    per_kind = (
        "SELECT k.n, k.kind, v.points, format(k.template, bench_floor.signed(v.points)) FROM (VALUES "
        + kinds
        + ") AS k(n, kind, template) CROSS JOIN LATERAL (SELECT coalesce((to_jsonb(r) ->> ('points_' || lower(k.kind)))"
        "::int, 0) AS points) v WHERE v.points <> 0"
    )
    line = _obj(kind="l.kind", points="l.points", explanation="l.explanation")
    return f"(SELECT coalesce(json_agg({line} ORDER BY l.n), '[]') FROM ({order_line} UNION ALL {per_kind}) l)"


AUDIENCE_MEMBER = """(
  a.is_default AND (p.phone IS NOT NULL OR p.email IS NOT NULL)
  OR a.query = 'tag:vip' AND EXISTS (SELECT 1 FROM persona_tags t WHERE t.org_id = p.org_id
       AND lower(t.tag) = 'vip' AND t.persona_id = p.id)
  OR a.query = 'spent>500' AND coalesce(r.spend_total_cents, 0) > 50000
  OR a.query = 'opted_in:TEXT' AND EXISTS (SELECT 1 FROM consents c WHERE c.org_id = p.org_id
       AND c.persona_id = p.id AND c.channel = 'TEXT' AND c.status = 'OPTED_IN')
) AND p.merged_into_id IS NULL AND p.erased_at IS NULL AND p.archived_at IS NULL"""

# Every field of the card the floor can build, by its GraphQL name.
FIELDS: dict[str, str] = {
    "id": f"{F}.gid('Persona', p.id)",
    "number": "p.number",
    "firstName": "p.first_name",
    "lastName": "p.last_name",
    "fullName": "nullif(concat_ws(' ', nullif(p.first_name, ''), nullif(p.last_name, '')), '')",
    "sourcedFrom": _obj(kind="p.source_kind", integration="p.source_name"),
    "createdAt": f"{F}.iso(p.created_at)",
    "archivedAt": f"{F}.iso(p.archived_at)",
    "mergedInto": "(SELECT " + _obj(id=f"{F}.gid('Persona', m.id)", number="m.number")
    + " FROM personas m WHERE m.org_id = p.org_id AND m.id = p.merged_into_id)",
    "loyaltyMember": "p.loyalty_member",
    "loyaltySignupAt": f"{F}.iso(p.loyalty_signup_at)",
    "email": "p.email",
    "phone": "p.phone",
    "birthday": "p.birthday",
    "walletPin": "CASE WHEN o.show_pin_in_wallets THEN p.wallet_pin END",
    # The wallet and referral links carry signed tokens the app makes with its secret (itsdangerous):
    # the floor shows links of the same length without signing them.
    "links": _obj(
        staff_app="'https://staff.personagraph.app/personas/' || p.number",
        sharing="'https://staff.personagraph.app/share/personas/' || p.number",
        wallet=f"'http://127.0.0.1:8000/wallet/' || {F}.b64(p.org_id::text || p.id::text)",
        referral=f"'http://127.0.0.1:8000/r/' || {F}.b64(p.org_id::text || p.id::text)",
    ),
    "rewardPoints": "coalesce(r.points_balance, 0)",
    "optIns": "(SELECT json_agg(" + _obj(
        channel="ch.channel", status="coalesce(c.status, 'UNKNOWN')", source="c.source",
        updated_at=f"{F}.iso(c.updated_at)",
    ) + " ORDER BY ch.n) FROM unnest(ARRAY[" + ", ".join(_q(c) for c in CHANNELS) + "]) WITH ORDINALITY"
    " AS ch(channel, n) LEFT JOIN consents c ON c.org_id = p.org_id AND c.persona_id = p.id"
    " AND c.channel = ch.channel)",
    "shoppingHabits": _obj(
        spend_all_time=f"{F}.money(coalesce(r.spend_total_cents, 0))",
        sales_count="coalesce(r.orders_count, 0)",
        average_order="CASE WHEN r.orders_count > 0"
        " THEN round(r.spend_total_cents / 100.0 / r.orders_count, 2)::text END",
        items_per_order="CASE WHEN r.orders_count > 0 THEN round(r.items_count::numeric / r.orders_count, 2) END",
        last_seen_days="CASE WHEN r.last_order_at IS NOT NULL"
        " THEN greatest(0, floor(extract(epoch FROM now() - r.last_order_at) / 86400))::int END",
        shops_every_days="CASE WHEN r.orders_count >= 2 THEN round((extract(epoch FROM r.last_order_at"
        " - r.first_order_at) / 86400 / (r.orders_count - 1))::numeric, 2) END",
        preferred_brand=_preference("brand"),
        preferred_category=_preference("category"),
        preferred_product=_preference("product"),
    ),
    "favorites": _obj(
        products="coalesce(pc.by_dim -> 'product', '[]')",
        categories="coalesce(pc.by_dim -> 'category', '[]')",
        brands="coalesce(pc.by_dim -> 'brand', '[]')",
    ),
    "customAttributes": "(SELECT coalesce(json_agg(" + _obj(
        key="a.key", value="a.value", source="a.source", updated_at=f"{F}.iso(a.updated_at)"
    ) + " ORDER BY a.key), '[]') FROM custom_attributes a WHERE a.org_id = p.org_id AND a.persona_id = p.id)",
    "tags": "(SELECT coalesce(json_agg(t.tag ORDER BY t.tag), '[]') FROM persona_tags t"
    " WHERE t.org_id = p.org_id AND t.persona_id = p.id)",
    "traits": _obj(
        mobile_phone="p.phone", email_address="p.email", birthday="p.birthday",
        favorite_store="(SELECT " + _obj(id=f"{F}.gid('Store', s.id)", name="s.name")
        + " FROM stores s WHERE s.org_id = p.org_id AND s.id = p.favorite_store_id)",
        contact_id="replace(p.id::text, '-', '')", imported_from="coalesce(p.source_name, p.source_kind)",
        source_id="p.source_id", browser="p.browser", ip_address="p.ip_address",
        signups="(SELECT coalesce(json_agg(" + _obj(
            form_name="s.form_name", url="s.url", submitted_at=f"{F}.iso(s.submitted_at)",
            has_signature="s.signature IS NOT NULL",
        ) + " ORDER BY s.submitted_at DESC), '[]') FROM signup_submissions s"
        " WHERE s.org_id = p.org_id AND s.persona_id = p.id)",
    ),
    "logs": _obj(
        first_seen_at=f"{F}.iso(p.created_at)", loyalty_enrolled_at=f"{F}.iso(p.loyalty_signup_at)",
        sms_opt_out_at=f"{F}.iso(p.sms_opt_out_at)",
    ),
    "audiences": "(SELECT coalesce(json_agg(" + _obj(id=f"{F}.gid('Audience', a.id)", name="a.name")
    + " ORDER BY NOT a.is_default, a.name), '[]') FROM audiences a WHERE a.org_id = p.org_id AND "
    + AUDIENCE_MEMBER + ")",
    "pointsOverview": _obj(
        spent_all_time=f"{F}.money(coalesce(r.spend_subtotal_cents, 0))",
        spent_as_member=f"{F}.money(coalesce(r.spend_member_subtotal_cents, 0))",
        points="coalesce(r.points_balance, 0)", points_redeemed="-coalesce(r.points_redemption, 0)",
        adjusted_by_staff="coalesce(r.points_staff_adjustment, 0)",
        boosted_by_audience="coalesce(r.points_audience_boost, 0)",
        gifted_by_campaign="coalesce(r.points_campaign_gift, 0)", gifted_by_flow="coalesce(r.points_flow_gift, 0)",
        expired="-coalesce(r.points_expiration, 0)", legacy_imported="coalesce(r.points_legacy_import, 0)",
        visit_points="coalesce(r.points_visit, 0)", collectibles="coalesce(r.points_collectible, 0)",
        referral_sales="coalesce(r.points_referral_sale, 0)",
        last_redemption_at=f"{F}.iso(lr.redeemed_at)", last_redemption_discount="lr.discount_name",
    ),
    "pointsReconciliation": _obj(
        expected_from_spend="(coalesce(r.spend_member_subtotal_cents, 0)::bigint * o.points_per_dollar_milli / 100000)",
        earned_from_orders="coalesce(r.points_order, 0)",
        reasons=_reasons(),
    ),
    "discounts": "(SELECT coalesce(json_agg(json_build_object('discount', " + _obj(
        id=f"{F}.gid('Discount', d.id)", name="d.name", points_cost="d.points_cost",
        starts_at=f"{F}.iso(d.starts_at)", ends_at=f"{F}.iso(d.ends_at)",
    ) + ", 'progress', CASE WHEN d.points_cost <= 0 THEN 1.0 ELSE least(1.0, coalesce(r.points_balance, 0)::float8"
    " / d.points_cost) END, 'pointsNeeded', greatest(0, d.points_cost - coalesce(r.points_balance, 0)),"
    " 'canRedeem', coalesce(r.points_balance, 0) >= d.points_cost) ORDER BY d.points_cost, d.id), '[]')"
    " FROM discounts d WHERE d.org_id = p.org_id AND (d.starts_at IS NULL OR d.starts_at <= now())"
    " AND (d.ends_at IS NULL OR now() < d.ends_at))",
    "history": "json_build_object(" + ", ".join(f"'{name}', {connection(h)}" for name, h in HISTORY.items()) + ")",
}  # fmt: skip

# The lateral joins the fields above read: the rollup, purchase counts by dimension, the last redemption.
JOINS = {
    "r": "LEFT JOIN persona_rollups r ON r.org_id = p.org_id AND r.persona_id = p.id",
    "pc": """LEFT JOIN LATERAL (
      SELECT json_object_agg(y.dimension, y.items) AS by_dim FROM (
        SELECT x.dimension, json_agg(json_build_object('name', x.name, 'count', x.order_count) ORDER BY x.rn) AS items
        FROM (SELECT c.dimension, c.name, c.order_count, row_number() OVER (PARTITION BY c.dimension
              ORDER BY c.order_count DESC, c.last_purchased_at DESC, c.name) AS rn
              FROM purchase_counts c WHERE c.org_id = p.org_id AND c.persona_id = p.id) x
        WHERE x.rn <= 5 GROUP BY x.dimension) y) pc ON true""",
    "lr": """LEFT JOIN LATERAL (SELECT z.redeemed_at, z.discount_name FROM redemptions z
      WHERE z.org_id = p.org_id AND z.persona_id = p.id AND z.status = 'REDEEMED'
      ORDER BY z.redeemed_at DESC, z.id DESC LIMIT 1) lr ON true""",
}


def persona_statement(fields: list[str], extra: str = "") -> str:
    """{"data": {"persona": {...fields}}} for persona %(id)s of %(org)s; `extra` adds root fields."""
    body = ", ".join(f"'{name}', {FIELDS[name]}" for name in fields)
    joins = "\n".join(j for alias, j in JOINS.items() if any(f"{alias}." in FIELDS[n] for n in fields))
    persona = (
        f"(SELECT json_build_object({body}) FROM personas p JOIN organizations o ON o.id = p.org_id {joins}"
        " WHERE p.org_id = %(org)s AND p.id = %(id)s)"
    )
    return f"SELECT json_build_object('data', json_build_object('persona', {persona}{extra}))::text"


HEADER = [
    "id", "number", "firstName", "lastName", "fullName", "sourcedFrom", "createdAt", "archivedAt", "mergedInto",
    "loyaltyMember", "loyaltySignupAt", "email", "phone", "rewardPoints",
]  # fmt: skip
GENERAL = [
    "id", "email", "phone", "birthday", "walletPin", "links", "optIns", "shoppingHabits", "favorites",
    "customAttributes", "tags", "traits", "logs", "audiences",
]  # fmt: skip
POINTS = ["id", "rewardPoints", "pointsOverview", "pointsReconciliation"]
DISCOUNTS = ["id", "rewardPoints", "discounts"]
CARD = [
    *HEADER[:-1], "birthday", "walletPin", "links", "rewardPoints", "optIns", "shoppingHabits", "favorites",
    "customAttributes", "tags", "traits", "logs", "audiences", "pointsOverview", "pointsReconciliation",
    "discounts", "history",
]  # fmt: skip
LOYALTY_SETTINGS = (
    ", 'loyaltySettings', (SELECT json_build_object('pointsPerDollar', rtrim(rtrim((o.points_per_dollar_milli"
    " / 1000.0)::text, '0'), '.'), 'pointsPerOrder', o.points_per_order, 'pointsExpireAfterDays',"
    " o.points_expire_after_days) FROM organizations o WHERE o.id = %(org)s)"
)

STATEMENTS: dict[str, str] = {
    "card": persona_statement(CARD),
    "header": persona_statement(HEADER),
    "general": persona_statement(GENERAL),
    "points": persona_statement(POINTS, LOYALTY_SETTINGS),
    "discounts": persona_statement(DISCOUNTS),
}
