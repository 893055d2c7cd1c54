"""Host states kept between decisions, so that one decision costs less than a pass over every host.

:meth:`ocs.scheduler.core.Scheduler.schedule` filters and weighs every host for
every request: over 1,000 hosts that is milliseconds per decision, whatever the
request's size. A :class:`Fleet` holds the host states of one view of the fleet
and, per *shape* of request (its resources, architecture, zone and excluded
hosts: everything the filters and weigher read but the count), a heap of the
hosts that pass every filter, best first. A decision pops the best host,
simulates the instance on it (:meth:`HostState.with_instance`), checks that one
host again and pushes it back; a host changed by :meth:`Fleet.update` is checked
again by each heap before its next decision (its older entries are skipped).

The choices are those ``Scheduler.schedule`` makes on the same states: the same
filters, the same weigher, ties by name (or by the scheduler's random source,
one draw per entry). What the fleet does not do is explain a refusal: when
fewer than ``min_count`` fit, :meth:`Fleet.place` returns what fit and the
caller asks ``Scheduler.schedule`` for the :class:`~ocs.scheduler.core.Report`.

Pure like the core: the states come in as values, nothing is read or written.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from ocs.scheduler.core import HostState, Request, Scheduler

__all__ = ["Fleet"]

#: Request shapes whose heaps a fleet keeps (the least recently used one goes first).
MAX_SHAPES = 32

_Entry = tuple[float, float, str, int]  # (-weight, tie, name, version of the host's state)


@dataclass
class _Heap:
    entries: list[_Entry]
    dirty: set[str] = field(default_factory=set)


class Fleet:
    """The states of a set of hosts and the placements simulated on them.

    ``scheduler`` supplies the filters, the weigher, the default allocation ratios
    and the random source; ``hosts`` must have distinct names.
    """

    def __init__(self, scheduler: Scheduler, hosts: Iterable[HostState]) -> None:
        self.scheduler = scheduler
        self._states: dict[str, HostState] = {}
        self._versions: dict[str, int] = {}
        for host in scheduler.resolve(hosts):
            self._states[host.name] = host
            self._versions[host.name] = 0
        self._heaps: OrderedDict[Request, _Heap] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    def states(self) -> list[HostState]:
        """Every host as the fleet sees it now (simulated placements included)."""
        return list(self._states.values())

    def state(self, name: str) -> HostState:
        return self._states[name]

    def update(self, host: HostState) -> None:
        """Replace (or add) one host's state; every heap checks it again before its next decision."""
        (resolved,) = self.scheduler.resolve([host])
        self._states[host.name] = resolved
        self._versions[host.name] = self._versions.get(host.name, -1) + 1
        for heap in self._heaps.values():
            heap.dirty.add(host.name)

    def place(self, request: Request) -> list[str]:
        """Choose a host for each of up to ``request.count`` instances, best first,
        and simulate them on the fleet's states; fewer when no more fit (possibly
        fewer than ``min_count``: the caller decides what that means)."""
        shape = replace(request, count=1, min_count=1)
        heap = self._heap(shape)
        chosen: list[str] = []
        while len(chosen) < request.count:
            name = self._pop(heap)
            if name is None:
                break
            host = self._states[name].with_instance(request)
            self._states[name] = host
            version = self._versions[name] = self._versions[name] + 1
            for other in self._heaps.values():
                if other is not heap:
                    other.dirty.add(name)
            chosen.append(name)
            self._push(heap, host, shape, version)
        return chosen

    # --- heaps -------------------------------------------------------------------

    def _heap(self, shape: Request) -> _Heap:
        heap = self._heaps.get(shape)
        if heap is None:
            heap = _Heap([])
            for host in self._states.values():
                self._push(heap, host, shape, self._versions[host.name], heapify=False)
            heapq.heapify(heap.entries)
            self._heaps[shape] = heap
            while len(self._heaps) > MAX_SHAPES:
                self._heaps.popitem(last=False)
        else:
            self._heaps.move_to_end(shape)
            for name in heap.dirty:
                self._push(heap, self._states[name], shape, self._versions[name])
            heap.dirty.clear()
        return heap

    def _push(self, heap: _Heap, host: HostState, shape: Request, version: int, heapify: bool = True) -> None:
        sched = self.scheduler
        if sched.first_failure(host, shape) is not None:
            return
        tie = sched.rng.random() if sched.rng is not None else 0.0
        entry = (-sched.weigher.weigh(host, shape), tie, host.name, version)
        if heapify:
            heapq.heappush(heap.entries, entry)
        else:
            heap.entries.append(entry)

    def _pop(self, heap: _Heap) -> str | None:
        """The best current host, or one of the best ``host_subset_size`` at random."""
        entries, versions = heap.entries, self._versions
        best: list[_Entry] = []
        want = self.scheduler.host_subset_size if self.scheduler.rng is not None else 1
        while entries and len(best) < want:
            entry = heapq.heappop(entries)
            if versions.get(entry[2]) == entry[3]:
                best.append(entry)  # stale entries (the host changed since) are dropped
        if not best:
            return None
        pick = (
            best.pop(self.scheduler.rng.randrange(len(best)))
            if len(best) > 1 and self.scheduler.rng
            else best[0]
        )
        for entry in best:
            heapq.heappush(entries, entry)
        return pick[2]
