"""Engines, sessions and transactions; SQLite tuning."""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ocs.db import accounts
from ocs.db.engine import (
    CONNECT_TIMEOUT,
    POOL_TIMEOUT,
    default_url,
    is_unavailable,
    make_engine,
    session_factory,
    transaction,
)
from ocs.db.models import UtcDateTime


def test_default_url(tmp_path: Path) -> None:
    assert default_url(str(tmp_path)) == f"sqlite:///{tmp_path}/ocs.sqlite"
    assert default_url("relative/dir") == f"sqlite:///{os.path.abspath('relative/dir')}/ocs.sqlite"
    assert default_url("~/x").startswith(f"sqlite:///{os.path.expanduser('~')}/x/")


def test_sqlite_pragmas_and_parent_directory(tmp_path: Path) -> None:
    engine = make_engine(default_url(str(tmp_path / "new" / "state")))
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 1000
        assert (tmp_path / "new" / "state" / "ocs.sqlite").exists()
    finally:
        engine.dispose()


def test_sqlite_in_memory_works() -> None:
    engine = make_engine("sqlite://")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT x FROM t").scalar() == 1
    finally:
        engine.dispose()


def test_foreign_keys_are_enforced(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        orphan = text(
            "INSERT INTO access_keys (access_key_id, account_id, secret_encrypted, status, created_at)"
            " VALUES ('AKIAX', '999999999999', 'x', 'Active', '2030-01-01 00:00:00')"
        )
        with pytest.raises(Exception, match="FOREIGN KEY"), transaction(session_factory(engine)) as s:
            s.execute(orphan)
    finally:
        engine.dispose()


def test_transaction_commits_and_rolls_back(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    factory = session_factory(engine)
    try:
        with transaction(factory) as s:
            accounts.create_account(s, "kept")
        with pytest.raises(KeyError), transaction(factory) as s:
            accounts.create_account(s, "dropped")
            raise KeyError("boom")
        with transaction(factory) as s:
            assert [a.name for a in accounts.list_accounts(s)] == ["kept"]
    finally:
        engine.dispose()


def test_mysql_urls_get_utf8mb4() -> None:
    engine = make_engine("mysql+pymysql://u@127.0.0.1:1/db")
    try:
        assert engine.url.query["charset"] == "utf8mb4"
    finally:
        engine.dispose()


def test_utc_datetime_refuses_naive_values() -> None:
    t = UtcDateTime()
    dialect = make_engine("sqlite://").dialect
    with pytest.raises(ValueError, match="naive datetime"):
        t.process_bind_param(dt.datetime(2030, 1, 1), dialect)
    aware = dt.datetime(2030, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=3)))
    assert t.process_bind_param(aware, dialect) == dt.datetime(2030, 1, 1, 9)
    assert t.process_result_value(dt.datetime(2030, 1, 1, 9), dialect) == aware


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://ocs@db.example/ocs", "postgresql+psycopg2"),  # the postgres extra's driver
        ("mysql://root@db.example/ocs", "mysql+pymysql"),  # the mysql extra's driver
        ("mariadb://root@db.example/ocs", "mariadb+pymysql"),
        ("postgresql+psycopg2://ocs@db.example/ocs", "postgresql+psycopg2"),  # named drivers are kept
        ("sqlite:////tmp/x.sqlite", "sqlite"),
    ],
)
def test_a_url_without_a_driver_gets_the_installed_one(url: str, driver: str) -> None:
    engine = make_engine(url)
    try:
        assert engine.url.drivername == driver
    finally:
        engine.dispose()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once closed


def test_a_server_that_never_answers_fails_the_connection_in_time() -> None:
    # A listening socket nobody accepts on: the kernel completes the TCP handshake and
    # the client then waits for the server's first message, which never comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        engine = make_engine(f"postgresql+psycopg2://u@127.0.0.1:{port}/db", connect_timeout=2)
        assert engine.pool.timeout() == POOL_TIMEOUT
        began = time.monotonic()
        try:
            with pytest.raises(DBAPIError) as hung, engine.connect():
                pass
        finally:
            engine.dispose()
    assert time.monotonic() - began < 2 + CONNECT_TIMEOUT
    assert is_unavailable(hung.value)


def test_an_unreachable_server_is_unavailable_not_a_bug(tmp_path: Path) -> None:
    engine = make_engine(f"postgresql+psycopg2://u@127.0.0.1:{_closed_port()}/db")
    try:
        with pytest.raises(DBAPIError) as down, engine.connect():
            pass
    finally:
        engine.dispose()
    assert is_unavailable(down.value)
    sqlite = make_engine(f"sqlite:///{tmp_path}/x.sqlite")
    try:
        with pytest.raises(DBAPIError) as wrong, sqlite.connect() as conn:
            conn.execute(text("SELECT * FROM no_such_table"))
    finally:
        sqlite.dispose()
    assert not is_unavailable(wrong.value)  # a bug of ours, not an outage
