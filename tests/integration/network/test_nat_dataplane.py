"""NAT gateways and routes to network interfaces on the wire, in namespaces.

Two "hosts" joined by VXLAN, which find each other's tunnel address in the database
(no host's settings name the other); only the second has a public network (a namespace the
test makes stands for the internet, at the public router's address). An instance in
a private subnet of the first host reaches the internet through a NAT gateway (or a
NAT instance) on the second, with the NAT's elastic IP as its source, and the
internet cannot reach it. The network services run on an in-memory bus, as the API
would tell them (``sync_host``, ``routing_changed``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from ocs.bus import Bus
from ocs.network.rpcapi import NetworkHostApi, RoutingChanged, SyncHost
from ocs.network.service import NetworkService
from tests.framework.dataplane import DataPlaneLab, Guest, Host
from tests.framework.netcloud import NetCloud
from tests.framework.netns import Namespace, read_line, run, wait_until
from tests.integration.network.conftest import require_dataplane

pytestmark = pytest.mark.slow

ROUTER = "198.51.100.1"
WEB = 8080
CHANGE_WITHIN = 2.0


@pytest.fixture
def lab(request: pytest.FixtureRequest, sessions: sessionmaker[Session]) -> Iterator[DataPlaneLab]:
    require_dataplane()
    with DataPlaneLab(sessions, configured_peers=False) as made:  # tunnel addresses from the database
        yield made
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print(made.dump())
            for ns in made.namespaces:
                print(f"[{ns.name}] routes\n{ns.exec('ip', 'route', check=False).stdout}")
            for host in made.hosts.values():
                plan = host.endpoint.plan
                for netns in (
                    [s.netns for s in plan.subnets] + [n.netns for n in plan.nat_gateways] if plan else []
                ):
                    for argv in (
                        ["ip", "-br", "addr"],
                        ["ip", "route"],
                        ["ip", "neigh"],
                        ["nft", "list", "ruleset"],
                    ):
                        shown = run(["ip", "netns", "exec", netns, *argv], check=False)
                        print(f"[{host.name} {netns}] $ {' '.join(argv)}\n{shown.stdout}{shown.stderr}")


@pytest.fixture
def bus() -> Iterator[Bus]:
    made = Bus("memory://", "ocs-nat-dataplane")
    yield made
    made.close()


class Internet:
    """The namespace standing for the internet: a TCP server and a UDP log on the router's address."""

    def __init__(self, lab: DataPlaneLab, host: Host):
        self.ns: Namespace = lab.internet(host, f"{ROUTER}/24")
        self.log: Path = lab.root / "internet-udp.log"
        for args in (("--tcp", str(WEB)), ("--udp", "9000", "--log", str(self.log))):
            assert read_line(self.ns.spawn("serve", *args), timeout=10) == "ready"

    def heard(self, guest: Guest, word: str, timeout: float = 3.0) -> str | None:
        """The source address the internet saw ``word`` come from (None: it never came)."""

        def came() -> bool:
            guest.ns.agent("udp", ROUTER, "9000", word)
            return self.log.exists() and f" {word}\n" in self.log.read_text()

        if wait_until(came, timeout, interval=0.2) is None:
            return None
        line = next(x for x in self.log.read_text().splitlines() if x.endswith(f" {word}"))
        return line.split()[0]

    def reaches(self, address: str, port: int = WEB) -> bool:
        return self.ns.agent("connect", address, str(port), "--timeout", "1").returncode == 0


def serve(guest: Guest, *ports: int) -> None:
    proc = guest.ns.spawn("serve", *[a for p in ports for a in ("--tcp", str(p))])
    assert read_line(proc, timeout=10) == "ready"


def two_hosts(lab: DataPlaneLab, bus: Bus) -> tuple[Host, Host, list[NetworkService]]:
    """h1 (no public network) and h2 (the public network), joined by VXLAN, served on the bus."""
    h1 = lab.add_host("h1", "192.0.2.1")
    h2 = lab.add_host("h2", "192.0.2.2", public_gateway=f"{ROUTER}/24")
    lab.underlay(h1, h2)
    services = [NetworkService(bus, h.endpoint) for h in (h1, h2)]
    for service in services:
        service.start()
    return h1, h2, services


def test_a_nat_gateway_on_another_host_is_a_private_subnets_way_out(
    lab: DataPlaneLab, cloud: NetCloud, bus: Bus
) -> None:
    vpc = cloud.vpc("10.67.0.0/16")
    public, private = cloud.subnet(vpc, "10.67.1.0/24"), cloud.subnet(vpc, "10.67.2.0/24")
    group = cloud.group(vpc, "open")
    cloud.allow(group, "tcp", WEB, cidr="0.0.0.0/0")
    cloud.internet_gateway(vpc)  # the main table (the public subnet's): 0.0.0.0/0 → igw
    nat = cloud.nat_gateway(public, "h2", "198.51.100.60")
    table = cloud.route_table(vpc, private)
    cloud.route(table, "0.0.0.0/0", nat_gateway_id=nat)
    pa = cloud.instance("h1", private, "10.67.2.10", [group])  # another host than the NAT gateway's
    pc = cloud.instance("h2", private, "10.67.2.20", [group])  # the NAT gateway's host
    h1, h2, services = two_hosts(lab, bus)
    try:
        a, c = lab.plug(h1, pa.instance_id, "a"), lab.plug(h2, pc.instance_id, "c")
        lab.dhcp(a)
        lab.dhcp(c)
        assert wait_until(lambda: cloud.nat_state(nat)[0] == "available", 5) is not None
        nat_ip = cloud.nat_state(nat)[1]
        assert nat_ip.startswith("10.67.1.")
        internet = Internet(lab, h2)
        serve(a, WEB)

        # Out through the NAT gateway, as its elastic IP, from either host.
        assert internet.heard(a, "from-a") == "198.51.100.60"
        assert internet.heard(c, "from-c") == "198.51.100.60"
        assert a.connect(ROUTER, WEB, timeout=2)  # a TCP connection and its answers
        # The internet cannot initiate: not at the elastic IP, not at the private
        # address even with a route to the VPC through the NAT gateway.
        assert not internet.reaches("198.51.100.60")
        internet.ns.ip("route", "add", "10.67.0.0/16", "via", "198.51.100.60")
        assert not internet.reaches(pa.ip)
        # Nothing of the VPC's own leaves through it (the local route wins).
        internet.ns.ip("addr", "add", "10.67.9.9/32", "dev", "eth0")
        a.ns.agent("udp", "10.67.9.9", "9000", "leaked")
        time.sleep(0.3)
        assert "leaked" not in internet.log.read_text()

        # Deleted: the API tells its host (sync_host) and the VPC's hosts (routing_changed).
        cloud.delete_nat_gateway(nat)
        api = NetworkHostApi(bus)
        api.sync_host(SyncHost("h2"))
        api.routing_changed(RoutingChanged([vpc]))
        assert wait_until(lambda: cloud.nat_state(nat)[0] == "deleted", 5) is not None
        assert internet.heard(a, "after-delete", timeout=CHANGE_WITHIN) is None
        assert not a.connect(ROUTER, WEB, timeout=1)
        plan = h1.endpoint.plan
        assert plan is not None and [h.via for h in plan.subnets[0].hop_routes] == [""]
        shown = run(["ip", "-n", plan.subnets[0].netns, "route"]).stdout
        assert "blackhole default" in shown, shown  # as EC2 shows the route: blackhole
        assert h2.endpoint.plan is not None and h2.endpoint.plan.nat_gateways == ()
    finally:
        for service in services:
            service.stop()


def test_a_route_to_a_nat_instance_carries_traffic_through_it(
    lab: DataPlaneLab, cloud: NetCloud, bus: Bus
) -> None:
    """A route to a network interface: an instance with source/dest check off that
    forwards and masquerades (a NAT instance, on the other host) is the private
    subnet's way out; the route follows the instance (stopped: a blackhole)."""
    vpc = cloud.vpc("10.68.0.0/16")
    public, private = cloud.subnet(vpc, "10.68.1.0/24"), cloud.subnet(vpc, "10.68.2.0/24")
    inside, nat_group = cloud.group(vpc, "inside"), cloud.group(vpc, "nat")
    cloud.allow(nat_group, "-1", None, cidr="10.68.0.0/16")
    cloud.internet_gateway(vpc)
    pn = cloud.instance("h2", public, "10.68.1.30", [nat_group])
    cloud.map_public(pn, "198.51.100.70")
    cloud.source_dest_check(pn, False)
    table = cloud.route_table(vpc, private)
    cloud.route(table, "0.0.0.0/0", interface_id=pn.interface_id)
    pa = cloud.instance("h1", private, "10.68.2.10", [inside])
    h1, h2, services = two_hosts(lab, bus)
    try:
        a, n = lab.plug(h1, pa.instance_id, "a"), lab.plug(h2, pn.instance_id, "n")
        lab.dhcp(a)
        lab.dhcp(n)
        n.ns.exec("sysctl", "-qw", "net.ipv4.ip_forward=1")
        n.ns.exec(
            "nft", "-f", "-",
            stdin="table ip natinstance {\n chain postrouting {\n"
            "  type nat hook postrouting priority srcnat; policy accept;\n"
            '  oifname "eth0" ip saddr 10.68.2.0/24 ip daddr != 10.68.0.0/16 masquerade\n }\n}\n',
        )  # fmt: skip
        internet = Internet(lab, h2)
        # Through the NAT instance: the internet sees its elastic IP.
        assert internet.heard(a, "via-instance") == "198.51.100.70"
        assert a.connect(ROUTER, WEB, timeout=2)
        assert not internet.reaches("198.51.100.70")

        # The instance stops: the route is a blackhole, nothing goes out any more.
        cloud.set_state(pn.instance_id, "stopped")
        NetworkHostApi(bus).routing_changed(RoutingChanged([vpc]))
        assert wait_until(lambda: not a.connect(ROUTER, WEB, timeout=0.3), CHANGE_WITHIN) is not None
        assert internet.heard(a, "stopped", timeout=1) is None
    finally:
        for service in services:
            service.stop()
