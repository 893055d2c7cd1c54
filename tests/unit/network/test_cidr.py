"""CIDR helpers: parsing, sizes, overlap and the default VPC's layout."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocs.network import cidr


@pytest.mark.parametrize(
    "text", ["10.0.0.0", "10.0.0.0/33", "10.0.0.0/255.0.0.0", "300.0.0.0/8", "10.0.0/8", "", "abc", None, 42]
)
def test_not_an_ipv4_block(text):
    assert cidr.ipv4_network(text) is None


def test_host_bits_refused_when_strict_masked_otherwise():
    assert cidr.ipv4_network("10.0.0.1/24") is None
    assert str(cidr.ipv4_network("10.0.0.28/29", strict=False)) == "10.0.0.24/29"


def test_ipv6_blocks():
    assert str(cidr.ipv6_network("2001:db8::/32")) == "2001:db8::/32"
    assert str(cidr.ipv6_network("2001:DB8::1/32", strict=False)) == "2001:db8::/32"
    assert cidr.ipv6_network("2001:db8::") is None
    assert cidr.ipv6_network("10.0.0.0/8") is None


@pytest.mark.parametrize(("prefix", "ok"), [(15, False), (16, True), (24, True), (28, True), (29, False)])
def test_vpc_and_subnet_sizes(prefix, ok):
    net = ipaddress.IPv4Network(f"10.0.0.0/{prefix}")
    assert cidr.is_valid_vpc_size(net) is ok
    assert cidr.is_valid_subnet_size(net) is ok


def test_default_subnets_are_slash_20s_from_the_bottom():
    assert cidr.default_subnet_cidrs("172.31.0.0/16", 3) == [
        "172.31.0.0/20",
        "172.31.16.0/20",
        "172.31.32.0/20",
    ]
    assert len(cidr.default_subnet_cidrs("172.31.0.0/16", 16)) == 16


def test_default_subnets_shrink_to_fit_a_small_block():
    assert cidr.default_subnet_cidrs("10.1.0.0/22", 3) == ["10.1.0.0/24", "10.1.1.0/24", "10.1.2.0/24"]
    assert cidr.default_subnet_cidrs("10.1.0.0/24", 1) == ["10.1.0.0/24"]
    assert cidr.default_subnet_cidrs("10.1.0.0/16", 0) == []
    with pytest.raises(ValueError):
        cidr.default_subnet_cidrs("10.1.0.0/28", 2)


def test_carve_refuses_what_does_not_fit():
    with pytest.raises(ValueError):
        cidr.carve("10.0.0.0/24", 16, 1)
    with pytest.raises(ValueError):
        cidr.carve("10.0.0.0/24", 25, 3)


def test_contains_overlaps_conflict():
    assert cidr.contains("10.0.0.0/16", "10.0.1.0/24")
    assert not cidr.contains("10.0.0.0/16", "10.1.0.0/24")
    assert cidr.overlaps("10.0.0.0/16", "10.0.255.0/24")
    assert not cidr.overlaps("10.0.0.0/24", "10.0.1.0/24")
    assert cidr.first_conflict("10.0.1.0/24", ["10.0.0.0/24", "10.0.0.0/23"]) == "10.0.0.0/23"
    assert cidr.first_conflict("10.0.2.0/24", ["10.0.0.0/24", "10.0.1.0/24"]) is None


def test_usable_addresses_keeps_five_back():
    assert cidr.usable_addresses("172.31.0.0/20") == 4091
    assert cidr.usable_addresses("10.0.0.0/28") == 11
    assert cidr.usable_addresses("10.0.0.0/28", used=20) == 0


blocks = st.builds(
    lambda addr, prefix: str(ipaddress.IPv4Network((addr, prefix), strict=False)),
    st.integers(0, 2**32 - 1),
    st.integers(16, 28),
)


@given(blocks, blocks)
def test_overlap_is_symmetric_and_matches_containment(a, b):
    assert cidr.overlaps(a, b) == cidr.overlaps(b, a)
    if cidr.contains(a, b) or cidr.contains(b, a):
        assert cidr.overlaps(a, b)
    else:
        assert not cidr.overlaps(a, b)  # two CIDR blocks overlap only by nesting


@given(blocks, st.integers(0, 12), st.integers(1, 64))
def test_carved_blocks_tile_the_parent_in_order(parent, extra, count):
    prefix = min(ipaddress.IPv4Network(parent).prefixlen + extra, 32)
    room = 2 ** (prefix - ipaddress.IPv4Network(parent).prefixlen)
    if count > room:
        with pytest.raises(ValueError):
            cidr.carve(parent, prefix, count)
        return
    carved = cidr.carve(parent, prefix, count)
    assert len(carved) == count
    assert all(cidr.contains(parent, c) for c in carved)
    nets = [ipaddress.IPv4Network(c) for c in carved]
    assert all(n.prefixlen == prefix for n in nets)
    assert all(
        int(x.broadcast_address) + 1 == int(y.network_address) for x, y in zip(nets, nets[1:], strict=False)
    )
    assert nets[0].network_address == ipaddress.IPv4Network(parent).network_address


@given(st.integers(1, 16))
def test_default_subnets_never_overlap(zones):
    subnets = cidr.default_subnet_cidrs("172.31.0.0/16", zones)
    assert len(subnets) == zones
    for i, a in enumerate(subnets):
        assert ipaddress.IPv4Network(a).prefixlen == 20
        assert cidr.first_conflict(a, subnets[:i] + subnets[i + 1 :]) is None
