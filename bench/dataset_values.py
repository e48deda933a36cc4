"""The benchmark organization's tables as COPY writes them (their columns, in
foreign-key order) and the values bench/dataset.py draws its rows from: the
catalog, campaigns, names, area codes, the points settings."""

from __future__ import annotations

from itertools import accumulate

from faker.providers.person.en_US import Provider as _Names

# Tables in foreign-key order, with their COPY column lists.
TABLES: dict[str, tuple[str, ...]] = {
    "personas": (
        "org_id", "id", "number", "first_name", "last_name", "email", "phone", "birthday", "source_kind",
        "source_name", "source_id", "favorite_store_id", "browser", "ip_address", "wallet_pin", "loyalty_member",
        "loyalty_signup_at", "referred_by_id", "sms_opt_out_at", "archived_at", "merged_into_id", "erased_at",
        "created_at", "updated_at",
    ),
    "identity_keys": ("org_id", "kind", "value", "persona_id", "created_at"),
    "consents": ("org_id", "persona_id", "channel", "status", "source", "updated_at"),
    "consent_events": ("org_id", "id", "persona_id", "channel", "status", "source", "occurred_at"),
    "custom_attributes": ("org_id", "persona_id", "key", "value", "source", "updated_at"),
    "persona_tags": ("org_id", "persona_id", "tag", "created_at"),
    "signup_submissions": (
        "org_id", "id", "persona_id", "form_name", "url", "ip_address", "user_agent", "signature", "submitted_at",
    ),
    "orders": (
        "org_id", "id", "persona_id", "source", "external_id", "store_id", "placed_at", "subtotal_cents",
        "tax_cents", "total_cents", "item_count", "member_at_order", "archived_at_order", "referred_by_id",
        "created_at",
    ),
    "order_lines": (
        "org_id", "order_id", "line_no", "product", "brand", "category", "quantity", "unit_price_cents",
    ),
    "redemptions": (
        "org_id", "id", "persona_id", "discount_id", "discount_name", "points", "status", "actor", "redeemed_at",
        "reversed_at",
    ),
    "points_entries": (
        "org_id", "id", "persona_id", "kind", "delta", "balance_after", "note", "order_id", "redemption_id",
        "actor", "created_at",
    ),
    "messages": (
        "org_id", "id", "persona_id", "source", "external_id", "direction", "channel", "body", "campaign", "sent_at",
    ),
    "persona_actions": (
        "org_id", "id", "persona_id", "source", "external_id", "kind", "campaign", "detail", "occurred_at",
    ),
    "pixel_events": ("org_id", "id", "persona_id", "source", "external_id", "site", "event", "url", "occurred_at"),
    "survey_submissions": (
        "org_id", "id", "persona_id", "source", "external_id", "survey_name", "status", "answers", "submitted_at",
    ),
    "merges": (
        "org_id", "id", "kind", "survivor_id", "merged_id", "merged_number", "reason", "actor", "moved",
        "merged_at", "undone_at",
    ),
    "persona_rollups": (
        "org_id", "persona_id", "points_balance", "orders_count", "items_count", "spend_total_cents",
        "spend_subtotal_cents", "spend_member_subtotal_cents", "first_order_at", "last_order_at", "points_order",
        "points_visit", "points_referral_sale", "points_redemption", "points_staff_adjustment",
        "points_audience_boost", "points_campaign_gift", "points_flow_gift", "points_collectible",
        "points_legacy_import", "points_expiration",
    ),
    "purchase_counts": (
        "org_id", "persona_id", "dimension", "name", "order_count", "last_purchased_at", "created_at",
    ),
}  # fmt: skip

KINDS = (
    "ORDER", "VISIT", "REFERRAL_SALE", "REDEMPTION", "STAFF_ADJUSTMENT", "AUDIENCE_BOOST", "CAMPAIGN_GIFT",
    "FLOW_GIFT", "COLLECTIBLE", "LEGACY_IMPORT", "EXPIRATION",
)  # fmt: skip
CATALOG: list[tuple[str, str, str, int]] = [
    # (category, brand, product, price in cents)
    (category, brand, f"{product} {size}", price + bump)
    for category, brand, product, price in (
        ("Flower", "Cookies", "Gary Payton", 4500),
        ("Flower", "Alien Labs", "Atomic Apple", 5500),
        ("Flower", "Stiiizy", "Blue Dream", 3500),
        ("Flower", "Glass House", "Mac 1", 4000),
        ("Flower", "Connected", "Gelonade", 5000),
        ("Vapes", "Stiiizy", "Pineapple Express Pod", 4000),
        ("Vapes", "Raw Garden", "Live Resin Cart", 3800),
        ("Vapes", "Select", "Elite Cart", 3000),
        ("Vapes", "Heavy Hitters", "Ultra Potent Cart", 4200),
        ("Edibles", "Kiva", "Camino Gummies", 2000),
        ("Edibles", "Wyld", "Marionberry Gummies", 1800),
        ("Edibles", "Plus", "Sour Watermelon Gummies", 2200),
        ("Edibles", "Kiva", "Terra Bites", 2400),
        ("Pre-Rolls", "Lowell Farms", "Lowell 35s", 3500),
        ("Pre-Rolls", "Jeeter", "Baby Jeeter Churros", 3000),
        ("Concentrates", "Raw Garden", "Refined Live Resin", 4000),
        ("Concentrates", "West Coast Cure", "Badder", 4500),
        ("Topicals", "Papa & Barkley", "Releaf Balm", 5000),
    )
    for size, bump in (("small", 0), ("large", 1500))
]
LINE_COUNTS = (1, 1, 2, 2, 3, 4)
QUANTITIES = (1, 1, 2)
CHANNELS = ("SMS", "SMS", "SMS", "EMAIL", "MMS")
ACTIONS = ("RECEIVED", "OPENED", "CLICKED", "LANDING_PAGE_VISIT")
CAMPAIGNS = ["4/20 Blowout", "Weekend Deals", "New Drops", "Birthday Club", "Happy Hour", "Holiday Gift Guide"]
BODIES = [
    "{c}: 20% off all flower today only. Reply STOP to opt out.",
    "{c}: your points are waiting - redeem in store this week.",
    "{c}: new drops just landed at your favorite store.",
    "{c}: thanks for shopping with us! Tell us how we did.",
]
SITES = ["shop.bench-dispensary.com", "www.bench-dispensary.com"]
AREA_CODES = ["213", "310", "415", "510", "619", "707", "916", "323", "408", "562"]
DOMAINS = ["gmail.com", "yahoo.com", "icloud.com", "outlook.com", "hotmail.com"]
TAG_NAMES = ["vip", "medical", "veteran", "senior", "industry", "first-timer"]
BUDTENDERS = ["Sam", "Alex", "Jordan", "Riley", "Casey", "Morgan"]
FIRST = list(_Names.first_names)
FIRST_CUM = list(accumulate(_Names.first_names.values()))
LAST = list(_Names.last_names)
LAST_CUM = list(accumulate(_Names.last_names.values()))
NULL = "\\N"
POINTS_PER_DOLLAR_MILLI = 1000
POINTS_PER_ORDER = 5
# The VIP audience's points multiplier (bench/generate.py AUDIENCES), in thousandths.
VIP_MULTIPLIER_MILLI = 1500
LOCAL_SPAN = 8_000_000
# An odd stride coprime to LOCAL_SPAN spreads consecutive personas over the local numbers.
LOCAL_STRIDE = 2_750_321
# The id counter's chunk number for merged-away personas (no persona chunk gets that far).
TOMBSTONE_CHUNK = (1 << 18) - 1
