"""The agent plugs guests in through the host's network service (a stub here)."""

from __future__ import annotations

from typing import Any

from ocs import errors
from ocs.compute_agent.driver import GuestSpec, ImageRef, NicSpec
from ocs.compute_agent.drivers.fake import FakeDriver
from ocs.compute_agent.rpcapi import GuestAction, InterfaceAction, Spawn
from ocs.compute_agent.service import AgentSettings, ComputeEndpoint
from ocs.network.rpcapi import PortBinding, PortBindings, SetupPort, SetupPorts, TeardownPort
from ocs.scheduler.rpcapi import InstanceEvent

IID = "i-0123456789abcdef0"
ENI = "eni-0123456789abcdef0"


class Scheduler:
    def __init__(self) -> None:
        self.events: list[InstanceEvent] = []

    def instance_event(self, event: InstanceEvent) -> None:
        self.events.append(event)


class Network:
    """Answers setup_port(s) like ocs-network (``netns``: its bridges are elsewhere);
    ``ports`` are the instance's ports, by interface id (the primary: ENI)."""

    def __init__(self, netns: str = "", fail: Exception | None = None) -> None:
        self.netns, self.fail = netns, fail
        self.setups: list[SetupPort] = []
        self.setups_all: list[SetupPorts] = []
        self.teardowns: list[TeardownPort] = []
        self.ports: dict[str, PortBinding] = {}
        self.add(ENI, "02:0c:5e:00:00:01", 0)

    def add(self, interface_id: str, mac: str, index: int) -> None:
        tap = "ocst0000000000a" if interface_id == ENI else "ocst" + interface_id[-11:]
        self.ports[interface_id] = PortBinding(IID, interface_id, "ocsb0000000000a", tap, mac,
                                               f"10.0.0.{5 + index}", 1450, self.netns, index)  # fmt: skip

    def setup_port(self, req: SetupPort) -> PortBinding:
        self.setups.append(req)
        if self.fail is not None:
            raise self.fail
        found = sorted(
            (b for b in self.ports.values() if req.interface_id in ("", b.interface_id)),
            key=lambda b: b.device_index,
        )
        if not found:
            raise errors.OcsError("no port", code="InvalidNetworkInterfaceID.NotFound")
        return found[0]

    def setup_ports(self, req: SetupPorts) -> PortBindings:
        self.setups_all.append(req)
        if self.fail is not None:
            raise self.fail
        return PortBindings(req.instance_id, sorted(self.ports.values(), key=lambda b: b.device_index))

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
    agent.start(GuestAction(host="h1", instance_id=IID))  # its ports set up again first
    assert network.setups_all == [SetupPorts("h1", IID)]
    agent.destroy(GuestAction(host="h1", instance_id=IID))
    assert network.teardowns == [TeardownPort("h1", IID)]
    assert [e.event for e in scheduler.events][-1] == "destroyed"


def test_bridges_in_another_namespace_mean_an_unattached_tap_plugged_in_after_the_spawn() -> None:
    network = Network(netns="ocst-host")
    agent, driver, _ = endpoint(network)
    agent.spawn(Spawn(host="h1", spec=spec()))
    (nic,) = driver._guests[IID].nics.values()
    assert (nic.bridge, nic.tap) == ("", "ocst0000000000a")
    assert len(network.setups) == 1  # then every port once more: their taps onto the bridge
    assert network.setups_all == [SetupPorts("h1", IID)]


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


ENI2 = "eni-0123456789abcdef1"
MAC2 = "02:0c:5e:00:00:02"


def test_a_stopped_guest_starts_with_the_interfaces_attached_meanwhile() -> None:
    network = Network()
    agent, driver, scheduler = endpoint(network)
    agent.spawn(Spawn(host="h1", spec=spec()))
    agent.stop(GuestAction(host="h1", instance_id=IID))
    network.add(ENI2, MAC2, 1)  # attached while stopped
    agent.start(GuestAction(host="h1", instance_id=IID))
    assert scheduler.events[-1].event == "started"
    nics = driver._guests[IID].nics
    assert list(nics) == ["02:0c:5e:00:00:01", MAC2]
    assert (nics[MAC2].tap, nics[MAC2].device_index, nics[MAC2].interface_id) == (
        "ocst" + ENI2[-11:],
        1,
        ENI2,
    )
    agent.stop(GuestAction(host="h1", instance_id=IID))
    del network.ports[ENI2]  # detached while stopped
    agent.start(GuestAction(host="h1", instance_id=IID))
    assert list(driver._guests[IID].nics) == ["02:0c:5e:00:00:01"]


def test_hot_plug_and_unplug_of_a_running_guest() -> None:
    network = Network()
    agent, driver, _ = endpoint(network)
    agent.spawn(Spawn(host="h1", spec=spec()))
    network.add(ENI2, MAC2, 1)
    action = InterfaceAction("h1", IID, ENI2, MAC2, 1)
    agent.attach_interface(action)
    assert network.setups[-1] == SetupPort("h1", IID, ENI2)
    nic = driver._guests[IID].nics[MAC2]
    assert (nic.bridge, nic.tap, nic.mtu) == ("ocsb0000000000a", "ocst" + ENI2[-11:], 1450)
    agent.attach_interface(action)  # a redelivery: nothing changes
    assert len(driver._guests[IID].nics) == 2
    agent.detach_interface(action)
    assert list(driver._guests[IID].nics) == ["02:0c:5e:00:00:01"]
    assert network.teardowns == [TeardownPort("h1", IID, ENI2)]


def test_hot_plug_into_another_namespace_moves_the_tap_after_the_plug() -> None:
    network = Network(netns="ocst-host")
    agent, driver, _ = endpoint(network)
    agent.spawn(Spawn(host="h1", spec=spec()))
    network.add(ENI2, MAC2, 1)
    before = len(network.setups)
    agent.attach_interface(InterfaceAction("h1", IID, ENI2, MAC2, 1))
    assert network.setups[before:] == [SetupPort("h1", IID, ENI2)] * 2
    assert driver._guests[IID].nics[MAC2].bridge == ""
    assert agent.ports_up(IID, plug=True) is not None  # an agent restart: every port, twice
    assert network.setups_all[-2:] == [SetupPorts("h1", IID)] * 2


def test_no_hot_plug_without_a_port_or_a_guest() -> None:
    network = Network()
    agent, driver, _ = endpoint(network)
    agent.spawn(Spawn(host="h1", spec=spec()))
    agent.attach_interface(InterfaceAction("h1", IID, ENI2, MAC2, 1))  # detached again meanwhile
    assert len(driver._guests[IID].nics) == 1
    agent.destroy(GuestAction(host="h1", instance_id=IID))
    agent.detach_interface(InterfaceAction("h1", IID, ENI2, MAC2, 1))  # no guest: the port still goes
    assert network.teardowns[-1] == TeardownPort("h1", IID, ENI2)
