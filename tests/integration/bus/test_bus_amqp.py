"""The bus contract against the machine's RabbitMQ, plus what only a broker shows:
persistence flags, redelivery after a consumer dies, surviving a lost connection.
"""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from kombu import Connection

from ocs import errors
from ocs.bus import Bus, RpcServer
from tests.services import require_rabbitmq
from tests.unit.bus.contract import (
    BusContract,
    EchoClient,
    EchoEndpoint,
    Ping,
    wait_for,
)


class TestAmqpBus(BusContract):
    @pytest.fixture
    def bus_url(self) -> str:
        return require_rabbitmq()


@pytest.fixture
def amqp_bus(request: pytest.FixtureRequest) -> Iterator[Bus]:
    url = require_rabbitmq()
    exchange = f"ocs-test-{request.node.name[:20]}-{time.monotonic_ns() % 10**9}"
    bus = Bus(url, exchange, rpc_timeout=5.0, reconnect_interval=0.1)
    yield bus
    bus.close()
    bus.delete_topology(["echo"], ["echo"])


def _server_socket(server: RpcServer) -> socket.socket | None:
    """The socket of the server's current broker connection, if it has one."""
    conn = server._current
    amqp_conn = conn.connection if conn is not None else None
    transport = amqp_conn.transport if amqp_conn is not None else None
    return transport.sock if transport is not None else None


def test_casts_are_persistent_and_queues_durable(amqp_bus: Bus) -> None:
    EchoClient(amqp_bus).note(Ping(1))
    queue = amqp_bus.topic_queue("echo")
    with Connection(amqp_bus.url) as conn:
        bound = queue.bind(conn.default_channel)
        declared = bound.queue_declare(passive=True)
        assert declared.message_count == 1
        message = bound.get(no_ack=False)
        assert message is not None
        assert message.properties["delivery_mode"] == 2
        assert message.delivery_info["routing_key"] == "echo"
        assert message.content_type == "application/json"
        assert message.decode() == {"op": "note", "payload": {"n": 1, "fail": "", "delay": 0.0}}
        message.requeue()
    assert queue.durable and amqp_bus.exchange.durable
    # The broker agrees: redeclaring the queue as transient fails.
    with Connection(amqp_bus.url) as conn, pytest.raises(conn.channel_errors):
        type(queue)(queue.name, durable=False).bind(conn.default_channel).declare()


def test_calls_are_transient_and_expire(amqp_bus: Bus) -> None:
    seen: dict[str, object] = {}
    ready = threading.Event()

    def sniff() -> None:
        with Connection(amqp_bus.url) as conn:
            queue = amqp_bus.topic_queue("echo").bind(conn.default_channel)
            queue.declare()
            ready.set()
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and not seen:
                message = queue.get(no_ack=True)
                if message is not None:
                    seen.update(message.properties, headers=message.headers)
                time.sleep(0.01)

    thread = threading.Thread(target=sniff)
    thread.start()
    assert ready.wait(5)
    with pytest.raises(errors.BusTimeout):
        EchoClient(amqp_bus).ping(Ping(1), timeout=0.5)
    thread.join(5)
    assert seen["delivery_mode"] == 1
    assert 0 < int(str(seen["expiration"])) <= 500
    assert str(seen["reply_to"]).startswith(f"{amqp_bus.exchange_name}.reply.")
    assert seen["correlation_id"]


def test_unacked_message_is_redelivered_after_its_consumer_dies(amqp_bus: Bus) -> None:
    EchoClient(amqp_bus).note(Ping(6))
    conn = Connection(amqp_bus.url)
    got: list[object] = []
    consumer = conn.Consumer(
        [amqp_bus.topic_queue("echo")], accept=["json"], on_message=got.append, prefetch_count=1
    )
    consumer.consume()
    conn.drain_events(timeout=5)
    assert len(got) == 1  # received, never acknowledged
    conn.connection.transport.sock.shutdown(socket.SHUT_RDWR)  # as if killed
    conn.release()
    endpoint = EchoEndpoint()
    server = RpcServer(amqp_bus, EchoClient, endpoint)
    server.start()
    try:
        assert wait_for(lambda: endpoint.notes == [6])
    finally:
        server.stop()


CHILD_SERVER = """
import sys, time
from ocs.bus import Bus, RpcClient, RpcServer, cast

class Api(RpcClient):
    service = "echo"
    note = cast(dict)

class Endpoint:
    def note(self, request):
        print("handling", request["n"], flush=True)
        time.sleep(60)

RpcServer(Bus(sys.argv[1], sys.argv[2]), Api, Endpoint()).serve_forever()
"""


def test_message_of_a_killed_server_goes_to_the_next(amqp_bus: Bus) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_SERVER, amqp_bus.url, amqp_bus.exchange_name],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        EchoClient(amqp_bus).note(Ping(6))
        assert child.stdout is not None
        assert select.select([child.stdout], [], [], 15)[0], "the child server never got the message"
        assert child.stdout.readline().strip() == "handling 6"
    finally:
        child.kill()  # SIGKILL, mid-handling: no ack was sent
        child.wait(10)
    endpoint = EchoEndpoint()
    server = RpcServer(amqp_bus, EchoClient, endpoint)
    server.start()
    try:
        assert wait_for(lambda: endpoint.notes == [6])
    finally:
        server.stop()


def test_server_survives_a_lost_connection(amqp_bus: Bus) -> None:
    endpoint = EchoEndpoint()
    server = RpcServer(amqp_bus, EchoClient, endpoint)
    server.start()
    client = EchoClient(amqp_bus)
    try:
        assert client.ping(Ping(1)).n == 2
        for round_ in range(2):
            old = _server_socket(server)
            assert old is not None
            old.shutdown(socket.SHUT_RDWR)

            def reconnected(old: socket.socket = old) -> bool:
                return server.ready and _server_socket(server) not in (old, None)

            assert wait_for(reconnected)
            assert client.ping(Ping(2)).n == 3
            client.note(Ping(round_))

            def handled(n: int = round_) -> bool:
                return n in endpoint.notes

            assert wait_for(handled)
        # At least once: a message whose ack was cut off comes again.
        assert set(endpoint.notes) == {0, 1}
    finally:
        server.stop()


def test_client_survives_a_lost_reply_connection(amqp_bus: Bus) -> None:
    server = RpcServer(amqp_bus, EchoClient, EchoEndpoint())
    server.start()
    client = EchoClient(amqp_bus)
    try:
        assert client.ping(Ping(1)).n == 2
        router = amqp_bus.replies
        old_address = router.address
        assert router._current is not None
        router._current.connection.transport.sock.shutdown(socket.SHUT_RDWR)
        assert wait_for(lambda: router.ready and router.address != old_address)
        assert client.ping(Ping(2)).n == 3
    finally:
        server.stop()


def test_publisher_survives_a_lost_connection(amqp_bus: Bus) -> None:
    server = RpcServer(amqp_bus, EchoClient, EchoEndpoint())
    server.start()
    client = EchoClient(amqp_bus)
    try:
        assert client.ping(Ping(1)).n == 2
        for publisher in amqp_bus._idle[False]:
            assert publisher.connection is not None
            publisher.connection.connection.transport.sock.shutdown(socket.SHUT_RDWR)
        assert client.ping(Ping(2)).n == 3
    finally:
        server.stop()


def test_nothing_hangs_when_the_broker_is_unreachable() -> None:
    bus = Bus(
        "amqp://guest:guest@127.0.0.1:1//", "ocs-test-nobroker", rpc_timeout=0.5, reconnect_interval=0.1
    )
    server = RpcServer(bus, EchoClient, EchoEndpoint())
    server.start(wait=0.3)
    assert not server.ready
    start = time.monotonic()
    with pytest.raises(errors.ServiceUnavailable):
        EchoClient(bus).ping(Ping(1), timeout=0.5)
    with pytest.raises(errors.ServiceUnavailable):
        EchoClient(bus).note(Ping(1))
    assert time.monotonic() - start < 1.5
    start = time.monotonic()
    server.stop()
    bus.close()
    assert time.monotonic() - start < 0.5


def test_a_poison_message_is_dead_lettered_and_can_be_requeued(
    amqp_bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    """A cast whose handler keeps failing (a bug, not an outage) runs ``handler_attempts``
    times, the casts behind it are handled meanwhile, and then RabbitMQ holds it in the
    dead-letter queue (with its origin and count), logged, its topic queue empty: no
    endless loop, nothing silently lost. Requeued once the fault is gone, it is applied."""
    from ocs.bus import deadletters

    endpoint = EchoEndpoint()
    server = RpcServer(amqp_bus, EchoClient, endpoint)
    server.start()
    try:
        assert server.ready
        client = EchoClient(amqp_bus)
        client.note(Ping(1000, fail="crash"))  # fails on every run (1000 > attempts)
        client.note(Ping(5))
        assert wait_for(lambda: endpoint.notes == [5])
        assert wait_for(lambda: endpoint.crashes == 3, timeout=10)
        assert wait_for(lambda: len(deadletters.peek(amqp_bus)) == 1, timeout=10)
        time.sleep(0.3)
        assert endpoint.crashes == 3  # not looping
        [letter] = deadletters.peek(amqp_bus)
        assert deadletters.peek(amqp_bus) == [letter]  # looking takes nothing away
        assert (letter.queue, letter.operation, letter.failures, letter.reason) == (
            f"{amqp_bus.exchange_name}.echo",
            "note",
            3,
            "rejected",
        )
        assert '"n": 1000' in letter.payload
        assert any(
            "failed 3 times; the message goes to the dead-letter queue" in r.message for r in caplog.records
        )
        with amqp_bus.connection() as conn:  # the topic queue holds nothing more
            _, ready, _ = amqp_bus.topic_queue("echo").bind(conn.channel()).queue_declare(passive=True)
            assert ready == 0

        endpoint.crashes = 1000  # the bug is fixed: the next run succeeds
        assert deadletters.requeue(amqp_bus) == [letter]
        assert wait_for(lambda: endpoint.notes == [5, 1000], timeout=10)
        assert deadletters.peek(amqp_bus) == []
    finally:
        server.stop()
