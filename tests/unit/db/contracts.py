"""Tests every database backend must pass, written once.

The unit tier runs them on SQLite (``test_accounts.py``, ``test_migration.py``);
the integration tier on PostgreSQL and MariaDB (``tests/integration/test_db_*``).
A subclass provides the fixture ``url`` (a migrated database) or ``empty_url``
(one never migrated).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable, Iterator

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text
from sqlalchemy.orm import Session, sessionmaker

from ocs import errors
from ocs.crypto import DecryptionError, SecretBox
from ocs.db import accounts, migration
from ocs.db.engine import make_engine, session_factory, transaction
from ocs.db.models import AccessKey, Account

KEY_ID = re.compile(r"^AKIA[A-Z2-7]{16}$")


def ids(*values: str) -> Callable[[], str]:
    """An id generator handing out ``values`` in order."""
    it = iter(values)
    return lambda: next(it)


def run_threads(n: int, target: Callable[[int], None]) -> list[BaseException]:
    """Run ``target(i)`` in ``n`` threads started together; return their errors."""
    barrier = threading.Barrier(n)
    failures: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return failures


class AccountsContract:
    """Repository behaviour on a migrated database given by the fixture ``url``."""

    @pytest.fixture
    def engine(self, url: str) -> Iterator[Engine]:
        engine = make_engine(url)
        yield engine
        engine.dispose()

    @pytest.fixture
    def factory(self, engine: Engine) -> sessionmaker[Session]:
        return session_factory(engine)

    @pytest.fixture
    def box(self) -> SecretBox:
        return SecretBox.from_key(SecretBox.generate_key())

    # --- accounts ------------------------------------------------------------

    def test_create_and_get_account(self, factory: sessionmaker[Session]) -> None:
        with transaction(factory) as s:
            made = accounts.create_account(s, "alice")
        assert re.fullmatch(r"[0-9]{12}", made.id)
        with transaction(factory) as s:
            by_name = accounts.get_account(s, "alice")
            by_id = accounts.get_account(s, made.id)
            assert by_name is by_id
            assert by_name.enabled is True
            assert by_name.created_at.tzinfo is not None
            assert by_name.created_at.utcoffset() == dt.timedelta(0)
            assert abs(by_name.created_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)

    def test_list_accounts_by_name(self, factory: sessionmaker[Session]) -> None:
        with transaction(factory) as s:
            for name in ("carol", "alice", "bob"):
                accounts.create_account(s, name)
        with transaction(factory) as s:
            assert [a.name for a in accounts.list_accounts(s)] == ["alice", "bob", "carol"]

    def test_duplicate_name_is_a_clear_error(self, factory: sessionmaker[Session]) -> None:
        with transaction(factory) as s:
            accounts.create_account(s, "alice")
        exists = pytest.raises(accounts.AccountExists, match="account named 'alice' already exists")
        with exists, transaction(factory) as s:
            accounts.create_account(s, "alice")
        assert isinstance(accounts.AccountExists(name="x"), errors.Duplicate)

    def test_concurrent_duplicate_names(self, factory: sessionmaker[Session]) -> None:
        def create(_: int) -> None:
            with transaction(factory) as s:
                accounts.create_account(s, "racer")

        failures = run_threads(4, create)
        assert len(failures) == 3, failures
        assert all(isinstance(f, accounts.AccountExists) for f in failures), failures
        with transaction(factory) as s:
            assert [a.name for a in accounts.list_accounts(s)] == ["racer"]

    def test_account_id_collision_is_retried(self, factory: sessionmaker[Session]) -> None:
        with transaction(factory) as s:
            accounts.create_account(s, "first", new_id=ids("000000000001"))
        with transaction(factory) as s:
            second = accounts.create_account(s, "second", new_id=ids("000000000001", "000000000002"))
        assert second.id == "000000000002"
        with transaction(factory) as s:
            assert [a.id for a in accounts.list_accounts(s)] == ["000000000001", "000000000002"]

    def test_endless_id_collisions_give_up(self, factory: sessionmaker[Session]) -> None:
        with transaction(factory) as s:
            accounts.create_account(s, "first", new_id=ids("000000000001"))
        with pytest.raises(errors.InternalError, match="No free id"), transaction(factory) as s:
            accounts.create_account(s, "second", new_id=lambda: "000000000001")

    @pytest.mark.parametrize("name", ["", " alice", "a b", "123456789012", "x" * 65, "é"])
    def test_invalid_account_names(self, factory: sessionmaker[Session], name: str) -> None:
        with pytest.raises(errors.InvalidParameterValue), transaction(factory) as s:
            accounts.create_account(s, name)

    def test_unknown_account(self, factory: sessionmaker[Session]) -> None:
        with pytest.raises(accounts.AccountNotFound, match="'nobody'"), transaction(factory) as s:
            accounts.get_account(s, "nobody")

    def test_rollback_on_error(self, factory: sessionmaker[Session]) -> None:
        with pytest.raises(RuntimeError), transaction(factory) as s:
            accounts.create_account(s, "ghost")
            raise RuntimeError("boom")
        with transaction(factory) as s:
            assert accounts.list_accounts(s) == []

    def test_concurrent_writes(self, factory: sessionmaker[Session]) -> None:
        def create(i: int) -> None:
            for j in range(10):
                with transaction(factory) as s:
                    accounts.list_accounts(s)  # read, then write: the SQLite trap
                    accounts.create_account(s, f"t{i}-{j}")

        assert run_threads(6, create) == []
        with transaction(factory) as s:
            assert len(accounts.list_accounts(s)) == 60

    # --- access keys ---------------------------------------------------------

    def test_create_access_key(self, factory: sessionmaker[Session], box: SecretBox) -> None:
        with transaction(factory) as s:
            acct = accounts.create_account(s, "alice")
            key, secret = accounts.create_access_key(s, "alice", box)
        assert KEY_ID.match(key.access_key_id)
        assert len(secret) == 40
        assert key.account_id == acct.id
        assert key.status == "Active" and key.last_used_at is None
        with transaction(factory) as s:
            assert accounts.lookup_secret(s, key.access_key_id, box) == (acct.id, secret)
            assert [k.access_key_id for k in accounts.list_access_keys(s, acct.id)] == [key.access_key_id]

    def test_secret_is_stored_encrypted(self, factory: sessionmaker[Session], box: SecretBox) -> None:
        with transaction(factory) as s:
            accounts.create_account(s, "alice")
            key, secret = accounts.create_access_key(s, "alice", box)
        with transaction(factory) as s:
            raw = s.execute(
                text("SELECT secret_encrypted FROM access_keys WHERE access_key_id = :k"),
                {"k": key.access_key_id},
            ).scalar_one()
        assert secret not in raw
        assert box.decrypt(raw) == secret
        other = SecretBox.from_key(SecretBox.generate_key())
        with pytest.raises(DecryptionError, match="cannot be decrypted") as info, transaction(factory) as s:
            accounts.lookup_secret(s, key.access_key_id, other)
        assert info.value.__cause__ is None and info.value.__suppress_context__
        assert secret not in str(info.value) and raw not in str(info.value)
        assert secret not in repr(key) and raw not in repr(key)

    def test_access_key_id_collision_is_retried(self, factory: sessionmaker[Session], box: SecretBox) -> None:
        first, second = "AKIAAAAAAAAAAAAAAAAA", "AKIABBBBBBBBBBBBBBBB"
        with transaction(factory) as s:
            accounts.create_account(s, "alice")
            accounts.create_access_key(s, "alice", box, new_id=ids(first))
        with transaction(factory) as s:
            key, _ = accounts.create_access_key(s, "alice", box, new_id=ids(first, second))
        assert key.access_key_id == second

    def test_access_key_for_unknown_account(self, factory: sessionmaker[Session], box: SecretBox) -> None:
        with pytest.raises(accounts.AccountNotFound), transaction(factory) as s:
            accounts.create_access_key(s, "nobody", box)

    def test_list_access_keys(self, factory: sessionmaker[Session], box: SecretBox) -> None:
        with transaction(factory) as s:
            accounts.create_account(s, "alice")
            accounts.create_account(s, "bob")
            a1, _ = accounts.create_access_key(s, "alice", box)
            b1, _ = accounts.create_access_key(s, "bob", box)
            a2, _ = accounts.create_access_key(s, "alice", box)
        with transaction(factory) as s:
            assert {k.access_key_id for k in accounts.list_access_keys(s)} == {
                a1.access_key_id,
                a2.access_key_id,
                b1.access_key_id,
            }
            assert {k.access_key_id for k in accounts.list_access_keys(s, "alice")} == {
                a1.access_key_id,
                a2.access_key_id,
            }
            with pytest.raises(accounts.AccountNotFound):
                accounts.list_access_keys(s, "nobody")

    def test_revoked_key_is_not_looked_up(self, factory: sessionmaker[Session], box: SecretBox) -> None:
        with transaction(factory) as s:
            accounts.create_account(s, "alice")
            key, _ = accounts.create_access_key(s, "alice", box)
        with transaction(factory) as s:
            assert accounts.revoke_access_key(s, key.access_key_id).status == "Inactive"
        with transaction(factory) as s:
            assert accounts.lookup_secret(s, key.access_key_id, box) is None
            assert accounts.get_access_key(s, key.access_key_id).active is False

    def test_revoke_unknown_key(self, factory: sessionmaker[Session]) -> None:
        with pytest.raises(accounts.AccessKeyNotFound, match="AKIANOPE"), transaction(factory) as s:
            accounts.revoke_access_key(s, "AKIANOPE")

    def test_disabled_account_is_not_looked_up(self, factory: sessionmaker[Session], box: SecretBox) -> None:
        with transaction(factory) as s:
            accounts.create_account(s, "alice")
            key, secret = accounts.create_access_key(s, "alice", box)
            accounts.set_account_enabled(s, "alice", False)
        with transaction(factory) as s:
            assert accounts.lookup_secret(s, key.access_key_id, box) is None
            accounts.set_account_enabled(s, "alice", True)
        with transaction(factory) as s:
            assert accounts.lookup_secret(s, key.access_key_id, box) == (key.account_id, secret)

    def test_unknown_key_is_not_looked_up(self, factory: sessionmaker[Session], box: SecretBox) -> None:
        with transaction(factory) as s:
            assert accounts.lookup_secret(s, "AKIAUNKNOWNUNKNOWN00", box) is None

    def test_touch_and_delete_access_key(self, factory: sessionmaker[Session], box: SecretBox) -> None:
        when = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
        with transaction(factory) as s:
            accounts.create_account(s, "alice")
            key, _ = accounts.create_access_key(s, "alice", box)
        with transaction(factory) as s:
            accounts.touch_access_key(s, key.access_key_id, when)
        with transaction(factory) as s:
            used = accounts.get_access_key(s, key.access_key_id).last_used_at
            assert used == when and used is not None and used.utcoffset() == dt.timedelta(0)
            accounts.delete_access_key(s, key.access_key_id)
        with transaction(factory) as s:
            assert accounts.list_access_keys(s) == []

    def test_deleting_an_account_deletes_its_keys(
        self, factory: sessionmaker[Session], box: SecretBox
    ) -> None:
        with transaction(factory) as s:
            acct = accounts.create_account(s, "alice")
            accounts.create_access_key(s, "alice", box)
        with transaction(factory) as s:  # at the SQL level: the foreign key cascades
            s.execute(text("DELETE FROM accounts WHERE id = :id"), {"id": acct.id})
        with transaction(factory) as s:
            assert s.query(AccessKey).count() == 0 and s.query(Account).count() == 0


class MigrationContract:
    """Migrations on a database never migrated, given by the fixture ``empty_url``."""

    def test_empty_database_is_not_current(self, empty_url: str) -> None:
        assert migration.current(empty_url) is None
        assert migration.check(empty_url) is False

    def test_sync_twice_is_a_no_op(self, empty_url: str) -> None:
        migration.sync(empty_url)
        assert migration.current(empty_url) == migration.head()
        assert migration.check(empty_url) is True
        before = _schema(empty_url)
        migration.sync(empty_url)
        assert _schema(empty_url) == before
        assert migration.current(empty_url) == migration.head()

    def test_downgrade_to_base_and_up_again(self, empty_url: str) -> None:
        migration.sync(empty_url)
        engine = make_engine(empty_url, sqlite_foreign_keys=False)
        try:
            with engine.begin() as conn:
                cfg = migration.alembic_config()
                cfg.attributes["connection"] = conn
                command.downgrade(cfg, "base")
            assert migration.current(empty_url) is None
            assert _schema(empty_url)["tables"] == ["alembic_version"]
        finally:
            engine.dispose()
        migration.sync(empty_url)
        assert migration.check(empty_url) and migration.diff(empty_url) == []

    def test_models_match_migrations(self, empty_url: str) -> None:
        migration.sync(empty_url)
        assert migration.diff(empty_url) == []

    def test_timestamps_come_back_aware(self, empty_url: str) -> None:
        migration.sync(empty_url)
        engine = make_engine(empty_url)
        try:
            when = dt.datetime(2031, 5, 6, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
            with transaction(session_factory(engine)) as s:
                s.add(Account(id="000000000042", name="tz", created_at=when))
            with transaction(session_factory(engine)) as s:
                got = s.get(Account, "000000000042")
                assert got is not None and got.created_at == when
                assert got.created_at.tzinfo is dt.UTC
            naive = dt.datetime(2031, 1, 1)
            with pytest.raises(Exception, match="naive datetime"), transaction(session_factory(engine)) as s:
                s.add(Account(id="000000000043", name="naive", created_at=naive))
        finally:
            engine.dispose()


def _schema(url: str) -> dict[str, object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            tables = sorted(insp.get_table_names())
            version_rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
            return {
                "tables": tables,
                "columns": {t: [c["name"] for c in insp.get_columns(t)] for t in tables},
                "indexes": {t: sorted(i["name"] or "" for i in insp.get_indexes(t)) for t in tables},
                "versions": [tuple(r) for r in version_rows],
            }
    finally:
        engine.dispose()
