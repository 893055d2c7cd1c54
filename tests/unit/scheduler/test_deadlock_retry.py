"""Deadlocks on a real PostgreSQL: the shared retry helper, and the scheduler's handlers
using it (the API's requests use the same one).

Skipped without the machine's PostgreSQL (unless OCS_TEST_REQUIRE_SERVICES is set).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from ocs.bus import Bus
from ocs.compute_agent.rpcapi import ComputeApi
from ocs.db import accounts, compute, vpcs
from ocs.db import engine as db_engine
from ocs.db import hosts as db_hosts
from ocs.db import instance_events as db_events
from ocs.db.models.compute import Instance
from ocs.scheduler.rpcapi import InstanceEvent
from ocs.scheduler.service import SchedulerEndpoint
from tests.dbfixtures import throwaway_database
from tests.framework.launches import default_subnet_spec

ZONE = "us-east-1a"


@pytest.fixture
def engine() -> Any:
    with throwaway_database("postgres") as url:
        engine = db_engine.make_engine(url)
        yield engine
        engine.dispose()


def test_two_transactions_locking_two_rows_in_opposite_order_both_succeed(
    engine: Engine, caplog: Any
) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE pair (id INTEGER PRIMARY KEY, v INTEGER)"))
        conn.execute(text("INSERT INTO pair VALUES (1, 0), (2, 0)"))
    barrier = threading.Barrier(2)
    runs: list[int] = []
    failures: list[BaseException] = []

    def work(first: int, second: int) -> None:
        runs.append(first)
        with engine.begin() as conn:
            conn.execute(text("UPDATE pair SET v = v + 1 WHERE id = :i"), {"i": first})
            if runs.count(first) == 1:  # only the first run meets the other in the middle
                barrier.wait(timeout=10)
            conn.execute(text("UPDATE pair SET v = v + 1 WHERE id = :i"), {"i": second})

    def worker(first: int, second: int) -> None:
        try:
            db_engine.retry_on_deadlock(lambda: work(first, second), what=f"pair {first}")
        except BaseException as exc:
            failures.append(exc)

    caplog.set_level(logging.INFO, logger="ocs.db.engine")
    threads = [threading.Thread(target=worker, args=a) for a in ((1, 2), (2, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not failures
    assert sorted(runs) == [1, 1, 2] or sorted(runs) == [1, 2, 2]  # one of them ran twice
    assert "retrying (1)" in caplog.text
    with engine.connect() as conn:
        assert conn.execute(text("SELECT v FROM pair ORDER BY id")).scalars().all() == [2, 2]


def test_an_instance_event_chosen_as_deadlock_victim_is_applied(engine: Engine, caplog: Any) -> None:
    """A failed build releases its claim: the handler locks the instance, then the host.
    Another transaction holding the host and then asking for the instance deadlocks it."""
    sessions = db_engine.session_factory(engine)
    instance_id = _building_on(sessions, "h1")
    bus = Bus("memory://", f"ocs-test-{uuid.uuid4().hex[:8]}")
    endpoint = SchedulerEndpoint(sessions, ComputeApi(bus))
    caplog.set_level(logging.INFO, logger="ocs")
    failures: list[BaseException] = []
    event = InstanceEvent(host="h1", instance_id=instance_id, event="spawn_failed", reason="boom")

    def handle() -> None:
        try:
            endpoint.instance_event(event)
        except BaseException as exc:
            failures.append(exc)

    with engine.connect() as other:
        other.execute(text("UPDATE hosts SET vcpus_used = vcpus_used WHERE name = 'h1'"))  # holds the host
        handler = threading.Thread(target=handle)
        handler.start()
        _wait_for_a_lock_wait(engine)  # the handler holds the instance and waits for the host
        time.sleep(0.2)  # it waits first, so its deadlock check (after 1 s) finds the cycle
        other.execute(text("UPDATE instances SET version = version WHERE id = :i"), {"i": instance_id})
        other.commit()
        handler.join(timeout=30)
    bus.close()
    assert not failures, failures
    assert "database deadlock or serialization conflict, retrying (1)" in caplog.text
    with db_engine.transaction(sessions) as s:
        inst = s.scalar(select(Instance).where(Instance.id == instance_id))
        assert inst is not None and inst.state == "terminated"
        assert db_hosts.get_host(s, "h1").vcpus_used == 0  # the claim given back once, not twice


def _wait_for_a_lock_wait(engine: Engine, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(query).scalar():
                return
        time.sleep(0.02)
    raise AssertionError("the handler never waited for the host's lock")


def _building_on(sessions: Any, host: str) -> str:
    with db_engine.transaction(sessions) as s:
        account = accounts.create_account(s, "deadlock").id
        vpcs.ensure_default_network(s, account, vpc_cidr="172.31.0.0/16", zones=(ZONE,))
        db_hosts.upsert_host(
            s,
            db_hosts.HostFacts(host, ZONE, "fake", "1", ("x86_64",), vcpus=8, memory_mib=8192, disk_gib=100),
        )
    with db_engine.transaction(sessions) as s:
        spec = default_subnet_spec(s, account, ZONE)
        _, [inst] = compute.launch(s, account, spec, 1)
    limits = db_hosts.Amount(8, 8192, 100)
    with db_engine.transaction(sessions) as s:
        assert db_hosts.claim(s, host, db_hosts.Amount(2, 1024, 8), limits)
        assert db_events.assign(s, [inst.id], host, task="spawning") == [inst.id]
    return inst.id
