"""The `personagraph` command line: serve, migrate, seed, keys and chores.

Every command reads DATABASE_URL (default: the embedded SQLite file). A bad
argument prints one line and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig

from database import Database
from engines import create_engine, sync_url
from permissions.keys import authenticate, issue_key, list_keys, revoke_key
from permissions.matrix import Role
from resolvers.errors import ApiError
from resolvers.organizations import create_organization, organization_by_slug
from settings import ROOT, Settings, get_settings, production_problems

MIGRATIONS = Path(__file__).resolve().parent / "models" / "migrations"
DEV_KEYS_FILE = Path(os.environ.get("PERSONAGRAPH_DEV_KEYS", ROOT / "var" / "dev-keys.json"))
DEMO_ORG = "demo"


class UsageError(Exception):
    """A bad argument: one line on stderr, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"personagraph: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def alembic_config(settings: Settings) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sync_url(settings.database_url).replace("%", "%%"))
    return cfg


def migrate(settings: Settings, revision: str = "head") -> None:
    if settings.is_sqlite:
        path = settings.database_url.split(":///", 1)[1]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    alembic_command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str = "base") -> None:
    alembic_command.downgrade(alembic_config(settings), revision)


async def _with_db(settings: Settings, work: Callable[[Database], Awaitable[Any]]) -> Any:
    db = Database(create_engine(settings))
    try:
        return await work(db)
    finally:
        await db.dispose()


def _role(value: str) -> Role:
    try:
        return Role(value.upper())
    except ValueError:
        raise UsageError(f"unknown role {value!r}; one of: {', '.join(r.value for r in Role)}") from None


async def _org_id(db: Database, slug: str) -> Any:
    async with db.session() as session:
        org = await organization_by_slug(session, slug)
    if org is None:
        raise UsageError(f"no organization with slug {slug!r}")
    return org.id


# ---------------------------------------------------------------- commands


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    migrate(settings)
    print("database migrated to the latest revision")


def cmd_create_org(args: argparse.Namespace, settings: Settings) -> None:
    async def work(db: Database) -> None:
        async with db.session() as session, session.begin():
            org = await create_organization(session, slug=args.slug, name=args.name)
        print(f"created organization {org.slug} ({org.name})")

    asyncio.run(_with_db(settings, work))


def cmd_create_key(args: argparse.Namespace, settings: Settings) -> None:
    role = _role(args.role)

    async def work(db: Database) -> None:
        org_id = await _org_id(db, args.org)
        async with db.session() as session, session.begin():
            issued = await issue_key(session, org_id=org_id, role=role, name=args.name)
        print(f"created {role.value} key {issued.key.prefix!r} for {args.org}; it is shown once:")
        print(issued.plaintext)

    asyncio.run(_with_db(settings, work))


def cmd_list_keys(args: argparse.Namespace, settings: Settings) -> None:
    async def work(db: Database) -> None:
        org_id = await _org_id(db, args.org)
        async with db.session() as session:
            keys = await list_keys(session, org_id)
        print(f"{'prefix':<10} {'role':<18} {'name':<24} {'created':<20} {'last used':<20} revoked")
        for k in keys:
            print(
                f"{k.prefix:<10} {k.role:<18} {k.name[:24]:<24} {_when(k.created_at):<20} "
                f"{_when(k.last_used_at):<20} {_when(k.revoked_at)}"
            )

    asyncio.run(_with_db(settings, work))


def cmd_revoke_key(args: argparse.Namespace, settings: Settings) -> None:
    async def work(db: Database) -> None:
        async with db.session() as session, session.begin():
            key = await revoke_key(session, args.prefix)
        if key is None:
            raise UsageError(f"no key with prefix {args.prefix!r}")
        print(
            f"revoked key {key.prefix} ({key.name}); running servers refuse it within their"
            " API_KEY_CACHE_SECONDS (2 by default)"
        )

    asyncio.run(_with_db(settings, work))


def cmd_export_schema(args: argparse.Namespace, settings: Settings) -> None:
    from schema import schema

    print(schema.as_str())


def cmd_seed_demo(args: argparse.Namespace, settings: Settings) -> None:
    from resolvers.demo import seed_demo

    async def work(db: Database) -> None:
        summary = await seed_demo(db, slug=args.org, personas=args.personas, seed=args.seed, progress=True)
        print(summary)

    asyncio.run(_with_db(settings, work))


def cmd_rebuild_rollups(args: argparse.Namespace, settings: Settings) -> None:
    from rich.progress import Progress

    from resolvers import rollups

    async def work(db: Database) -> None:
        org_id = await _org_id(db, args.org)
        async with db.session() as session:
            ids = await rollups.persona_ids(session, org_id)
        drifted = 0
        with Progress(transient=True) as bar:
            task = bar.add_task("rebuilding rollups", total=len(ids))
            for start in range(0, len(ids), 200):
                async with db.session() as session, session.begin():
                    for persona_id in ids[start : start + 200]:
                        drifted += await rollups.rebuild(session, org_id, persona_id)
                        bar.advance(task)
        print(f"rebuilt rollups of {len(ids)} personas; {drifted} had drifted and were corrected")

    asyncio.run(_with_db(settings, work))


def cmd_expire_points(args: argparse.Namespace, settings: Settings) -> None:
    from resolvers.points_expiry import expire_points, organizations_with_expiry

    async def work(db: Database) -> None:
        async with db.session() as session:
            if args.org is None:
                orgs = await organizations_with_expiry(session)
            else:
                found = await organization_by_slug(session, args.org)
                if found is None:
                    raise UsageError(f"no organization with slug {args.org!r}")
                orgs = [found]
        for org in orgs:
            if org.points_expire_after_days is None:
                print(f"{org.slug}: points never expire (pointsExpireAfterDays is not set)")
                continue
            done = await expire_points(db.session, org)
            print(f"{org.slug}: expired {done.points} points of {done.personas} personas")

    asyncio.run(_with_db(settings, work))


def cmd_audit(args: argparse.Namespace, settings: Settings) -> None:
    from resolvers.audit import audit_log

    since = None
    if args.since:
        try:
            since = dt.datetime.fromisoformat(args.since)
        except ValueError:
            raise UsageError(f"--since must be an ISO date or time, got {args.since!r}") from None
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)

    async def work(db: Database) -> None:
        org_id = await _org_id(db, args.org)
        async with db.session() as session:
            entries = await audit_log(session, org_id, since)
        print(f"{'time (UTC)':<20} {'actor':<20} {'role':<18} {'operation':<24} {'outcome':<10} targets")
        for e in entries:
            detail = f" ({e.detail})" if e.detail else ""
            print(
                f"{e.occurred_at:%Y-%m-%d %H:%M:%S} {e.actor[:20]:<20} {e.role:<18} {e.operation:<24} "
                f"{e.outcome + detail:<10} {e.target_ids}"
            )

    asyncio.run(_with_db(settings, work))


IMPORT_ERRORS_SHOWN = 50


def cmd_import_csv(args: argparse.Namespace, settings: Settings) -> None:
    """Contacts from a CSV file (columns: resolvers/csv_import.py and the README), with a progress bar."""
    from contextlib import ExitStack

    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from resolvers.csv_import import CsvFileError, ImportSummary, import_csv

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"no such file: {args.file}")
    summary = ImportSummary()
    with ExitStack() as files:
        file = files.enter_context(path.open("rb"))
        report = files.enter_context(Path(args.report).open("w", encoding="utf-8")) if args.report else None
        size = path.stat().st_size

        async def work(db: Database) -> None:
            org_id = await _org_id(db, args.org)
            columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
            # The bar on stderr; the rejected lines and the summary on stdout, where a report belongs.
            with Progress(*columns, console=Console(stderr=True), transient=True, redirect_stdout=False) as bar:
                task = bar.add_task(f"importing {path.name}", total=size)
                lines = import_csv(db, org_id, file, source=args.source, number_block=settings.persona_number_block)
                async for line in lines:
                    summary.add(line)
                    if report is not None:
                        report.write(json.dumps(line.as_dict()) + "\n")
                    if line.errors and summary.rejected <= IMPORT_ERRORS_SHOWN:
                        problems = "; ".join(f"{e.column or 'line'}: {e.message} ({e.code})" for e in line.errors)
                        print(f"line {line.line}: {line.outcome}: {problems}")
                    bar.update(task, completed=file.tell())

        try:
            asyncio.run(_with_db(settings, work))
        except CsvFileError:
            if summary.lines:
                print(f"stopped after {summary.lines} lines: {_import_counts(summary)}")
            raise
    if summary.rejected > IMPORT_ERRORS_SHOWN:
        more = summary.rejected - IMPORT_ERRORS_SHOWN
        print(f"... and {more} more rejected lines" + ("" if args.report else " (--report FILE lists every line)"))
    print(f"imported {path.name}: {summary.lines} lines: {_import_counts(summary)}")


def _import_counts(summary: Any) -> str:
    return f"{summary.created} created, {summary.updated} updated, {summary.merged} merged, {summary.rejected} rejected"


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    # create_app refuses these too; here they are one line and exit 2, not a traceback.
    if problems := production_problems(settings):
        raise UsageError("; ".join(problems))
    uvicorn.run("app:create_app", factory=True, host=args.host, port=args.port, log_level="info")


def cmd_dev(args: argparse.Namespace, settings: Settings) -> None:
    """make run: migrate, seed the demo organization when empty, print keys, serve."""
    migrate(settings)
    # The plaintext keys of the development database, kept git-ignored beside it
    # so a second `make run` prints the same working keys.
    everything = json.loads(DEV_KEYS_FILE.read_text()) if DEV_KEYS_FILE.exists() else {}
    saved = everything.get(settings.database_url, {})
    keys = asyncio.run(_with_db(settings, lambda db: _dev_setup(db, args.personas, saved)))
    everything[settings.database_url] = keys
    DEV_KEYS_FILE.parent.mkdir(parents=True, exist_ok=True)
    DEV_KEYS_FILE.write_text(json.dumps(everything, indent=2))
    DEV_KEYS_FILE.chmod(0o600)
    url = f"http://{args.host}:{args.port}/graphql"
    print(f'\nGraphiQL: {url}\nPaste one key into GraphiQL\'s headers as {{"Authorization": "Bearer <key>"}}\n')
    for role, key in keys.items():
        print(f"  {role:<18} {key}")
    print(flush=True)
    cmd_serve(args, settings)


async def _dev_setup(db: Database, personas: int, saved: dict[str, str]) -> dict[str, str]:
    """Seed the demo organization when missing; keep the saved keys that still work."""
    from resolvers.demo import seed_demo

    async with db.session() as session:
        exists = await organization_by_slug(session, DEMO_ORG) is not None
    if not exists:
        print(await seed_demo(db, slug=DEMO_ORG, personas=personas, seed=1, progress=True))
    org_id = await _org_id(db, DEMO_ORG)
    keys: dict[str, str] = {}
    async with db.session() as session, session.begin():
        for role in Role:
            key = saved.get(role.value, "")
            found = await authenticate(session, key) if key else None
            if found is None or found.viewer.org_id != org_id:
                key = (await issue_key(session, org_id=org_id, role=role, name=f"dev {role.value.lower()}")).plaintext
            keys[role.value] = key
    return keys


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def build_parser() -> Parser:
    parser = Parser(prog="personagraph", description="PersonaGraph: the persona card GraphQL backend.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    def add(name: str, handler: Callable[[argparse.Namespace, Settings], None], help_: str) -> Parser:
        p: Parser = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    for name, handler, help_ in (
        ("serve", cmd_serve, "serve the API (uvicorn)"),
        ("dev", cmd_dev, "migrate, seed demo data when empty, print a key per role and serve"),
    ):
        p = add(name, handler, help_)
        p.add_argument("--host", default=_env("HOST", "127.0.0.1"))
        p.add_argument("--port", type=int, default=int(_env("PORT", "8000")))
        if name == "dev":
            p.add_argument("--personas", type=int, default=2000, help="demo personas to seed into an empty database")
    add("migrate", cmd_migrate, "upgrade the database to the latest migration")
    p = add("seed-demo", cmd_seed_demo, "create a demo organization with realistic data")
    p.add_argument("--org", default=DEMO_ORG)
    p.add_argument("--personas", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1)
    p = add("create-org", cmd_create_org, "create an organization")
    p.add_argument("--slug", required=True)
    p.add_argument("--name", required=True)
    p = add("create-key", cmd_create_key, "create an API key; prints it alone on the last line")
    p.add_argument("--org", required=True)
    p.add_argument("--role", required=True)
    p.add_argument("--name", required=True)
    p = add("list-keys", cmd_list_keys, "list an organization's keys")
    p.add_argument("--org", required=True)
    p = add("revoke-key", cmd_revoke_key, "revoke a key by its prefix")
    p.add_argument("--prefix", required=True)
    add("export-schema", cmd_export_schema, "print the GraphQL SDL")
    p = add("audit", cmd_audit, "show the audit log of every mutation (no PII)")
    p.add_argument("--org", required=True)
    p.add_argument("--since", help="ISO date or time (UTC unless it says otherwise)")
    p = add("rebuild-rollups", cmd_rebuild_rollups, "recompute every persona's rollups from the raw rows")
    p.add_argument("--org", required=True)
    p = add("import-csv", cmd_import_csv, "import contacts from a CSV file (a report line per rejected line)")
    p.add_argument("--org", required=True)
    p.add_argument("--source", default="RAW_FILE", help="where the file comes from (default RAW_FILE)")
    p.add_argument("--report", help="write every line's outcome to this file (JSON lines)")
    p.add_argument("file", help="UTF-8 CSV with a header line")
    p = add("expire-points", cmd_expire_points, "expire earned points older than pointsExpireAfterDays (idempotent)")
    p.add_argument("--org", help="one organization's slug; default: every organization where points expire")
    return parser


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def main(argv: Sequence[str] | None = None) -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.handler(args, get_settings())
    except (UsageError, ApiError) as exc:
        print(f"personagraph: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
