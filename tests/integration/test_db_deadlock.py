"""A real deadlock on each server database is recognised as retryable."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ocs.db import engine as db_engine
from tests.dbfixtures import throwaway_database


@pytest.mark.parametrize("backend", ["postgres", "mariadb"])
def test_deadlock_victim_is_retryable(backend):
    with throwaway_database(backend, migrate=False) as url:
        engine = db_engine.make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE pair (id INTEGER PRIMARY KEY, v INTEGER)"))
            conn.execute(text("INSERT INTO pair VALUES (1, 0), (2, 0)"))
        barrier = threading.Barrier(2)
        errors: list[DBAPIError] = []

        def worker(first: int, second: int) -> None:
            try:
                with engine.begin() as conn:
                    conn.execute(text("UPDATE pair SET v = v + 1 WHERE id = :i"), {"i": first})
                    barrier.wait(timeout=10)
                    conn.execute(text("UPDATE pair SET v = v + 1 WHERE id = :i"), {"i": second})
            except DBAPIError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=a) for a in ((1, 2), (2, 1))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        engine.dispose()
    assert len(errors) == 1, errors
    assert db_engine.is_retryable(errors[0])
