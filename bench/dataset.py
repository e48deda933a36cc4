"""The rows of a benchmark organization, made chunk by chunk as COPY text.

A chunk is a range of personas with everything that hangs off them: identity
keys, consents, attributes, tags, sign-ups, orders and their lines, the points
ledger with running balances, redemptions, messages, actions, pixel events,
surveys, merges, and the rollups and purchase counts that those rows add up
to. Rollups are computed here from the very rows emitted, so they agree with
`personagraph rebuild-rollups` by construction (bench/generate.py checks a
sample against resolvers/rollups.recompute).

Chunks are independent (their own seeded RNG), so worker processes make them
in parallel and the result does not depend on how many workers ran.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from dataclasses import dataclass, field

from bench.dataset_values import (
    ACTIONS,
    AREA_CODES,
    BODIES,
    BUDTENDERS,
    CAMPAIGNS,
    CATALOG,
    CHANNELS,
    DOMAINS,
    FIRST,
    FIRST_CUM,
    KINDS,
    LAST,
    LAST_CUM,
    LINE_COUNTS,
    LOCAL_SPAN,
    LOCAL_STRIDE,
    NULL,
    POINTS_PER_DOLLAR_MILLI,
    POINTS_PER_ORDER,
    QUANTITIES,
    SITES,
    TABLES,
    TAG_NAMES,
    TOMBSTONE_CHUNK,
    VIP_MULTIPLIER_MILLI,
)


@dataclass(frozen=True)
class Org:
    """What every chunk needs to know about the organization."""

    org_id: str
    now: dt.datetime
    n_personas: int
    store_ids: list[str]
    discounts: list[tuple[str, str, int]]  # (id, name, points cost)
    salt: int


@dataclass
class Chunk:
    rows: dict[str, list[str]] = field(default_factory=lambda: {t: [] for t in TABLES})

    def add(self, table: str, *values: object) -> None:
        self.rows[table].append("\t".join(_text(v) for v in values) + "\n")

    def count(self) -> int:
        return sum(len(r) for r in self.rows.values())


def _text(value: object) -> str:
    if value is None:
        return NULL
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


def iso(seconds: int) -> str:
    """COPY text of a UTC time given in epoch seconds."""
    return time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(seconds))


def persona_phone(i: int) -> str:
    """A unique, valid US mobile number for persona index i (E.164)."""
    area = AREA_CODES[i % len(AREA_CODES)]
    local = 2_000_000 + (i // len(AREA_CODES) * LOCAL_STRIDE) % LOCAL_SPAN
    return f"+1{area}{local:07d}"


class Ids:
    """UUIDv7 text from a time and a per-chunk counter: time-ordered like the app's ids."""

    def __init__(self, chunk: int, salt: int) -> None:
        self.seq = ((salt & 0xFFFFF) << 42) | (chunk << 24)

    def at(self, when: dt.datetime) -> str:
        return self.at_seconds(int(when.timestamp()))

    def at_seconds(self, seconds: int) -> str:
        self.seq += 1
        ms = seconds * 1000
        hi = (ms << 16) | 0x7000 | ((self.seq >> 62) & 0xFFF)
        lo = 0x8000000000000000 | (self.seq & 0x3FFFFFFFFFFFFFFF)
        h = f"{hi:016x}{lo:016x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass
class Plan:
    """How many of each row per persona of a chunk (decided up front, see generate.py)."""

    start: int
    orders: list[int]
    messages: list[int]


def lognormal_counts(rng: random.Random, n: int, total: int, sigma: float, cap: int) -> list[int]:
    """n counts summing to about `total`: most small, a long tail up to `cap`."""
    raw = [rng.lognormvariate(0.0, sigma) for _ in range(n)]
    scale = total / sum(raw)
    for _ in range(8):  # the cap removes mass; rescale until the sum is close
        counts = [min(cap, int(r * scale)) for r in raw]
        got = sum(counts)
        if got == 0 or abs(got - total) <= total * 0.002:
            break
        scale *= total / got
    return counts


class PersonaMaker:
    def __init__(self, org: Org, chunk_no: int, seed: int) -> None:
        self.org = org
        self.rng = random.Random(seed * 1_000_003 + chunk_no)
        self.ids = Ids(chunk_no, org.salt)
        self.out = Chunk()
        self.span = dt.timedelta(days=3 * 365)
        self.start = org.now - self.span

    def make(self, plan: Plan) -> Chunk:
        for k, (n_orders, n_messages) in enumerate(zip(plan.orders, plan.messages, strict=True)):
            self.persona(plan.start + k, n_orders, n_messages)
        return self.out

    def _when(self, low: dt.datetime, high: dt.datetime) -> dt.datetime:
        seconds = max(0.0, (high - low).total_seconds())
        return (low + dt.timedelta(seconds=self.rng.random() * seconds)).replace(microsecond=0)

    def persona(self, i: int, n_orders: int, n_messages: int) -> None:
        rng, org, out, o = self.rng, self.org, self.out, self.org.org_id
        created = self.start + self.span * (i / org.n_personas) * 0.97
        created = created.replace(microsecond=0)
        pid = self.ids.at(created)
        first = rng.choices(FIRST, cum_weights=FIRST_CUM)[0]
        last = rng.choices(LAST, cum_weights=LAST_CUM)[0]
        has_phone = rng.random() < 0.9
        phone = persona_phone(i) if has_phone else None
        email = f"{first}.{last}{i}@{rng.choice(DOMAINS)}".lower() if not has_phone or rng.random() < 0.8 else None
        member = rng.random() < 0.85
        signup = self._when(created, created + dt.timedelta(days=30)) if member else None
        source = rng.random()
        kind, source_name = ("INTEGRATION", "bench-pos") if source < 0.6 else ("LOYALTY", None)
        if source >= 0.9:
            kind = "RAW_FILE"
        archived = self._when(created, org.now) if rng.random() < 0.02 else None
        text_status = rng.choice(["OPTED_IN", "OPTED_IN", "OPTED_OUT"])
        sms_out = self._when(created, org.now) if text_status == "OPTED_OUT" else None
        store = rng.choice(org.store_ids) if rng.random() < 0.3 else None
        tech = rng.random() < 0.3
        out.add(
            "personas", o, pid, i + 1, first, last, email, phone,
            dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(18_000)), kind, source_name, f"pos-{i}", store,
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)" if tech else None,
            f"203.0.{rng.randrange(256)}.{rng.randrange(256)}" if tech else None,
            f"{rng.randrange(10_000):04d}" if rng.random() < 0.3 else None, member, signup, None, sms_out,
            archived, None, None, created, created,
        )  # fmt: skip
        for key_kind, value in (("phone", phone), ("email", email)):
            if value:
                out.add("identity_keys", o, key_kind, value, pid, created)
        for channel, status, src in (
            ("TEXT", text_status, "INTEGRATION"),
            ("EMAIL", rng.choice(["OPTED_IN", "OPTED_OUT"]), "IMPORT"),
            ("LOYALTY", "OPTED_IN" if member else "UNKNOWN", "INTEGRATION"),
        ):
            out.add("consents", o, pid, channel, status, src, created)
            out.add("consent_events", o, self.ids.at(created), pid, channel, status, src, created)
        out.add("custom_attributes", o, pid, "budtender", rng.choice(BUDTENDERS), "POS_GROUP", created)
        if rng.random() < 0.2:
            out.add("custom_attributes", o, pid, "tier", rng.choice(["gold", "silver"]), "BULK_IMPORT", created)
        tags = rng.sample(TAG_NAMES, k=rng.choice([0, 0, 1, 1, 2]))
        for tag in tags:
            out.add("persona_tags", o, pid, tag, created)
        if rng.random() < 0.1:
            out.add(
                "signup_submissions", o, self.ids.at(created), pid, "In-store tablet",
                "https://bench-dispensary.com/join", "203.0.113.7", "Mozilla/5.0", None, created,
            )  # fmt: skip
        self.history(i, pid, created, member, signup, archived, n_orders, n_messages, vip="vip" in tags)

    def history(  # noqa: PLR0912, PLR0915  (one hot loop, kept flat on purpose: it makes millions of rows)
        self,
        i: int,
        pid: str,
        created: dt.datetime,
        member: bool,
        signup: dt.datetime | None,
        archived: dt.datetime | None,
        n_orders: int,
        n_messages: int,
        *,
        vip: bool,
    ) -> None:
        """Orders, lines, the ledger and redemptions in time order; then the rollup they add up to.

        Members earn ORDER and VISIT points per order, and VIPs (the VIP audience,
        x1.5) an AUDIENCE_BOOST too, as resolvers/orders.accrue gives them; flows
        gift points about once every ten orders.

        The hot path: rows are formatted directly (times as epoch seconds, one
        ISO text per event reused by every row of it)."""
        rng, org, o = self.rng, self.org, self.org.org_id
        rows = self.out.rows
        orders, lines_out, entries = rows["orders"], rows["order_lines"], rows["points_entries"]
        stores, rand, choice = org.store_ids, rng.random, rng.choice
        born, now = int(created.timestamp()), int(org.now.timestamp())
        signup_s = int(signup.timestamp()) if member and signup is not None else None
        archived_s = int(archived.timestamp()) if archived is not None else None
        kinds = dict.fromkeys(KINDS, 0)
        balance = total = subtotal_sum = member_sum = items_sum = 0
        counts: dict[tuple[str, str], list[int]] = {}
        span = now - born
        placed = sorted(born + int(rand() * span) for _ in range(n_orders))
        events: list[tuple[int, str, int]] = [(t, "order", k) for k, t in enumerate(placed)]
        if rand() < 0.25:
            events.append((born, "LEGACY_IMPORT", rng.randint(10, 500)))
        for gift in ("CAMPAIGN_GIFT", "FLOW_GIFT", "COLLECTIBLE", "STAFF_ADJUSTMENT"):
            if rand() < 0.25:
                events.append((born + int(rand() * span), gift, rng.randint(5, 80)))
        events += [(born + int(rand() * span), "FLOW_GIFT", rng.randint(5, 30)) for _ in range(n_orders // 10)]
        events.sort()
        ids = self.ids.at_seconds
        for at, what, value in events:
            stamp = iso(at)
            if what != "order":
                balance += value
                kinds[what] += value
                entries.append(
                    f"{o}\t{ids(at)}\t{pid}\t{what}\t{value}\t{balance}\tbenchmark\t\\N\t\\N\tbench\t{stamp}\n"
                )
                continue
            oid = ids(at)
            n_lines = choice(LINE_COUNTS)
            subtotal = items = 0
            names: set[tuple[str, str]] = set()
            for line_no in range(n_lines):
                category, brand, product, price = choice(CATALOG)
                q = choice(QUANTITIES)
                subtotal += price * q
                items += q
                lines_out.append(f"{o}\t{oid}\t{line_no}\t{product}\t{brand}\t{category}\t{q}\t{price}\n")
                names.add(("product", product))
                names.add(("brand", brand))
                names.add(("category", category))
            tax = subtotal * 15 // 100
            as_member = signup_s is not None and at >= signup_s and (archived_s is None or at < archived_s)
            after_archive = "t" if archived_s is not None and at >= archived_s else "f"
            orders.append(
                f"{o}\t{oid}\t{pid}\tbench-pos\tt{i + 1}-{value}\t{choice(stores)}\t{stamp}\t{subtotal}\t{tax}\t"
                f"{subtotal + tax}\t{items}\t{'t' if as_member else 'f'}\t{after_archive}\t\\N\t{stamp}\n"
            )
            for name in names:
                seen = counts.get(name)
                if seen is None:
                    counts[name] = [1, at]
                else:
                    seen[0] += 1
                    seen[1] = at  # events come in time order: the last one is the latest
            total += subtotal + tax
            subtotal_sum += subtotal
            items_sum += items
            if as_member:
                member_sum += subtotal
                earned = subtotal * POINTS_PER_DOLLAR_MILLI // 100_000
                balance += earned
                kinds["ORDER"] += earned
                entries.append(f"{o}\t{ids(at)}\t{pid}\tORDER\t{earned}\t{balance}\t\\N\t{oid}\t\\N\tbench\t{stamp}\n")
                balance += POINTS_PER_ORDER
                kinds["VISIT"] += POINTS_PER_ORDER
                entries.append(
                    f"{o}\t{ids(at)}\t{pid}\tVISIT\t{POINTS_PER_ORDER}\t{balance}\t\\N\t{oid}\t\\N\tbench\t{stamp}\n"
                )
                boost = earned * (VIP_MULTIPLIER_MILLI - 1000) // 1000 if vip else 0
                if boost > 0:
                    balance += boost
                    kinds["AUDIENCE_BOOST"] += boost
                    entries.append(
                        f"{o}\t{ids(at)}\t{pid}\tAUDIENCE_BOOST\t{boost}\t{balance}\t\\N\t{oid}\t\\N\tbench\t{stamp}\n"
                    )
                if rand() < 0.12 and at + 300 <= now:
                    spent = self.redeem(pid, at + 300, balance)
                    balance -= spent
                    kinds["REDEMPTION"] -= spent
        first = iso(placed[0]) if placed else None
        last = iso(placed[-1]) if placed else None
        self.out.add(
            "persona_rollups", o, pid, balance, n_orders, items_sum, total, subtotal_sum, member_sum, first, last,
            *(kinds[k] for k in KINDS),
        )  # fmt: skip
        pcs = rows["purchase_counts"]
        for (dimension, item), (count, latest) in counts.items():
            bought = iso(latest)
            pcs.append(f"{o}\t{pid}\t{dimension}\t{item}\t{count}\t{bought}\t{bought}\n")
        self.engagement(i, pid, born, now, n_messages)

    def redeem(self, pid: str, at: int, balance: int) -> int:
        """A redemption of a discount the balance covers, with its ledger entry; the points spent."""
        affordable = [d for d in self.org.discounts if d[2] <= balance]
        if not affordable:
            return 0
        discount_id, name, cost = self.rng.choice(affordable)
        rid, stamp, o = self.ids.at_seconds(at), iso(at), self.org.org_id
        self.out.rows["redemptions"].append(
            f"{o}\t{rid}\t{pid}\t{discount_id}\t{name}\t{cost}\tREDEEMED\tbench\t{stamp}\t\\N\n"
        )
        self.out.rows["points_entries"].append(
            f"{o}\t{self.ids.at_seconds(at)}\t{pid}\tREDEMPTION\t{-cost}\t{balance - cost}\t\\N\t\\N\t{rid}\t"
            f"bench\t{stamp}\n"
        )
        return cost

    def engagement(self, i: int, pid: str, born: int, now: int, n_messages: int) -> None:
        rng, o, rows = self.rng, self.org.org_id, self.out.rows
        rand, choice, ids = rng.random, rng.choice, self.ids.at_seconds
        messages, actions = rows["messages"], rows["persona_actions"]
        span = now - born
        for k in range(n_messages):
            at = born + int(rand() * span)
            mid, stamp, campaign = ids(at), iso(at), choice(CAMPAIGNS)
            body = choice(BODIES).format(c=campaign)
            messages.append(
                f"{o}\t{mid}\t{pid}\tbench-sms\tm{i + 1}-{k}\tOUTBOUND\t{choice(CHANNELS)}\t{body}\t{campaign}\t"
                f"{stamp}\n"
            )
            if rand() < 0.3:
                action = choice(ACTIONS)
                actions.append(f"{o}\t{ids(at)}\t{pid}\tbench-sms\ta{i + 1}-{k}\t{action}\t{campaign}\t\\N\t{stamp}\n")
        recent = max(born, now - 90 * 86_400)
        for k in range(choice((0, 0, 1, 3, 8))):
            at = recent + int(rand() * (now - recent))
            site = choice(SITES)
            event = choice(("page_view", "add_to_cart", "view_menu"))
            rows["pixel_events"].append(
                f"{o}\t{ids(at)}\t{pid}\tpixel\tp{i + 1}-{k}\t{site}\t{event}\thttps://{site}/menu\t{iso(at)}\n"
            )
        if rand() < 0.2:
            at = born + int(rand() * span)
            answers = json.dumps([
                {"question": "How would you rate your budtender?", "answer": str(rng.randint(1, 5))},
                {"question": "Anything we could do better?", "answer": None},
            ])  # fmt: skip
            self.out.add("survey_submissions", o, ids(at), pid, "bench-surveys", f"s{i + 1}", "How was your visit?",
                         choice(("COMPLETE", "PARTIAL")), answers, iso(at))  # fmt: skip


def tombstones(org: Org, first_number: int, survivors: list[tuple[str, int]], seed: int) -> Chunk:
    """Personas merged away (a duplicate a clerk typed), each with its merge row."""
    rng = random.Random(seed)
    ids = Ids(TOMBSTONE_CHUNK, org.salt)
    out = Chunk()
    for k, (survivor_id, survivor_number) in enumerate(survivors):
        at = (org.now - dt.timedelta(days=rng.uniform(1, 300))).replace(microsecond=0)
        pid = ids.at(at)
        first = rng.choices(FIRST, cum_weights=FIRST_CUM)[0]
        out.add(
            "personas", org.org_id, pid, first_number + k, first, None, None, None, None, "RAW_FILE", None, None,
            None, None, None, None, False, None, None, None, None, survivor_id, None, at, at,
        )  # fmt: skip
        moved = json.dumps({"orders": [], "points_entries": [], "identity_keys": []})
        out.add(
            "merges", org.org_id, ids.at(at), "AUTOMATIC", survivor_id, pid, first_number + k,
            f"phone of persona #{survivor_number}", None, moved, at, None,
        )  # fmt: skip
    return out
