"""The private servers of tests.framework.outages: they start, stop, start again with
their data, and leave no process behind."""

from __future__ import annotations

import time

import kombu
import pytest
from sqlalchemy import text

from ocs.db.engine import make_engine
from tests.framework.outages import PrivatePostgres, PrivateRabbit, port_open
from tests.integration.cluster.faults import require_private


def test_private_postgres_stops_crashes_and_comes_back_with_its_data() -> None:
    require_private("postgres")
    with PrivatePostgres() as pg:
        pg.start()
        engine = make_engine(pg.url(), pool_size=1)
        try:
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE t (x int); INSERT INTO t VALUES (7)"))
            pg.stop()
            assert not port_open(pg.port) and not pg.alive_pids()
            pg.start()
            pg.stop(crash=True)
            assert not pg.alive_pids()
            pg.start()
            with engine.connect() as conn:  # the pool's old connection is replaced
                assert conn.execute(text("SELECT x FROM t")).scalar() == 7
        finally:
            engine.dispose()
        pids = pg.alive_pids()
        assert pids
    assert not any(_running(pid) for pid in pids)


@pytest.mark.slow
def test_private_rabbitmq_keeps_durable_messages_across_a_restart() -> None:
    require_private("rabbitmq")
    with PrivateRabbit() as node:
        node.start()
        queue = kombu.Queue(
            "q", kombu.Exchange("x", type="topic", durable=True), routing_key="k", durable=True
        )
        with kombu.Connection(node.url) as conn:
            conn.Producer().publish(
                {"n": 1}, exchange=queue.exchange, routing_key="k", declare=[queue], delivery_mode=2
            )
        node.stop()
        assert not port_open(node.port)
        node.start()
        with kombu.Connection(node.url) as conn:
            assert queue.bind(conn.default_channel).get(no_ack=True).payload == {"n": 1}
        pids = node.alive_pids()
        assert len(pids) >= 3  # epmd, the start script, the node
    assert not any(_running(pid) for pid in pids)


def _running(pid: int) -> bool:
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return False
        except OSError:
            return False
        time.sleep(0.05)
    return True
