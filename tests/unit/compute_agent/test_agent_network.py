"""The agent plugs guests in through the host's network service (a stub here)."""

from __future__ import annotations

from typing import Any

from ocs import errors
from ocs.compute_agent.driver import GuestSpec, ImageRef, NicSpec
from ocs.compute_agent.drivers.fake import FakeDriver
from ocs.compute_agent.rpcapi import GuestAction, Spawn
from ocs.compute_agent.service import AgentSettings, ComputeEndpoint
from ocs.network.rpcapi import PortBinding, SetupPort, TeardownPort
from ocs.scheduler.rpcapi import InstanceEvent

IID = "i-0123456789abcdef0"
ENI = "eni-0123456789abcdef0"


class Scheduler:
    def __init__(self) -> None:
        self.events: list[InstanceEvent] = []

    def instance_event(self, event: InstanceEvent) -> None:
        self.events.append(event)


class Network:
    """Answers setup_port like ocs-network (``netns``: its bridges are elsewhere)."""

    def __init__(self, netns: str = "", fail: Exception | None = None) -> None:
        self.netns, self.fail = netns, fail
        self.setups: list[SetupPort] = []
        self.teardowns: list[TeardownPort] = []

    def setup_port(self, req: SetupPort) -> PortBinding:
        self.setups.append(req)
        if self.fail is not None:
            raise self.fail
        return PortBinding(req.instance_id, ENI, "ocsb0000000000a", "ocst0000000000a", "02:0c:5e:00:00:01",
                           "10.0.0.5", 1450, self.netns)  # fmt: skip

    def teardown_port(self, req: TeardownPort) -> None:
        self.teardowns.append(req)


def spec() -> GuestSpec:
    return GuestSpec(IID, 1, 512, 1, ImageRef("ami-0123456789abcdef0", "ab" * 32),
                     nics=(NicSpec("02:00:00:00:00:09", "", "10.0.0.5", ENI),))  # fmt: skip


def endpoint(network: Any) -> tuple[ComputeEndpoint, FakeDriver, Scheduler]:
    driver, scheduler = FakeDriver("h1"), Scheduler()
    driver.init_host(lambda *_: None)
    agent = ComputeEndpoint(driver, scheduler, AgentSettings("h1", "zone-a"), network=network)  # type: ignore[arg-type]
    return agent, driver, scheduler


def test_the_guest_gets_the_network_services_bridge_tap_mac_and_mtu() -> None:
    network = Network()
    agent, driver, scheduler = endpoint(network)
    agent.spawn(Spawn(host="h1", spec=spec()))
    assert [e.event for e in scheduler.events] == ["spawned"]
    assert network.setups == [SetupPort("h1", IID, ENI)]
    (nic,) = driver._guests[IID].nics.values()
    assert (nic.bridge, nic.tap, nic.mac, nic.mtu) == (
        "ocsb0000000000a",
        "ocst0000000000a",
        "02:0c:5e:00:00:01",
        1450,
    )

    agent.stop(GuestAction(host="h1", instance_id=IID))
    agent.start(GuestAction(host="h1", instance_id=IID))  # its port set up again first
    assert len(network.setups) == 2
    agent.destroy(GuestAction(host="h1", instance_id=IID))
    assert network.teardowns == [TeardownPort("h1", IID)]
    assert [e.event for e in scheduler.events][-1] == "destroyed"


def test_bridges_in_another_namespace_mean_an_unattached_tap_plugged_in_after_the_spawn() -> None:
    network = Network(netns="ocst-host")
    agent, driver, _ = endpoint(network)
    agent.spawn(Spawn(host="h1", spec=spec()))
    (nic,) = driver._guests[IID].nics.values()
    assert (nic.bridge, nic.tap) == ("", "ocst0000000000a")
    assert len(network.setups) == 2  # the second one moves the tap onto the bridge


def test_no_guest_without_its_network() -> None:
    network = Network(fail=errors.BusTimeout(target="network.h1", method="setup_port", timeout="30"))
    agent, driver, scheduler = endpoint(network)
    agent.spawn(Spawn(host="h1", spec=spec()))
    assert driver.list_guests() == []
    (event,) = scheduler.events
    assert event.event == "spawn_failed" and event.retryable and "network setup failed" in event.reason


def test_a_nic_without_a_port_is_left_out() -> None:
    network = Network(fail=errors.OcsError("no port", code="InvalidNetworkInterfaceID.NotFound"))
    agent, driver, scheduler = endpoint(network)
    agent.spawn(Spawn(host="h1", spec=spec()))
    assert [e.event for e in scheduler.events] == ["spawned"]
    (nic,) = driver._guests[IID].nics.values()
    assert (nic.bridge, nic.tap) == ("", "")
