"""The security-group compiler: golden files, determinism, validation, and the text
checked by ``nft -c`` (in a throwaway network namespace) where nft and root exist.

Regenerate the golden files after an intended change with
``OCS_UPDATE_GOLDEN=1 pytest tests/unit/network/test_nft.py`` and review the diff.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocs.network import nft
from ocs.network.nft import Firewall, Port, Rule
from tests.services import services_required

GOLDEN = Path(__file__).parent / "golden"

A = Port("tapa", "02:00:00:00:00:0A", ("10.0.0.10", "2001:db8::10"), ("sg-a",))
B = Port("tapb", "02:00:00:00:00:0b", ("10.0.0.11",), ("sg-b",))


def ingress(
    protocol: str, low: int | None = None, high: int | None = None, *, group: str = "sg-a", **peer: str
):
    return Rule(group, False, protocol, low, high, **peer)


def egress(
    protocol: str, low: int | None = None, high: int | None = None, *, group: str = "sg-a", **peer: str
):
    return Rule(group, True, protocol, low, high, **peer)


CASES: dict[str, Callable[[], Firewall]] = {
    "no_ports": lambda: Firewall(),
    "empty_rules": lambda: Firewall(ports=(A,)),
    "egress_default": lambda: Firewall(ports=(A,), rules=nft.default_egress_rules("sg-a", ipv6=True)),
    "tcp_udp_ranges": lambda: Firewall(
        ports=(A,),
        rules=(
            ingress("tcp", 22, 22, cidr_ipv4="0.0.0.0/0"),
            ingress("tcp", 1000, 2000, cidr_ipv4="192.0.2.0/24"),
            ingress("6", 0, 65535, cidr_ipv4="198.51.100.7/32"),
            ingress("udp", 53, 53, cidr_ipv6="::/0"),
            ingress("udp", 5000, 5100, cidr_ipv6="2001:db8:1::/48"),
            egress("tcp", 443, 443, cidr_ipv4="0.0.0.0/0"),
            egress("udp", 123, 123, cidr_ipv4="203.0.113.0/24"),
        ),
    ),
    "icmp": lambda: Firewall(
        ports=(A,),
        rules=(
            ingress("icmp", -1, -1, cidr_ipv4="10.0.0.0/8"),
            ingress("icmp", 8, -1, cidr_ipv4="0.0.0.0/0"),
            ingress("icmp", 3, 4, cidr_ipv4="0.0.0.0/0"),
            ingress("icmpv6", 128, -1, cidr_ipv6="::/0"),
            ingress("icmpv6", -1, -1, cidr_ipv6="2001:db8::/32"),
            ingress("icmpv6", 1, 0, referenced_group_id="sg-a"),
            ingress("icmp", 0, 0, cidr_ipv6="::/0"),  # ICMPv4 cannot come over IPv6: nothing
            ingress("icmpv6", -1, -1, cidr_ipv4="0.0.0.0/0"),  # nor ICMPv6 over IPv4
            egress("icmp", 0, -1, cidr_ipv4="0.0.0.0/0"),
        ),
        group_members={"sg-a": ("10.0.0.10", "2001:db8::10")},
    ),
    "all_traffic": lambda: Firewall(
        ports=(A,),
        rules=(
            ingress("-1", cidr_ipv4="10.1.0.0/16"),
            ingress("all", cidr_ipv6="2001:db8:2::/64"),
            ingress("47", cidr_ipv4="0.0.0.0/0"),
            ingress("50", referenced_group_id="sg-a"),
            egress("-1", cidr_ipv4="0.0.0.0/0"),
            egress("17", 0, 65535, cidr_ipv6="::/0"),
        ),
        group_members={"sg-a": ("10.0.0.10",)},
    ),
    "cidr_v4_v6": lambda: Firewall(
        ports=(A,),
        rules=(
            ingress("tcp", 80, 80, cidr_ipv4="10.0.0.28/29"),  # stored masked: 10.0.0.24/29
            ingress("tcp", 80, 80, cidr_ipv4="10.0.0.24/29"),  # the same rule once
            ingress("tcp", 80, 80, cidr_ipv4="172.16.5.4/32"),
            ingress("tcp", 80, 80, cidr_ipv6="2001:DB8:0:0::1/128"),
            ingress("tcp", 80, 80, cidr_ipv6="fd00::/8"),
            egress("tcp", 5432, 5432, cidr_ipv4="10.2.0.0/16"),
            egress("tcp", 5432, 5432, cidr_ipv6="fd12:3456::/32"),
        ),
    ),
    "group_references": lambda: Firewall(
        ports=(A, B),
        rules=(
            ingress("tcp", 22, 22, referenced_group_id="sg-b"),
            ingress("-1", referenced_group_id="sg-a"),
            ingress("udp", 53, 53, group="sg-b", referenced_group_id="sg-a"),
            ingress("tcp", 80, 80, group="sg-b", referenced_group_id="sg-empty"),
            egress("-1", referenced_group_id="sg-a"),
            *nft.default_egress_rules("sg-b"),
        ),
        group_members={
            "sg-a": ("10.0.0.10", "2001:db8::10"),
            "sg-b": ("10.0.0.13", "10.0.0.11", "10.0.0.12", "10.0.0.11"),
            "sg-unused": ("10.9.9.9",),
        },
    ),
    "multiple_groups": lambda: Firewall(
        ports=(
            Port("vnet3", "02:00:00:00:00:03", ("10.0.0.3",), ("sg-web", "sg-ssh", "sg-default")),
            Port("vnet1", "02:00:00:00:00:01", ("10.0.0.1", "10.0.0.100"), ("sg-default",)),
        ),
        rules=(
            ingress("tcp", 80, 80, group="sg-web", cidr_ipv4="0.0.0.0/0"),
            ingress("tcp", 443, 443, group="sg-web", cidr_ipv4="0.0.0.0/0"),
            ingress("tcp", 22, 22, group="sg-ssh", cidr_ipv4="192.0.2.0/24"),
            ingress("tcp", 22, 22, group="sg-web", cidr_ipv4="192.0.2.0/24"),  # same line, once
            ingress("-1", group="sg-default", referenced_group_id="sg-default"),
            *nft.default_egress_rules("sg-default"),
            *nft.default_egress_rules("sg-web"),
            ingress("tcp", 3306, 3306, group="sg-db", cidr_ipv4="0.0.0.0/0"),  # no port is in sg-db
        ),
        group_members={"sg-default": ("10.0.0.3", "10.0.0.1", "10.0.0.100")},
    ),
    "prefix_lists": lambda: Firewall(
        ports=(A,),
        rules=(
            egress("tcp", 443, 443, prefix_list_id="pl-0123abcd"),
            ingress("tcp", 22, 22, prefix_list_id="pl-0123abcd"),
        ),
        prefix_lists={"pl-0123abcd": ("52.94.0.0/22", "52.94.4.0/22", "52.94.5.0/24", "2600:1f00::/40")},
    ),
    "zones_and_source_dest_check": lambda: Firewall(
        ports=(A, Port("tapnat", "02:00:00:00:00:ff", ("10.0.0.5",), ("sg-b",), source_dest_check=False)),
        rules=(*nft.default_egress_rules("sg-b"), ingress("-1", group="sg-b", cidr_ipv4="10.0.0.0/16")),
        zones={"br-vpc2": 2, "br-vpc1": 1},
        table="ocs_sg",
    ),
}


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("OCS_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} is missing; run with OCS_UPDATE_GOLDEN=1 to write it"
    assert text == path.read_text(), f"{name} differs from its golden file (OCS_UPDATE_GOLDEN=1 rewrites it)"


@pytest.mark.parametrize("case", sorted(CASES))
def test_ruleset_matches_golden_file(case: str) -> None:
    _golden(f"{case}.nft", nft.render(CASES[case]()))


def test_replace_and_set_update_scripts_match_golden_files() -> None:
    fw = CASES["group_references"]()
    _golden("group_references.replace.nft", nft.replace_script(fw))
    _golden("group_references.sets.nft", nft.set_update_script(fw))


def test_every_golden_file_has_a_case() -> None:
    names = {f"{c}.nft" for c in CASES} | {"group_references.replace.nft", "group_references.sets.nft"}
    assert {p.name for p in GOLDEN.glob("*.nft")} == names


# --- semantics worth stating outright ---------------------------------------------------------


def _chain(text: str, name: str) -> list[str]:
    body = text.split(f"\tchain {name} {{\n")[1].split("\n\t}")[0]
    return [line.strip() for line in body.splitlines()]


def test_ingress_is_deny_by_default_and_stateful() -> None:
    chain = _chain(nft.render(CASES["empty_rules"]()), "ingress_tapa")
    assert chain[-1] == "drop"
    assert any("== 0x00400000 accept" in line for line in chain), "established traffic is accepted"
    assert any("== 0x00800000 drop" in line for line in chain), "invalid traffic is dropped"


def test_a_group_without_egress_rules_sends_nothing() -> None:
    chain = _chain(nft.render(CASES["empty_rules"]()), "egress_tapa")
    assert "ether type ip accept" not in chain and chain[-1] == "drop"
    default = _chain(nft.render(CASES["egress_default"]()), "egress_tapa")
    assert default[-3:] == ["ether type ip accept", "ether type ip6 accept", "drop"]


def test_default_egress_is_what_ec2_stores() -> None:
    (rule,) = nft.default_egress_rules("sg-1")
    assert (rule.is_egress, rule.ip_protocol, rule.cidr_ipv4) == (True, "-1", "0.0.0.0/0")


def test_rules_are_normalized_as_stored() -> None:
    rule = Rule("sg-1", False, "TCP", 1, 2, cidr_ipv4="10.0.0.28/29")
    assert (rule.ip_protocol, rule.cidr_ipv4) == ("tcp", "10.0.0.24/29")
    assert Rule("sg-1", False, "58", -1, -1, cidr_ipv6="2001:DB8::/32").cidr_ipv6 == "2001:db8::/32"
    assert Port("tap0", "02:AB:00:00:00:01").mac == "02:ab:00:00:00:01"


@pytest.mark.parametrize(
    "make",
    [
        lambda: Port("tap with space", "02:00:00:00:00:01"),
        lambda: Port("tap0\n", "02:00:00:00:00:01"),
        lambda: Port("averyveryverylongname", "02:00:00:00:00:01"),
        lambda: Port("tap0", "02:00:00:00:01"),
        lambda: Port("tap0", "02:00:00:00:00:01", ("10.0.0.300",)),
        lambda: Port("tap0", "02:00:00:00:00:01", ("10.0.0.0/24",)),
        lambda: Port("tap0", "02:00:00:00:00:01", (), ("sg-1; drop",)),
        lambda: Rule("sg-1", False, "tcp", 22, 22),
        lambda: Rule("sg-1", False, "tcp", 22, 22, cidr_ipv4="0.0.0.0/0", referenced_group_id="sg-2"),
        lambda: Rule("sg-1", False, "bogus", cidr_ipv4="0.0.0.0/0"),
        lambda: Rule("sg-1", False, "tcp", 22, 70000, cidr_ipv4="0.0.0.0/0"),
        lambda: Rule("sg-1", False, "tcp", -1, -1, cidr_ipv4="0.0.0.0/0"),
        lambda: Rule("sg-1", False, "udp", 100, 99, cidr_ipv4="0.0.0.0/0"),
        lambda: Rule("sg-1", False, "udp", 100, None, cidr_ipv4="0.0.0.0/0"),
        lambda: Rule("sg-1", False, "icmp", 256, -1, cidr_ipv4="0.0.0.0/0"),
        lambda: Rule("sg-1", False, "tcp", cidr_ipv4="10.0.0.0/33"),
        lambda: nft.render(Firewall(ports=(A, A))),
        lambda: nft.render(Firewall(table="ocs-bad")),
        lambda: nft.render(Firewall(zones={"br0": 0})),
        lambda: nft.render(
            Firewall(
                ports=(A,),
                rules=(ingress("-1", referenced_group_id="sg-a"),),
                group_members={"sg-a": ("nope",)},
            )
        ),
    ],
)
def test_bad_input_raises_value_error(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        make()


def test_update_script_chooses_set_updates_when_only_members_change() -> None:
    old = CASES["group_references"]()
    assert nft.update_script(None, old) == nft.replace_script(old)
    assert nft.update_script(old, old) == ""
    moved = Firewall(ports=old.ports, rules=old.rules, group_members={"sg-a": ("10.0.0.10",), "sg-b": ()})
    script = nft.update_script(old, moved)
    assert script == nft.set_update_script(moved)
    assert "flush set bridge ocs sg_b_v4\nflush set bridge ocs sg_b_v6\n" in script
    fewer_rules = Firewall(ports=old.ports, rules=old.rules[1:], group_members=old.group_members)
    assert nft.update_script(old, fewer_rules) == nft.replace_script(fewer_rules)
    assert nft.set_names(old) == [
        "sg_a_v4", "sg_a_v6", "sg_b_v4", "sg_b_v6", "sg_empty_v4", "sg_empty_v6",
    ]  # fmt: skip


def test_remove_script_deletes_both_tables_even_if_absent() -> None:
    assert nft.remove_script() == (
        "add table inet ocs\ndelete table inet ocs\nadd table bridge ocs\ndelete table bridge ocs\n"
    )


# --- determinism: the same firewall in any order renders the same text ---------------------------


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_output_does_not_depend_on_input_order(data: st.DataObject) -> None:
    fw = CASES["multiple_groups"]()
    ports = data.draw(st.permutations(fw.ports))
    rules = data.draw(st.permutations(fw.rules))
    members = {
        g: tuple(data.draw(st.permutations(ips)))
        for g, ips in data.draw(st.permutations(list(fw.group_members.items())))
    }
    shuffled = Firewall(ports=tuple(ports), rules=tuple(rules), group_members=members)
    assert nft.render(shuffled) == nft.render(fw)


# --- the text parses: nft -c in a throwaway network namespace -----------------------------------


def _nft_check(text: str, tmp_path: Path) -> None:
    reason = None
    if os.geteuid() != 0:
        reason = "nft -c needs root"
    elif shutil.which("nft") is None or shutil.which("unshare") is None:
        reason = "nft or unshare is missing (apt-get install nftables util-linux)"
    if reason:
        if services_required():
            pytest.fail(reason + " and OCS_TEST_REQUIRE_SERVICES is set", pytrace=False)
        pytest.skip(reason)
    path = tmp_path / "ruleset.nft"
    path.write_text(text)
    result = subprocess.run(
        ["unshare", "--net", "nft", "-c", "-f", str(path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr + "\n" + text


@pytest.mark.parametrize("name", sorted(f"{c}.nft" for c in CASES))
def test_golden_file_passes_nft_check(name: str, tmp_path: Path) -> None:
    _nft_check((GOLDEN / name).read_text(), tmp_path)


def test_replace_then_set_update_passes_nft_check(tmp_path: Path) -> None:
    text = (GOLDEN / "group_references.replace.nft").read_text()
    _nft_check(text + (GOLDEN / "group_references.sets.nft").read_text(), tmp_path)


_ids = st.sampled_from(["sg-1", "sg-2", "sg-3"])
_v4 = st.ip_addresses(v=4).map(str)
_v6 = st.ip_addresses(v=6).map(str)


@st.composite
def _rules(draw: st.DrawFn) -> Rule:
    protocol = draw(st.sampled_from(["-1", "tcp", "udp", "icmp", "icmpv6", "47", "132"]))
    low = high = None
    if protocol in ("tcp", "udp"):
        low = draw(st.integers(0, 65535))
        high = draw(st.integers(low, 65535))
    elif protocol in ("icmp", "icmpv6"):
        low = draw(st.integers(-1, 255))
        high = -1 if low == -1 else draw(st.integers(-1, 255))
    peer = draw(
        st.one_of(
            st.builds(lambda a, n: {"cidr_ipv4": f"{a}/{n}"}, _v4, st.integers(0, 32)),
            st.builds(lambda a, n: {"cidr_ipv6": f"{a}/{n}"}, _v6, st.integers(0, 128)),
            st.builds(lambda g: {"referenced_group_id": g}, _ids),
        )
    )
    return Rule(draw(_ids), draw(st.booleans()), protocol, low, high, **peer)


@st.composite
def _firewalls(draw: st.DrawFn) -> Firewall:
    count = draw(st.integers(0, 3))
    ports = tuple(
        Port(f"tap{i}", f"02:00:00:00:00:{i:02x}", tuple(draw(st.lists(st.one_of(_v4, _v6), max_size=3))),
             tuple(draw(st.lists(_ids, max_size=2, unique=True))))
        for i in range(count)
    )  # fmt: skip
    members = draw(st.dictionaries(_ids, st.lists(st.one_of(_v4, _v6), max_size=4).map(tuple)))
    return Firewall(ports=ports, rules=tuple(draw(st.lists(_rules(), max_size=8))), group_members=members)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fw=_firewalls())
def test_any_firewall_compiles_to_text_nft_accepts(fw: Firewall, tmp_path: Path) -> None:
    _nft_check(nft.replace_script(fw) + nft.set_update_script(fw), tmp_path)
