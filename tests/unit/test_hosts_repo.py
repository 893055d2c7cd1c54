"""The host repository (ocs.db.hosts): reports, heartbeats, atomic claims, releases.

Runs on SQLite, PostgreSQL and MariaDB (the server backends skip when absent).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from ocs.db import hosts
from ocs.db.engine import make_engine, session_factory, transaction
from ocs.db.models.base import utcnow
from ocs.db.models.compute import Host
from tests.dbfixtures import throwaway_database

SMALL = hosts.Amount(vcpus=2, memory_mib=1024, disk_gib=10)
LIMITS = hosts.Amount(vcpus=8, memory_mib=4096, disk_gib=100)


def facts(name: str = "h1", zone: str = "az-a", vcpus: int = 8) -> hosts.HostFacts:
    return hosts.HostFacts(
        name=name,
        availability_zone=zone,
        hypervisor_type="fake",
        hypervisor_version="1.0.0",
        architectures=("x86_64", "i386"),
        vcpus=vcpus,
        memory_mib=4096,
        disk_gib=100,
    )


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def factory(request: pytest.FixtureRequest) -> Iterator[sessionmaker[Session]]:
    with throwaway_database(request.param) as url:
        engine = make_engine(url, pool_size=12, max_overflow=4)
        try:
            yield session_factory(engine)
        finally:
            engine.dispose()


def _host(factory: sessionmaker[Session], name: str = "h1") -> Host:
    with transaction(factory) as s:
        return hosts.get_host(s, name)


def test_first_report_creates_the_host_and_later_ones_update_it(factory):
    then = utcnow() - dt.timedelta(seconds=30)
    with transaction(factory) as s:
        hosts.upsert_host(s, facts(vcpus=8), then)
    with transaction(factory) as s:
        assert hosts.claim(s, "h1", SMALL, LIMITS)
        hosts.set_enabled(s, "h1", False, "maintenance")
    now = utcnow()
    with transaction(factory) as s:
        hosts.upsert_host(s, facts(vcpus=16, zone="az-b"), now)
    h = _host(factory)
    assert (h.vcpus, h.availability_zone, h.hypervisor_type) == (16, "az-b", "fake")
    assert hosts.architectures_of(h) == ("x86_64", "i386")
    assert abs((h.last_heartbeat - now).total_seconds()) < 1.0  # MariaDB keeps whole seconds
    # a report changes neither the claims nor the operator's decision
    assert (h.vcpus_used, h.instance_count, h.enabled, h.disabled_reason) == (2, 1, False, "maintenance")


def test_claims_stay_within_the_limits(factory):
    with transaction(factory) as s:
        hosts.upsert_host(s, facts())
    with transaction(factory) as s:
        assert hosts.claim(s, "h1", SMALL, LIMITS, count=3)  # 6 of 8 vCPUs
        assert not hosts.claim(s, "h1", SMALL, LIMITS, count=2)  # 10 > 8: nothing claimed
        assert hosts.claim(s, "h1", SMALL, LIMITS)  # exactly 8
        assert not hosts.claim(s, "h1", hosts.Amount(0, 1, 0), LIMITS)  # memory is full too
    h = _host(factory)
    assert (h.vcpus_used, h.memory_mib_used, h.disk_gib_used, h.instance_count) == (8, 4096, 40, 4)


def test_release_gives_back_and_never_goes_below_zero(factory):
    with transaction(factory) as s:
        hosts.upsert_host(s, facts())
        assert hosts.claim(s, "h1", SMALL, LIMITS, count=2)
    with transaction(factory) as s:
        hosts.release(s, "h1", SMALL)
    h = _host(factory)
    assert (h.vcpus_used, h.memory_mib_used, h.disk_gib_used, h.instance_count) == (2, 1024, 10, 1)
    with transaction(factory) as s:
        hosts.release(s, "h1", SMALL, count=5)
    h = _host(factory)
    assert (h.vcpus_used, h.memory_mib_used, h.disk_gib_used, h.instance_count) == (0, 0, 0, 0)


def test_change_claim_resizes_without_a_limit_check(factory):
    with transaction(factory) as s:
        hosts.upsert_host(s, facts())
        assert hosts.claim(s, "h1", SMALL, LIMITS)
        hosts.change_claim(s, "h1", SMALL, hosts.Amount(16, 512, 10))
    h = _host(factory)
    assert (h.vcpus_used, h.memory_mib_used, h.disk_gib_used, h.instance_count) == (16, 512, 10, 1)


def test_disabled_unknown_and_silent_hosts_refuse_claims(factory):
    old = utcnow() - dt.timedelta(minutes=5)
    with transaction(factory) as s:
        hosts.upsert_host(s, facts("quiet"), old)
        hosts.upsert_host(s, facts("off"))
        hosts.set_enabled(s, "off", False)
    since = utcnow() - dt.timedelta(seconds=60)
    with transaction(factory) as s:
        assert not hosts.claim(s, "off", SMALL, LIMITS)
        assert not hosts.claim(s, "nowhere", SMALL, LIMITS)
        assert not hosts.claim(s, "quiet", SMALL, LIMITS, alive_since=since)
        assert hosts.claim(s, "quiet", SMALL, LIMITS)  # liveness is only checked when asked
    with transaction(factory) as s:
        h = hosts.set_enabled(s, "off", True)
        assert h.enabled and h.disabled_reason is None
        assert hosts.claim(s, "off", SMALL, LIMITS, alive_since=since)


def test_is_alive_follows_the_last_heartbeat(factory):
    now = utcnow()
    with transaction(factory) as s:
        hosts.upsert_host(s, facts(), now - dt.timedelta(seconds=30))
        h = hosts.get_host(s, "h1")
        assert hosts.is_alive(h, now, 60)
        assert not hosts.is_alive(h, now, 10)


def test_unknown_host_is_one_clear_error(factory):
    with transaction(factory) as s, pytest.raises(hosts.HostNotFound, match="host 'ghost' does not exist"):
        hosts.set_enabled(s, "ghost", False)


def test_service_heartbeats_are_upserted(factory):
    start = utcnow() - dt.timedelta(seconds=10)
    with transaction(factory) as s:
        hosts.record_heartbeat(s, "scheduler", "ctl-1", pid=42, version="0.1.0", started_at=start)
        hosts.record_heartbeat(s, "compute", "h1")
    later = utcnow()
    with transaction(factory) as s:
        hosts.record_heartbeat(s, "scheduler", "ctl-1", pid=42, version="0.1.0", now=later)
    with transaction(factory) as s:
        rows = hosts.list_services(s)
        assert [(r.service, r.host) for r in rows] == [("compute", "h1"), ("scheduler", "ctl-1")]
        sched = rows[1]
        assert (
            sched.pid == 42 and abs((sched.started_at - start).total_seconds()) < 1.0
        )  # MariaDB keeps whole seconds
        assert abs((sched.last_heartbeat - later).total_seconds()) < 1.0  # MariaDB keeps whole seconds
        assert [r.host for r in hosts.list_services(s, ["compute"])] == ["h1"]


def test_concurrent_claims_never_overcommit(factory):
    """Twelve threads race for a host with room for five instances: exactly five win."""
    with transaction(factory) as s:
        hosts.upsert_host(s, facts())
    limits = hosts.Amount(vcpus=10, memory_mib=1 << 20, disk_gib=1 << 20)
    barrier = threading.Barrier(12)
    wins: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        with transaction(factory) as s:
            won = hosts.claim(s, "h1", SMALL, limits)
        with lock:
            wins.append(won)

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert wins.count(True) == 5
    h = _host(factory)
    assert (h.vcpus_used, h.instance_count) == (10, 5)
