"""The scheduler's pure core: ``schedule(hosts, request) -> Placement``.

Everything the decision depends on arrives as plain values: the host states (built
by the service from the database and the agents' heartbeats), the request (built
from RunInstances) and the settings given to :class:`Scheduler` at construction.
Nothing here reads configuration, the clock, the database or the bus, so any
decision can be replayed from its inputs.

How a decision is made:

1. Every host goes through the filters in order; the first filter a host fails
   removes it, and the :class:`Report` counts how many hosts each filter removed.
2. The hosts left are ordered by the weigher (higher weight first; ties by host name,
   or by a seeded random source when one is injected).  Instances are placed one at
   a time on the best host; each placement is simulated on that host's state (its
   used resources and instance count grow), the host is checked against the filters
   again and re-weighed, so later instances of the same request see what earlier
   ones consumed.  Only the chosen host changes, so only it is checked again.
3. Fewer than ``min_count`` instances placed: :class:`NoValidHost` (an
   ``InsufficientInstanceCapacity``) carrying the report.  Otherwise a
   :class:`Placement` of between ``min_count`` and ``count`` host names, one per
   instance, as EC2 launches as many instances as fit between MinCount and MaxCount.

Every host is accounted for in the report: it was removed by one filter
(``Report.removed``), or it passed every filter (``Report.passed``); when fewer than
``count`` instances were placed, every host that passed ran out of room for the
later instances, and ``Report.filled`` says which filter turned it away at the end.

Capacity.  A host offers ``floor(total × allocation ratio)`` of each resource
(vCPUs, RAM in MiB, disk in GiB); an instance fits when ``used + requested`` stays
within that for every resource.  The ratios are the scheduler's settings
(:class:`Ratios`, defaults 4.0 for vCPUs, 1.0 for RAM and disk, as nova's initial
ratios) unless a host carries its own (``HostState.ratios``, for a mixed fleet).
Memory or disk the host keeps for itself is the service's business: it leaves it
out of ``total_*`` or counts it in ``used_*``.

What the service does around the core (not here): it claims each instance's
resources in the database with a conditional update (``used + requested <= limit``,
using :meth:`HostState.limits`), one instance at a time in ``Placement.hosts``
order, so several schedulers at once never overcommit a host.  A lost claim means
another scheduler got there first: the service reloads the host states and
schedules the rest with :meth:`Request.remaining`.  A failed build is rescheduled
with :meth:`Request.excluding` (the hosts already tried), up to the configured
number of attempts.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Protocol

from ocs import errors

__all__ = [
    "DEFAULT_RATIOS",
    "FilterCount",
    "HostFilter",
    "HostState",
    "NoValidHost",
    "Placement",
    "Ratios",
    "Report",
    "Request",
    "Resources",
    "Scheduler",
    "Weigher",
    "make_scheduler",
    "schedule",
]


# --- vocabulary -------------------------------------------------------------


@dataclass(frozen=True)
class Ratios:
    """Allocation ratios: how far each resource of a host may be overcommitted."""

    cpu: float = 4.0
    ram: float = 1.0
    disk: float = 1.0

    def __post_init__(self) -> None:
        for name in ("cpu", "ram", "disk"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} allocation ratio must be a positive number, not {value!r}")


DEFAULT_RATIOS = Ratios()


@dataclass(frozen=True)
class Resources:
    """An amount of each schedulable resource."""

    vcpus: int = 0
    memory_mib: int = 0
    disk_gib: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.vcpus + other.vcpus, self.memory_mib + other.memory_mib, self.disk_gib + other.disk_gib
        )

    def __sub__(self, other: Resources) -> Resources:
        return Resources(
            self.vcpus - other.vcpus, self.memory_mib - other.memory_mib, self.disk_gib - other.disk_gib
        )


def _limit(total: int, ratio: float) -> int:
    # Rounded to micro-units first, so that 100 x 0.29 gives 29 and not 28.
    return math.floor(round(total * ratio, 6))


_FREE_MEMO = "_free_memo"  # HostState.free(), remembered in the (immutable) state itself


@lru_cache(maxsize=4096)
def _limits(vcpus: int, memory_mib: int, disk_gib: int, ratios: Ratios) -> Resources:
    """``floor(total × ratio)`` of each resource. Memoized: every filter and weigher asks
    for every host, and a fleet has few distinct (totals, ratios)."""
    return Resources(_limit(vcpus, ratios.cpu), _limit(memory_mib, ratios.ram), _limit(disk_gib, ratios.disk))


@dataclass(frozen=True, kw_only=True)
class HostState:
    """What the scheduler knows of one compute host at the moment of a decision.

    ``alive`` is computed by the caller from the agent's last heartbeat.
    ``architectures`` are the EC2 names of the guest architectures the host can
    run (an x86_64 KVM host may list ``("x86_64", "i386")``).  ``ratios`` of
    ``None`` means the scheduler's own settings.  ``max_instances`` of ``None``
    means no limit on the number of instances.
    """

    name: str
    availability_zone: str
    total_vcpus: int
    total_memory_mib: int
    total_disk_gib: int
    used_vcpus: int = 0
    used_memory_mib: int = 0
    used_disk_gib: int = 0
    instances: int = 0
    max_instances: int | None = None
    enabled: bool = True
    alive: bool = True
    architectures: tuple[str, ...] = ("x86_64",)
    ratios: Ratios | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a host needs a name")
        totals = (self.total_vcpus, self.total_memory_mib, self.total_disk_gib)
        used = (self.used_vcpus, self.used_memory_mib, self.used_disk_gib)
        if min(*totals, *used, self.instances) < 0:
            raise ValueError(f"host {self.name}: resources and counts cannot be negative")

    @property
    def used(self) -> Resources:
        return Resources(self.used_vcpus, self.used_memory_mib, self.used_disk_gib)

    def limits(self, default: Ratios = DEFAULT_RATIOS) -> Resources:
        """``floor(total × ratio)`` of each resource: what may be allocated in all."""
        return _limits(self.total_vcpus, self.total_memory_mib, self.total_disk_gib, self.ratios or default)

    def free(self, default: Ratios = DEFAULT_RATIOS) -> Resources:
        """What may still be allocated (negative when a ratio was lowered below use)."""
        ratios = self.ratios or default
        memo = self.__dict__.get(_FREE_MEMO)  # the state never changes: every filter and the
        if memo is not None and memo[0] == ratios:  # weigher ask, the first computes
            return memo[1]  # type: ignore[no-any-return]
        free = self.limits(default) - self.used
        self.__dict__[_FREE_MEMO] = (ratios, free)
        return free

    def with_instance(self, request: Request) -> HostState:
        """This host after one more instance of ``request`` (the simulated claim)."""
        used = self.used + request.resources
        return replace(
            self,
            used_vcpus=used.vcpus,
            used_memory_mib=used.memory_mib,
            used_disk_gib=used.disk_gib,
            instances=self.instances + 1,
        )


def _with_ratios(host: HostState, ratios: Ratios) -> HostState:
    """``replace(host, ratios=ratios)`` without validating the valid host again (a fifth
    of a decision's time over 1,000 hosts otherwise)."""
    clone = object.__new__(HostState)
    clone.__dict__.update(host.__dict__, ratios=ratios)
    clone.__dict__.pop(_FREE_MEMO, None)
    return clone


@dataclass(frozen=True, kw_only=True)
class Request:
    """What one RunInstances call asks for, per instance and in number.

    ``count`` is MaxCount and ``min_count`` MinCount.  ``architecture`` is the
    image's.  ``availability_zone`` of ``None`` means any zone.  ``excluded_hosts``
    are never chosen (the hosts where a build of this instance already failed).
    """

    vcpus: int
    memory_mib: int
    disk_gib: int = 0
    architecture: str = "x86_64"
    availability_zone: str | None = None
    count: int = 1
    min_count: int = 1
    excluded_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if min(self.vcpus, self.memory_mib, self.disk_gib) < 0:
            raise ValueError("requested resources cannot be negative")
        if not 1 <= self.min_count <= self.count:
            raise ValueError(f"need 1 <= min_count <= count, got {self.min_count} and {self.count}")

    @property
    def resources(self) -> Resources:
        """What one instance consumes."""
        return Resources(self.vcpus, self.memory_mib, self.disk_gib)

    def excluding(self, *hosts: str) -> Request:
        """The same request, never to be placed on ``hosts`` (a reschedule)."""
        return replace(self, excluded_hosts=tuple(sorted({*self.excluded_hosts, *hosts})))

    def remaining(self, placed: int) -> Request:
        """The request for what is left once ``placed`` instances are claimed.

        Used after a lost claim: the rest is scheduled again on fresh host states.
        Once ``min_count`` is reached the rest is best effort (``min_count`` 1), and
        the caller takes a :class:`NoValidHost` for it as "no more room".
        """
        if not 0 <= placed < self.count:
            raise ValueError(f"placed must be within 0..{self.count - 1}, got {placed}")
        return replace(self, count=self.count - placed, min_count=max(1, self.min_count - placed))


class HostFilter(Protocol):
    """A predicate over one host for one instance of a request.

    ``name`` is its key in :data:`ocs.scheduler.filters.FILTERS`; ``label`` names
    it in the explanation of a refusal ("vCPU removed 2").  A filter reads nothing
    but its arguments.
    """

    @property
    def name(self) -> str: ...

    @property
    def label(self) -> str: ...

    def passes(self, host: HostState, request: Request) -> bool: ...


class Weigher(Protocol):
    """Orders hosts that passed every filter: the highest weight is chosen first.

    ``weigh`` sees the host as it is before the instance is placed on it.
    """

    @property
    def name(self) -> str: ...

    def weigh(self, host: HostState, request: Request) -> float: ...


# --- results ----------------------------------------------------------------


@dataclass(frozen=True)
class FilterCount:
    """How many hosts one filter turned away."""

    name: str
    label: str
    hosts: int


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass(frozen=True, kw_only=True)
class Report:
    """Why a request was placed as it was, or refused.

    ``removed`` has one entry per filter, in order: the hosts that filter removed
    (each host is counted by the first filter it failed).  ``passed`` hosts passed
    every filter for the first instance; ``hosts == sum(removed) + passed``.
    ``filled`` counts, per filter, the hosts that passed at first but failed that
    filter once this request's earlier instances were placed on them; when fewer
    than ``requested`` instances were placed, every host that passed is in it.
    """

    hosts: int
    removed: tuple[FilterCount, ...]
    passed: int
    filled: tuple[FilterCount, ...]
    requested: int
    min_count: int
    placed: int

    @property
    def refused(self) -> bool:
        return self.placed < self.min_count

    @property
    def message(self) -> str:
        """The explanation, in words for StateReason and error messages."""
        if self.refused and self.requested == 1:
            head = "No valid host"
        elif self.refused and self.min_count == self.requested:
            head = f"No valid host for {self.requested} instances"
        elif self.refused:
            head = f"No valid host for at least {self.min_count} of {self.requested} instances"
        elif self.placed < self.requested:
            head = f"Room for only {self.placed} of {self.requested} instances"
        else:
            head = f"Placed {_plural(self.placed, 'instance')}"
        parts = [f"{_plural(self.hosts, 'host')}"]
        removed = ", ".join(f"{c.label} removed {c.hosts}" for c in self.removed if c.hosts)
        if removed:
            parts.append(removed)
        if self.passed and self.placed < self.requested:
            filled = ", ".join(f"{c.label} {c.hosts}" for c in self.filled if c.hosts)
            after = _plural(self.placed, "instance")
            parts.append(f"{self.passed} passed every filter but filled up after {after} ({filled})")
        elif self.passed:
            parts.append(f"{self.passed} passed every filter")
        return f"{head}: {'; '.join(parts)}."


@dataclass(frozen=True)
class Placement:
    """The chosen host of each instance, in launch (and claim) order."""

    hosts: tuple[str, ...]
    report: Report


class NoValidHost(errors.InsufficientInstanceCapacity):
    """Fewer than MinCount instances fit; ``report`` says why."""

    def __init__(self, report: Report):
        self.report = report
        super().__init__(f"{errors.InsufficientInstanceCapacity.message} {report.message}")


# --- the decision -----------------------------------------------------------


class Scheduler:
    """Filters and a weigher with their settings, fixed at construction.

    ``ratios`` are the allocation ratios of hosts that carry none.  ``rng``, when
    given, breaks ties between equally weighted hosts at random instead of by name,
    and with ``host_subset_size`` > 1 the host is drawn from the best
    ``host_subset_size`` (so that schedulers running at once collide less on their
    claims).  To replay a decision, pass a ``random.Random`` seeded as it was then.
    """

    def __init__(
        self,
        filters: Sequence[HostFilter],
        weigher: Weigher,
        *,
        ratios: Ratios = DEFAULT_RATIOS,
        rng: random.Random | None = None,
        host_subset_size: int = 1,
    ):
        if host_subset_size < 1:
            raise ValueError("host_subset_size must be at least 1")
        if host_subset_size > 1 and rng is None:
            raise ValueError("host_subset_size above 1 needs a random source (rng)")
        self.filters = tuple(filters)
        self.weigher = weigher
        self.ratios = ratios
        self.rng = rng
        self.host_subset_size = host_subset_size

    def schedule(self, hosts: Iterable[HostState], request: Request) -> Placement:
        """Place ``request.min_count`` to ``request.count`` instances, or refuse.

        Raises :class:`NoValidHost` when fewer than ``min_count`` fit.
        """
        states = self.resolve(hosts)
        passing, removed = self._sieve(states, request)
        chosen, final = self._place(passing, request)
        # Only the hosts that got instances changed; the others still pass every filter.
        _, filled = self._sieve([final[name] for name in dict.fromkeys(chosen)], request)
        report = Report(
            hosts=len(states),
            removed=removed,
            passed=len(passing),
            filled=filled,
            requested=request.count,
            min_count=request.min_count,
            placed=len(chosen),
        )
        if report.refused:
            raise NoValidHost(report)
        return Placement(tuple(chosen), report)

    def resolve(self, hosts: Iterable[HostState]) -> list[HostState]:
        """The hosts sorted by name, each with its effective allocation ratios."""
        states = sorted(hosts, key=lambda h: h.name)
        for before, after in zip(states, states[1:], strict=False):
            if before.name == after.name:
                raise ValueError(f"host {after.name} is given twice")
        return [h if h.ratios is not None else _with_ratios(h, self.ratios) for h in states]

    def first_failure(self, host: HostState, request: Request) -> int | None:
        """The index of the first filter ``host`` fails for one more instance of ``request``, or None."""
        for index, host_filter in enumerate(self.filters):
            if not host_filter.passes(host, request):
                return index
        return None

    def _sieve(
        self, hosts: Iterable[HostState], request: Request
    ) -> tuple[list[HostState], tuple[FilterCount, ...]]:
        """The hosts that pass every filter, and how many hosts each filter removed."""
        removed = [0] * len(self.filters)
        passing: list[HostState] = []
        for host in hosts:
            failed = self.first_failure(host, request)
            if failed is None:
                passing.append(host)
            else:
                removed[failed] += 1
        counts = tuple(FilterCount(f.name, f.label, n) for f, n in zip(self.filters, removed, strict=True))
        return passing, counts

    def _place(self, passing: list[HostState], request: Request) -> tuple[list[str], dict[str, HostState]]:
        """Place instances one at a time; returns the choices and the final host states by name."""
        state = {host.name: host for host in passing}
        ties = {host.name: self.rng.random() if self.rng is not None else 0.0 for host in passing}

        def entry(host: HostState) -> tuple[float, float, str]:
            return (-self.weigher.weigh(host, request), ties[host.name], host.name)

        heap = [entry(host) for host in passing]
        heapq.heapify(heap)
        chosen: list[str] = []
        while heap and len(chosen) < request.count:
            name = self._pop(heap)
            host = state[name] = state[name].with_instance(request)
            chosen.append(name)
            if self.first_failure(host, request) is None:
                heapq.heappush(heap, entry(host))
        return chosen, state

    def _pop(self, heap: list[tuple[float, float, str]]) -> str:
        """Take the best host, or one of the best ``host_subset_size`` at random."""
        if self.rng is None or self.host_subset_size == 1:
            return heapq.heappop(heap)[2]
        best = [heapq.heappop(heap) for _ in range(min(self.host_subset_size, len(heap)))]
        pick = best.pop(self.rng.randrange(len(best)))
        for item in best:
            heapq.heappush(heap, item)
        return pick[2]


def make_scheduler(
    weigher: str = "spread",
    *,
    filters: Sequence[str] | None = None,
    cpu_allocation_ratio: float = DEFAULT_RATIOS.cpu,
    ram_allocation_ratio: float = DEFAULT_RATIOS.ram,
    disk_allocation_ratio: float = DEFAULT_RATIOS.disk,
    rng: random.Random | None = None,
    host_subset_size: int = 1,
) -> Scheduler:
    """The scheduler the service runs, from plain settings (names, not classes).

    ``weigher`` is a key of :data:`ocs.scheduler.weighers.WEIGHERS`, ``filters``
    keys of :data:`ocs.scheduler.filters.FILTERS` in the order they run (default
    :data:`ocs.scheduler.filters.DEFAULT_FILTERS`).  Unknown names: ``ValueError``.
    """
    # Imported here: filters and weighers are written in this module's vocabulary.
    from ocs.scheduler import filters as filters_mod
    from ocs.scheduler import weighers as weighers_mod

    return Scheduler(
        filters_mod.build_filters(filters if filters is not None else filters_mod.DEFAULT_FILTERS),
        weighers_mod.build_weigher(weigher),
        ratios=Ratios(cpu_allocation_ratio, ram_allocation_ratio, disk_allocation_ratio),
        rng=rng,
        host_subset_size=host_subset_size,
    )


def schedule(hosts: Iterable[HostState], request: Request) -> Placement:
    """Schedule with the default filters, the spread weigher and default ratios."""
    return make_scheduler().schedule(hosts, request)
