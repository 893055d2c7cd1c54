"""The network service over a database with the noop driver: desired state, bus operations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from ocs import errors
from ocs.bus import Bus
from ocs.db import interfaces as db_interfaces
from ocs.db import routing
from ocs.db.engine import make_engine, session_factory, transaction
from ocs.db.models.compute import ServiceRecord
from ocs.db.models.network import Vpc
from ocs.network import plan as net_plan
from ocs.network.driver import REGISTRY, make_driver
from ocs.network.drivers.noop import NoopDriver
from ocs.network.metadata import CallerKey
from ocs.network.rpcapi import (
    NetworkHostApi,
    RoutingChanged,
    SecurityGroupsChanged,
    SetupPort,
    SetupPorts,
    TeardownPort,
)
from ocs.network.service import (
    NetworkHostEndpoint,
    NetworkService,
    NetworkSettings,
    desired_state,
    metadata_for,
)
from ocs.service import StatusRequest
from tests.dbfixtures import throwaway_database
from tests.framework.netcloud import NetCloud

SETTINGS = NetworkSettings(
    host="h1", tunnel_ip="192.0.2.1", tunnel_ips={"h1": "192.0.2.1", "h2": "192.0.2.2"}
)


@pytest.fixture
def sessions() -> Iterator[sessionmaker[Session]]:
    with throwaway_database("sqlite") as url:
        engine = make_engine(url)
        try:
            yield session_factory(engine)
        finally:
            engine.dispose()


@pytest.fixture
def cloud(sessions: sessionmaker[Session]) -> NetCloud:
    return NetCloud(sessions)


def test_registry_names_both_drivers() -> None:
    assert sorted(REGISTRY) == ["linux", "noop"]
    assert isinstance(make_driver("noop"), NoopDriver)
    with pytest.raises(ValueError, match="unknown network driver"):
        make_driver("ovs")


def test_desired_state_has_local_ports_rules_members_and_peers(cloud: NetCloud) -> None:
    vpc = cloud.vpc("10.1.0.0/16")
    sub = cloud.subnet(vpc, "10.1.1.0/24")
    web, db = cloud.group(vpc, "web"), cloud.group(vpc, "db")
    cloud.allow(db, "tcp", 5432, source_group=web)
    a = cloud.instance("h1", sub, "10.1.1.10", [db])
    b = cloud.instance("h2", sub, "10.1.1.11", [web])
    cloud.instance("h1", sub, "10.1.1.12", [web], state="terminated")
    with transaction(cloud.sessions) as s:
        state = desired_state(s, SETTINGS)
    assert [p.instance_id for p in state.ports] == [a.instance_id]
    assert state.ports[0].mac == a.mac and state.ports[0].group_ids == (db,)
    assert [x.id for x in state.subnets] == [sub]
    assert state.group_members == {web: (b.ip,)}
    assert state.peers == {vpc: ("192.0.2.2",)}
    assert any(r.referenced_group_id == web and r.from_port == 5432 for r in state.rules)


def test_setup_teardown_and_group_changes(cloud: NetCloud) -> None:
    vpc = cloud.vpc("10.2.0.0/16")
    sub = cloud.subnet(vpc, "10.2.1.0/24")
    sg = cloud.group(vpc, "app")
    a = cloud.instance("h1", sub, "10.2.1.10", [sg])
    driver = NoopDriver()
    driver.enforcing = True  # as the linux driver: every answer after an apply
    endpoint = NetworkHostEndpoint(cloud.sessions, driver, SETTINGS)
    binding = endpoint.setup_port(SetupPort("h1", a.instance_id))
    assert binding.tap == net_plan.tap_name(a.interface_id) and binding.bridge == net_plan.bridge_name(vpc)
    assert (binding.mac, binding.ip, binding.mtu) == (a.mac, a.ip, 1450)
    assert driver.plan is not None and [p.instance_id for p in driver.plan.ports] == [a.instance_id]
    with pytest.raises(errors.NotFound):
        endpoint.setup_port(SetupPort("h1", "i-00000000000000000"))
    assert endpoint.setup_ports(SetupPorts("h1", a.instance_id)).ports == [binding]
    assert endpoint.setup_ports(SetupPorts("h1", "i-00000000000000000")).ports == []

    before = driver.firewall_applies
    endpoint.security_groups_changed(SecurityGroupsChanged([sg]))
    assert driver.firewall_applies == before  # nothing changed: nothing reloaded
    cloud.allow(sg, "tcp", 22, cidr="0.0.0.0/0")
    endpoint.security_groups_changed(SecurityGroupsChanged([sg]))
    assert driver.firewall_applies == before + 1 and "tcp dport 22 accept" in driver.plan.firewall

    endpoint.teardown_port(TeardownPort("h1", a.instance_id))
    assert driver.plan.ports == () and driver.plan.subnets == ()
    endpoint.setup_port(SetupPort("h1", a.instance_id))
    assert len(driver.plan.ports) == 1


def test_a_bookkeeping_driver_answers_at_once_and_converges_soon(cloud: NetCloud) -> None:
    """The noop driver enforces nothing: bindings come from the port, convergence later."""
    vpc = cloud.vpc("10.5.0.0/16")
    sub = cloud.subnet(vpc, "10.5.1.0/24")
    sg = cloud.group(vpc, "app")
    a = cloud.instance("h1", sub, "10.5.1.10", [sg])
    driver = NoopDriver()
    endpoint = NetworkHostEndpoint(cloud.sessions, driver, SETTINGS)
    asked: list[int] = []
    endpoint.converge_soon = lambda: asked.append(1)
    told: list[list[str]] = []
    endpoint.notify_groups = told.append
    binding = endpoint.setup_port(SetupPort("h1", a.instance_id))
    assert (binding.tap, binding.bridge) == (net_plan.tap_name(a.interface_id), net_plan.bridge_name(vpc))
    assert (binding.mac, binding.ip, binding.mtu, binding.netns) == (a.mac, a.ip, 1450, "")
    assert driver.plan is None and asked == [1]
    assert endpoint.setup_ports(SetupPorts("h1", a.instance_id)).ports == [binding] and asked == [1, 1]
    asked.pop()
    endpoint.security_groups_changed(SecurityGroupsChanged([sg]))
    endpoint.teardown_port(TeardownPort("h1", a.instance_id))
    assert asked == [1, 1, 1] and driver.plan is None
    endpoint.converge()
    assert driver.plan is not None and driver.plan.ports == () and told == []  # others not told
    with pytest.raises(errors.NotFound):
        endpoint.setup_port(SetupPort("h1", "i-00000000000000000"))


def test_metadata_answers_only_the_caller(cloud: NetCloud) -> None:
    vpc = cloud.vpc("10.3.0.0/16")
    sub = cloud.subnet(vpc, "10.3.1.0/24")
    a = cloud.instance("h1", sub, "10.3.1.10", [], user_data="hello a")
    with transaction(cloud.sessions) as s:
        meta = metadata_for(s, CallerKey(sub, a.ip), "us-east-1")
        assert meta is not None and meta.instance_id == a.instance_id and meta.user_data == b"hello a"
        assert meta.mac == a.mac and meta.local_hostname == "ip-10-3-1-10.ec2.internal"
        assert metadata_for(s, CallerKey(sub, "10.3.1.99"), "us-east-1") is None
        assert metadata_for(s, CallerKey("subnet-0000000000000000f", a.ip), "us-east-1") is None


def test_service_on_the_memory_bus(cloud: NetCloud) -> None:
    vpc = cloud.vpc("10.4.0.0/16")
    sub = cloud.subnet(vpc, "10.4.1.0/24")
    a = cloud.instance("h1", sub, "10.4.1.10", [])
    bus = Bus("memory://", "ocs-net-test")
    driver = NoopDriver()
    service = NetworkService(bus, NetworkHostEndpoint(cloud.sessions, driver, SETTINGS))
    service.start()
    try:
        assert driver.applies == 1  # converged at start
        api = NetworkHostApi(bus)
        binding = api.setup_port(SetupPort("h1", a.instance_id))
        assert binding.interface_id == a.interface_id
        assert api.status(StatusRequest(), topic="network.h1").host == "h1"
    finally:
        service.stop()
        bus.close()


def test_desired_state_has_internet_routes_public_addresses_and_secondary_ips(
    cloud: NetCloud, sessions: sessionmaker[Session]
) -> None:
    """Ports come from interface rows: secondary addresses and the public addresses mapped
    to them; a subnet's internet routes are its route table's routes to an internet
    gateway of its VPC (the main table unless it has its own)."""
    vpc = cloud.vpc("10.5.0.0/16")
    routed, private = cloud.subnet(vpc, "10.5.1.0/24"), cloud.subnet(vpc, "10.5.2.0/24")
    pa = cloud.instance("h1", routed, "10.5.1.10", [])
    pb = cloud.instance("h1", private, "10.5.2.10", [])
    cloud.internet_gateway(vpc)
    with transaction(sessions) as s:  # the private subnet gets a table of its own, with no way out
        table = routing.create_route_table(s, cloud.account_id, s.get(Vpc, vpc))
        routing.associate_subnet(s, cloud.account_id, table.id, private)
        db_interfaces.assign_addresses(s, cloud.account_id, pa.interface_id, ["10.5.1.50"])
    cloud.map_public(pa, "198.51.100.7")
    with transaction(sessions) as s:
        state = desired_state(s, NetworkSettings(host="h1"))
    subnets = {x.id: x for x in state.subnets}
    assert subnets[routed].internet_routes == ("0.0.0.0/0",)
    assert subnets[private].internet_routes == ()
    ports = {p.instance_id: p for p in state.ports}
    assert ports[pa.instance_id].secondary_ips == ("10.5.1.50",)
    assert ports[pa.instance_id].public_ips == (("198.51.100.7", "10.5.1.10"),)
    assert ports[pb.instance_id].public_ips == ()
    assert ports[pa.instance_id].source_dest_check is True
    with transaction(sessions) as s:  # ModifyNetworkInterfaceAttribute SourceDestCheck=false reaches the plan
        db_interfaces.set_source_dest_check(
            s, db_interfaces.get_interface(s, cloud.account_id, pa.interface_id), False
        )
    with transaction(sessions) as s:
        state = desired_state(s, NetworkSettings(host="h1"))
    assert {p.instance_id: p.source_dest_check for p in state.ports} == {
        pa.instance_id: False,
        pb.instance_id: True,
    }


def test_routing_changed_converges_only_hosts_carrying_the_vpc(
    cloud: NetCloud, sessions: sessionmaker[Session]
) -> None:
    vpc, other = cloud.vpc("10.6.0.0/16"), cloud.vpc("10.7.0.0/16")
    cloud.instance("h1", cloud.subnet(vpc, "10.6.1.0/24"), "10.6.1.10", [])
    endpoint = NetworkHostEndpoint(sessions, NoopDriver(), NetworkSettings(host="h1"))
    endpoint.converge()
    asked: list[int] = []
    endpoint.converge_soon = lambda: asked.append(1)
    endpoint.routing_changed(RoutingChanged([other]))
    assert asked == []
    endpoint.routing_changed(RoutingChanged([other, vpc]))
    assert asked == [1]
    endpoint.routing_changed(RoutingChanged([]))  # any VPC
    assert asked == [1, 1]


def test_routes_to_nat_gateways_and_interfaces_resolve_to_next_hops(cloud: NetCloud) -> None:
    """A private subnet's routes to a NAT gateway and to an instance's interface become
    next hops (address and MAC); the NAT gateway's host carries it and the VPC (a tunnel
    peer for the others) and learns tunnel addresses from the database; a target that
    cannot carry traffic (stopped instance, deleted gateway) is a blackhole; the host
    settles the gateway's states."""
    vpc = cloud.vpc("10.9.0.0/16")
    public, private = cloud.subnet(vpc, "10.9.1.0/24"), cloud.subnet(vpc, "10.9.2.0/24")
    cloud.internet_gateway(vpc)
    nat = cloud.nat_gateway(public, "h3", "198.51.100.9")
    appliance = cloud.instance("h2", public, "10.9.1.50", [])
    table = cloud.route_table(vpc, private)
    cloud.route(table, "0.0.0.0/0", nat_gateway_id=nat)
    cloud.route(table, "192.0.2.0/24", interface_id=appliance.interface_id)
    cloud.instance("h1", private, "10.9.2.10", [])  # the private subnet has a port on h1
    with transaction(cloud.sessions) as s:
        state = desired_state(s, SETTINGS)
        s.add(routing_service_record("h3", "192.0.2.3"))
    nat_ip = cloud.nat_state(nat)[1]
    [sub] = state.subnets
    hops = {h.destination: h for h in sub.hop_routes}
    assert hops["0.0.0.0/0"].via == nat_ip and hops["0.0.0.0/0"].mac
    assert (hops["192.0.2.0/24"].via, hops["192.0.2.0/24"].mac) == (appliance.ip, appliance.mac)
    assert state.nat_gateways == () and state.peers == {vpc: ("192.0.2.2",)}  # h3 has no address yet

    h3 = NetworkSettings(host="h3", tunnel_ip="192.0.2.3", tunnel_ips={})  # from the database alone
    with transaction(cloud.sessions) as s:
        s.add(routing_service_record("h1", "192.0.2.1"))
        carried = desired_state(s, h3)
        state = desired_state(s, SETTINGS)
    [gw] = carried.nat_gateways
    assert (gw.id, gw.ip, gw.public_ip, gw.internet_routes) == (nat, nat_ip, "198.51.100.9", ("0.0.0.0/0",))
    assert carried.peers == {vpc: ("192.0.2.1",)}  # a's host, found in the database
    assert state.peers == {vpc: ("192.0.2.2", "192.0.2.3")}  # the NAT gateway's host too

    endpoint = NetworkHostEndpoint(cloud.sessions, NoopDriver(), h3)
    endpoint.converge()
    assert cloud.nat_state(nat)[0] == "available"
    cloud.set_state(appliance.instance_id, "stopped")
    cloud.delete_nat_gateway(nat)
    assert cloud.nat_state(nat) == ("deleting", "")
    with transaction(cloud.sessions) as s:
        state = desired_state(s, SETTINGS)
        assert desired_state(s, h3).nat_gateways == ()
    assert [(h.destination, h.via) for h in state.subnets[0].hop_routes] == [
        ("0.0.0.0/0", ""),
        ("192.0.2.0/24", ""),
    ]
    assert endpoint.converge().nat_gateways == ()
    assert cloud.nat_state(nat)[0] == "deleted"
    with transaction(cloud.sessions) as s:
        assert desired_state(s, SETTINGS).peers == {vpc: ("192.0.2.2",)}
    endpoint.close()


def routing_service_record(host: str, tunnel_ip: str) -> ServiceRecord:
    """A network service's heartbeat record with its tunnel address."""
    return ServiceRecord(service="network", host=host, tunnel_ip=tunnel_ip)
