"""Engines, sessions and transactions.

Every process makes one engine per database URL with :func:`make_engine`, one
session factory with :func:`session_factory`, and does its work in short
transactions::

    engine = make_engine(url)
    factory = session_factory(engine)
    with transaction(factory) as s:
        accounts.create_account(s, "demo")

SQLite (the all-in-one default) gets what it needs to serve several threads at
once: foreign keys on, write-ahead logging so readers never block the writer, a
busy timeout, and ``BEGIN IMMEDIATE`` so a transaction takes the write lock when
it starts. Without the last one, a transaction that reads and then writes fails
at once with "database is locked" when another writer committed in between,
whatever the busy timeout says.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

LOG = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT = 30.0
"""Seconds a SQLite connection waits for a lock before it gives up."""

DB_FILE_NAME = "ocs.sqlite"


CONNECT_TIMEOUT = 5
"""Seconds a new connection to a database server may take (PostgreSQL, MySQL)."""

POOL_TIMEOUT = 10.0
"""Seconds a session waits for a free pooled connection before it fails."""

_CONNECT_TIMEOUT_ARG = frozenset({"postgresql", "mysql", "mariadb"})


def default_url(state_dir: str) -> str:
    """The URL of the all-in-one's SQLite file inside ``state_dir``."""
    path = os.path.abspath(os.path.expanduser(state_dir))
    return f"sqlite:///{os.path.join(path, DB_FILE_NAME)}"


#: The driver OCS's extras install for a URL that names none (``postgresql://``,
#: ``mysql://``): SQLAlchemy's own defaults (psycopg 3, MySQLdb) are not installed.
_DRIVERS = {
    "postgresql": ("psycopg2", "psycopg"),
    "mysql": ("pymysql", "MySQLdb"),
    "mariadb": ("pymysql", "MySQLdb"),
}


def with_installed_driver(u: URL) -> URL:
    """``u`` with a driver that is installed when it names no driver itself."""
    backend = u.get_backend_name()
    if backend not in _DRIVERS or "+" in u.drivername:
        return u
    for module in _DRIVERS[backend]:
        if importlib.util.find_spec(module) is not None:
            return u.set(drivername=f"{backend}+{module.lower()}")
    return u


def make_engine(
    url: str | URL,
    *,
    pool_size: int = 5,
    max_overflow: int = 10,
    echo: bool = False,
    sqlite_foreign_keys: bool = True,
    connect_timeout: int = CONNECT_TIMEOUT,
) -> Engine:
    """An engine for ``url``, tuned for its backend.

    ``pool_size`` and ``max_overflow`` apply to server databases; SQLite keeps the
    pool SQLAlchemy picks for it. ``sqlite_foreign_keys=False`` is for migrations
    only (Alembic's batch mode recreates tables, which must not cascade).
    The directory of a SQLite file is created (mode 0700) when missing.
    ``connect_timeout`` bounds a new connection to a server (unless the URL sets it).
    """
    u = with_installed_driver(make_url(url))
    if u.get_backend_name() == "sqlite":
        return _sqlite_engine(u, echo=echo, foreign_keys=sqlite_foreign_keys)
    kwargs: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": max_overflow,
        "pool_pre_ping": True,
        "pool_timeout": POOL_TIMEOUT,
        "echo": echo,
    }
    if u.get_backend_name() in _CONNECT_TIMEOUT_ARG and "connect_timeout" not in u.query:
        # Without it a server that does not answer (host down, packets dropped) holds a
        # request for the kernel's TCP timeout, minutes, instead of failing it.
        kwargs["connect_args"] = {"connect_timeout": connect_timeout}
    if u.get_backend_name() in ("mysql", "mariadb"):
        if "charset" not in u.query:
            u = u.update_query_dict({"charset": "utf8mb4"})
        kwargs["pool_recycle"] = 3600  # below the server's wait_timeout
        # Each statement sees what other transactions committed, as on PostgreSQL;
        # InnoDB's default REPEATABLE READ would answer from a stale snapshot.
        kwargs["isolation_level"] = "READ COMMITTED"
    return create_engine(u, **kwargs)


#: Execution option of the connections of read-only sessions (see :func:`session_factory`).
READ_ONLY_OPTION = "ocs_read_only"


def _sqlite_engine(u: URL, *, echo: bool, foreign_keys: bool) -> Engine:
    database = u.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory:
        directory = os.path.dirname(os.path.abspath(database))
        os.makedirs(directory, mode=0o700, exist_ok=True)
    engine = create_engine(u, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the driver: SQLAlchemy emits BEGIN.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
            cur.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT * 1000)}")
            if not in_memory:
                cur.execute("PRAGMA journal_mode = WAL")
                cur.execute("PRAGMA synchronous = NORMAL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the lock up front (no deadlock on upgrading a read lock); readers
        # (read_only sessions) take a snapshot and never wait for a writer under WAL.
        deferred = conn.get_execution_options().get(READ_ONLY_OPTION)
        conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")

    return engine


def session_factory(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """A session factory bound to ``engine``.

    Objects stay readable after commit (``expire_on_commit=False``), so a
    repository function may return them out of its transaction. ``read_only``
    sessions promise to write nothing: on SQLite their transactions begin deferred,
    so readers that poll often (the network service) never queue for the write lock.
    """
    bind = engine.execution_options(**{READ_ONLY_OPTION: True}) if read_only else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in a transaction: committed on success, rolled back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


#: Errors a database raises when it aborts a transaction to break a deadlock or a
#: serialization conflict: retrying the whole transaction is the remedy.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # PostgreSQL
_RETRYABLE_MYSQL_ERRNOS = frozenset({1213, 1205})  # MariaDB deadlock, lock wait timeout


def is_retryable(exc: DBAPIError) -> bool:
    """Whether the database aborted the transaction for a deadlock or serialization conflict."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "pgcode", None) in _RETRYABLE_SQLSTATES:
        return True
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in _RETRYABLE_MYSQL_ERRNOS:
        return True
    return "database is locked" in str(orig or "")


def is_unavailable(exc: DBAPIError) -> bool:
    """Whether ``exc`` says the database could not be reached or the connection was lost
    (server down or restarting, network cut), rather than that the statement was wrong.

    Such an error is the server's fault, not the request's: the API answers it as EC2
    does a server fault (``Unavailable``, 503), which clients retry. A deadlock or
    serialization failure (:func:`is_retryable`) is not counted here.
    """
    if exc.connection_invalidated:
        return True
    if type(exc.orig).__module__.split(".", 1)[0] == "sqlite3":
        return False  # a file, not a server: its OperationalError means a bad statement too
    return isinstance(exc, (OperationalError, InterfaceError)) and not is_retryable(exc)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` is a database error of :func:`is_unavailable` kind (any exception)."""
    return isinstance(exc, DBAPIError) and is_unavailable(exc)


T = TypeVar("T")

#: Runs of a unit of work chosen as a deadlock victim, the first included.
DEADLOCK_RETRIES = 5


def retry_on_deadlock(
    work: Callable[[], T],
    *,
    what: str,
    attempts: int = DEADLOCK_RETRIES,
    may_retry: Callable[[DBAPIError], bool] = lambda _exc: True,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``work()``, run again (up to ``attempts`` runs in all, after a short random
    pause growing with each run) when the database aborts it to break a deadlock or a
    serialization conflict (:func:`is_retryable`).

    ``work`` must be safe to run again after such an error: its transactions roll back
    whole, and whatever it had committed before (``may_retry`` says False when it did)
    is idempotent. ``what`` names it in the log. Any other error, and the last
    deadlock, is raised.
    """
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except DBAPIError as exc:
            if attempt == attempts or not is_retryable(exc) or not may_retry(exc):
                raise
            LOG.info("%s: database deadlock or serialization conflict, retrying (%d)", what, attempt)
            sleep(random.uniform(0.01, 0.05) * attempt)
    raise AssertionError("unreachable")
