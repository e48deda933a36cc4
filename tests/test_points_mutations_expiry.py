"""`expire-points`: earned points expire first in, first out after the
organization's expiry, never-expiring kinds stay, organizations without an expiry are
skipped, and an unknown organization is named in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import update
from sqlmodel import col

from database import Database
from models import Organization
from models.enums import PointsEntryKind
from resolvers.points import post_entry
from settings import Settings
from tests import points_support
from tests.conftest import GraphQLClient
from tests.factories import MadePersona, days_ago
from tests.points_support import ledger

ROOT = Path(__file__).resolve().parent.parent

ann = points_support.ann


# expire-points ---------------------------------------------------------------------------


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": settings.database_url}
    return subprocess.run(
        [sys.executable, "-c", "import cli; cli.main()", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )


async def post(
    db: Database, org: Organization, persona: MadePersona, kind: PointsEntryKind, delta: int, days: float
) -> None:
    """A ledger entry made `days` ago, through the ledger's own write path."""
    async with db.session() as session, session.begin():
        await post_entry(session, org_id=org.id, persona_id=persona.id, kind=kind, delta=delta, at=days_ago(days))


async def set_expiry(db: Database, org: Organization, days: int | None) -> None:
    async with db.session() as session, session.begin():
        await session.execute(
            update(Organization).where(col(Organization.id) == org.id).values(points_expire_after_days=days)
        )


async def test_expire_points_expires_earned_points_first_in_first_out(
    owner_client: GraphQLClient, db: Database, org: Organization, settings: Settings, ann: MadePersona
) -> None:
    # Given a 90-day expiry and this ledger (days ago):
    #   200  ORDER           100 d   expiring lot A
    #    50  LEGACY_IMPORT    95 d   never expires
    #  -150  REDEMPTION       94 d   spends the oldest first: 150 of A (A has 50 left)
    #    30  AUDIENCE_BOOST   93 d   never expires
    #    40  CAMPAIGN_GIFT    92 d   expiring lot B
    #  -60   REDEMPTION       91 d   50 (rest of A) + 10 of the legacy lot (legacy has 40 left)
    #    70  VISIT            10 d   expiring lot C, too young
    # Due: B = 40 (A is spent, C is young, legacy and boost never expire): 180 - 40 = 140 left.
    await set_expiry(db, org, 90)
    for kind, delta, days in (
        (PointsEntryKind.ORDER, 200, 100),
        (PointsEntryKind.LEGACY_IMPORT, 50, 95),
        (PointsEntryKind.REDEMPTION, -150, 94),
        (PointsEntryKind.AUDIENCE_BOOST, 30, 93),
        (PointsEntryKind.CAMPAIGN_GIFT, 40, 92),
        (PointsEntryKind.REDEMPTION, -60, 91),
        (PointsEntryKind.VISIT, 70, 10),
    ):
        await post(db, org, ann, kind, delta, days)
    assert (await ledger(owner_client, ann))["rewardPoints"] == 180

    first = run_cli(settings, "expire-points", "--org", "acme")
    assert first.returncode == 0, first.stderr
    assert "acme: expired 40 points of 1 personas" in first.stdout
    card = await ledger(owner_client, ann)
    assert card["rewardPoints"] == 140
    assert card["pointsOverview"]["expired"] == 40
    newest = card["history"]["points"]["nodes"][0]
    assert (newest["kind"], newest["delta"], newest["balanceAfter"]) == ("EXPIRATION", -40, 140)

    second = run_cli(settings, "expire-points")
    assert second.returncode == 0, second.stderr
    assert "acme: expired 0 points of 0 personas" in second.stdout
    again = await ledger(owner_client, ann)
    assert again["rewardPoints"] == 140
    assert again["history"]["points"]["totalCount"] == 8


async def test_expire_points_leaves_never_expiring_kinds_and_skips_orgs_without_expiry(
    owner_client: GraphQLClient, db: Database, org: Organization, settings: Settings, ann: MadePersona
) -> None:
    await post(db, org, ann, PointsEntryKind.LEGACY_IMPORT, 80, 400)
    await post(db, org, ann, PointsEntryKind.AUDIENCE_BOOST, 20, 400)
    await post(db, org, ann, PointsEntryKind.ORDER, 10, 400)
    off = run_cli(settings, "expire-points", "--org", "acme")
    assert off.returncode == 0, off.stderr
    assert "never expire" in off.stdout
    assert (await ledger(owner_client, ann))["rewardPoints"] == 110

    await set_expiry(db, org, 30)
    done = run_cli(settings, "expire-points", "--org", "acme")
    assert "acme: expired 10 points of 1 personas" in done.stdout
    card = await ledger(owner_client, ann)
    assert card["rewardPoints"] == 100
    assert card["pointsOverview"]["legacyImported"] == 80
    assert card["pointsOverview"]["boostedByAudience"] == 20


async def test_expire_points_names_an_unknown_org_in_one_line(settings: Settings, db: Database) -> None:
    result = run_cli(settings, "expire-points", "--org", "nope")
    assert result.returncode == 2
    assert result.stderr.strip() == "personagraph: error: no organization with slug 'nope'"
