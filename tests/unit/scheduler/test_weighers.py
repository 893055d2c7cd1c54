"""Spread and pack: the weighers alone and as the scheduler uses them."""

from __future__ import annotations

import pytest

from ocs.scheduler import weighers
from ocs.scheduler.core import HostState, Ratios, Request, make_scheduler


def host(name: str, used_vcpus: int = 0, used_memory_mib: int = 0, **kw: object) -> HostState:
    values: dict[str, object] = {
        "name": name,
        "availability_zone": "az1",
        "total_vcpus": 4,
        "total_memory_mib": 4096,
        "total_disk_gib": 100,
        "used_vcpus": used_vcpus,
        "used_memory_mib": used_memory_mib,
        "ratios": Ratios(cpu=1.0),
    }
    values.update(kw)
    return HostState(**values)  # type: ignore[arg-type]


SMALL = Request(vcpus=1, memory_mib=1024)


def test_free_share_is_the_mean_free_part_of_vcpus_and_ram() -> None:
    assert weighers.free_share(host("a")) == 1.0
    assert weighers.free_share(host("a", used_vcpus=4, used_memory_mib=4096)) == 0.0
    assert weighers.free_share(host("a", used_vcpus=2, used_memory_mib=1024)) == pytest.approx(
        (0.5 + 0.75) / 2
    )


def test_free_share_weights_and_missing_resources() -> None:
    h = host("a", used_vcpus=2, used_disk_gib=100)
    assert weighers.free_share(h, cpu=1.0, ram=0.0, disk=0.0) == 0.5
    assert weighers.free_share(h, cpu=0.0, ram=0.0, disk=1.0) == 0.0
    assert weighers.free_share(h, cpu=0.0, ram=0.0, disk=0.0) == 0.0
    assert weighers.free_share(host("a", total_memory_mib=0), cpu=0.0, ram=1.0) == 0.0


def test_free_share_compares_hosts_of_different_sizes_by_share() -> None:
    small_quarter_used = host("a", used_vcpus=1, used_memory_mib=1024)
    big_half_used = host("b", used_vcpus=4, used_memory_mib=4096, total_vcpus=8, total_memory_mib=8192)
    assert weighers.free_share(small_quarter_used) > weighers.free_share(big_half_used)


def test_spread_prefers_the_emptiest_host() -> None:
    fleet = [host("a", 3, 3072), host("b", 1, 1024), host("c", 2, 2048)]
    assert make_scheduler("spread").schedule(fleet, SMALL).hosts == ("b",)


def test_pack_prefers_the_fullest_host_that_still_fits() -> None:
    full = host("a", 4, 4096)
    fleet = [full, host("b", 1, 1024), host("c", 2, 2048)]
    assert make_scheduler("pack").schedule(fleet, SMALL).hosts == ("c",)


def test_spread_levels_several_instances_across_identical_hosts() -> None:
    fleet = [host(name) for name in "abc"]
    placement = make_scheduler("spread").schedule(fleet, Request(vcpus=1, memory_mib=1024, count=6))
    assert placement.hosts == ("a", "b", "c", "a", "b", "c")


def test_pack_fills_one_host_before_the_next() -> None:
    fleet = [host(name) for name in "abc"]
    placement = make_scheduler("pack").schedule(fleet, Request(vcpus=1, memory_mib=1024, count=6))
    assert placement.hosts == ("a", "a", "a", "a", "b", "b")


def test_spread_evens_out_an_uneven_fleet() -> None:
    fleet = [host("a", 2, 2048), host("b")]
    placement = make_scheduler("spread").schedule(fleet, Request(vcpus=1, memory_mib=1024, count=4))
    assert placement.hosts == ("b", "b", "a", "b")


def test_weigher_registry() -> None:
    assert set(weighers.WEIGHERS) == {"spread", "pack"}
    assert weighers.build_weigher("pack").name == "pack"
    with pytest.raises(ValueError, match="unknown scheduler weigher"):
        weighers.build_weigher("random")
