"""Security groups on the wire: compiled rulesets loaded into a host namespace whose
bridge joins two "instance" namespaces, A (10.203.0.10) and B (10.203.0.11).

A runs TCP echo servers on 8080 (allowed) and 8081 (denied) and a UDP listener on
9999; B is the client. Changes (set updates, reloads) must show on new connections
within two seconds, as the networking issue asks.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ocs.network import nft
from ocs.network.nft import Firewall, Port, Rule
from tests.framework.netns import BridgeLab, Instance, read_line, wait_until

pytestmark = pytest.mark.slow

A_IP, B_IP, C_IP = "10.203.0.10", "10.203.0.11", "10.203.0.12"
A_IP6, B_IP6, C_IP6 = "fd00:203::10", "fd00:203::11", "fd00:203::12"
ALLOWED, DENIED, UDP = 8080, 8081, 9999
CHANGE_WITHIN = 2.0


@pytest.fixture
def pair(lab: BridgeLab, tmp_path: Path) -> tuple[Instance, Instance, Path]:
    a = lab.add_instance("a", A_IP, A_IP6)
    b = lab.add_instance("b", B_IP, B_IP6)
    log = tmp_path / "udp.log"
    log.touch()
    server = a.ns.spawn(
        "serve", "--tcp", str(ALLOWED), "--tcp", str(DENIED), "--udp", str(UDP), "--log", str(log)
    )
    assert read_line(server, timeout=10) == "ready", server.stderr.read() if server.poll() is not None else ""
    return a, b, log


def firewall(
    a: Instance,
    b: Instance,
    a_rules: list[Rule],
    b_rules: list[Rule] | None = None,
    members: dict[str, tuple[str, ...]] | None = None,
) -> Firewall:
    """A in group sg-a with ``a_rules``; B in sg-b with EC2's default egress (or ``b_rules``)."""
    return Firewall(
        ports=(
            Port(a.port, a.mac, (a.ip, a.ip6), ("sg-a",)),
            Port(b.port, b.mac, (b.ip, b.ip6), ("sg-b",)),
        ),
        rules=(*a_rules, *(nft.default_egress_rules("sg-b", ipv6=True) if b_rules is None else b_rules)),
        group_members=members or {},
    )


def tcp_in(port: int, **peer: str) -> Rule:
    return Rule("sg-a", False, "tcp", port, port, **peer)


def test_allowed_port_reaches_denied_port_does_not(
    lab: BridgeLab, pair: tuple[Instance, Instance, Path]
) -> None:
    a, b, _ = pair
    lab.nft(nft.replace_script(firewall(a, b, [tcp_in(ALLOWED, cidr_ipv4="10.203.0.0/24")])))
    assert b.connect(A_IP, ALLOWED)
    assert not b.connect(A_IP, DENIED)


def test_stateful_replies_need_no_egress_rule_and_ingress_is_deny_by_default(
    lab: BridgeLab, pair: tuple[Instance, Instance, Path]
) -> None:
    a, b, _ = pair
    # A has no egress rule at all, yet answers B: its replies are established.
    lab.nft(nft.replace_script(firewall(a, b, [tcp_in(ALLOWED, cidr_ipv4="0.0.0.0/0")])))
    assert b.connect(A_IP, ALLOWED)
    # B serves nothing and allows nothing in; A may not even start a connection out.
    b.ns.spawn("serve", "--tcp", str(ALLOWED))
    assert not a.connect(B_IP, ALLOWED)
    rules = [tcp_in(ALLOWED, cidr_ipv4="0.0.0.0/0"), *nft.default_egress_rules("sg-a")]
    b_rules = [
        *nft.default_egress_rules("sg-b"),
        Rule("sg-b", False, "tcp", ALLOWED, ALLOWED, cidr_ipv4=A_IP + "/32"),
    ]
    lab.nft(nft.replace_script(firewall(a, b, rules, b_rules)))
    assert wait_until(lambda: a.connect(B_IP, ALLOWED), CHANGE_WITHIN) is not None


def test_egress_rules_bind_the_sender(lab: BridgeLab, pair: tuple[Instance, Instance, Path]) -> None:
    a, b, _ = pair
    allow = [tcp_in(ALLOWED, cidr_ipv4="0.0.0.0/0")]
    lab.nft(nft.replace_script(firewall(a, b, allow, b_rules=[])))
    assert not b.connect(A_IP, ALLOWED), "B has no egress rule: nothing leaves"
    only_8081 = [Rule("sg-b", True, "tcp", DENIED, DENIED, cidr_ipv4="10.203.0.0/24")]
    lab.nft(nft.replace_script(firewall(a, b, allow, b_rules=only_8081)))
    assert not b.connect(A_IP, ALLOWED)
    lab.nft(nft.replace_script(firewall(a, b, allow)))  # EC2's default egress
    assert wait_until(lambda: b.connect(A_IP, ALLOWED), CHANGE_WITHIN) is not None


def test_icmp_follows_type_and_code(lab: BridgeLab, pair: tuple[Instance, Instance, Path]) -> None:
    a, b, _ = pair
    lab.nft(nft.replace_script(firewall(a, b, [tcp_in(ALLOWED, cidr_ipv4="0.0.0.0/0")])))
    assert not b.ping(A_IP), "no ICMP rule: echo requests are dropped"
    echo_only = Rule("sg-a", False, "icmp", 8, 0, cidr_ipv4=B_IP + "/32")
    lab.nft(nft.replace_script(firewall(a, b, [echo_only])))
    assert wait_until(lambda: b.ping(A_IP), CHANGE_WITHIN) is not None
    unreachable_only = Rule("sg-a", False, "icmp", 3, -1, cidr_ipv4="0.0.0.0/0")
    lab.nft(nft.replace_script(firewall(a, b, [unreachable_only])))
    assert not b.ping(A_IP)
    all_icmp = Rule("sg-a", False, "icmp", -1, -1, cidr_ipv4="0.0.0.0/0")
    lab.nft(nft.replace_script(firewall(a, b, [all_icmp])))
    assert b.ping(A_IP)


def test_group_reference_follows_membership(lab: BridgeLab, pair: tuple[Instance, Instance, Path]) -> None:
    a, b, _ = pair
    rule = tcp_in(ALLOWED, referenced_group_id="sg-b")
    with_b = firewall(a, b, [rule], members={"sg-b": (B_IP, B_IP6)})
    lab.nft(nft.update_script(None, with_b))
    assert b.connect(A_IP, ALLOWED)
    assert b.connect(A_IP6, ALLOWED)

    without_b = firewall(a, b, [rule], members={"sg-b": ()})
    script = nft.update_script(with_b, without_b)
    assert "delete table" not in script and "flush set bridge ocs sg_b_v4" in script
    lab.nft(script)
    assert wait_until(lambda: not b.connect(A_IP, ALLOWED, timeout=0.3), CHANGE_WITHIN) is not None
    assert not b.connect(A_IP6, ALLOWED)

    lab.nft(nft.update_script(without_b, with_b))
    assert wait_until(lambda: b.connect(A_IP, ALLOWED), CHANGE_WITHIN) is not None


def test_revoking_a_rule_cuts_new_connections_not_established_ones(
    lab: BridgeLab, pair: tuple[Instance, Instance, Path]
) -> None:
    a, b, _ = pair
    granted = firewall(a, b, [tcp_in(ALLOWED, cidr_ipv4="10.203.0.0/24")])
    lab.nft(nft.replace_script(granted))
    session = b.ns.spawn("hold", A_IP, str(ALLOWED), "--timeout", "2")
    assert read_line(session, timeout=5) == "connected"
    assert b.connect(A_IP, ALLOWED)

    revoked = firewall(a, b, [])
    started = time.monotonic()
    lab.nft(nft.update_script(granted, revoked))
    assert wait_until(lambda: not b.connect(A_IP, ALLOWED, timeout=0.3), CHANGE_WITHIN) is not None
    assert time.monotonic() - started < CHANGE_WITHIN + 1.0
    assert not b.connect(A_IP, ALLOWED)

    # A tracked connection outlives the revocation, as in EC2.
    assert session.stdin is not None
    session.stdin.write("still there\n")
    session.stdin.flush()
    assert read_line(session, timeout=5) == "ok"


def _udp_seen(log: Path, payload: str) -> bool:
    return any(line.split(" ", 1)[1] == payload for line in log.read_text().splitlines())


def test_forged_source_ip_and_mac_are_dropped(lab: BridgeLab, pair: tuple[Instance, Instance, Path]) -> None:
    a, b, log = pair
    any_udp = Rule("sg-a", False, "udp", UDP, UDP, cidr_ipv4="0.0.0.0/0")
    lab.nft(nft.replace_script(firewall(a, b, [any_udp])))
    assert b.agent_ok("udp", A_IP, str(UDP), "forged-ip", "--src", C_IP)
    assert b.agent_ok("udp", A_IP, str(UDP), "forged-mac", "--src", B_IP, "--src-mac", "02:00:00:00:00:99",
                      "--dst-mac", a.mac)  # fmt: skip
    assert b.agent_ok("udp", A_IP, str(UDP), "own-mac", "--src", B_IP, "--src-mac", b.mac, "--dst-mac", a.mac)
    # Sent last on the same path: once it arrives, the forged ones would have too.
    assert b.agent_ok("udp", A_IP, str(UDP), "genuine")
    assert wait_until(lambda: _udp_seen(log, "genuine"), 5) is not None
    assert _udp_seen(log, "own-mac"), "the hand-built frame itself is fine"
    assert not _udp_seen(log, "forged-ip")
    assert not _udp_seen(log, "forged-mac")
    lines = log.read_text().splitlines()
    assert all(line.startswith(B_IP + " ") for line in lines), lines


def test_source_dest_check_off_allows_other_source_ips(
    lab: BridgeLab, pair: tuple[Instance, Instance, Path]
) -> None:
    a, b, log = pair
    any_udp = Rule("sg-a", False, "udp", UDP, UDP, cidr_ipv4="0.0.0.0/0")
    fw = firewall(a, b, [any_udp])
    appliance = Port(b.port, b.mac, (b.ip,), ("sg-b",), source_dest_check=False)
    lab.nft(nft.replace_script(Firewall(ports=(fw.ports[0], appliance), rules=fw.rules)))
    assert b.agent_ok("udp", A_IP, str(UDP), "routed", "--src", C_IP)
    assert wait_until(lambda: _udp_seen(log, "routed"), 5) is not None


def test_ipv6_rules_and_neighbour_discovery(lab: BridgeLab, pair: tuple[Instance, Instance, Path]) -> None:
    a, b, _ = pair
    lab.nft(nft.replace_script(firewall(a, b, [tcp_in(ALLOWED, cidr_ipv6="fd00:203::/64")])))
    assert b.connect(A_IP6, ALLOWED, timeout=2.0)
    assert not b.connect(A_IP6, DENIED)
    assert not b.connect(A_IP, ALLOWED), "an IPv6 rule opens nothing on IPv4"


def test_host_traffic_meets_the_rules_through_the_output_hook(
    lab: BridgeLab, pair: tuple[Instance, Instance, Path]
) -> None:
    """The host (the router at .1, the metadata service) reaches ports through the
    bridge's output hook, where the ingress chains apply too."""
    a, b, _ = pair
    lab.host.ip("addr", "add", "10.203.0.1/24", "dev", lab.BRIDGE)
    lab.host.ip("addr", "add", "169.254.169.254/32", "dev", lab.BRIDGE)
    for instance in (a, b):
        instance.ns.ip("route", "add", "169.254.169.254/32", "dev", "eth0")
    server = lab.host.spawn("serve", "--tcp", str(ALLOWED))
    assert read_line(server, timeout=10) == "ready"
    lab.nft(nft.replace_script(firewall(a, b, [tcp_in(ALLOWED, cidr_ipv4="10.203.0.1/32")], b_rules=[])))

    assert b.connect("169.254.169.254", ALLOWED), "metadata: no egress rule needed, replies come back"
    assert not b.connect("10.203.0.1", ALLOWED), "any other address obeys the egress rules"
    assert lab.host.agent("connect", A_IP, str(ALLOWED), "--timeout", "0.7").returncode == 0
    assert lab.host.agent("connect", A_IP, str(DENIED), "--timeout", "0.7").returncode != 0


def test_conntrack_zones_keep_overlapping_vpcs_apart(lab: BridgeLab, tmp_path: Path) -> None:
    """Two VPCs with the same addresses on two bridges of one host. Without zones, a
    flow in one VPC makes the mirror-image packet in the other look like its reply
    and slip past a deny-all ingress; with a zone per bridge it does not."""
    lab.add_bridge("br1")
    a = lab.add_instance("a", A_IP, A_IP6)
    b = lab.add_instance("b", B_IP, B_IP6)
    c = lab.add_instance("c", A_IP, A_IP6, bridge="br1")  # A's twin in the other VPC
    d = lab.add_instance("d", B_IP, B_IP6, bridge="br1")  # B's twin: allows nothing in
    log = tmp_path / "d.log"
    log.touch()
    server = d.ns.spawn("serve", "--udp", "40000", "--udp", "40001", "--log", str(log))
    assert read_line(server, timeout=10) == "ready"
    ports = tuple(Port(i.port, i.mac, (i.ip, i.ip6), (f"sg-{i.port[-1]}",)) for i in (a, b, c, d))
    rules = (
        Rule("sg-a", False, "udp", UDP, UDP, cidr_ipv4="0.0.0.0/0"),
        *(r for g in ("sg-a", "sg-b", "sg-c", "sg-d") for r in nft.default_egress_rules(g)),
    )

    def leaks(sport: int) -> bool:
        assert b.agent_ok("udp", A_IP, str(UDP), "flow", "--sport", str(sport))  # VPC 1: B -> A
        assert c.agent_ok("udp", B_IP, str(sport), f"leak{sport}", "--sport", str(UDP))  # VPC 2: C -> D
        return wait_until(lambda: _udp_seen(log, f"leak{sport}"), 1.0) is not None

    lab.nft(nft.replace_script(Firewall(ports=ports, rules=rules, zones={"br0": 1, "br1": 2})))
    assert not leaks(40000), "with a zone per bridge, D's deny-all holds"
    lab.nft(nft.replace_script(Firewall(ports=ports, rules=rules)))
    assert leaks(40001), "the control: without zones the twin packet passes as a reply"
