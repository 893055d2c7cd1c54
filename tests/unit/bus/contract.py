"""The bus contract: the same tests on every transport.

Subclasses provide the ``bus_url`` fixture: ``tests/unit/bus`` runs them on
``memory://``, ``tests/integration/bus`` on RabbitMQ. Every test gets its own
exchange name (``ocs-test-<uuid>``), which also prefixes its queue names, so
tests never see each other's messages, and the topology is deleted afterwards.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from ocs import errors
from ocs.bus import Bus, RpcClient, RpcServer, call, cast, fanout

TOPICS = ["echo", "compute.h1", "compute.h2", "compute.node-1.example.org"]
SERVICES = ["echo", "compute"]


@dataclass
class Ping:
    n: int
    fail: str = ""
    delay: float = 0.0


@dataclass
class Pong:
    n: int
    worker: str = ""


@dataclass
class Work:
    host: str
    item: str


class NoValidHost(errors.InsufficientInstanceCapacity):
    """An error defined outside ocs.errors: it travels as its nearest base."""

    message = "No valid host: {reason}"


class Outage(Exception):
    """What a handler raises while its database is unreachable: it will pass."""


class EchoClient(RpcClient):
    service = "echo"
    ping = call(Ping, Pong, timeout=5.0)
    note = cast(Ping)
    shout = fanout(Ping)
    sync = call(Ping, timeout=5.0)


class EchoEvents(RpcClient):
    """Listens to the echo service's broadcasts only (as an API process might)."""

    service = "echo"
    shout = fanout(Ping)


class ComputeClient(RpcClient):
    service = "compute"
    topic = "compute.{host}"
    work = cast(Work)
    whoami = call(Work, str, timeout=5.0)


class NewerEchoClient(EchoClient):
    """A client that knows an operation the running server does not."""

    ping_twice = call(Ping, Pong, timeout=2.0)


@dataclass
class EchoEndpoint:
    name: str = "server"
    notes: list[int] = field(default_factory=list)
    shouts: list[int] = field(default_factory=list)
    calls: int = 0
    crashes: int = 0
    gate: threading.Event | None = None
    started: threading.Event = field(default_factory=threading.Event)

    def ping(self, request: Ping) -> Pong:
        self.calls += 1
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(request.delay)
        if request.fail == "ocs":
            raise errors.IncorrectState(reason=f"bad state {request.n}")
        if request.fail == "notfound":
            raise errors.NotFound(code="InvalidInstanceID.NotFound", id=f"i-{request.n}")
        if request.fail == "novalidhost":
            raise NoValidHost(reason="all hosts full")
        if request.fail == "bug":
            raise RuntimeError("secret internals /etc/ocs/ocs.conf")
        return Pong(request.n + 1, worker=threading.current_thread().name)

    def note(self, request: Ping) -> None:
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
        if request.fail == "crash" and self.crashes < request.n:
            self.crashes += 1
            raise RuntimeError("crash while handling")
        if request.fail == "ocs":
            raise errors.IncorrectState(reason="not now")
        if request.fail == "outage" and self.crashes < 3:  # more runs than one redelivery
            self.crashes += 1
            raise Outage("the database is unreachable")
        self.notes.append(request.n)

    def shout(self, request: Ping) -> None:
        self.shouts.append(request.n)

    def sync(self, request: Ping) -> None:
        self.notes.append(request.n)


@dataclass
class ComputeEndpoint:
    host: str
    items: list[str] = field(default_factory=list)

    def work(self, request: Work) -> None:
        self.items.append(request.item)

    def whoami(self, request: Work) -> str:
        return self.host


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


class BusContract:
    """Tests every transport must pass. Subclasses define ``bus_url``."""

    @pytest.fixture
    def exchange(self) -> str:
        return f"ocs-test-{uuid.uuid4().hex[:12]}"

    @pytest.fixture
    def bus(self, bus_url: str, exchange: str) -> Iterator[Bus]:
        bus = Bus(bus_url, exchange, rpc_timeout=5.0, reconnect_interval=0.1)
        yield bus
        bus.close()
        bus.delete_topology(TOPICS, SERVICES)

    @pytest.fixture
    def serve(self, bus: Bus) -> Iterator[Callable[..., RpcServer]]:
        servers: list[RpcServer] = []

        def serve(endpoint: object, api: type[RpcClient] = EchoClient, **kwargs: object) -> RpcServer:
            server = RpcServer(bus, api, endpoint, **kwargs)  # type: ignore[arg-type]
            server.start()
            assert server.ready, "server did not start consuming"
            servers.append(server)
            return server

        yield serve
        for server in servers:
            server.stop(timeout=1.0)

    # --- cast ---------------------------------------------------------------

    def test_cast_is_delivered(self, bus: Bus, serve: Callable[..., RpcServer]) -> None:
        endpoint = EchoEndpoint()
        serve(endpoint)
        EchoClient(bus).note(Ping(7))
        assert wait_for(lambda: endpoint.notes == [7])

    def test_cast_waits_for_its_server(self, bus: Bus, serve: Callable[..., RpcServer]) -> None:
        EchoClient(bus).note(Ping(1))
        EchoClient(bus).note(Ping(2))
        endpoint = EchoEndpoint()
        serve(endpoint)
        assert wait_for(lambda: endpoint.notes == [1, 2])

    def test_cast_is_redelivered_after_a_crash(self, bus: Bus, serve: Callable[..., RpcServer]) -> None:
        endpoint = EchoEndpoint()
        serve(endpoint)
        EchoClient(bus).note(Ping(1, fail="crash"))
        assert wait_for(lambda: endpoint.notes == [1])
        assert endpoint.crashes == 1

    def test_cast_that_keeps_failing_runs_handler_attempts_times_then_stops(
        self, bus: Bus, serve: Callable[..., RpcServer]
    ) -> None:
        """A poison message neither loops nor blocks the others: its handler runs
        ``handler_attempts`` times (3), the message behind it is handled meanwhile, and
        then it is given up (dead-lettered on RabbitMQ: see test_bus_amqp)."""
        endpoint = EchoEndpoint()
        serve(endpoint)
        client = EchoClient(bus)
        client.note(Ping(100, fail="crash"))
        client.note(Ping(5))
        assert wait_for(lambda: endpoint.notes == [5])
        assert wait_for(lambda: endpoint.crashes == bus.handler_attempts == 3)
        time.sleep(0.2)
        assert endpoint.crashes == 3 and endpoint.notes == [5]

    def test_a_cast_failing_less_often_than_handler_attempts_is_applied(
        self, bus: Bus, serve: Callable[..., RpcServer]
    ) -> None:
        endpoint = EchoEndpoint()
        serve(endpoint)
        EchoClient(bus).note(Ping(2, fail="crash"))  # fails twice, then succeeds
        assert wait_for(lambda: endpoint.notes == [2])
        assert endpoint.crashes == 2

    def test_cast_failing_for_a_transient_reason_is_held_until_it_succeeds(
        self, bus: Bus, serve: Callable[..., RpcServer]
    ) -> None:
        endpoint = EchoEndpoint()
        serve(endpoint, transient=lambda exc: isinstance(exc, Outage), transient_backoff=(0.01, 0.02))
        client = EchoClient(bus)
        client.note(Ping(1, fail="outage"))
        client.note(Ping(2))
        assert wait_for(lambda: sorted(endpoint.notes) == [1, 2])
        assert endpoint.crashes == 3  # three failures, then applied: never dropped

    def test_cast_held_for_a_transient_reason_goes_back_at_stop(
        self, bus: Bus, serve: Callable[..., RpcServer]
    ) -> None:
        endpoint = EchoEndpoint()
        server = serve(endpoint, transient=lambda exc: isinstance(exc, Outage))
        EchoClient(bus).note(Ping(1, fail="outage"))
        assert wait_for(lambda: endpoint.crashes == 1)
        server.stop(timeout=2.0)  # in its backoff: stops at once, the message requeued
        again = EchoEndpoint(crashes=3)  # the outage is over
        serve(again)
        assert wait_for(lambda: again.notes == [1])

    def test_cast_with_an_ocs_error_is_not_retried(self, bus: Bus, serve: Callable[..., RpcServer]) -> None:
        endpoint = EchoEndpoint()
        serve(endpoint)
        client = EchoClient(bus)
        client.note(Ping(1, fail="ocs"))
        client.note(Ping(2))
        assert wait_for(lambda: endpoint.notes == [2])

    def test_templated_topic_reaches_the_right_host(self, bus: Bus, serve: Callable[..., RpcServer]) -> None:
        hosts = {h: ComputeEndpoint(h) for h in ("h1", "h2", "node-1.example.org")}
        for host, endpoint in hosts.items():
            serve(endpoint, ComputeClient, topic=f"compute.{host}")
        client = ComputeClient(bus)
        client.work(Work("h2", "a"))
        client.work(Work("node-1.example.org", "b"))
        assert client.whoami(Work("h1", "")) == "h1"
        assert client.whoami(Work("node-1.example.org", "")) == "node-1.example.org"
        assert wait_for(lambda: hosts["h2"].items == ["a"])
        assert wait_for(lambda: hosts["node-1.example.org"].items == ["b"])
        assert hosts["h1"].items == []

    # --- call ---------------------------------------------------------------

    def test_call_returns_the_typed_result(self, bus: Bus, serve: Callable[..., RpcServer]) -> None:
        serve(EchoEndpoint())
        result = EchoClient(bus).ping(Ping(41))
        assert isinstance(result, Pong)
        assert result.n == 42

    def test_call_without_a_result_waits_for_the_handler(
        self, bus: Bus, serve: Callable[..., RpcServer]
    ) -> None:
        endpoint = EchoEndpoint()
        serve(endpoint)
        assert EchoClient(bus).sync(Ping(5)) is None
        assert endpoint.notes == [5]

    @pytest.mark.parametrize(
        ("fail", "cls", "code", "text"),
        [
            ("ocs", errors.IncorrectState, "IncorrectState", "bad state 3"),
            ("notfound", errors.NotFound, "InvalidInstanceID.NotFound", "The ID 'i-3' does not exist"),
            (
                "novalidhost",
                errors.InsufficientInstanceCapacity,
                "InsufficientInstanceCapacity",
                "No valid host: all hosts full",
            ),
            ("bug", errors.InternalError, "InternalError", "An internal error has occurred."),
        ],
    )
    def test_call_errors_travel_back(
        self,
        bus: Bus,
        serve: Callable[..., RpcServer],
        fail: str,
        cls: type[errors.OcsError],
        code: str,
        text: str,
    ) -> None:
        serve(EchoEndpoint())
        with pytest.raises(errors.OcsError) as info:
            EchoClient(bus).ping(Ping(3, fail=fail))
        assert type(info.value) is cls
        assert info.value.code == code
        assert str(info.value) == text

    def test_call_without_a_server_times_out(self, bus: Bus) -> None:
        start = time.monotonic()
        with pytest.raises(errors.BusTimeout) as info:
            EchoClient(bus).ping(Ping(1), timeout=0.5)
        elapsed = time.monotonic() - start
        assert 0.45 <= elapsed < 1.0
        assert "echo" in str(info.value) and "ping" in str(info.value)

    def test_a_timed_out_call_is_never_executed(self, bus: Bus, serve: Callable[..., RpcServer]) -> None:
        with pytest.raises(errors.BusTimeout):
            EchoClient(bus).ping(Ping(1), timeout=0.3)
        endpoint = EchoEndpoint()
        serve(endpoint)
        assert EchoClient(bus).ping(Ping(2)).n == 3
        assert endpoint.calls == 1

    def test_unknown_operation_is_an_error(self, bus: Bus, serve: Callable[..., RpcServer]) -> None:
        serve(EchoEndpoint())
        with pytest.raises(errors.InternalError, match="no operation 'ping_twice'"):
            NewerEchoClient(bus).ping_twice(Ping(1))

    def test_concurrent_calls_are_routed_to_their_callers(
        self, bus: Bus, serve: Callable[..., RpcServer]
    ) -> None:
        serve(EchoEndpoint(), workers=4)
        client = EchoClient(bus)
        results: dict[int, list[int]] = {}
        problems: list[BaseException] = []

        def caller(t: int) -> None:
            try:
                results[t] = [client.ping(Ping(t * 1000 + i)).n for i in range(20)]
            except BaseException as exc:
                problems.append(exc)

        threads = [threading.Thread(target=caller, args=(t,)) for t in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert problems == []
        assert results == {t: [t * 1000 + i + 1 for i in range(20)] for t in range(10)}

    def test_workers_handle_calls_in_parallel(self, bus: Bus, serve: Callable[..., RpcServer]) -> None:
        serve(EchoEndpoint(), workers=4)
        client = EchoClient(bus)
        workers: set[str] = set()
        start = time.monotonic()
        threads = [
            threading.Thread(target=lambda: workers.add(client.ping(Ping(1, delay=0.3)).worker))
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert time.monotonic() - start < 0.9
        assert len(workers) == 4

    def test_competing_servers_share_a_topic(self, bus: Bus, serve: Callable[..., RpcServer]) -> None:
        first, second = EchoEndpoint("first"), EchoEndpoint("second")
        serve(first)
        serve(second)
        client = EchoClient(bus)
        for i in range(20):
            client.note(Ping(i))
        assert wait_for(lambda: sorted(first.notes + second.notes) == list(range(20)))

    # --- fanout -------------------------------------------------------------

    def test_fanout_reaches_every_subscriber(self, bus: Bus, serve: Callable[..., RpcServer]) -> None:
        endpoints = [EchoEndpoint(f"s{i}") for i in range(3)]
        for endpoint in endpoints:
            serve(endpoint)
        EchoClient(bus).shout(Ping(9))
        assert wait_for(lambda: all(e.shouts == [9] for e in endpoints))

    def test_broadcast_only_subscribers_get_broadcasts(
        self, bus: Bus, serve: Callable[..., RpcServer]
    ) -> None:
        server, listener = EchoEndpoint("server"), EchoEndpoint("listener")
        serve(server)
        subscriber = serve(listener, EchoEvents)
        assert subscriber.topics == []
        EchoClient(bus).shout(Ping(3))
        EchoClient(bus).note(Ping(4))
        assert wait_for(lambda: server.shouts == [3] and listener.shouts == [3])
        assert wait_for(lambda: server.notes == [4])
        assert listener.notes == []

    def test_fanout_without_subscribers_is_fine(self, bus: Bus) -> None:
        EchoClient(bus).shout(Ping(1))

    # --- service runner ------------------------------------------------------

    def test_stop_is_prompt(self, bus: Bus) -> None:
        server = RpcServer(bus, EchoClient, EchoEndpoint())
        server.start()
        assert server.ready
        start = time.monotonic()
        server.stop()
        assert time.monotonic() - start < 0.5
        assert not server.ready

    def test_stop_lets_a_running_handler_finish(self, bus: Bus) -> None:
        endpoint = EchoEndpoint(gate=threading.Event())
        server = RpcServer(bus, EchoClient, endpoint)
        server.start()
        EchoClient(bus).note(Ping(4))
        assert endpoint.started.wait(5)
        threading.Timer(0.2, endpoint.gate.set).start()  # type: ignore[union-attr]
        server.stop(timeout=5.0)
        assert endpoint.notes == [4]

    def test_unfinished_message_goes_to_the_next_server(
        self, bus: Bus, serve: Callable[..., RpcServer]
    ) -> None:
        stuck = EchoEndpoint("stuck", gate=threading.Event())
        server = RpcServer(bus, EchoClient, stuck)
        server.start()
        EchoClient(bus).note(Ping(8))
        assert stuck.started.wait(5)
        server.stop(timeout=0.1)  # the handler is still running: no ack
        fresh = EchoEndpoint("fresh")
        serve(fresh)
        assert wait_for(lambda: fresh.notes == [8])
        stuck.gate.set()  # type: ignore[union-attr]

    def test_serve_forever_blocks_until_stopped(self, bus: Bus) -> None:
        server = RpcServer(bus, EchoClient, EchoEndpoint())
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        assert server.wait_ready(5)
        assert EchoClient(bus).ping(Ping(1)).n == 2
        server.stop()
        thread.join(2)
        assert not thread.is_alive()
