"""Host filters: one small predicate each, ``passes(HostState, Request) -> bool``.

A filter reads nothing but its arguments: capacity comes from the host state
itself (its totals, its use and its allocation ratios, which the scheduler fills
in before filtering), so a decision can be replayed.  Filters come from the plain
dictionary :data:`FILTERS`; :data:`DEFAULT_FILTERS` is the order they run in,
cheap and coarse first, so that the counts of a refusal read from "why not at
all" to "why not enough".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ocs.scheduler.core import HostFilter, HostState, Request

__all__ = [
    "DEFAULT_FILTERS",
    "FILTERS",
    "ArchitectureFilter",
    "AvailabilityZoneFilter",
    "DiskFilter",
    "EnabledAliveFilter",
    "ExcludedHostsFilter",
    "InstanceCountFilter",
    "RamFilter",
    "VcpuFilter",
    "build_filters",
]


class EnabledAliveFilter:
    """The host is enabled by the operator and its agent's heartbeat is recent."""

    name: ClassVar[str] = "enabled_alive"
    label: ClassVar[str] = "disabled or down"

    def passes(self, host: HostState, request: Request) -> bool:
        return host.enabled and host.alive


class ExcludedHostsFilter:
    """The host is not one the request excludes (a build already failed there)."""

    name: ClassVar[str] = "excluded_hosts"
    label: ClassVar[str] = "excluded hosts"

    def passes(self, host: HostState, request: Request) -> bool:
        return host.name not in request.excluded_hosts


class AvailabilityZoneFilter:
    """The host is in the requested availability zone, if one was requested."""

    name: ClassVar[str] = "availability_zone"
    label: ClassVar[str] = "availability zone"

    def passes(self, host: HostState, request: Request) -> bool:
        return request.availability_zone is None or host.availability_zone == request.availability_zone


class ArchitectureFilter:
    """The host can run guests of the image's architecture."""

    name: ClassVar[str] = "architecture"
    label: ClassVar[str] = "architecture"

    def passes(self, host: HostState, request: Request) -> bool:
        return request.architecture in host.architectures


class InstanceCountFilter:
    """The host runs fewer instances than its limit, if it has one."""

    name: ClassVar[str] = "instance_count"
    label: ClassVar[str] = "instance limit"

    def passes(self, host: HostState, request: Request) -> bool:
        return host.max_instances is None or host.instances < host.max_instances


class VcpuFilter:
    """The instance's vCPUs fit in ``total × cpu ratio − used``."""

    name: ClassVar[str] = "vcpu"
    label: ClassVar[str] = "vCPU"

    def passes(self, host: HostState, request: Request) -> bool:
        return request.vcpus <= host.free().vcpus


class RamFilter:
    """The instance's memory fits in ``total × ram ratio − used``."""

    name: ClassVar[str] = "ram"
    label: ClassVar[str] = "RAM"

    def passes(self, host: HostState, request: Request) -> bool:
        return request.memory_mib <= host.free().memory_mib


class DiskFilter:
    """The instance's root disk fits in ``total × disk ratio − used``."""

    name: ClassVar[str] = "disk"
    label: ClassVar[str] = "disk"

    def passes(self, host: HostState, request: Request) -> bool:
        return request.disk_gib <= host.free().disk_gib


FILTERS: dict[str, type[HostFilter]] = {
    EnabledAliveFilter.name: EnabledAliveFilter,
    ExcludedHostsFilter.name: ExcludedHostsFilter,
    AvailabilityZoneFilter.name: AvailabilityZoneFilter,
    ArchitectureFilter.name: ArchitectureFilter,
    InstanceCountFilter.name: InstanceCountFilter,
    VcpuFilter.name: VcpuFilter,
    RamFilter.name: RamFilter,
    DiskFilter.name: DiskFilter,
}

DEFAULT_FILTERS: tuple[str, ...] = tuple(FILTERS)


def build_filters(names: Sequence[str]) -> tuple[HostFilter, ...]:
    """The filters named, in that order; an unknown or repeated name is a ``ValueError``."""
    unknown = [name for name in names if name not in FILTERS]
    if unknown:
        raise ValueError(f"unknown scheduler filter(s) {unknown}; known: {sorted(FILTERS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"scheduler filters named twice in {list(names)}")
    return tuple(FILTERS[name]() for name in names)
