"""The network data plane on the wire: ``ocs-network``'s linux driver in namespaces.

Desired state is written to a SQLite database as the API would (:class:`NetCloud`);
the service reads it, plans, and the driver builds bridges, VXLAN, dnsmasq and
rulesets inside "host" namespaces. Instances are namespaces plugged into the tap
and bridge ``setup_port`` named; they get their address by DHCP from OCS's dnsmasq.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from ocs.bus import Bus
from ocs.network.drivers.linux import LinuxDriver
from ocs.network.rpcapi import NetworkHostApi, RoutingChanged, SecurityGroupsChanged, TeardownPort
from ocs.network.service import NetworkService
from tests.framework.dataplane import DataPlaneLab, Guest, ip_json
from tests.framework.netcloud import NetCloud
from tests.framework.netns import read_line, run, wait_until
from tests.integration.network.conftest import require_dataplane

pytestmark = pytest.mark.slow

ALLOWED, DENIED = 8080, 8081
CHANGE_WITHIN = 2.0


@pytest.fixture
def lab(request: pytest.FixtureRequest, sessions: sessionmaker[Session]) -> Iterator[DataPlaneLab]:
    require_dataplane()
    with DataPlaneLab(sessions) as made:
        yield made
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print(made.dump())


def serve(guest: Guest, *ports: int) -> None:
    args = [a for p in ports for a in ("--tcp", str(p))]
    proc = guest.ns.spawn("serve", *args)
    assert read_line(proc, timeout=10) == "ready"


def test_dhcp_gives_fixed_addresses_and_groups_filter_ports(lab: DataPlaneLab, cloud: NetCloud) -> None:
    vpc = cloud.vpc("10.61.0.0/16")
    sub = cloud.subnet(vpc, "10.61.1.0/24")
    web, client = cloud.group(vpc, "web"), cloud.group(vpc, "client")
    cloud.allow(web, "tcp", ALLOWED, source_group=client)
    pa = cloud.instance("h1", sub, "10.61.1.10", [web])
    pb = cloud.instance("h1", sub, "10.61.1.11", [client])
    host = lab.add_host("h1")
    a, b = lab.plug(host, pa.instance_id, "a"), lab.plug(host, pb.instance_id, "b")
    assert len(a.binding.tap) <= 15 and a.binding.tap.startswith("ocs")

    for guest, port in ((a, pa), (b, pb)):
        lease = lab.dhcp(guest)
        assert (lease["ip"], lease["subnet"], lease["router"]) == (port.ip, "255.255.255.0", "10.61.1.1")
        assert (lease["dns"].strip(), lease["lease"], lease["mtu"]) == ("10.61.1.1", "600", "1500")
    serve(a, ALLOWED, DENIED)
    assert b.connect(pa.ip, ALLOWED)
    assert not b.connect(pa.ip, DENIED)
    assert not a.connect(pb.ip, ALLOWED)  # b's group lets nothing in


def test_apply_is_idempotent_and_a_restarted_driver_converges(lab: DataPlaneLab, cloud: NetCloud) -> None:
    vpc = cloud.vpc("10.62.0.0/16")
    sub = cloud.subnet(vpc, "10.62.1.0/24")
    pa = cloud.instance("h1", sub, "10.62.1.10", [cloud.group(vpc, "g")])
    host = lab.add_host("h1")
    lab.plug(host, pa.instance_id, "a")
    plan = host.endpoint.converge()
    links = {x["ifname"]: x["ifindex"] for x in ip_json(host.ns, "link", "show")}
    pid_file = plan.subnets[0].pid_path
    pid = Path(pid_file).read_text().strip()

    assert host.driver.apply(plan).changes == ()
    restarted = LinuxDriver(host.ns.name)  # a new process: no memory, same host
    assert restarted.apply(plan).changes == ()
    assert {x["ifname"]: x["ifindex"] for x in ip_json(host.ns, "link", "show")} == links
    assert Path(pid_file).read_text().strip() == pid

    # Something removed behind its back comes back on the next apply.
    host.ns.ip("link", "del", plan.bridges[0].bridge)
    host.ns.exec("nft", "delete", "table", "bridge", "ocs")
    changes = restarted.apply(plan).changes
    assert any("bridge" in c for c in changes) and any("nft ocs loaded" in c for c in changes)
    assert restarted.apply(plan).changes == ()

    # The last port of the subnet goes: its namespace, dnsmasq and bridge go with it.
    cloud.set_state(pa.instance_id, "shutting-down")
    host.endpoint.teardown_port(TeardownPort("h1", pa.instance_id))
    assert plan.subnets[0].netns not in run(["ip", "netns", "list"]).stdout
    assert not Path(f"/proc/{pid}").exists() or b"dnsmasq" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert plan.bridges[0].bridge not in {x["ifname"] for x in ip_json(host.ns, "link", "show")}


def test_revoked_rule_cuts_new_connections_within_two_seconds(lab: DataPlaneLab, cloud: NetCloud) -> None:
    vpc = cloud.vpc("10.63.0.0/16")
    sub = cloud.subnet(vpc, "10.63.1.0/24")
    web = cloud.group(vpc, "web")
    cloud.allow(web, "tcp", ALLOWED, cidr="10.63.0.0/16")
    pa = cloud.instance("h1", sub, "10.63.1.10", [web])
    pb = cloud.instance("h1", sub, "10.63.1.11", [cloud.group(vpc, "client")])
    host = lab.add_host("h1")
    bus = Bus("memory://", "ocs-dataplane-test")
    service = NetworkService(bus, host.endpoint)
    service.start()
    try:
        a, b = lab.plug(host, pa.instance_id, "a"), lab.plug(host, pb.instance_id, "b")
        lab.dhcp(a)
        lab.dhcp(b)
        serve(a, ALLOWED)
        assert b.connect(pa.ip, ALLOWED)
        cloud.revoke(web, "tcp", ALLOWED, cidr="10.63.0.0/16")
        NetworkHostApi(bus).security_groups_changed(SecurityGroupsChanged([web]))
        took = wait_until(lambda: not b.connect(pa.ip, ALLOWED, timeout=0.3), CHANGE_WITHIN)
        assert took is not None, "the revoked rule still lets new connections in"
        print(f"revocation effective after {took:.2f} s")
        cloud.allow(web, "tcp", ALLOWED, source_group=cloud.group(vpc, "other"))
        NetworkHostApi(bus).security_groups_changed(SecurityGroupsChanged([web]))
        assert wait_until(lambda: "tcp dport 8080" in host.ns.exec("nft", "list", "ruleset").stdout, 2.0)
    finally:
        service.stop()
        bus.close()


def test_two_vpcs_are_isolated_even_with_the_same_addresses(lab: DataPlaneLab, cloud: NetCloud) -> None:
    vpc1, vpc2 = cloud.vpc("10.64.0.0/16"), cloud.vpc("10.64.0.0/16")
    sub1, sub2 = cloud.subnet(vpc1, "10.64.1.0/24"), cloud.subnet(vpc2, "10.64.1.0/24")
    open1, open2 = cloud.group(vpc1, "open"), cloud.group(vpc2, "open")
    for group in (open1, open2):
        cloud.allow(group, "tcp", ALLOWED, cidr="0.0.0.0/0")
    pa = cloud.instance("h1", sub1, "10.64.1.10", [open1])
    pb = cloud.instance("h1", sub1, "10.64.1.11", [open1])
    pc = cloud.instance("h1", sub2, "10.64.1.11", [open2])  # b's address, in the other VPC
    host = lab.add_host("h1")
    a, b, c = (lab.plug(host, p.instance_id, x) for p, x in ((pa, "a"), (pb, "b"), (pc, "c")))
    assert a.binding.bridge == b.binding.bridge != c.binding.bridge
    for guest in (a, b, c):
        lab.dhcp(guest)
    serve(a, ALLOWED)
    assert b.connect(pa.ip, ALLOWED)
    assert not c.connect(pa.ip, ALLOWED)

    # A tap OCS did not set up, plugged into a's bridge, is cut off (fails closed).
    rogue = lab._namespace("r")
    host.ns.ip("link", "add", "ocst00000000bad", "type", "veth", "peer", "name", "eth0", "netns", rogue.name)
    host.ns.ip("link", "set", "ocst00000000bad", "master", a.binding.bridge, "up")
    rogue.ip("addr", "add", "10.64.1.99/24", "dev", "eth0")
    rogue.ip("link", "set", "eth0", "up")
    assert rogue.agent("connect", pa.ip, str(ALLOWED), "--timeout", "0.7").returncode != 0


def test_vxlan_carries_a_vpc_between_two_hosts(lab: DataPlaneLab, cloud: NetCloud) -> None:
    vpc = cloud.vpc("10.65.0.0/16")
    sub = cloud.subnet(vpc, "10.65.1.0/24")
    web, client = cloud.group(vpc, "web"), cloud.group(vpc, "client")
    cloud.allow(web, "tcp", ALLOWED, source_group=client)  # h1 must learn of h2's new member
    pa = cloud.instance("h1", sub, "10.65.1.10", [web])
    h1, h2 = lab.add_host("h1", "192.0.2.1"), lab.add_host("h2", "192.0.2.2")
    lab.underlay(h1, h2)
    bus = Bus("memory://", "ocs-dataplane-vxlan")
    services = [NetworkService(bus, h.endpoint) for h in (h1, h2)]
    for service in services:
        service.start()
    try:
        a = lab.plug(h1, pa.instance_id, "a")
        pb = cloud.instance("h2", sub, "10.65.1.20", [client])  # launched after a was set up
        b = lab.plug(h2, pb.instance_id, "b")  # h1 hears (vpc_hosts_changed) that h2 carries the VPC
        vxlan = a.binding.bridge.replace("ocsb", "ocsx")
        assert wait_until(
            lambda: "dst 192.0.2.2" in h1.ns.exec("bridge", "fdb", "show", "dev", vxlan).stdout, 5
        )
        assert a.binding.mtu == 1450
        assert lab.dhcp(a)["ip"] == pa.ip and lab.dhcp(b)["ip"] == pb.ip  # each from its own host
        assert b.lease["mtu"] == "1450"
        serve(a, ALLOWED, DENIED)
        assert wait_until(lambda: b.connect(pa.ip, ALLOWED), 2.0) is not None
        assert not b.connect(pa.ip, DENIED)
        # b's gateway and metadata service are h2's own, never h1's across the tunnel.
        assert b.http("GET", "http://169.254.169.254/latest/meta-data/instance-id") == (200, pb.instance_id)
        assert b.ns.exec("ip", "neigh", "show", "10.65.1.1").stdout.count("lladdr") == 1
        # A second client on h2 (which carries the VPC already): only the group's news tells h1.
        pc = cloud.instance("h2", sub, "10.65.1.21", [client])
        c = lab.plug(h2, pc.instance_id, "c")
        assert lab.dhcp(c)["ip"] == pc.ip
        assert wait_until(lambda: c.connect(pa.ip, ALLOWED), 2.0) is not None
    finally:
        for service in services:
            service.stop()
        bus.close()


def test_metadata_answers_each_port_with_its_own_identity_only(lab: DataPlaneLab, cloud: NetCloud) -> None:
    vpc = cloud.vpc("10.66.0.0/16")
    sub = cloud.subnet(vpc, "10.66.1.0/24")
    group = cloud.group(vpc, "g")  # no rules: the metadata service is never filtered
    pa = cloud.instance("h1", sub, "10.66.1.10", [group], user_data="I am a")
    pb = cloud.instance("h1", sub, "10.66.1.11", [group], user_data="I am b")
    host = lab.add_host("h1")
    a, b = lab.plug(host, pa.instance_id, "a"), lab.plug(host, pb.instance_id, "b")
    lab.dhcp(a)
    lab.dhcp(b)
    base = "http://169.254.169.254/latest"
    assert a.http("GET", f"{base}/meta-data/instance-id") == (200, pa.instance_id)
    assert b.http("GET", f"{base}/meta-data/instance-id") == (200, pb.instance_id)
    assert a.http("GET", f"{base}/user-data") == (200, "I am a")
    assert a.http("GET", f"{base}/meta-data/local-ipv4") == (200, pa.ip)
    status, token = b.http("PUT", f"{base}/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    assert status == 200 and token
    assert b.http("GET", f"{base}/meta-data/mac", {"X-aws-ec2-metadata-token": token}) == (200, pb.mac)
    # b's token is b's: a cannot use it.
    assert a.http("GET", f"{base}/meta-data/instance-id", {"X-aws-ec2-metadata-token": token})[0] == 401


PUBLIC_ROUTER = "198.51.100.1"


def test_an_elastic_ip_reaches_the_instance_and_is_its_way_out(lab: DataPlaneLab, cloud: NetCloud) -> None:
    """The internet gateway on the wire: the world reaches an instance through its
    elastic IP (only there, only on ports its groups allow), the instance's own
    connections leave with the elastic IP as their source, and an instance without a
    public address, or once the address is gone, is not reachable at all."""
    vpc = cloud.vpc("10.64.0.0/16")
    sub = cloud.subnet(vpc, "10.64.1.0/24")
    web = cloud.group(vpc, "web")
    cloud.allow(web, "tcp", ALLOWED, cidr="0.0.0.0/0")
    pa = cloud.instance("h1", sub, "10.64.1.10", [web])
    pb = cloud.instance("h1", sub, "10.64.1.11", [web])
    cloud.internet_gateway(vpc)
    allocation = cloud.map_public(pa, "198.51.100.20")
    host = lab.add_host("h1", public_gateway=f"{PUBLIC_ROUTER}/24")
    a, b = lab.plug(host, pa.instance_id, "a"), lab.plug(host, pb.instance_id, "b")
    lab.dhcp(a)
    lab.dhcp(b)
    world = lab.internet(host, f"{PUBLIC_ROUTER}/24")
    serve(a, ALLOWED, DENIED)
    serve(b, ALLOWED)

    def reach(address: str, port: int) -> bool:
        return world.agent("connect", address, str(port), "--timeout", "1").returncode == 0

    assert reach("198.51.100.20", ALLOWED)
    assert not reach("198.51.100.20", DENIED)  # the group does not allow it
    assert not reach(pa.ip, ALLOWED) and not reach(pb.ip, ALLOWED)  # private addresses stay private

    log = lab.root / "world-udp.log"
    listener = world.spawn("serve", "--udp", "9000", "--log", str(log))
    assert read_line(listener, timeout=10) == "ready"
    a.ns.agent("udp", PUBLIC_ROUTER, "9000", "from-a")
    b.ns.agent("udp", PUBLIC_ROUTER, "9000", "from-b")  # no public address: goes nowhere
    assert wait_until(lambda: log.exists() and "from-a" in log.read_text(), 5) is not None
    assert log.read_text().splitlines()[0] == "198.51.100.20 from-a"
    # Its own connections get their answers (de-SNATed replies come back in).
    web = world.spawn("serve", "--tcp", str(ALLOWED))
    assert read_line(web, timeout=10) == "ready"
    assert a.connect(PUBLIC_ROUTER, ALLOWED, timeout=2)
    assert not b.connect(PUBLIC_ROUTER, ALLOWED, timeout=0.5)  # no public address: no way out
    # The VPC's own addresses never go out to the gateway (the local route wins), even
    # where the public network has such an address.
    world.ip("addr", "add", "10.64.2.5/32", "dev", "eth0")
    a.ns.agent("udp", "10.64.2.5", "9000", "leaked")
    time.sleep(0.3)
    assert "from-b" not in log.read_text() and "leaked" not in log.read_text()

    # The address moves to b, and the API tells the hosts carrying the VPC (routing_changed):
    # b is reachable within two seconds, a is not any more.
    bus = Bus("memory://", "ocs-dataplane-eip")
    service = NetworkService(bus, host.endpoint)
    service.start()
    try:
        cloud.unmap_public(allocation)
        cloud.map_public(pb, "198.51.100.21")
        NetworkHostApi(bus).routing_changed(RoutingChanged([vpc]))
        assert wait_until(lambda: reach("198.51.100.21", ALLOWED), CHANGE_WITHIN) is not None
        assert not reach("198.51.100.20", ALLOWED)
    finally:
        service.stop()
        bus.close()

    # No route to the internet gateway: nothing gets in or out any more.
    cloud.delete_internet_routes(vpc)
    plan = host.endpoint.converge()
    assert not plan.subnets[0].uplink_ns
    assert not reach("198.51.100.21", ALLOWED)


def test_subnets_of_a_vpc_reach_each_other_on_one_host_and_across_hosts(
    lab: DataPlaneLab, cloud: NetCloud
) -> None:
    """The VPC's local route: instances of different subnets reach each other directly
    (DHCP's classless static routes put the VPC's block on-link), on one host and over
    VXLAN, with their groups enforced; the default route still goes to the gateway."""
    vpc = cloud.vpc("10.66.0.0/16")
    one, two = cloud.subnet(vpc, "10.66.1.0/24"), cloud.subnet(vpc, "10.66.2.0/24")
    web, client = cloud.group(vpc, "web"), cloud.group(vpc, "client")
    cloud.allow(web, "tcp", ALLOWED, source_group=client)
    pa = cloud.instance("h1", one, "10.66.1.10", [web])
    pb = cloud.instance("h1", two, "10.66.2.10", [client])
    pc = cloud.instance("h2", two, "10.66.2.20", [client])
    h1, h2 = lab.add_host("h1", "192.0.2.1"), lab.add_host("h2", "192.0.2.2")
    lab.underlay(h1, h2)
    bus = Bus("memory://", "ocs-dataplane-local-route")
    services = [NetworkService(bus, h.endpoint) for h in (h1, h2)]
    for service in services:
        service.start()
    try:
        a, b = lab.plug(h1, pa.instance_id, "a"), lab.plug(h1, pb.instance_id, "b")
        c = lab.plug(h2, pc.instance_id, "c")
        for guest in (a, b, c):
            lab.dhcp(guest)
        routes = b.ns.exec("ip", "route").stdout
        assert "10.66.0.0/16 dev eth0" in routes and "default via 10.66.2.1" in routes, routes
        serve(a, ALLOWED, DENIED)
        assert b.connect(pa.ip, ALLOWED)  # another subnet, same host
        assert wait_until(lambda: c.connect(pa.ip, ALLOWED), 3.0) is not None  # another subnet, another host
        assert not c.connect(pa.ip, DENIED)
        assert not a.connect(pb.ip, ALLOWED)  # b's group lets nothing in
    finally:
        for service in services:
            service.stop()
        bus.close()
