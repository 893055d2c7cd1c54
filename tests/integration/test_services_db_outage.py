"""Casts that reach ocs-network and ocs-volume while their database is down are carried
out once it is back: held unacknowledged and run again, not acknowledged and lost, not
dropped after a redelivery (as the scheduler's, tests/integration/test_scheduler_db_outage.py).

Each test runs the service in this process on a private PostgreSQL of the test's own
(:mod:`tests.framework.outages`; the machine's server is never touched) and the
machine's RabbitMQ (an exchange of the test's own); periodic work that would catch up by
itself (the network's convergence, the volume sweep) is set far in the future, so only
the held message can do the work. The outage lasts several seconds: every handler
fails many times, far past the one redelivery a failing cast got before.

- ocs-network (noop driver): an instance is placed on the host while the service
  runs; the database stops; ``sync_host`` is cast; the database comes back. The host's
  plan must then carry the instance's port.
- ocs-volume (file backend): volumes are made ``creating`` in the database; it stops;
  their ``create_volume`` casts are sent; it comes back. Every volume must then be
  ``available`` with its bytes in the backend.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ocs.bus import Bus
from ocs.db import accounts, migration
from ocs.db import volumes as db_volumes
from ocs.db.engine import make_engine, session_factory, transaction
from ocs.db.models.volumes import Volume
from ocs.network.drivers.noop import NoopDriver
from ocs.network.rpcapi import NetworkHostApi, SyncHost
from ocs.network.service import NetworkHostEndpoint, NetworkService, NetworkSettings
from ocs.volume.backends.file import FileBackend
from ocs.volume.rpcapi import CreateVolume, VolumeApi
from ocs.volume.service import VolumeEndpoint, VolumeService, VolumeSettings
from tests.framework.netcloud import NetCloud
from tests.framework.outages import PrivatePostgres
from tests.integration.cluster.faults import require_private
from tests.services import require_rabbitmq

OUTAGE = 5.0
DONE_WITHIN = 20.0  # seconds after the server is back


@contextmanager
def private_database() -> Iterator[tuple[PrivatePostgres, sessionmaker[Session]]]:
    require_private("postgres")
    with PrivatePostgres() as pg:
        pg.start()
        migration.sync(pg.url())
        engine = make_engine(pg.url(), pool_size=4, connect_timeout=2)
        try:
            yield pg, session_factory(engine)
        finally:
            engine.dispose()


@contextmanager
def own_bus() -> Iterator[Bus]:
    bus = Bus(require_rabbitmq(), f"ocs-test-{uuid.uuid4().hex[:12]}", reconnect_interval=0.2)
    try:
        yield bus
    finally:
        bus.close()


def wait_until(done: Callable[[], Any], timeout: float) -> Any:
    """``done()`` until it is true (an OperationalError counts as not yet: the server
    may still be starting) or ``timeout`` s passed; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = done()
        except OperationalError:
            value = None
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_network_casts_sent_during_a_database_outage_are_carried_out_after_it() -> None:
    with private_database() as (pg, sessions), own_bus() as bus:
        settings = NetworkSettings(host="h1", sync_interval=3600, workers=2)
        driver = NoopDriver()
        service = NetworkService(bus, NetworkHostEndpoint(sessions, driver, settings))
        service.start()  # converges once: nothing on h1 yet
        try:
            assert driver.plan is not None and driver.plan.ports == ()
            cloud = NetCloud(sessions)
            vpc = cloud.vpc("10.7.0.0/16")
            port = cloud.instance("h1", cloud.subnet(vpc, "10.7.1.0/24"), "10.7.1.10", [])
            pg.stop()
            down_at = time.monotonic()
            NetworkHostApi(bus).sync_host(SyncHost("h1"))
            time.sleep(OUTAGE)
            assert driver.plan.ports == ()  # nothing could be read meanwhile
            pg.start()
            up_at = time.monotonic()
            converged = wait_until(
                lambda: [p.instance_id for p in driver.plan.ports] == [port.instance_id], DONE_WITHIN
            )
            took = time.monotonic() - up_at
            assert converged, f"the port is not on h1 {DONE_WITHIN:g} s after the outage: {driver.plan.ports}"
        finally:
            service.stop()
            bus.delete_topology(topics=("network", "network.h1"), services=("network",))
    print(f"sync_host sent during a {up_at - down_at:.1f} s outage, carried out {took:.1f} s after it")


def creating_volumes(sessions: sessionmaker[Session], count: int) -> list[str]:
    with transaction(sessions) as s:
        account = accounts.create_account(s, "volume-outage").id
    with transaction(sessions) as s:
        return [
            db_volumes.create_volume(
                s,
                account,
                availability_zone="us-east-1a",
                size_gib=1,
                volume_type="gp3",
                iops=None,
                throughput=None,
                encrypted=False,
                snapshot_id=None,
            ).id
            for _ in range(count)
        ]


def test_volume_casts_sent_during_a_database_outage_are_carried_out_after_it(tmp_path: Path) -> None:
    with private_database() as (pg, sessions), own_bus() as bus:
        backend = FileBackend(tmp_path / "volumes", volume_format="raw")
        settings = VolumeSettings(host="volume-outage", workers=2, sweep_interval=3600)
        service = VolumeService(bus, VolumeEndpoint(sessions, backend, settings))
        service.start()  # reconciles: nothing to do yet
        try:
            ids = creating_volumes(sessions, 4)
            pg.stop()
            down_at = time.monotonic()
            api = VolumeApi(bus)
            for volume_id in ids:
                api.create_volume(CreateVolume(volume_id))
            time.sleep(OUTAGE)
            pg.start()
            up_at = time.monotonic()

            def states() -> dict[str, str]:
                with transaction(sessions) as s:
                    return dict(s.execute(select(Volume.id, Volume.state).where(Volume.id.in_(ids))).all())

            done = wait_until(lambda: set(states().values()) == {"available"}, DONE_WITHIN)
            took = time.monotonic() - up_at
            assert done, f"not made {DONE_WITHIN:g} s after the outage: {states()}"
            assert backend.volumes() >= set(ids)
        finally:
            service.stop()
            bus.delete_topology(topics=("volume",), services=("volume",))
    print(
        f"{len(ids)} create_volume sent during a {up_at - down_at:.1f} s outage, done {took:.1f} s after it"
    )
