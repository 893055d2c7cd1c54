"""``ocs-manage db sync|version``."""

from __future__ import annotations

import argparse

from oslo_config import cfg

from ocs.api_ec2.service import database_url
from ocs.db import migration


def sync(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    url = database_url(conf)
    migration.sync(url)
    print(f"database at revision {migration.current(url)} (head)")
    return 0


def version(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    url = database_url(conf)
    current = migration.current(url)
    state = "head" if migration.check(url) else "needs 'ocs-manage db sync'"
    print(f"{current or 'empty'} ({state})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    db = sub.add_parser("db", help="database schema migrations")
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    p = dbsub.add_parser("sync", help="upgrade the database to the newest schema (safe to repeat)")
    p.set_defaults(func=sync)
    p = dbsub.add_parser("version", help="show the schema revision of the database")
    p.set_defaults(func=version)
