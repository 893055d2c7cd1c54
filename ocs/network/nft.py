"""Security groups compiled to nftables: rules and ports in, ``nft -f`` text out.

A pure module. The input is what one host needs to filter the instances it
carries: its :class:`Port` s (the host side of each instance interface: a tap or a
veth on a Linux bridge), the :class:`Rule` s of every group those ports belong to,
and the members of every group a rule references. The output is the text of a
ruleset, deterministic (everything sorted) so that golden files stay stable.

Design
------
Instances sit on a Linux bridge, so the natural place to filter is the **bridge
family**, on the bridge ports: a packet *from* instance ``tapX`` (its egress) is
seen at the bridge's prerouting hook with ``iifname "tapX"``, whatever its
destination (another instance, the host, an uplink); a packet *to* it (its
ingress) is seen at the forward hook (bridged) or the output hook (sent by the
host, e.g. routed or NATed traffic) with ``oifname "tapX"``. The ``inet`` family
cannot do this: it only sees the bridge device, never the port.

Connection tracking is what the bridge family lacks here: ``ct`` expressions in a
bridge table need ``nf_conntrack_bridge``, which this kernel does not have. The
``inet`` family has conntrack, and with ``br_netfilter`` (``net.bridge.
bridge-nf-call-iptables`` and ``-ip6tables`` set to 1, see :data:`REQUIRED_SYSCTLS`)
bridged IP packets pass the inet hooks before the bridge continues. So the ruleset
has two tables of the same name:

* ``table inet ocs`` copies each packet's conntrack state into two bits of the
  packet mark (:data:`MARK_ESTABLISHED` for established or related,
  :data:`MARK_INVALID`), at prerouting and output, after conntrack has run; with
  ``zones`` it also puts each bridge's traffic in its own conntrack zone, so that
  VPCs with overlapping addresses (every default VPC is 172.31.0.0/16) never share
  a connection entry.
* ``table bridge ocs`` does all the filtering, at priority 100 (after
  br_netfilter's hook at 0), reading those bits where a stateful firewall says
  ``ct state``. A packet that never met conntrack carries neither bit and counts
  as new, so a missing br_netfilter fails closed (replies are dropped), not open.

Per port there is one chain per direction, reached through a verdict map on the
interface name. Egress (``egress_<ifname>``): the source MAC must be the port's;
ARP only with the port's MAC and IPv4 addresses (or 0.0.0.0, for probes); IPv4
only from the port's addresses (DHCP discovery from 0.0.0.0 aside); IPv6 only from
its addresses, link-local ones (fe80::/10) and ``::`` for duplicate address
detection; nothing but ARP, IPv4 and IPv6; no DHCP server and no router
advertisements from an instance; then invalid dropped, established accepted, DHCP,
neighbour discovery and EC2's own link-local services (:data:`ALWAYS_ALLOWED`:
metadata, DNS, time, which security groups never filter) allowed, the group rules,
and drop. Ingress (``ingress_<ifname>``): ARP accepted, invalid dropped,
established, DHCP replies and neighbour discovery accepted, the group rules, and
drop: deny by default. Ports the ruleset does not name (uplinks, the DHCP
server's veth) are not filtered.

Caveats for the driver: the mark bits are OCS's (nothing else on the host may use
them); br_netfilter runs the namespace's inet NAT hooks on bridged packets too,
so a DNAT there (say, of 169.254.169.254) happens before these chains see the
packet; neighbour advertisements are not checked against the port's addresses.

EC2 keeps no implicit egress rule: a new group gets "all traffic to 0.0.0.0/0" as an
ordinary rule (ocs.db.secgroups stores it; :func:`default_egress_rules` gives it
here), so egress is exactly what the rules say and a group whose egress rules were
revoked sends nothing.

A rule referencing a group (or a prefix list) matches a named set,
``sg_<id>_v4``/``sg_<id>_v6`` (``pl_<id>_...``), holding its members' addresses,
so a membership change is a set update (:func:`set_update_script`), not a reload.
A new or revoked rule is a reload (:func:`replace_script`): the tables are deleted
and defined again in one ``nft -f`` transaction, atomic, and stale chains, sets or
elements cannot survive it (``flush table`` would keep them). Connection entries
outlive a reload: established flows go on, as EC2 documents for tracked
connections, while new connections meet the new rules.

Errors in the input raise ``ValueError``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from ocs import errors
from ocs.network import sg_rules

__all__ = [
    "ALWAYS_ALLOWED",
    "BRIDGE_PRIORITY",
    "MARK_ESTABLISHED",
    "MARK_INVALID",
    "MARK_MASK",
    "REQUIRED_SYSCTLS",
    "TABLE",
    "Firewall",
    "Port",
    "Rule",
    "default_egress_rules",
    "remove_script",
    "render",
    "replace_script",
    "set_names",
    "set_update_script",
    "update_script",
]

TABLE = "ocs"
MARK_ESTABLISHED = 0x00400000
"""Packet-mark bit: conntrack said established or related."""
MARK_INVALID = 0x00800000
"""Packet-mark bit: conntrack said invalid."""
MARK_MASK = MARK_ESTABLISHED | MARK_INVALID
BRIDGE_PRIORITY = 100
"""Bridge chains run after br_netfilter's prerouting hook (priority 0) has run conntrack."""
REQUIRED_SYSCTLS = {
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.bridge.bridge-nf-call-ip6tables": "1",
}
"""Set in the namespace holding the bridges, so bridged IP traffic meets conntrack."""
ALWAYS_ALLOWED = (
    "169.254.169.123",
    "169.254.169.253",
    "169.254.169.254",
    "fd00:ec2::123",
    "fd00:ec2::253",
    "fd00:ec2::254",
)
"""EC2's link-local services (time, DNS, metadata), which security groups do not filter."""

_IFNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
_ND_OUT = "nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, mld-listener-done, mld2-listener-report"
_ND_IN = "nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-query"
_ND_UNSPECIFIED = "nd-neighbor-solicit, mld-listener-report, mld2-listener-report"


@dataclass(frozen=True)
class Port:
    """The host side of one instance interface: its name on the bridge, the
    instance's MAC and addresses (IPv4 and IPv6) and its security groups.

    ``source_dest_check`` False (EC2's attribute of NAT instances and appliances)
    lets the port send from any IP address; its MAC is still enforced.
    """

    ifname: str
    mac: str
    ips: tuple[str, ...] = ()
    group_ids: tuple[str, ...] = ()
    source_dest_check: bool = True

    def __post_init__(self) -> None:
        if not _IFNAME.fullmatch(self.ifname):
            raise ValueError(f"bad interface name {self.ifname!r}")
        mac = self.mac.lower()
        if not _MAC.fullmatch(mac):
            raise ValueError(f"bad MAC address {self.mac!r} for {self.ifname}")
        object.__setattr__(self, "mac", mac)
        object.__setattr__(self, "ips", tuple(str(_address(ip)) for ip in self.ips))
        object.__setattr__(self, "group_ids", tuple(_check_id(g) for g in self.group_ids))


@dataclass(frozen=True)
class Rule:
    """One rule of group ``group_id``, with the fields ocs.db.models.SecurityGroupRule
    stores: ``ip_protocol`` ('-1', 'tcp', 'udp', 'icmp', 'icmpv6' or a number), a
    port range (for ICMP: ``from_port`` is the type, ``to_port`` the code, -1 all),
    and exactly one peer."""

    group_id: str
    is_egress: bool
    ip_protocol: str
    from_port: int | None = None
    to_port: int | None = None
    cidr_ipv4: str | None = None
    cidr_ipv6: str | None = None
    prefix_list_id: str | None = None
    referenced_group_id: str | None = None

    def __post_init__(self) -> None:
        _check_id(self.group_id)
        try:
            protocol = sg_rules.normalize_protocol(self.ip_protocol)
        except errors.OcsError as exc:
            raise ValueError(str(exc)) from None
        object.__setattr__(self, "ip_protocol", protocol)
        peers = [self.cidr_ipv4, self.cidr_ipv6, self.prefix_list_id, self.referenced_group_id]
        if sum(p is not None for p in peers) != 1:
            raise ValueError(f"a rule of {self.group_id} needs exactly one peer, got {peers}")
        if self.cidr_ipv4 is not None:
            object.__setattr__(self, "cidr_ipv4", str(IPv4Network(self.cidr_ipv4, strict=False)))
        if self.cidr_ipv6 is not None:
            object.__setattr__(self, "cidr_ipv6", str(IPv6Network(self.cidr_ipv6, strict=False)))
        for ref in (self.prefix_list_id, self.referenced_group_id):
            if ref is not None:
                _check_id(ref)
        low, high = self.from_port, self.to_port
        if protocol in sg_rules.PORTED and (low is None) != (high is None):
            raise ValueError(f"a {protocol} rule of {self.group_id} needs both ports or neither")
        if (
            protocol in sg_rules.PORTED
            and low is not None
            and high is not None
            and not 0 <= low <= high <= 65535
        ):
            raise ValueError(f"bad {protocol} port range {low}-{high} in a rule of {self.group_id}")
        if protocol in sg_rules.ICMP and any(v is not None and not -1 <= v <= 255 for v in (low, high)):
            raise ValueError(f"bad {protocol} type/code {low}/{high} in a rule of {self.group_id}")


@dataclass(frozen=True)
class Firewall:
    """Everything one host's ruleset is compiled from.

    ``group_members`` maps a group id to its members' addresses (IPv4 and IPv6);
    ``prefix_lists`` a prefix-list id to its CIDR blocks; ``zones`` a bridge name
    to the conntrack zone (1..65535) of its traffic, kept stable across reloads.
    ``always_allowed`` are the addresses every port may reach whatever its egress
    rules, as EC2 exempts its own services from security groups: the metadata
    service, DNS and time (the driver adds each subnet's router and resolver).
    """

    ports: tuple[Port, ...] = ()
    rules: tuple[Rule, ...] = ()
    group_members: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    prefix_lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    zones: Mapping[str, int] = field(default_factory=dict)
    always_allowed: tuple[str, ...] = ALWAYS_ALLOWED
    table: str = TABLE
    ordered: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)
    """Ports filtered by ordered rules instead of groups (Compute Engine firewalls, see
    :mod:`ocs.network.gce_firewall`): ifname -> (ingress, egress) statements, each
    ending in its verdict, the chain's last one included."""


def default_egress_rules(group_id: str, *, ipv6: bool = False) -> tuple[Rule, ...]:
    """The egress rules EC2 gives every new group: all traffic to 0.0.0.0/0 (and ::/0
    in a VPC with IPv6)."""
    rules = [Rule(group_id, True, sg_rules.ALL, cidr_ipv4="0.0.0.0/0")]
    if ipv6:
        rules.append(Rule(group_id, True, sg_rules.ALL, cidr_ipv6="::/0"))
    return tuple(rules)


# --- scripts ---------------------------------------------------------------------------


def render(fw: Firewall) -> str:
    """The ruleset's definitions: ``table inet`` and ``table bridge`` blocks."""
    _check(fw)
    lines = [f"# OCS security groups, generated by ocs.network.nft: {len(fw.ports)} port(s)"]
    lines += _inet_table(fw)
    lines += _bridge_table(fw)
    return "\n".join(lines) + "\n"


def replace_script(fw: Firewall) -> str:
    """One ``nft -f`` transaction replacing both tables (whether they exist or not)."""
    return remove_script(fw.table) + render(fw)


def remove_script(table: str = TABLE) -> str:
    """One ``nft -f`` transaction removing both tables (whether they exist or not)."""
    _check_name(table)
    return "".join(
        f"add table {family} {table}\ndelete table {family} {table}\n" for family in ("inet", "bridge")
    )


def set_update_script(fw: Firewall) -> str:
    """One ``nft -f`` transaction giving every set of ``fw`` its current elements.

    Valid when the loaded ruleset came from a firewall with the same ports and
    rules (:func:`update_script` decides).
    """
    _check(fw)
    lines: list[str] = []
    for name, (_kind, elements) in _sets(fw).items():
        lines.append(f"flush set bridge {fw.table} {name}")
        if elements:
            lines.append(f"add element bridge {fw.table} {name} {{ {', '.join(elements)} }}")
    return "\n".join(lines) + "\n" if lines else ""


def update_script(old: Firewall | None, new: Firewall) -> str:
    """The smallest transaction taking a host from ``old`` (None: unknown) to ``new``:
    set updates when only memberships changed, else a full replacement."""
    if old is None or _structure(old) != _structure(new):
        return replace_script(new)
    if _sets(old) == _sets(new):
        return ""
    return set_update_script(new)


def set_names(fw: Firewall) -> list[str]:
    """The named sets the ruleset of ``fw`` defines, sorted."""
    return sorted(_sets(fw))


# --- checking ---------------------------------------------------------------------------


def _check_id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError(f"bad group or prefix list id {value!r}")
    return value


def _check_name(value: str) -> None:
    if not _NAME.fullmatch(value):
        raise ValueError(f"bad table name {value!r}")


def _check(fw: Firewall) -> None:
    _check_name(fw.table)
    names = [p.ifname for p in fw.ports]
    if len(set(names)) != len(names):
        raise ValueError(f"an interface name appears twice: {sorted(names)}")
    for bridge, zone in fw.zones.items():
        if not _IFNAME.fullmatch(bridge) or not 1 <= zone <= 65535:
            raise ValueError(f"bad conntrack zone {zone!r} for bridge {bridge!r}")


def _address(text: str) -> IPv4Address | IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"bad IP address {text!r}") from None


def _structure(fw: Firewall) -> str:
    return render(replace(fw, group_members={}, prefix_lists={}))


# --- the inet table: conntrack state into the mark ----------------------------------------


def _inet_table(fw: Firewall) -> list[str]:
    keep = 0xFFFFFFFF & ~MARK_MASK
    lines = [f"table inet {fw.table} {{"]
    if fw.zones:
        for hook, key in (("prerouting", "iifname"), ("output", "oifname")):
            zones = ", ".join(f'"{b}" : {z}' for b, z in sorted(fw.zones.items()))
            lines += [
                f"\tchain zone_{hook} {{",
                f"\t\ttype filter hook {hook} priority raw; policy accept;",
                f"\t\tct zone set {key} map {{ {zones} }}",
                "\t}",
                "",
            ]
    for hook in ("prerouting", "output"):
        lines += [
            f"\tchain {hook} {{",
            f"\t\ttype filter hook {hook} priority mangle; policy accept;",
            f"\t\tmeta mark set meta mark & 0x{keep:08x}",
            f"\t\tct state established,related meta mark set meta mark | 0x{MARK_ESTABLISHED:08x}",
            f"\t\tct state invalid meta mark set meta mark | 0x{MARK_INVALID:08x}",
            "\t}",
            "",
        ]
    lines[-1] = "}"
    return lines


# --- the bridge table: the filter ---------------------------------------------------------


def _bridge_table(fw: Firewall) -> list[str]:
    lines = [f"table bridge {fw.table} {{"]
    for name, (kind, elements) in _sets(fw).items():
        lines += [f"\tset {name} {{", f"\t\ttype {kind}", "\t\tflags interval"]
        if elements:
            lines.append(f"\t\telements = {{ {', '.join(elements)} }}")
        lines += ["\t}", ""]
    ports = sorted(fw.ports, key=lambda p: p.ifname)
    for hook, key, direction in (
        ("prerouting", "iifname", "egress"),
        ("forward", "oifname", "ingress"),
        ("output", "oifname", "ingress"),
    ):
        lines += [
            f"\tchain {hook} {{",
            f"\t\ttype filter hook {hook} priority {BRIDGE_PRIORITY}; policy accept;",
        ]
        if ports:
            jumps = ", ".join(f'"{p.ifname}" : jump {direction}_{p.ifname}' for p in ports)
            lines.append(f"\t\t{key} vmap {{ {jumps} }}")
        lines += ["\t}", ""]
    for port in ports:
        rules = [r for r in fw.rules if r.group_id in port.group_ids]
        egress_head = _egress_head(port, fw.always_allowed)
        for direction, head in (("egress", egress_head), ("ingress", _ingress_head())):
            body = sorted(
                {line for r in rules if r.is_egress == (direction == "egress") for line in _rule_lines(r)}
            )
            body.append("drop")
            if port.ifname in fw.ordered:
                ingress, egress = fw.ordered[port.ifname]
                body = list(egress if direction == "egress" else ingress)
            lines += [f"\tchain {direction}_{port.ifname} {{"]
            lines += [f"\t\t{line}" for line in [*head, *body]]
            lines += ["\t}", ""]
    lines[-1] = "}"
    return lines


def _state_lines() -> list[str]:
    return [
        f"meta mark & 0x{MARK_MASK:08x} == 0x{MARK_INVALID:08x} drop",
        f"meta mark & 0x{MARK_MASK:08x} == 0x{MARK_ESTABLISHED:08x} accept",
    ]


def _egress_head(port: Port, always_allowed: tuple[str, ...]) -> list[str]:
    v4 = [ip for ip in port.ips if ":" not in ip]
    v6 = [ip for ip in port.ips if ":" in ip]
    lines = [
        f"ether saddr != {port.mac} drop",
        "ether type != { arp, ip, ip6 } drop",
        f"arp saddr ether != {port.mac} drop",
    ]
    if port.source_dest_check:
        lines += [
            f"arp saddr ip != {{ {', '.join(['0.0.0.0', *v4])} }} drop",
            "ether type arp accept",
            "ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept",
            f"ip saddr != {{ {', '.join(v4)} }} drop" if v4 else "ether type ip drop",
            f"ip6 saddr != {{ {', '.join(['::', 'fe80::/10', *v6])} }} drop",
        ]
    else:
        lines.append("ether type arp accept")
    return [
        *lines,
        f"ip6 saddr :: icmpv6 type != {{ {_ND_UNSPECIFIED} }} drop",
        "udp sport { 67, 547 } drop",
        "icmpv6 type { nd-router-advert, nd-redirect } drop",
        *_state_lines(),
        "udp sport 68 udp dport 67 accept",
        "udp sport 546 udp dport 547 accept",
        f"icmpv6 type {{ {_ND_OUT} }} accept",
        *_services(always_allowed),
    ]


def _services(addresses: tuple[str, ...]) -> list[str]:
    v4, v6 = _collapse(addresses)
    return [
        f"{kw} daddr {{ {', '.join(elements)} }} accept"
        for kw, elements in (("ip", v4), ("ip6", v6))
        if elements
    ]


def _ingress_head() -> list[str]:
    return [
        "ether type arp accept",
        *_state_lines(),
        "udp sport 67 udp dport 68 accept",
        "udp sport 547 udp dport 546 accept",
        f"icmpv6 type {{ {_ND_IN} }} accept",
    ]


# --- rules ----------------------------------------------------------------------------------


def _set_name(ref: str, family: int) -> str:
    return f"{ref.replace('-', '_')}_v{family}"


def _rule_lines(rule: Rule) -> list[str]:
    """The accept statements for one rule: one per address family it can match."""
    key = "daddr" if rule.is_egress else "saddr"
    peers: list[tuple[int, str]] = []
    if rule.cidr_ipv4 is not None:
        peers.append((4, "ether type ip" if rule.cidr_ipv4 == "0.0.0.0/0" else f"ip {key} {rule.cidr_ipv4}"))
    elif rule.cidr_ipv6 is not None:
        peers.append((6, "ether type ip6" if rule.cidr_ipv6 == "::/0" else f"ip6 {key} {rule.cidr_ipv6}"))
    else:
        ref = rule.referenced_group_id or rule.prefix_list_id or ""
        peers += [(4, f"ip {key} @{_set_name(ref, 4)}"), (6, f"ip6 {key} @{_set_name(ref, 6)}")]
    lines = []
    for family, peer in peers:
        match = _protocol_match(rule, family)
        if match is not None:
            lines.append(" ".join(part for part in (peer, match, "accept") if part))
    return lines


def _protocol_match(rule: Rule, family: int) -> str | None:
    """The protocol part of a rule's match; None when the rule cannot match ``family``."""
    protocol, low, high = rule.ip_protocol, rule.from_port, rule.to_port
    if protocol == sg_rules.ALL:
        return ""
    if protocol in sg_rules.PORTED:
        if low is None or high is None or (low <= 0 and high >= 65535):
            return f"meta l4proto {protocol}"
        return f"{protocol} dport {low}" if low == high else f"{protocol} dport {low}-{high}"
    if protocol in sg_rules.ICMP:
        if (protocol == "icmp") != (family == 4):
            return None
        if low is None or low == -1:
            return f"meta l4proto {protocol}"
        if high is None or high == -1:
            return f"{protocol} type {low}"
        return f"{protocol} type {low} {protocol} code {high}"
    return f"meta l4proto {protocol}"


# --- sets -------------------------------------------------------------------------------------


def _sets(fw: Firewall) -> dict[str, tuple[str, list[str]]]:
    """Every named set the ruleset needs: name -> (nft type, sorted elements)."""
    port_groups = {g for p in fw.ports for g in p.group_ids}
    refs: dict[str, list[str]] = {}
    for rule in fw.rules:
        if rule.group_id not in port_groups:
            continue
        if rule.referenced_group_id is not None:
            refs[rule.referenced_group_id] = [
                str(_address(ip)) for ip in fw.group_members.get(rule.referenced_group_id, ())
            ]
        elif rule.prefix_list_id is not None:
            refs[rule.prefix_list_id] = list(fw.prefix_lists.get(rule.prefix_list_id, ()))
    out: dict[str, tuple[str, list[str]]] = {}
    for ref in sorted(refs):
        v4, v6 = _collapse(refs[ref])
        out[_set_name(ref, 4)] = ("ipv4_addr", v4)
        out[_set_name(ref, 6)] = ("ipv6_addr", v6)
    return out


def _collapse(blocks: Iterable[str]) -> tuple[list[str], list[str]]:
    """IPv4 and IPv6 elements, merged and sorted (an interval set refuses overlaps)."""
    v4: list[IPv4Network] = []
    v6: list[IPv6Network] = []
    for block in blocks:
        try:
            net = ipaddress.ip_network(block, strict=False)
        except ValueError:
            raise ValueError(f"bad address or CIDR block {block!r}") from None
        if isinstance(net, IPv4Network):
            v4.append(net)
        else:
            v6.append(net)
    return (
        [_element(n) for n in ipaddress.collapse_addresses(v4)],
        [_element(n) for n in ipaddress.collapse_addresses(v6)],
    )


def _element(net: IPv4Network | IPv6Network) -> str:
    return str(net.network_address) if net.num_addresses == 1 else str(net)
