"""The scheduler's periodic tasks, on a thread of the scheduler service.

Every ``periodic_interval`` seconds:

- record the scheduler's own heartbeat in the ``services`` table;
- place the instances whose RunInstances was answered without a placement
  (no reply from a scheduler in time, an API worker killed midway), once
  ``orphan_timeout`` has passed, or end them terminated with a StateReason;
- look again at builds waiting for their launch volumes for more than
  :data:`LAUNCH_VOLUME_RECHECK` seconds (the volume service's word may be lost):
  they are built, or fail, as :meth:`SchedulerEndpoint.launch_volume` decides;
- give up operations that took longer than ``build_timeout``
  (:func:`ocs.scheduler.lifecycle.give_up`): no instance stays pending forever;
- move what is in flight on hosts that stopped reporting
  (:func:`ocs.scheduler.lifecycle.host_down`, unless ``reschedule_on_host_down``
  is off): builds go to another host, terminations finish, starts fail;
- purge instances terminated more than ``terminated_ttl`` seconds ago, with
  their tags (and their reservation once it is empty), and NAT gateways deleted
  more than an hour ago (EC2 shows them about that long).

Several schedulers may run these at once: every change is a conditional update
(:meth:`SchedulerEndpoint.observe`) or a delete of rows that still qualify.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading

from ocs import __version__
from ocs.db import hosts as db_hosts
from ocs.db import instance_events as db_events
from ocs.db import launch_volumes
from ocs.db import routing as db_routing
from ocs.db.models.compute import Instance
from ocs.scheduler import lifecycle
from ocs.scheduler.rpcapi import LaunchVolume
from ocs.scheduler.service import SchedulerEndpoint, view

LOG = logging.getLogger(__name__)

#: Seconds a build waits for its launch volumes before the periodic task looks again.
LAUNCH_VOLUME_RECHECK = 30.0

#: (state, task) pairs that the build timeout applies to.
TIMED = (
    (lifecycle.PENDING, lifecycle.SCHEDULING),
    (lifecycle.PENDING, lifecycle.SPAWNING),
    (lifecycle.PENDING, lifecycle.STARTING),
    (lifecycle.SHUTTING_DOWN, lifecycle.TERMINATING),
    (lifecycle.RUNNING, lifecycle.REBOOTING),
)


class Periodic:
    """Runs :meth:`run_once` every ``interval`` seconds on a daemon thread."""

    def __init__(self, endpoint: SchedulerEndpoint, interval: float | None = None) -> None:
        self.endpoint = endpoint
        self.interval = interval if interval is not None else endpoint.settings.periodic_interval
        self.started_at = endpoint.now()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="ocs-scheduler-periodic", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                LOG.exception("periodic tasks failed; trying again in %.0f s", self.interval)
            self._stop.wait(self.interval)

    def run_once(self) -> None:
        self.heartbeat()
        if self.endpoint.settings.reschedule_on_host_down:
            self.rescue_from_down_hosts()
        self.place_orphans()
        self.recheck_launch_volumes()
        self.give_up_stuck()
        self.purge()

    def heartbeat(self) -> None:
        ep = self.endpoint
        with ep._tx() as s:
            db_hosts.record_heartbeat(
                s,
                "scheduler",
                ep.settings.host,
                pid=os.getpid(),
                version=__version__,
                started_at=self.started_at,
                now=ep.now(),
            )

    def place_orphans(self) -> int:
        """Place the launches answered without a placement (see
        :meth:`SchedulerEndpoint.place_orphans`); returns how many instances."""
        ep = self.endpoint
        return ep.place_orphans(ep.now() - dt.timedelta(seconds=ep.settings.orphan_timeout))

    def recheck_launch_volumes(self) -> int:
        """Builds waiting for their launch volumes for a while: decide again (a lost
        ``launch_volume`` cast must not leave them waiting until the build timeout)."""
        ep = self.endpoint
        before = ep.now() - dt.timedelta(seconds=LAUNCH_VOLUME_RECHECK)
        with ep._tx() as s:
            waiting = launch_volumes.waiting_launches(s, before)
        for instance_id in waiting:
            ep.launch_volume(LaunchVolume(instance_id=instance_id))
        return len(waiting)

    def give_up_stuck(self) -> int:
        """Fail what took longer than the build timeout; returns how many."""
        ep = self.endpoint
        before = ep.now() - dt.timedelta(seconds=ep.settings.build_timeout)
        with ep._tx() as s:
            rows = db_events.stuck(s, TIMED, before)
            alive = {h.name: h.alive for h in ep.host_states(s)}
        count = 0
        for row in rows:

            def decide(
                inst: Instance | None, host_ok: bool = alive.get(row.host or "", False)
            ) -> lifecycle.Decision:
                if inst is None or inst.updated_at >= before:
                    return lifecycle.NOTHING
                return lifecycle.give_up(view(inst), ep.now(), host_alive=host_ok)

            if not ep.observe(row.id, decide).noop:
                count += 1
        return count

    def rescue_from_down_hosts(self) -> int:
        """Act on the operations in flight on hosts that are down; returns how many."""
        ep = self.endpoint
        max_attempts = ep.settings.max_attempts
        with ep._tx() as s:
            down = {h.name for h in ep.host_states(s) if not h.alive}
            rows = db_events.on_hosts_in(s, down, lifecycle.HOST_DOWN_TASKS)
        count = 0
        for row in rows:

            def decide(inst: Instance | None, host: str | None = row.host) -> lifecycle.Decision:
                if inst is None or inst.host != host:
                    return lifecycle.NOTHING  # moved meanwhile
                return lifecycle.host_down(view(inst), ep.now(), max_attempts=max_attempts)

            decision = ep.observe(row.id, decide)
            if not decision.noop:
                count += 1
        if count:
            LOG.info("moved %d operations off the down hosts %s", count, ", ".join(sorted(down)))
        return count

    def purge(self) -> int:
        """Delete instances terminated longer than the TTL ago; returns how many."""
        ep = self.endpoint
        before = ep.now() - dt.timedelta(seconds=ep.settings.terminated_ttl)
        total = 0
        while True:
            with ep._tx() as s:
                ids = db_events.purge_terminated(s, before)
            total += len(ids)
            if len(ids) < 500:
                break
        if total:
            LOG.info("purged %d instances terminated before %s", total, before.isoformat())
        with ep._tx() as s:
            nats = db_routing.purge_nat_gateways(s, ep.now() - db_routing.NAT_DELETED_VISIBLE)
        if nats:
            LOG.info("purged %d deleted NAT gateways", len(nats))
        return total
