"""Instance events that reach the scheduler while its database is down are applied once
it is back, not dropped.

A scheduler service (this process, 2 handler threads, prefetch 3) on a private
PostgreSQL of the test's own (:mod:`tests.framework.outages`; the machine's server is
never touched) and the machine's RabbitMQ (an exchange of the test's own). Six
instances are being built on host ``h1``; the server is stopped, the agent's six
``spawned`` events are sent, the outage lasts several seconds (every handler fails
many times, far past the one redelivery a failing cast gets), then the server
starts again.

Proves: every instance ends ``running`` within seconds of the database's return
(before the fix, a cast failing twice was dropped and the instances stayed
``pending`` for good); the messages the scheduler could not take meanwhile waited in
the broker.
"""

from __future__ import annotations

import time
import uuid

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from ocs.bus import Bus
from ocs.db import accounts, compute, migration, vpcs
from ocs.db import instance_events as db_events
from ocs.db.engine import make_engine, session_factory, transaction
from ocs.db.models.compute import Instance
from ocs.scheduler.rpcapi import InstanceEvent, SchedulerApi
from ocs.scheduler.service import SchedulerService, SchedulerSettings
from tests.framework.launches import default_subnet_spec
from tests.framework.outages import PrivatePostgres
from tests.integration.cluster.faults import require_private
from tests.services import require_rabbitmq

ZONE = "us-east-1a"
OUTAGE = 5.0
APPLIED_WITHIN = 20.0  # seconds after the server is back


def building_on(sessions, host: str, count: int) -> list[str]:  # type: ignore[no-untyped-def]
    """``count`` instances placed on ``host`` and being built (task ``spawning``)."""
    with transaction(sessions) as s:
        account = accounts.create_account(s, "outage").id
        vpcs.ensure_default_network(s, account, vpc_cidr="172.31.0.0/16", zones=(ZONE,))
    with transaction(sessions) as s:
        spec = default_subnet_spec(s, account, ZONE)
        _, made = compute.launch(s, account, spec, count)
        ids = [i.id for i in made]
    with transaction(sessions) as s:
        assert db_events.assign(s, ids, host, task="spawning") == ids
    return ids


def states(sessions, ids: list[str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The instances' states; {} while the server still starts up."""
    try:
        with transaction(sessions) as s:
            return dict(s.execute(select(Instance.id, Instance.state).where(Instance.id.in_(ids))).all())
    except OperationalError:
        return {}


def test_instance_events_sent_during_a_database_outage_are_applied_after_it() -> None:
    require_private("postgres")
    amqp = require_rabbitmq()
    t0 = time.monotonic()
    with PrivatePostgres() as pg:
        pg.start()
        migration.sync(pg.url())
        engine = make_engine(pg.url(), pool_size=4, connect_timeout=2)
        sessions = session_factory(engine)
        ids = building_on(sessions, "h1", 6)
        bus = Bus(amqp, f"ocs-test-{uuid.uuid4().hex[:12]}", reconnect_interval=0.2)
        settings = SchedulerSettings(
            host="scheduler-outage", periodic_interval=3600, service_down_time=3600, build_timeout=3600
        )
        service = SchedulerService(bus, sessions, settings, workers=2)
        service.start()
        try:
            pg.stop()
            down_at = time.monotonic()
            api = SchedulerApi(bus)
            for iid in ids:
                api.instance_event(
                    InstanceEvent(host="h1", instance_id=iid, event="spawned", power_state="running")
                )
            time.sleep(OUTAGE)
            pg.start()
            up_at = time.monotonic()
            deadline = up_at + APPLIED_WITHIN
            seen = states(sessions, ids)
            while set(seen.values()) != {"running"} and time.monotonic() < deadline:
                time.sleep(0.2)
                seen = states(sessions, ids)
            applied = time.monotonic()
            assert seen == dict.fromkeys(ids, "running"), (
                f"not applied {APPLIED_WITHIN:g} s after the outage: {seen}"
            )
        finally:
            service.stop()
            bus.delete_topology(topics=("scheduler",), services=("scheduler",))
            bus.close()
            engine.dispose()
    print(
        f"{len(ids)} events sent during a {up_at - down_at:.1f} s outage, all applied "
        f"{applied - up_at:.1f} s after the server was back; test {time.monotonic() - t0:.1f} s"
    )
