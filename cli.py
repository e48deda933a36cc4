"""The `personagraph` command line: serve, migrate, seed, keys and chores.

Every command reads DATABASE_URL (default: the embedded SQLite file). A bad
argument prints one line and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig

from database import Database, create_engine, sync_url
from permissions.keys import authenticate, issue_key, list_keys, revoke_key
from permissions.matrix import Role
from resolvers.errors import ApiError
from resolvers.organizations import create_organization, organization_by_slug
from settings import ROOT, Settings, get_settings

MIGRATIONS = Path(__file__).resolve().parent / "models" / "migrations"
DEV_KEYS_FILE = ROOT / "var" / "dev-keys.json"
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
        print(f"revoked key {key.prefix} ({key.name})")

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


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    if settings.is_production and settings.is_sqlite and not settings.allow_sqlite_in_production:
        raise UsageError("refusing to serve production on SQLite; set DATABASE_URL or ALLOW_SQLITE_IN_PRODUCTION=1")
    if settings.is_production and not settings.secret:
        raise UsageError("PERSONAGRAPH_SECRET must be set in production")
    uvicorn.run("app:create_app", factory=True, host=args.host, port=args.port, log_level="info")


def cmd_dev(args: argparse.Namespace, settings: Settings) -> None:
    """make run: migrate, seed the demo organization when empty, print keys, serve."""
    migrate(settings)
    keys = asyncio.run(_with_db(settings, lambda db: _dev_setup(db, settings)))
    url = f"http://{args.host}:{args.port}/graphql"
    print(f'\nGraphiQL: {url}\nPaste one key into GraphiQL\'s headers as {{"Authorization": "Bearer <key>"}}\n')
    for role, key in keys.items():
        print(f"  {role:<18} {key}")
    print()
    cmd_serve(args, settings)


async def _dev_setup(db: Database, settings: Settings) -> dict[str, str]:
    from resolvers.demo import seed_demo

    async with db.session() as session:
        exists = await organization_by_slug(session, DEMO_ORG) is not None
    if not exists:
        print(await seed_demo(db, slug=DEMO_ORG, personas=2000, seed=1, progress=True))
    org_id = await _org_id(db, DEMO_ORG)
    saved: dict[str, str] = {}
    if DEV_KEYS_FILE.exists():
        saved = json.loads(DEV_KEYS_FILE.read_text()).get(settings.database_url, {})
    keys: dict[str, str] = {}
    async with db.session() as session, session.begin():
        for role in Role:
            key = saved.get(role.value, "")
            found = await authenticate(session, key) if key else None
            if found is None or found.viewer.org_id != org_id:
                key = (await issue_key(session, org_id=org_id, role=role, name=f"dev {role.value.lower()}")).plaintext
            keys[role.value] = key
    everything = json.loads(DEV_KEYS_FILE.read_text()) if DEV_KEYS_FILE.exists() else {}
    everything[settings.database_url] = keys
    DEV_KEYS_FILE.parent.mkdir(parents=True, exist_ok=True)
    DEV_KEYS_FILE.write_text(json.dumps(everything, indent=2))
    DEV_KEYS_FILE.chmod(0o600)
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
    return parser


def _env(name: str, default: str) -> str:
    import os

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
