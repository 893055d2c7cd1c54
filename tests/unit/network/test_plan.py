"""The data-plane planner against golden files (``OCS_UPDATE_GOLDEN=1`` rewrites them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ocs.network import nft, plan
from ocs.network.plan import DesiredState, PlanSettings, PortState, SubnetState

GOLDEN = Path(__file__).parent / "golden" / "plan"
SETTINGS = PlanSettings(state_dir="/var/lib/ocs/network")

VPC_A, VPC_B = "vpc-0a0a0a0a0a0a0a0a0", "vpc-0b0b0b0b0b0b0b0b0"
SUB_A1 = SubnetState("subnet-0a1a1a1a1a1a1a1a1", VPC_A, "10.0.1.0/24")
SUB_A2 = SubnetState("subnet-0a2a2a2a2a2a2a2a2", VPC_A, "10.0.2.0/24")
SUB_B = SubnetState("subnet-0b1b1b1b1b1b1b1b1", VPC_B, "10.0.1.0/24")


def port(n: int, subnet: SubnetState, ip: str, *groups: str) -> PortState:
    return PortState(
        interface_id=f"eni-{n:017x}",
        instance_id=f"i-{n:017x}",
        mac=f"02:00:00:00:00:{n:02x}",
        ip=ip,
        subnet_id=subnet.id,
        group_ids=groups,
    )


def check(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("OCS_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_empty_host() -> None:
    check("empty", plan.describe(plan.plan_host(DesiredState(host="h1"), SETTINGS)))


def test_one_subnet_two_ports_no_tunnel() -> None:
    state = DesiredState(
        host="h1",
        subnets=(SUB_A1,),
        ports=(port(1, SUB_A1, "10.0.1.10", "sg-a"), port(2, SUB_A1, "10.0.1.11", "sg-b")),
        rules=(
            nft.Rule("sg-a", False, "tcp", 22, 22, cidr_ipv4="10.0.0.0/16"),
            *nft.default_egress_rules("sg-a"),
            *nft.default_egress_rules("sg-b"),
            nft.Rule("sg-b", False, "-1", referenced_group_id="sg-a"),
        ),
        group_members={"sg-a": ("10.0.1.10",)},
    )
    check("one_subnet", plan.describe(plan.plan_host(state, SETTINGS)))


def test_two_vpcs_two_subnets_with_tunnel_peers() -> None:
    state = DesiredState(
        host="h2",
        subnets=(SUB_A1, SUB_A2, SUB_B),
        ports=(
            port(3, SUB_A1, "10.0.1.20", "sg-a"),
            port(4, SUB_A2, "10.0.2.20", "sg-a"),
            port(5, SUB_B, "10.0.1.20", "sg-c"),
        ),
        rules=(*nft.default_egress_rules("sg-a"), *nft.default_egress_rules("sg-c")),
        tunnel_ip="192.0.2.2",
        peers={VPC_A: ("192.0.2.1", "192.0.2.3", "192.0.2.2"), VPC_B: ("192.0.2.3",)},
    )
    check("two_vpcs_tunnel", plan.describe(plan.plan_host(state, PlanSettings(lease_time=600, mtu=9000))))


def test_names_are_short_prefixed_and_stable() -> None:
    names = [plan.bridge_name(VPC_A), plan.tap_name("eni-1"), plan.device_name("x", VPC_A)]
    assert all(len(n) == 15 and n.startswith("ocs") for n in names)
    assert plan.bridge_name(VPC_A) == plan.bridge_name(VPC_A) != plan.bridge_name(VPC_B)
    assert plan.netns_name("h1", SUB_A1.id) != plan.netns_name("h2", SUB_A1.id)
    assert plan.netns_name("h1", SUB_A1.id).startswith(plan.netns_prefix("h1"))
    assert 0 < plan.vni_of(VPC_A) < 2**24
    assert plan.gateway_mac(SUB_A1.id).startswith("02:")


def test_same_input_same_plan_whatever_the_order() -> None:
    ports = (port(1, SUB_A1, "10.0.1.10", "sg-a"), port(2, SUB_A2, "10.0.2.10", "sg-a"))
    one = plan.plan_host(DesiredState("h", (SUB_A1, SUB_A2), ports), SETTINGS)
    two = plan.plan_host(DesiredState("h", (SUB_A2, SUB_A1), ports[::-1]), SETTINGS)
    assert one == two


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (DesiredState("h", (), (port(1, SUB_A1, "10.0.1.10"),)), "unknown subnet"),
        (DesiredState("h", (SUB_A1,), (port(1, SUB_A1, "10.9.9.9"),)), "outside"),
        (
            DesiredState(
                "h",
                (SubnetState("subnet-x", VPC_A, "10.0.0.0/29"),),
                (PortState("eni-1", "i-1", "02:00:00:00:00:01", "10.0.0.4", "subnet-x"),),
            ),
            "smaller than a /28",
        ),
    ],
)
def test_bad_input_is_refused(state: DesiredState, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan.plan_host(state, SETTINGS)


def test_port_lookup() -> None:
    p = plan.plan_host(DesiredState("h", (SUB_A1,), (port(1, SUB_A1, "10.0.1.10"),)), SETTINGS)
    found = p.port("eni-00000000000000001")
    assert found is not None and found.tap == plan.tap_name("eni-00000000000000001")
    assert found.bridge == plan.bridge_name(VPC_A) and found.mtu == 1500
    assert p.port("eni-nope") is None


def test_internet_routed_subnet_gets_an_uplink_with_one_to_one_nat() -> None:
    """A subnet routed to an internet gateway, on a host with a public network: an uplink
    holding the public addresses of its ports here (only those of its own addresses), the
    gateway's destinations routed via the public router, NAT both ways; a subnet with no
    such route gets none even with public addresses mapped."""
    routed = SubnetState(
        SUB_A1.id, VPC_A, SUB_A1.cidr_block, internet_routes=("0.0.0.0/0", "203.0.113.0/24"),
        vpc_cidr_block="10.0.0.0/16",
    )  # fmt: skip
    a = PortState(
        interface_id="eni-00000000000000001", instance_id="i-00000000000000001", mac="02:00:00:00:00:01",
        ip="10.0.1.10", subnet_id=routed.id, group_ids=("sg-a",), secondary_ips=("10.0.1.50",),
        public_ips=(("198.51.100.30", "10.0.1.50"), ("198.51.100.20", "10.0.1.10"), ("198.51.100.99", "10.9.9.9")),
    )  # fmt: skip
    b = port(2, SUB_A1, "10.0.1.11", "sg-a")
    c = PortState(
        interface_id="eni-00000000000000003", instance_id="i-00000000000000003", mac="02:00:00:00:00:03",
        ip="10.0.2.10", subnet_id=SUB_A2.id, public_ips=(("198.51.100.40", "10.0.2.10"),),
    )  # fmt: skip
    state = DesiredState(host="h1", subnets=(routed, SUB_A2), ports=(a, b, c))
    settings = PlanSettings(
        state_dir="/var/lib/ocs/network", public_gateway="198.51.100.1/24", firewall=False
    )
    made = plan.plan_host(state, settings)
    check("public_uplink", plan.describe(made))
    by_id = {s.subnet_id: s for s in made.subnets}
    assert by_id[routed.id].public_ips == ("198.51.100.20", "198.51.100.30")
    assert by_id[routed.id].public_routes == ("0.0.0.0/0", "203.0.113.0/24")
    assert by_id[SUB_A2.id].uplink_ns == "" and "dnat" not in by_id[SUB_A2.id].nat_script
    assert made.public is not None and made.public.gateway_ip == "198.51.100.1"
    # Without a public network on the host, nothing changes.
    assert plan.plan_host(state, PlanSettings(firewall=False)).public is None


def test_a_bad_public_gateway_is_refused() -> None:
    with pytest.raises(ValueError, match="public gateway"):
        plan.public_plan(PlanSettings(public_gateway="not-an-address"))


def test_dhcp_puts_the_vpc_block_on_link_unless_the_subnet_is_the_whole_vpc() -> None:
    line = "dhcp-option=tag:subnet,option:classless-static-route,10.0.0.0/16,0.0.0.0,0.0.0.0/0,10.0.1.1"
    part = SubnetState(SUB_A1.id, VPC_A, "10.0.1.0/24", vpc_cidr_block="10.0.0.0/16")
    whole = SubnetState(SUB_A1.id, VPC_A, "10.0.0.0/16", vpc_cidr_block="10.0.0.0/16")
    for subnet, ip, expected in ((part, "10.0.1.10", True), (whole, "10.0.1.10", False)):
        state = DesiredState(host="h1", subnets=(subnet,), ports=(port(1, subnet, ip),))
        conf = plan.plan_host(state, PlanSettings(firewall=False)).subnets[0].dnsmasq_conf
        assert (line in conf) is expected, conf


def test_routes_to_a_nat_gateway_and_an_interface_and_a_nat_gateway_placed_here() -> None:
    """A private subnet routed to a NAT gateway (0.0.0.0/0), to an interface (a NAT
    instance, 192.0.2.0/24) and to a gone target (a blackhole): a router port with a
    per-host MAC, next hops by address and MAC, forwarding from the subnet to outside the
    VPC only. The NAT gateway placed on this host: its own namespace on the VPC's bridge
    and an uplink with its elastic IP, SNAT to it, nothing in but answers."""
    private = SubnetState(
        SUB_A2.id, VPC_A, SUB_A2.cidr_block, vpc_cidr_block="10.0.0.0/16",
        hop_routes=(
            plan.HopRoute("192.0.2.0/24", "10.0.1.30", "02:00:00:00:00:1E"),
            plan.HopRoute("0.0.0.0/0", "10.0.1.5", "02:00:00:00:00:05"),
            plan.HopRoute("203.0.113.0/24"),
        ),
    )  # fmt: skip
    nat = plan.NatGatewayState(
        id="nat-0123456789abcdef0", vpc_id=VPC_A, subnet_id=SUB_A1.id, cidr_block="10.0.1.0/24",
        vpc_cidr_block="10.0.0.0/16", ip="10.0.1.5", mac="02:00:00:00:00:05", public_ip="198.51.100.50",
        internet_routes=("0.0.0.0/0",),
    )  # fmt: skip
    state = DesiredState(
        host="h1", subnets=(private,), ports=(port(7, private, "10.0.2.10"),), nat_gateways=(nat,),
        tunnel_ip="192.0.2.1", peers={VPC_A: ("192.0.2.2",)},
    )  # fmt: skip
    settings = PlanSettings(
        state_dir="/var/lib/ocs/network", public_gateway="198.51.100.1/24", firewall=False
    )
    made = plan.plan_host(state, settings)
    check("nat_routes", plan.describe(made))
    [sub] = made.subnets
    assert [h.destination for h in sub.hop_routes] == ["0.0.0.0/0", "192.0.2.0/24", "203.0.113.0/24"]
    assert sub.router_ns and sub.router_mac == plan.router_mac("h1", SUB_A2.id) != plan.router_mac(
        "h2", SUB_A2.id
    )
    assert sub.uplink_ns == ""  # no internet gateway route: the NAT gateway is its way out
    assert f'oifname "{sub.router_ns}" ip daddr != {{ 169.254.0.0/16, 10.0.0.0/16 }} accept' in sub.nat_script
    [gw] = made.nat_gateways
    assert gw.bridge == sub.bridge and gw.public_routes == ("0.0.0.0/0",)
    assert f"snat to {nat.public_ip}" in gw.nat_script and gw.netns.startswith(made.netns_prefix)
    assert made.public is not None
    # Without a public network the NAT gateway forwards nothing.
    bare = plan.plan_host(state, PlanSettings(firewall=False))
    assert bare.nat_gateways[0].uplink_ns == "" and "} accept" not in bare.nat_gateways[0].nat_script
    half = SubnetState(
        SUB_A2.id, VPC_A, SUB_A2.cidr_block, hop_routes=(plan.HopRoute("0.0.0.0/0", "10.0.1.5"),)
    )
    with pytest.raises(ValueError, match="half a next hop"):
        plan.plan_host(DesiredState("h1", (half,), (port(7, half, "10.0.2.10"),)), settings)


def test_dhcp_hands_out_the_vpcs_dhcp_options_set() -> None:
    def conf_of(options: tuple[tuple[str, tuple[str, ...]], ...] | None) -> list[str]:
        subnet = SubnetState(SUB_A1.id, VPC_A, "10.0.1.0/24", dhcp_options=options)
        state = DesiredState(host="h1", subnets=(subnet,), ports=(port(1, subnet, "10.0.1.10"),))
        text = plan.plan_host(state, PlanSettings(firewall=False)).subnets[0].dnsmasq_conf
        return [
            line for line in text.splitlines() if "dns-server" in line or "domain" in line or "ntp" in line
        ]

    # The cloud's own: DNS at the gateway, the cloud's domain (the set EC2 makes for every account).
    assert conf_of(None) == [
        "domain=ocs.internal",
        "dhcp-option=tag:subnet,option:dns-server,10.0.1.1",
        "dhcp-option=tag:subnet,option:domain-name,ocs.internal",
    ]
    custom = (
        ("domain-name", ("corp.example",)),
        ("domain-name-servers", ("AmazonProvidedDNS",)),
        ("ntp-servers", ("10.0.0.5",)),
    )
    assert conf_of(custom)[1:] == [
        "dhcp-option=tag:subnet,option:dns-server,10.0.1.1",
        "dhcp-option=tag:subnet,option:domain-name,corp.example",
        "dhcp-option=tag:subnet,option:domain-search,corp.example",
        "dhcp-option=tag:subnet,option:ntp-server,10.0.0.5",
    ]
    # "default" (no options): no DNS server, no domain name.
    assert conf_of(())[1:] == []
