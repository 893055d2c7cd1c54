"""IPAM over address pools: which addresses of a block may be handed out, and the next free one.

A pure module: blocks and sets of addresses in, addresses out. A subnet's pool
leaves out what EC2 reserves in every subnet (the network address, the VPC
router, DNS, one for future use, and the broadcast address); a public pool
(elastic IPs) leaves out only the network and broadcast addresses. Who holds
which address, and the locking that makes allocation safe under concurrency,
are the database's business (``ocs.db.ipam``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterator

RESERVED_LOW = 4
"""Reserved at the bottom of every subnet: network, VPC router, DNS, future use."""

__all__ = [
    "RESERVED_LOW",
    "check_in_subnet",
    "ip_text",
    "next_free",
    "pool_range",
    "public_pool_addresses",
    "subnet_range",
]


def ip_text(value: int) -> str:
    """``str(ipaddress.IPv4Address(value))``, several times faster."""
    return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"


def subnet_range(cidr_block: str) -> tuple[int, int]:
    """The lowest and highest address of a subnet an interface may hold (as integers)."""
    net = ipaddress.IPv4Network(cidr_block)
    return int(net.network_address) + RESERVED_LOW, int(net.broadcast_address) - 1


def pool_range(cidr_block: str) -> tuple[int, int]:
    """The lowest and highest address of a public pool (network and broadcast left out;
    a /31 or /32 pool is used whole)."""
    net = ipaddress.IPv4Network(cidr_block, strict=False)
    if net.num_addresses <= 2:
        return int(net.network_address), int(net.broadcast_address)
    return int(net.network_address) + 1, int(net.broadcast_address) - 1


def next_free(bounds: tuple[int, int], used: Collection[str], start: int = 0) -> tuple[str, int] | None:
    """The lowest address of ``bounds`` not in ``used``, from ``start`` on, and its integer value.

    ``start`` lets one allocation of several addresses skip what it already took:
    ``used`` only grows meanwhile, so nothing below the previous answer becomes free.
    """
    low, high = bounds
    for value in range(max(low, start), high + 1):
        candidate = ip_text(value)
        if candidate not in used:
            return candidate, value
    return None


def public_pool_addresses(cidr_blocks: Collection[str]) -> Iterator[str]:
    """Every allocatable address of the public pool blocks, in order."""
    for block in cidr_blocks:
        low, high = pool_range(block)
        for value in range(low, high + 1):
            yield ip_text(value)


def check_in_subnet(cidr_block: str, address: str) -> str | None:
    """Why ``address`` cannot be held in the subnet ``cidr_block`` (None if it can).

    Answers ``"invalid"`` (no IPv4 address), ``"outside"`` (not in the block) or
    ``"reserved"`` (one of the five addresses EC2 reserves).
    """
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        return "invalid"
    if ip not in ipaddress.IPv4Network(cidr_block):
        return "outside"
    low, high = subnet_range(cidr_block)
    if not low <= int(ip) <= high:
        return "reserved"
    return None
