"""The bus contract on the in-process transport, plus what is particular to it."""

from __future__ import annotations

import time

import pytest

from ocs.bus import Bus, RpcServer
from tests.unit.bus.contract import BusContract, EchoClient, EchoEndpoint, Ping


class TestMemoryBus(BusContract):
    @pytest.fixture
    def bus_url(self) -> str:
        return "memory://"


def test_calls_do_not_wait_for_a_polling_interval() -> None:
    with Bus("memory://", "ocs-test-latency") as bus:
        server = RpcServer(bus, EchoClient, EchoEndpoint())
        server.start()
        client = EchoClient(bus)
        client.ping(Ping(0))
        start = time.perf_counter()
        for i in range(200):
            client.ping(Ping(i))
        per_call = (time.perf_counter() - start) / 200
        server.stop()
    assert per_call < 0.01, f"{per_call * 1000:.2f} ms per call"


def test_buses_with_different_exchanges_are_isolated() -> None:
    with Bus("memory://", "ocs-test-a") as bus_a, Bus("memory://", "ocs-test-b") as bus_b:
        endpoint = EchoEndpoint()
        server = RpcServer(bus_a, EchoClient, endpoint)
        server.start()
        EchoClient(bus_b).note(Ping(1))
        EchoClient(bus_a).note(Ping(2))
        deadline = time.monotonic() + 2
        while endpoint.notes != [2] and time.monotonic() < deadline:
            time.sleep(0.01)
        server.stop()
        bus_b.delete_topology(["echo"])
    assert endpoint.notes == [2]
