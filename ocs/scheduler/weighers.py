"""Weighers: which of the hosts that passed every filter gets the next instance.

Both weighers score a host by its *free share*: for each resource, the part of
its capacity (``floor(total × ratio)``) still free, averaged over the resources
with their weights (vCPU and RAM count equally by default; disk does not, as it
is often shared storage).  Shares make hosts of different sizes comparable: a
host a quarter used counts as emptier than a bigger host half used.

* ``spread`` prefers the largest free share: load levels out across the fleet
  and a lost host takes few instances with it.
* ``pack`` prefers the smallest free share (the host that still fits but is most
  used): empty hosts stay empty for big instances or for powering down.

The scheduler breaks ties by host name (or by its injected random source).
"""

from __future__ import annotations

from typing import ClassVar

from ocs.scheduler.core import HostState, Request, Weigher

__all__ = ["WEIGHERS", "PackWeigher", "SpreadWeigher", "build_weigher", "free_share"]


def free_share(host: HostState, cpu: float = 1.0, ram: float = 1.0, disk: float = 0.0) -> float:
    """The weighted mean of the free part of each resource, in [0, 1] (below 0 if overcommitted).

    A resource the host has none of counts as not free at all.
    """
    limits, free = host.limits(), host.free()
    pairs = (
        (cpu, free.vcpus, limits.vcpus),
        (ram, free.memory_mib, limits.memory_mib),
        (disk, free.disk_gib, limits.disk_gib),
    )
    total_weight = cpu + ram + disk
    if total_weight <= 0:
        return 0.0
    return sum(w * (f / c if c > 0 else 0.0) for w, f, c in pairs) / total_weight


class SpreadWeigher:
    """The emptiest host first (largest free share)."""

    name: ClassVar[str] = "spread"

    def __init__(self, cpu: float = 1.0, ram: float = 1.0, disk: float = 0.0):
        self.weights = (cpu, ram, disk)

    def weigh(self, host: HostState, request: Request) -> float:
        return free_share(host, *self.weights)


class PackWeigher:
    """The fullest host that still fits first (smallest free share)."""

    name: ClassVar[str] = "pack"

    def __init__(self, cpu: float = 1.0, ram: float = 1.0, disk: float = 0.0):
        self.weights = (cpu, ram, disk)

    def weigh(self, host: HostState, request: Request) -> float:
        return -free_share(host, *self.weights)


WEIGHERS: dict[str, type[Weigher]] = {
    SpreadWeigher.name: SpreadWeigher,
    PackWeigher.name: PackWeigher,
}


def build_weigher(name: str) -> Weigher:
    """The weigher named; an unknown name is a ``ValueError``."""
    if name not in WEIGHERS:
        raise ValueError(f"unknown scheduler weigher {name!r}; known: {sorted(WEIGHERS)}")
    return WEIGHERS[name]()
