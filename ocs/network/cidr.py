"""CIDR arithmetic for VPCs, subnets and security-group rules.

A pure module: strings in, strings, booleans and numbers out. It knows EC2's
sizes (a VPC or subnet block is a /16 to a /28; five addresses of every subnet
are reserved) and how EC2 carves a default VPC into one /20 per availability zone
(``172.31.0.0/20``, ``172.31.16.0/20``, ...). It raises only ``ValueError``;
callers turn that into the EC2 error of their action.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable
from ipaddress import IPv4Network, IPv6Network

VPC_MIN_PREFIX = 16
VPC_MAX_PREFIX = 28
SUBNET_MIN_PREFIX = 16
SUBNET_MAX_PREFIX = 28
DEFAULT_SUBNET_PREFIX = 20
RESERVED_PER_SUBNET = 5
"""EC2 reserves the network address, the router, DNS, one for future use and broadcast."""

_IPV4_CIDR = re.compile(r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$")
_IPV6_CIDR = re.compile(r"^[0-9A-Fa-f:.]+/\d{1,3}$")

__all__ = [
    "DEFAULT_SUBNET_PREFIX",
    "RESERVED_PER_SUBNET",
    "SUBNET_MAX_PREFIX",
    "SUBNET_MIN_PREFIX",
    "VPC_MAX_PREFIX",
    "VPC_MIN_PREFIX",
    "carve",
    "contains",
    "default_subnet_cidrs",
    "first_conflict",
    "ipv4_network",
    "ipv6_network",
    "is_valid_subnet_size",
    "is_valid_vpc_size",
    "overlaps",
    "usable_addresses",
]


def ipv4_network(text: object, *, strict: bool = True) -> IPv4Network | None:
    """``text`` as an IPv4 network (``a.b.c.d/n``), or None if it is not one.

    The prefix length is required (``10.0.0.1`` alone is not a CIDR block) and the
    netmask form (``10.0.0.0/255.0.0.0``) is refused. With ``strict`` a block with
    host bits set (``10.0.0.1/24``) is refused too; without, it is masked to its
    network (``10.0.0.0/24``).
    """
    if not isinstance(text, str) or not _IPV4_CIDR.match(text):
        return None
    try:
        return IPv4Network(text, strict=strict)
    except ValueError:
        return None


def ipv6_network(text: object, *, strict: bool = True) -> IPv6Network | None:
    """``text`` as an IPv6 network (``2001:db8::/32``), or None; see :func:`ipv4_network`."""
    if not isinstance(text, str) or not _IPV6_CIDR.match(text):
        return None
    try:
        return IPv6Network(text, strict=strict)
    except ValueError:
        return None


def is_valid_vpc_size(network: IPv4Network) -> bool:
    """Whether EC2 accepts ``network`` as a VPC's IPv4 block (a /16 to a /28)."""
    return VPC_MIN_PREFIX <= network.prefixlen <= VPC_MAX_PREFIX


def is_valid_subnet_size(network: IPv4Network) -> bool:
    """Whether EC2 accepts ``network`` as a subnet's IPv4 block (a /16 to a /28)."""
    return SUBNET_MIN_PREFIX <= network.prefixlen <= SUBNET_MAX_PREFIX


def contains(outer: str, inner: str) -> bool:
    """Whether the block ``inner`` lies wholly inside ``outer`` (both IPv4 CIDR strings)."""
    return IPv4Network(inner).subnet_of(IPv4Network(outer))


def overlaps(a: str, b: str) -> bool:
    """Whether two IPv4 CIDR blocks share an address."""
    return IPv4Network(a).overlaps(IPv4Network(b))


def first_conflict(candidate: str, existing: Iterable[str]) -> str | None:
    """The first block of ``existing`` that overlaps ``candidate``, or None."""
    net = IPv4Network(candidate)
    for block in existing:
        if net.overlaps(IPv4Network(block)):
            return block
    return None


def usable_addresses(cidr: str, used: int = 0) -> int:
    """Addresses still free in a subnet: its size less EC2's five reserved, less ``used``."""
    return max(0, IPv4Network(cidr).num_addresses - RESERVED_PER_SUBNET - used)


def carve(parent: str, prefix: int, count: int) -> list[str]:
    """The first ``count`` blocks of size ``/prefix`` inside ``parent``, in address order.

    ValueError if ``parent`` is smaller than ``/prefix`` or holds fewer than ``count``.
    """
    net = IPv4Network(parent)
    if count < 0 or prefix < net.prefixlen or prefix > 32:
        raise ValueError(f"cannot carve /{prefix} blocks out of {parent}")
    if count > 2 ** (prefix - net.prefixlen):
        raise ValueError(f"{parent} holds fewer than {count} /{prefix} blocks")
    size = 2 ** (32 - prefix)
    base = int(net.network_address)
    return [f"{ipaddress.IPv4Address(base + i * size)}/{prefix}" for i in range(count)]


def default_subnet_cidrs(vpc_cidr: str, zones: int) -> list[str]:
    """The blocks of a default VPC's default subnets, one per zone, as EC2 lays them out.

    EC2 gives each zone a /20 from the bottom of the VPC's block (``172.31.0.0/20``,
    ``172.31.16.0/20``, ...). When an operator configures a block too small for
    that many /20s, the subnets shrink just enough to fit (never below a /28).
    """
    if zones <= 0:
        return []
    net = IPv4Network(vpc_cidr)
    prefix = max(DEFAULT_SUBNET_PREFIX, net.prefixlen + math.ceil(math.log2(zones)))
    if prefix > SUBNET_MAX_PREFIX:
        raise ValueError(f"{vpc_cidr} is too small for {zones} default subnets")
    return carve(vpc_cidr, prefix, zones)
