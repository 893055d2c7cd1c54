"""The shared database fixtures of tests/dbfixtures.py hand out what they promise."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from ocs.crypto import SecretBox
from ocs.db import accounts, migration
from ocs.db.engine import transaction
from tests.dbfixtures import *  # noqa: F403


def test_db_url_is_migrated(db_url: str) -> None:
    assert migration.check(db_url)


def test_any_db_url_is_migrated(any_db_url: str) -> None:
    assert migration.check(any_db_url)


def test_empty_db_url_is_not_migrated(empty_db_url: str) -> None:
    assert migration.current(empty_db_url) is None


def test_single_backend_fixtures(sqlite_url: str, postgres_url: str, mariadb_url: str) -> None:
    assert sqlite_url.startswith("sqlite:///")
    assert postgres_url.startswith("postgresql") and "/ocs_test_" in postgres_url
    assert mariadb_url.startswith("mysql") and "/ocs_test_" in mariadb_url
    assert all(migration.check(u) for u in (sqlite_url, postgres_url, mariadb_url))


def test_db_factory_and_secret_box(db_factory: sessionmaker[Session], secret_box: SecretBox) -> None:
    with transaction(db_factory) as s:
        accounts.create_account(s, "demo")
        key, secret = accounts.create_access_key(s, "demo", secret_box)
    with transaction(db_factory) as s:
        assert accounts.lookup_secret(s, key.access_key_id, secret_box) == (key.account_id, secret)


def test_every_test_gets_a_fresh_database(db_factory: sessionmaker[Session]) -> None:
    with transaction(db_factory) as s:
        assert accounts.list_accounts(s) == []
        accounts.create_account(s, "demo")
