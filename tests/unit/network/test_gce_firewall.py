"""The Compute Engine firewall compiler: order (priority, deny before allow), target and
source tags, ranges, implied rules; a golden ruleset that ``nft -c`` accepts.

Regenerate the golden file after an intended change with
``OCS_UPDATE_GOLDEN=1 pytest tests/unit/network/test_gce_firewall.py`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ocs.network import gce_firewall as gf
from ocs.network import nft
from ocs.network.gce_firewall import EGRESS, FirewallRule, Permission, PortInput
from tests.unit.network.test_nft import _nft_check

GOLDEN = Path(__file__).parent / "golden_gce" / "firewalls.nft"
TCP22 = (Permission("tcp", ("22",)),)

RULES = (
    FirewallRule("allow-ssh", priority=1000, permissions=TCP22, source_ranges=("0.0.0.0/0",)),
    FirewallRule(
        "deny-ssh-bad", priority=900, allow=False, permissions=TCP22, source_ranges=("203.0.113.0/24",)
    ),
    FirewallRule(
        "web",
        priority=1000,
        permissions=(Permission("tcp", ("80", "443", "8000-8080")), Permission("icmp")),
        source_ranges=("10.0.0.0/8", "2001:db8::/32"),
        target_tags=("web",),
    ),
    FirewallRule("from-db", priority=500, permissions=(Permission("all"),), source_tags=("db",)),
    FirewallRule("deny-tie", priority=1000, allow=False, permissions=(Permission("udp"),)),
    FirewallRule("off", priority=0, allow=False, permissions=(Permission("all"),), disabled=True),
    FirewallRule(
        "no-smtp-out", direction=EGRESS, priority=100, allow=False, permissions=(Permission("6", ("25",)),)
    ),
    FirewallRule(
        "gre-out", direction=EGRESS, permissions=(Permission("47"),), destination_ranges=("192.0.2.0/24",)
    ),
)
WEB = PortInput(tags=("web",), tag_members={"db": ("10.1.0.5", "10.1.0.6", "10.1.0.7")})


def test_order_is_priority_then_deny_before_allow() -> None:
    rules = gf.compile_port(RULES, PortInput())
    ingress = list(rules.ingress)
    assert ingress == [
        "ip saddr 203.0.113.0/24 tcp dport 22 drop",
        "ether type ip meta l4proto udp drop",
        "ether type ip6 meta l4proto udp drop",
        "ether type ip tcp dport 22 accept",
        "drop",
    ]
    assert rules.egress == (
        "ether type ip tcp dport 25 drop",
        "ether type ip6 tcp dport 25 drop",
        "ip daddr 192.0.2.0/24 meta l4proto 47 accept",
        "accept",
    )


def test_target_tags_and_source_tags() -> None:
    untagged = gf.compile_port(RULES, PortInput()).ingress
    web = gf.compile_port(RULES, WEB).ingress
    assert not any("dport 443" in line for line in untagged)
    assert "ip saddr 10.0.0.0/8 tcp dport { 80, 443, 8000-8080 } accept" in web
    assert "ip6 saddr 2001:db8::/32 tcp dport { 80, 443, 8000-8080 } accept" in web
    assert "ip saddr 10.0.0.0/8 meta l4proto icmp accept" in web
    assert not any(line.startswith("ip6") and "icmp" in line for line in web)
    # source tags: the tagged instances' addresses, ahead by priority 500; none tagged: no line
    assert web[0] == "ip saddr { 10.1.0.5, 10.1.0.6/31 } accept"
    assert not any("10.1.0.5" in line for line in untagged)


def test_disabled_rules_and_implied_rules() -> None:
    rules = gf.compile_port([RULES[-3]], PortInput())
    assert rules.ingress == ("drop",) and rules.egress == ("accept",)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Permission("bogus"),
        lambda: Permission("icmp", ("22",)),
        lambda: Permission("tcp", ("70000",)),
        lambda: Permission("tcp", ("90-80",)),
        lambda: FirewallRule("x", priority=65536, permissions=TCP22),
        lambda: FirewallRule("x", direction="SIDEWAYS", permissions=TCP22),
        lambda: FirewallRule("x", permissions=()),
        lambda: FirewallRule("x", permissions=TCP22, source_ranges=("10.0.0.0/33",)),
        lambda: FirewallRule("x", direction=EGRESS, permissions=TCP22, source_tags=("a",)),
    ],
)
def test_bad_input_raises_value_error(make) -> None:
    with pytest.raises(ValueError):
        make()


def _ruleset() -> str:
    ports = (
        nft.Port("tapw", "02:00:00:00:00:0a", ("10.0.1.10",)),
        nft.Port("tapx", "02:00:00:00:00:0b", ("10.0.1.11",)),
    )
    ordered = {}
    for port, given in (("tapw", WEB), ("tapx", PortInput())):
        compiled = gf.compile_port(RULES, given)
        ordered[port] = (compiled.ingress, compiled.egress)
    return nft.render(nft.Firewall(ports=ports, ordered=ordered))


def test_ruleset_matches_golden_file_and_nft_accepts_it(tmp_path: Path) -> None:
    text = _ruleset()
    if os.environ.get("OCS_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "differs from its golden file (OCS_UPDATE_GOLDEN=1 rewrites it)"
    _nft_check(text, tmp_path)
