"""Each host filter on its own, and the filter registry."""

from __future__ import annotations

import pytest

from ocs.scheduler import filters
from ocs.scheduler.core import HostState, Ratios, Request


def host(**kw: object) -> HostState:
    values: dict[str, object] = {
        "name": "h1",
        "availability_zone": "az1",
        "total_vcpus": 4,
        "total_memory_mib": 4096,
        "total_disk_gib": 40,
    }
    values.update(kw)
    return HostState(**values)  # type: ignore[arg-type]


def request(**kw: object) -> Request:
    values: dict[str, object] = {"vcpus": 1, "memory_mib": 512, "disk_gib": 10}
    values.update(kw)
    return Request(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("enabled", "alive", "passes"),
    [(True, True, True), (False, True, False), (True, False, False), (False, False, False)],
)
def test_enabled_alive(enabled: bool, alive: bool, passes: bool) -> None:
    assert filters.EnabledAliveFilter().passes(host(enabled=enabled, alive=alive), request()) is passes


def test_excluded_hosts() -> None:
    f = filters.ExcludedHostsFilter()
    assert f.passes(host(name="h1"), request())
    assert f.passes(host(name="h1"), request(excluded_hosts=("h2",)))
    assert not f.passes(host(name="h1"), request(excluded_hosts=("h2", "h1")))


def test_availability_zone() -> None:
    f = filters.AvailabilityZoneFilter()
    assert f.passes(host(availability_zone="az1"), request())  # no zone asked: any zone
    assert f.passes(host(availability_zone="az1"), request(availability_zone="az1"))
    assert not f.passes(host(availability_zone="az2"), request(availability_zone="az1"))


def test_architecture() -> None:
    f = filters.ArchitectureFilter()
    assert f.passes(host(), request())  # x86_64 on both sides by default
    assert not f.passes(host(), request(architecture="arm64"))
    assert f.passes(host(architectures=("x86_64", "i386")), request(architecture="i386"))
    assert f.passes(host(architectures=("arm64",)), request(architecture="arm64"))
    assert not f.passes(host(architectures=()), request())


def test_instance_count() -> None:
    f = filters.InstanceCountFilter()
    assert f.passes(host(instances=1000), request())  # no limit
    assert f.passes(host(instances=2, max_instances=3), request())
    assert not f.passes(host(instances=3, max_instances=3), request())
    assert not f.passes(host(max_instances=0), request())


def test_vcpu_uses_the_cpu_allocation_ratio() -> None:
    f = filters.VcpuFilter()
    # 4 vCPUs x default ratio 4.0 = 16
    assert f.passes(host(used_vcpus=15), request(vcpus=1))
    assert not f.passes(host(used_vcpus=15), request(vcpus=2))
    one_to_one = Ratios(cpu=1.0)
    assert f.passes(host(used_vcpus=2, ratios=one_to_one), request(vcpus=2))
    assert not f.passes(host(used_vcpus=3, ratios=one_to_one), request(vcpus=2))


def test_ram_uses_the_ram_allocation_ratio() -> None:
    f = filters.RamFilter()
    assert f.passes(host(used_memory_mib=3584), request(memory_mib=512))
    assert not f.passes(host(used_memory_mib=3585), request(memory_mib=512))
    assert f.passes(host(used_memory_mib=4096, ratios=Ratios(ram=1.5)), request(memory_mib=2048))


def test_disk_uses_the_disk_allocation_ratio() -> None:
    f = filters.DiskFilter()
    assert f.passes(host(used_disk_gib=30), request(disk_gib=10))
    assert not f.passes(host(used_disk_gib=31), request(disk_gib=10))
    assert f.passes(host(total_disk_gib=0), request(disk_gib=0))
    assert not f.passes(host(used_disk_gib=40, ratios=Ratios(disk=0.5)), request(disk_gib=0))


def test_capacity_is_floored_after_rounding_the_ratio_product() -> None:
    # 100 x 0.29 is 28.999999999999996 in floating point; the capacity is 29.
    h = host(total_disk_gib=100, ratios=Ratios(disk=0.29))
    assert h.limits().disk_gib == 29
    assert filters.DiskFilter().passes(h, request(disk_gib=29))
    assert not filters.DiskFilter().passes(h, request(disk_gib=30))
    assert host(total_vcpus=3, ratios=Ratios(cpu=1.5)).limits().vcpus == 4


def test_a_host_overcommitted_by_a_lowered_ratio_takes_nothing() -> None:
    h = host(used_vcpus=10, ratios=Ratios(cpu=2.0))
    assert h.free().vcpus == -2
    assert not filters.VcpuFilter().passes(h, request(vcpus=0))


def test_every_filter_has_a_unique_name_and_a_label() -> None:
    assert set(filters.DEFAULT_FILTERS) == set(filters.FILTERS)
    for name, cls in filters.FILTERS.items():
        instance = cls()
        assert instance.name == name
        assert instance.label


def test_build_filters_keeps_the_order_given() -> None:
    built = filters.build_filters(["vcpu", "enabled_alive"])
    assert [f.name for f in built] == ["vcpu", "enabled_alive"]


def test_build_filters_rejects_unknown_and_repeated_names() -> None:
    with pytest.raises(ValueError, match="unknown scheduler filter"):
        filters.build_filters(["vcpu", "gpu"])
    with pytest.raises(ValueError, match="twice"):
        filters.build_filters(["vcpu", "vcpu"])
