"""Compute Engine firewall rules compiled to the ordered nftables statements of one port.

A pure module. Compute Engine's firewall differs from EC2's security groups in that
rules carry a verdict and an order:

* a rule is INGRESS or EGRESS, ``allowed`` (accept) or ``denied`` (drop), with a
  ``priority`` 0..65535 where a lower number wins; at equal priority a deny rule
  wins over an allow rule (Compute Engine's documented tie-break). The first rule
  that matches a packet decides it, so the rules become nftables statements in that
  order, each ending in ``accept`` or ``drop`` (names break remaining ties, for
  deterministic output).
* a rule applies to an instance when it is not ``disabled`` and either has no
  ``targetTags`` or shares one with the instance's network tags (``tags.items``).
* INGRESS matches a source in ``sourceRanges`` OR an instance carrying one of
  ``sourceTags`` (their addresses, given in ``tag_members``), and, if given, a
  destination in ``destinationRanges``; an ingress rule with neither sources nor
  source tags means every source (what the API defaults ``sourceRanges`` to).
  EGRESS matches a destination in ``destinationRanges`` (every destination when
  absent) and, if given, a source in ``sourceRanges``.
* each ``allowed``/``denied`` entry is a protocol (``tcp``, ``udp``, ``icmp``,
  ``esp``, ``ah``, ``sctp``, ``ipip``, ``all`` or a number 0..255) with optional
  ``ports`` ("22", "8000-8080") for tcp, udp and sctp.
* the implied rules close the list: deny all ingress, allow all egress, at priority
  65535 below every rule.

The result is per port and direction a tuple of statement lines, for the port's
chains in :mod:`ocs.network.nft` (after its anti-spoofing and connection-tracking
head: replies of an allowed connection pass, as Compute Engine's firewall is
stateful). Errors in the input raise ``ValueError``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

INGRESS, EGRESS = "INGRESS", "EGRESS"
MAX_PRIORITY = 65535
_PROTOCOL_NAMES = {"tcp", "udp", "icmp", "esp", "ah", "sctp", "ipip", "all"}
_PORTED = {"tcp", "udp", "sctp"}
_NUMBERED = {"6": "tcp", "17": "udp", "1": "icmp", "50": "esp", "51": "ah", "132": "sctp", "4": "ipip"}
_PORT = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")


@dataclass(frozen=True)
class Permission:
    """One ``allowed`` or ``denied`` entry: a protocol and its port ranges (none: all)."""

    protocol: str
    ports: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        protocol = normalize_protocol(self.protocol)
        object.__setattr__(self, "protocol", protocol)
        if self.ports and protocol not in _PORTED:
            raise ValueError(f"ports are only valid for tcp, udp and sctp, not {protocol!r}")
        object.__setattr__(self, "ports", tuple(normalize_port_range(p) for p in self.ports))


@dataclass(frozen=True)
class FirewallRule:
    name: str
    direction: str = INGRESS
    priority: int = 1000
    allow: bool = True
    permissions: tuple[Permission, ...] = ()
    source_ranges: tuple[str, ...] = ()
    destination_ranges: tuple[str, ...] = ()
    source_tags: tuple[str, ...] = ()
    target_tags: tuple[str, ...] = ()
    disabled: bool = False

    def __post_init__(self) -> None:
        if self.direction not in (INGRESS, EGRESS):
            raise ValueError(f"direction must be INGRESS or EGRESS, not {self.direction!r}")
        if not 0 <= self.priority <= MAX_PRIORITY:
            raise ValueError(f"priority {self.priority} is outside 0..{MAX_PRIORITY}")
        if not self.permissions:
            raise ValueError(f"firewall {self.name} allows or denies nothing")
        if self.direction == EGRESS and self.source_tags:
            raise ValueError("sourceTags are only valid for INGRESS rules")
        for block in (*self.source_ranges, *self.destination_ranges):
            _network(block)


@dataclass(frozen=True)
class PortRules:
    """The ordered statements of one port's chains."""

    ingress: tuple[str, ...]
    egress: tuple[str, ...]


@dataclass(frozen=True)
class PortInput:
    tags: tuple[str, ...] = ()
    tag_members: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def from_resource(
    name: str,
    *,
    direction: str,
    priority: int,
    allowed: Sequence[Mapping[str, Any]],
    denied: Sequence[Mapping[str, Any]],
    source_ranges: Sequence[str] = (),
    destination_ranges: Sequence[str] = (),
    source_tags: Sequence[str] = (),
    target_tags: Sequence[str] = (),
    disabled: bool = False,
) -> FirewallRule:
    """The rule of a Compute Engine Firewall resource's fields (``allowed`` or ``denied``
    entries are ``{"IPProtocol": ..., "ports": [...]}``)."""
    entries = allowed or denied
    return FirewallRule(
        name=name,
        direction=direction,
        priority=priority,
        allow=bool(allowed),
        permissions=tuple(Permission(str(e["IPProtocol"]), tuple(e.get("ports") or ())) for e in entries),
        source_ranges=tuple(source_ranges),
        destination_ranges=tuple(destination_ranges),
        source_tags=tuple(source_tags),
        target_tags=tuple(target_tags),
        disabled=disabled,
    )


def normalize_protocol(value: str) -> str:
    text = str(value).strip().lower()
    if text in _PROTOCOL_NAMES:
        return text
    if text.isdigit() and 0 <= int(text) <= 255:
        return _NUMBERED.get(str(int(text)), str(int(text)))
    raise ValueError(f"unknown IP protocol {value!r}")


def normalize_port_range(value: str) -> str:
    found = _PORT.match(str(value).strip())
    if found is None:
        raise ValueError(f"bad port or port range {value!r}")
    low = int(found.group(1))
    high = int(found.group(2)) if found.group(2) is not None else low
    if not 0 <= low <= high <= 65535:
        raise ValueError(f"bad port range {value!r}")
    return str(low) if low == high else f"{low}-{high}"


def _network(block: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(block, strict=False)
    except ValueError:
        raise ValueError(f"bad address range {block!r}") from None


def applies(rule: FirewallRule, tags: Sequence[str]) -> bool:
    return not rule.disabled and (not rule.target_tags or bool(set(rule.target_tags) & set(tags)))


def order(rules: Sequence[FirewallRule]) -> list[FirewallRule]:
    """Evaluation order: lower priority first, deny before allow at equal priority, then name."""
    return sorted(rules, key=lambda r: (r.priority, r.allow, r.name))


def compile_port(rules: Sequence[FirewallRule], port: PortInput) -> PortRules:
    """The ordered statements of the port's ingress and egress chains, implied rules last."""
    chosen = order([r for r in rules if applies(r, port.tags)])
    ingress = [line for r in chosen if r.direction == INGRESS for line in _lines(r, port)]
    egress = [line for r in chosen if r.direction == EGRESS for line in _lines(r, port)]
    return PortRules((*ingress, "drop"), (*egress, "accept"))


def _families(blocks: Sequence[str]) -> dict[int, list[str]]:
    v4 = ipaddress.collapse_addresses(
        [n for n in map(_network, blocks) if isinstance(n, ipaddress.IPv4Network)]
    )
    v6 = ipaddress.collapse_addresses(
        [n for n in map(_network, blocks) if isinstance(n, ipaddress.IPv6Network)]
    )
    out = {4: [_element(n) for n in v4], 6: [_element(n) for n in v6]}
    return {f: e for f, e in out.items() if e}


def _element(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    return str(net.network_address) if net.num_addresses == 1 else str(net)


def _match(family: int, key: str, elements: list[str]) -> str:
    kw = "ip" if family == 4 else "ip6"
    if elements == (["0.0.0.0/0"] if family == 4 else ["::/0"]):
        return f"ether type {kw}"
    return f"{kw} {key} {elements[0]}" if len(elements) == 1 else f"{kw} {key} {{ {', '.join(elements)} }}"


def _peers(rule: FirewallRule, port: PortInput) -> list[tuple[int, str]]:
    """(family, address match) alternatives a packet of the rule must meet one of."""
    if rule.direction == INGRESS:
        sources = list(rule.source_ranges)
        for tag in rule.source_tags:
            sources += list(port.tag_members.get(tag, ()))
        if not rule.source_ranges and not rule.source_tags:
            sources = ["0.0.0.0/0", "::/0"]
        main, main_key, other, other_key = sources, "saddr", list(rule.destination_ranges), "daddr"
    else:
        dests = list(rule.destination_ranges) or ["0.0.0.0/0", "::/0"]
        main, main_key, other, other_key = dests, "daddr", list(rule.source_ranges), "saddr"
    mains, others = _families(main), _families(other)
    out = []
    for family, elements in sorted(mains.items()):
        parts = [_match(family, main_key, elements)]
        if other:
            if family not in others:
                continue  # the other side names no address of this family: no match
            extra = _match(family, other_key, others[family])
            if not extra.startswith("ether type"):
                parts.append(extra)
        out.append((family, " ".join(parts)))
    return out


def _protocol(permission: Permission, family: int) -> list[str] | None:
    protocol = permission.protocol
    if protocol == "all":
        return [""]
    if protocol == "icmp":
        return ["meta l4proto icmp"] if family == 4 else None
    if protocol in _PORTED and permission.ports:
        ports = list(permission.ports)
        value = ports[0] if len(ports) == 1 else "{ " + ", ".join(ports) + " }"
        return [f"{protocol} dport {value}"]
    return [f"meta l4proto {protocol}"]


def _lines(rule: FirewallRule, port: PortInput) -> list[str]:
    verdict = "accept" if rule.allow else "drop"
    lines = []
    for family, peer in _peers(rule, port):
        for permission in rule.permissions:
            for match in _protocol(permission, family) or []:
                lines.append(" ".join(p for p in (peer, match, verdict) if p))
    return lines
