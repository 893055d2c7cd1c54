"""Schema migrations, run programmatically (no alembic.ini needed).

:func:`sync` brings a database to the newest schema and is a no-op when it is
there already; :func:`check` tells whether it is; :func:`diff` lists what the
models have that the migrations do not (empty when they agree).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from ocs import errors
from ocs.db.engine import make_engine
from ocs.db.models import Base

LOG = logging.getLogger(__name__)

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")


class ForeignKeyViolation(errors.InternalError):
    """A SQLite migration left rows that point at nothing."""

    message = "After migrating, {count} rows violate foreign keys (first: {first})."


def alembic_config() -> Config:
    """An Alembic configuration pointing at the migrations in this package."""
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS_DIR)
    return cfg


def head() -> str:
    """The newest revision the migrations know."""
    rev = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert rev is not None, "no migrations found"
    return rev


def _migration_engine(url: str | URL) -> Engine:
    # Foreign keys off on SQLite: batch migrations recreate tables.
    return make_engine(url, pool_size=1, max_overflow=0, sqlite_foreign_keys=False)


def sync(url: str | URL, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (default: the newest)."""
    engine = _migration_engine(url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            before = MigrationContext.configure(conn).get_current_revision()
            command.upgrade(cfg, revision)
            after = MigrationContext.configure(conn).get_current_revision()
            if conn.dialect.name == "sqlite":
                _check_foreign_keys(conn)
        if before != after:
            LOG.info("Database migrated from %s to %s", before or "empty", after)
    finally:
        engine.dispose()


def _check_foreign_keys(conn: Any) -> None:
    rows = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if rows:
        raise ForeignKeyViolation(count=len(rows), first=tuple(rows[0]))


def current(url: str | URL) -> str | None:
    """The revision the database is at; None when it was never migrated."""
    engine = _migration_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def check(url: str | URL) -> bool:
    """Whether the database is at the newest revision."""
    return current(url) == head()


def diff(url: str | URL) -> list[Any]:
    """Differences between the models and the database's schema, as Alembic's
    autogenerate sees them; empty when they agree."""
    engine = _migration_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        engine.dispose()
