"""Database fixtures for every test tier.

Use them from a test module or conftest with ``from tests.dbfixtures import *``.

- ``sqlite_url``: a freshly migrated SQLite file (no services needed).
- ``db_url``: the same over SQLite and PostgreSQL (the PostgreSQL case skips, or
  fails on CI, when the server is missing).
- ``any_db_url``: SQLite, PostgreSQL and MariaDB.
- ``postgres_url`` / ``mariadb_url``: one backend only.
- ``empty_db_url``: a database never migrated, over all three backends.
- ``secret_box``: a SecretBox with a fresh random key.
- ``db_factory``: a session factory on ``db_url`` (engine disposed afterwards).

Server databases are throwaway ones named ``ocs_test_<random>``, created through
the server URL of :mod:`tests.services` and dropped after the test.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from ocs.crypto import SecretBox
from ocs.db import migration
from ocs.db.engine import make_engine, session_factory
from tests import services

__all__ = [
    "any_db_url",
    "db_factory",
    "db_url",
    "empty_db_url",
    "mariadb_url",
    "postgres_url",
    "secret_box",
    "sqlite_url",
    "throwaway_database",
]

BACKENDS = ("sqlite", "postgres", "mariadb")


@contextmanager
def _sqlite_database() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="ocs-test-db-")
    try:
        yield f"sqlite:///{os.path.join(directory, 'ocs.sqlite')}"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def _server_database(server_url: str, drop_suffix: str = "") -> Iterator[str]:
    name = f"ocs_test_{secrets.token_hex(6)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{drop_suffix}")
    finally:
        admin.dispose()


@contextmanager
def throwaway_database(backend: str, *, migrate: bool = True) -> Iterator[str]:
    """The URL of a new, empty database on ``backend`` (migrated to head unless
    ``migrate`` is false), removed afterwards. Skips when the server is missing."""
    if backend == "sqlite":
        cm = _sqlite_database()
    elif backend == "postgres":
        cm = _server_database(services.require_postgres(), " WITH (FORCE)")
    elif backend == "mariadb":
        cm = _server_database(services.require_mysql())
    else:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    with cm as url:
        if migrate:
            migration.sync(url)
        yield url


@pytest.fixture
def sqlite_url() -> Iterator[str]:
    """A freshly migrated SQLite database."""
    with throwaway_database("sqlite") as url:
        yield url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A freshly migrated PostgreSQL database."""
    with throwaway_database("postgres") as url:
        yield url


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A freshly migrated MariaDB database."""
    with throwaway_database("mariadb") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A freshly migrated database, SQLite then PostgreSQL."""
    with throwaway_database(request.param) as url:
        yield url


@pytest.fixture(params=list(BACKENDS))
def any_db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A freshly migrated database on each of SQLite, PostgreSQL and MariaDB."""
    with throwaway_database(request.param) as url:
        yield url


@pytest.fixture(params=list(BACKENDS))
def empty_db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database that was never migrated, on each backend."""
    with throwaway_database(request.param, migrate=False) as url:
        yield url


@pytest.fixture
def secret_box() -> SecretBox:
    """A SecretBox with a fresh random key."""
    return SecretBox.from_key(SecretBox.generate_key())


@pytest.fixture
def db_factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    """A session factory on ``db_url``; its engine is disposed after the test."""
    engine = make_engine(db_url)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()
