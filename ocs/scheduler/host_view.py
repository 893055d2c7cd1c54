"""The scheduler service's view of the hosts, shared by its decisions for a bounded time.

Reading every host from the database for every decision costs more than the
decision itself (1,000 rows per single-instance request). A :class:`HostView`
keeps the states it last read in a :class:`~ocs.scheduler.fleet.Fleet` and
places requests on it; the placements it makes are simulated on the fleet at
once, so the decisions that follow (in this thread or another of the same
process) see them before the database says so.

How stale it may be, and why that is safe:

- The states are read again when they are ``ttl`` seconds old, and at once
  after :meth:`invalidate` (the service calls it when a claim is lost, a
  request is refused or abandoned). A change made elsewhere (a host disabled,
  enabled, resized, added, gone silent; another scheduler's claims; instances
  terminated) is therefore seen by every decision that starts more than
  ``ttl`` seconds after it was committed. ``ttl`` 0 reads the hosts for every
  decision.
- Nothing a stale view chooses can overcommit or misplace: every claim is a
  conditional update on the host's current row (enabled, heartbeat recent,
  capacity the same as the one the limits were computed from, room left). A
  claim the view got wrong is lost, the view is invalidated, and the lost
  instances are scheduled again on fresh states.
- A refusal (fewer than ``min_count`` fit) is never decided on a cached view:
  the caller reads the hosts again and asks the core, which explains it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ocs.scheduler.core import HostState, Request, Scheduler
from ocs.scheduler.fleet import Fleet

__all__ = ["HostView"]


class HostView:
    """Host states read by ``load`` (at most ``ttl`` seconds ago) and placements made on them.

    Thread-safe: the service's worker threads share one view.
    """

    def __init__(
        self,
        load: Callable[[], list[HostState]],
        scheduler: Scheduler,
        ttl: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._scheduler = scheduler
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._fleet: Fleet | None = None
        self._read_at = 0.0
        self.loads = 0  # how many times the hosts were read (for tests and benchmarks)

    def invalidate(self) -> None:
        """Forget the states: the next decision reads the hosts again."""
        with self._lock:
            self._fleet = None

    def place(self, request: Request) -> tuple[list[str], dict[str, HostState]]:
        """Hosts for up to ``request.count`` instances (the best first, simulated on
        the view) and the state of each chosen host (its totals give the claim's limits)."""
        with self._lock:
            fleet = self._current()
            chosen = fleet.place(request)
            return chosen, {name: fleet.state(name) for name in chosen}

    def _current(self) -> Fleet:
        now = self._clock()
        if self._fleet is None or now - self._read_at >= self.ttl:
            self._fleet = Fleet(self._scheduler, self._load())
            self._read_at = now
            self.loads += 1
        return self._fleet
