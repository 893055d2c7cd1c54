"""The scheduler service: places instances and records what the agents observe.

:class:`SchedulerEndpoint` serves :class:`~ocs.scheduler.rpcapi.SchedulerApi`:

- ``schedule_instances`` (a call from RunInstances): builds the
  :class:`~ocs.scheduler.core.Request` from the instances and the host states
  from the ``hosts`` table, runs the pure core, claims each host's share in
  the database (one conditional update per host: several schedulers at once
  never overcommit; a lost claim reloads the hosts and schedules the rest),
  places the instances (task ``spawning``), commits, and only then casts
  ``ComputeApi.spawn`` to each host. Instances that do not fit are deleted; if
  fewer than ``min_count`` fit, all of them and their reservation are, and
  :class:`~ocs.scheduler.core.NoValidHost` goes back to the caller (EC2's
  ``InsufficientInstanceCapacity``, with the explanation). An instance whose
  launch volumes (:mod:`ocs.db.launch_volumes`) are not made yet is placed but
  not built: ``launch_volume`` (a cast from the volume service once one is made)
  builds it when all are, or fails the launch when one could not be made.
- ``instance_event`` and ``host_report`` (casts from the agents): the rules of
  :mod:`ocs.scheduler.lifecycle`, applied with conditional updates and retried
  on conflict, so that every handler is idempotent (at-least-once delivery)
  and safe with several schedulers consuming one queue. A handler the database
  picks as a deadlock victim runs again (:func:`ocs.db.engine.retry_on_deadlock`,
  as the API's requests do); one that fails because the database is unreachable
  is run again by the server until the database is back, its message held
  unacknowledged (never dropped: an instance event lost leaves an instance stale).

The periodic tasks (build timeouts, purging, the scheduler's own heartbeat)
live in :mod:`ocs.scheduler.periodic`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import random
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from sqlalchemy import Row, select
from sqlalchemy.orm import Session, sessionmaker

from ocs.bus import Bus, RpcServer
from ocs.compute_agent.driver import GuestSpec, ImageRef, NicSpec, VolumeAttachment
from ocs.compute_agent.rpcapi import ComputeApi, GuestAction, Spawn
from ocs.db import engine as db_engine
from ocs.db import hosts as db_hosts
from ocs.db import instance_events as db_events
from ocs.db import interfaces as db_interfaces
from ocs.db import launch_volumes
from ocs.db import volume_attachments as db_attachments
from ocs.db.models.base import utcnow
from ocs.db.models.compute import Host, Instance
from ocs.db.models.images import Image
from ocs.db.models.interfaces import NetworkInterface
from ocs.db.models.keypairs import KeyPair
from ocs.scheduler import lifecycle
from ocs.scheduler.combiner import Combiner
from ocs.scheduler.core import (
    DEFAULT_RATIOS,
    HostState,
    NoValidHost,
    Ratios,
    Request,
    make_scheduler,
)
from ocs.scheduler.host_view import HostView
from ocs.scheduler.rpcapi import (
    HostReport,
    InstanceEvent,
    LaunchVolume,
    ScheduleInstances,
    SchedulerApi,
    ScheduleResult,
    VolumeEvent,
)
from ocs.service import StatusEndpoint

LOG = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Rounds of "schedule, claim" after lost claims before giving up on the rest.
MAX_ROUNDS = 5
#: Attempts at one conditional update before an observation is dropped (logged).
MAX_CONFLICTS = 8


@dataclass(frozen=True)
class SchedulerSettings:
    """The scheduler service's settings, read from configuration at the edge.

    ``reconcile_grace``: a heartbeat does not judge an instance changed less
    than this many seconds ago (the heartbeat may predate the change).
    ``reschedule_on_host_down``: the periodic tasks move builds, starts and
    terminations off hosts silent for ``service_down_time``
    (:func:`ocs.scheduler.lifecycle.host_down`).
    ``orphan_timeout``: the periodic tasks place instances left pending without a
    host this many seconds after their launch (:meth:`SchedulerEndpoint.place_orphans`).
    ``host_view_ttl``: seconds the host states read for one decision serve the next
    ones (:mod:`ocs.scheduler.host_view`; 0 reads them for every decision).
    ``batch_size``: at most this many ``schedule_instances`` calls arriving together
    are decided in one batch (:mod:`ocs.scheduler.combiner`; 1 decides each alone).
    """

    host: str = "scheduler"
    weigher: str = "spread"
    ratios: Ratios = DEFAULT_RATIOS
    host_subset_size: int = 1
    max_attempts: int = 3
    service_down_time: float = 60.0
    build_timeout: float = 600.0
    terminated_ttl: float = 3600.0
    periodic_interval: float = 10.0
    reconcile_grace: float = 2.0
    reschedule_on_host_down: bool = True
    orphan_timeout: float = 60.0
    filters: tuple[str, ...] | None = None
    host_view_ttl: float = 1.0
    batch_size: int = 32


@dataclass
class _Batch:
    """One schedule_instances call in progress."""

    request: Request
    todo: list[Instance]
    placed: dict[str, list[str]] = field(default_factory=dict)  # host -> instance ids
    spawns: dict[str, Spawn] = field(default_factory=dict)  # instance id -> its spawn, built in its claim
    waiting: set[str] = field(default_factory=set)  # placed, their launch volumes not made yet
    keys: dict[tuple[str, str], str] = field(default_factory=dict)  # public keys read so far

    @property
    def placed_count(self) -> int:
        return sum(len(v) for v in self.placed.values())


def view(inst: Instance) -> lifecycle.InstanceView:
    return lifecycle.InstanceView(
        id=inst.id,
        state=inst.state,
        task=inst.task,
        host=inst.host,
        hosts_tried=tuple(inst.hosts_tried or ()),
        shutdown_behavior=inst.shutdown_behavior,
        power_state=inst.power_state,
    )


def host_state(host: Host | Row[Any], now: dt.datetime, down_after: float) -> HostState:
    return HostState(
        name=host.name,
        availability_zone=host.availability_zone,
        total_vcpus=host.vcpus,
        total_memory_mib=host.memory_mib,
        total_disk_gib=host.disk_gib,
        used_vcpus=host.vcpus_used,
        used_memory_mib=host.memory_mib_used,
        used_disk_gib=host.disk_gib_used,
        instances=host.instance_count,
        enabled=host.enabled,
        alive=db_hosts.is_alive(host, now, down_after),
        architectures=db_hosts.architectures_of(host) or ("x86_64",),
    )


def request_for(inst: Instance, count: int = 1, min_count: int = 1, excluded: Sequence[str] = ()) -> Request:
    return Request(
        vcpus=inst.vcpus,
        memory_mib=inst.memory_mib,
        disk_gib=inst.disk_gib,
        architecture=inst.architecture,
        availability_zone=inst.availability_zone or None,
        count=count,
        min_count=min_count,
        excluded_hosts=tuple(sorted(set(excluded))),
    )


def fallback_mac(instance_id: str) -> str:
    """A stable locally administered MAC for an instance that has none recorded."""
    digest = hashlib.sha256(instance_id.encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])


def image_ref(image: Image | None, image_id: str) -> ImageRef:
    if image is None:
        return ImageRef(image_id=image_id, location="")
    fmt = image.disk_format or {"kernel": "aki", "ramdisk": "ari"}.get(image.image_type, "raw")
    return ImageRef(
        image_id=image.id,
        location=image.location or "",
        disk_format=fmt,
        checksum=f"sha256:{image.checksum}" if image.checksum else "",
        size=image.size or 0,
    )


def hostname_of(inst: Instance) -> str:
    """EC2's private DNS host name: ``ip-10-0-0-5`` (the instance ID without an address)."""
    if inst.private_ip_address and "." in inst.private_ip_address:
        return "ip-" + inst.private_ip_address.replace(".", "-")
    return inst.id


def public_key(s: Session, inst: Instance, known: dict[tuple[str, str], str] | None = None) -> str:
    """The OpenSSH public key of the instance's key pair ("" if none or deleted since)."""
    if not inst.key_name:
        return ""
    which = (inst.account_id, inst.key_name)
    if known is not None and which in known:
        return known[which]
    key = s.scalar(select(KeyPair).where(KeyPair.account_id == which[0], KeyPair.name == which[1]))
    found = key.public_key if key is not None else ""
    if known is not None:
        known[which] = found
    return found


def nic_specs(
    s: Session, inst: Instance, enis: Sequence[NetworkInterface] | None = None
) -> tuple[NicSpec, ...]:
    """One NIC per interface attached to ``inst``, by device index (the primary first);
    an instance without interface rows gets its primary from its own columns.
    ``enis``: the instance's interfaces already read (else they are read here)."""
    if enis is None:
        enis = db_interfaces.interfaces_of_instances(s, [inst.id])[inst.id]
    rows = [eni for eni in enis if eni.attach_status == "attached"]
    if not rows:
        return (
            NicSpec(
                mac=inst.mac_address or fallback_mac(inst.id),
                bridge="",
                ip=inst.private_ip_address or "",
                interface_id=inst.network_interface_id or "",
                network_id=inst.subnet_id or "",
            ),
        )
    return tuple(
        NicSpec(
            mac=eni.mac_address,
            bridge="",
            ip=eni.private_ip_address,
            interface_id=eni.id,
            network_id=eni.subnet_id,
            device_index=eni.device_index or 0,
        )
        for eni in rows
    )


def volume_specs(s: Session, inst: Instance) -> tuple[VolumeAttachment | None, tuple[VolumeAttachment, ...]]:
    """The EBS volumes the instance's guest has (all but those being detached), with
    the exports the volume service recorded: its root volume (None: it has a root
    disk of its own), and the others."""
    return _volume_specs(db_attachments.for_guest(s, inst.id), inst.root_device_name)


def _volume_specs(
    rows: Sequence[tuple[Any, Any]], root_device: str
) -> tuple[VolumeAttachment | None, tuple[VolumeAttachment, ...]]:
    root, others = None, []
    for att, vol in rows:
        spec = VolumeAttachment.of_export(vol.id, att.device, vol.export)
        if att.device == root_device:
            root = spec
        else:
            others.append(spec)
    return root, tuple(others)


def guest_spec(s: Session, inst: Instance, keys: dict[tuple[str, str], str] | None = None) -> GuestSpec:
    """Everything the agent needs to build ``inst``, from the instance and its image
    (``keys`` caches public keys across the instances of one launch)."""
    return guest_specs(s, [inst], keys)[inst.id]


def guest_specs(
    s: Session, insts: Sequence[Instance], keys: dict[tuple[str, str], str] | None = None
) -> dict[str, GuestSpec]:
    """:func:`guest_spec` of each instance, read together: one query for their images,
    one for their interfaces, one for their volumes (and one per key pair), however many."""
    ids = [i.id for i in insts]
    wanted = {x for i in insts for x in (i.image_id, i.kernel_id, i.ramdisk_id) if x}
    images = (
        {im.id: im for im in s.scalars(select(Image).where(Image.id.in_(sorted(wanted))))} if wanted else {}
    )
    enis = db_interfaces.interfaces_of_instances(s, ids)
    volumes = db_attachments.for_guests(s, ids)
    keys = {} if keys is None else keys
    out: dict[str, GuestSpec] = {}
    for inst in insts:
        kernel = images.get(inst.kernel_id) if inst.kernel_id else None
        ramdisk = images.get(inst.ramdisk_id) if inst.ramdisk_id else None
        root_volume, others = _volume_specs(volumes.get(inst.id, []), inst.root_device_name)
        out[inst.id] = GuestSpec(
            instance_id=inst.id,
            vcpus=inst.vcpus,
            memory_mib=inst.memory_mib,
            disk_gib=inst.disk_gib,
            image=image_ref(images.get(inst.image_id), inst.image_id),
            hostname=hostname_of(inst),
            architecture=inst.architecture,
            kernel=image_ref(kernel, inst.kernel_id) if inst.kernel_id else None,
            ramdisk=image_ref(ramdisk, inst.ramdisk_id) if inst.ramdisk_id else None,
            user_data=inst.user_data or "",
            key_name=inst.key_name or "",
            public_key=public_key(s, inst, keys),
            nics=nic_specs(s, inst, enis.get(inst.id, [])),
            volumes=others,
            root_volume=root_volume,
            metadata={"account_id": inst.account_id, "reservation_id": inst.reservation_id},
        )
    return out


@dataclass
class _Job:
    """One launch of a batch decided together (:meth:`SchedulerEndpoint._schedule_many`)."""

    index: int  # its place in the batch
    insts: list[Instance]  # its instances, in launch order
    already: list[str]  # those placed before this call
    batch: _Batch
    chosen: list[tuple[Instance, str]]  # the host the view chose for each
    states: dict[str, HostState]  # the chosen hosts as the view saw them


class _Fallback(Exception):
    """Nothing of the batch was written: decide each launch alone."""


def _unplaced(inst: Instance) -> bool:
    return inst.state == lifecycle.PENDING and inst.task == lifecycle.SCHEDULING and inst.host is None


def _rest_request(batch: _Batch, lost: list[Instance]) -> Request:
    """The request for the instances of ``batch`` whose claims were lost."""
    placed, base = batch.placed_count, batch.request
    need = max(1, min(len(lost), base.min_count - placed))
    if placed + len(lost) < base.min_count:
        need = len(lost)  # cannot reach min_count unless every lost one fits
    return replace(base, count=len(lost), min_count=need)


def _all_spawns(jobs: list[_Job]) -> dict[str, Spawn]:
    return {iid: spawn for job in jobs for iid, spawn in job.batch.spawns.items()}


class _Conflict(Exception):
    """Someone changed the instance since it was read: read and decide again."""


@dataclass(frozen=True)
class _Outbox:
    """Casts to send once the transaction that decided them has committed."""

    spawn: Spawn | None = None
    destroy_on: str | None = None
    stop_on: str | None = None


class SchedulerEndpoint(StatusEndpoint):
    """Serves the scheduler's bus operations on a database."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        compute: ComputeApi,
        settings: SchedulerSettings | None = None,
        *,
        now: Callable[[], dt.datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings = settings or SchedulerSettings()
        super().__init__("scheduler", settings.host)
        self.sessions = sessions
        self.compute = compute
        self.now = now
        if settings.host_subset_size > 1 and rng is None:
            rng = random.Random()
        self.scheduler = make_scheduler(
            settings.weigher,
            filters=settings.filters,
            cpu_allocation_ratio=settings.ratios.cpu,
            ram_allocation_ratio=settings.ratios.ram,
            disk_allocation_ratio=settings.ratios.disk,
            rng=rng,
            host_subset_size=settings.host_subset_size,
        )
        self.view = HostView(self._read_hosts, self.scheduler, settings.host_view_ttl)
        self.combiner: Combiner[ScheduleInstances, ScheduleResult] = Combiner(
            self._schedule_batch, max_batch=settings.batch_size
        )

    def _tx(self) -> AbstractContextManager[Session]:
        return db_engine.transaction(self.sessions)

    def _in_tx(self, work: Callable[[Session], _T], what: str) -> _T:
        """``work(session)`` in a transaction of its own, run again whole when the
        database picks it as a deadlock victim (it rolled back: nothing was done)."""

        def once() -> _T:
            with self._tx() as s:
                return work(s)

        return db_engine.retry_on_deadlock(once, what=what)

    # --- hosts -----------------------------------------------------------------

    def host_states(self, s: Session) -> list[HostState]:
        now = self.now()
        return [host_state(h, now, self.settings.service_down_time) for h in db_hosts.list_hosts(s)]

    def _read_hosts(self) -> list[HostState]:
        now, down_after = self.now(), self.settings.service_down_time
        with self._tx() as s:
            return [host_state(row, now, down_after) for row in db_hosts.host_rows(s)]

    def _limits(self, state: HostState) -> db_hosts.Amount:
        lim = state.limits(self.scheduler.ratios)
        return db_hosts.Amount(lim.vcpus, lim.memory_mib, lim.disk_gib)

    def _alive_since(self) -> dt.datetime:
        return self.now() - dt.timedelta(seconds=self.settings.service_down_time)

    def _cast(self, op: Callable[[Any], object], message: object) -> None:
        """Send a cast after commit; a failure is logged (the periodic tasks and
        heartbeats repair what a lost message leaves behind)."""
        try:
            op(message)
        except Exception:
            LOG.exception("could not send %r", message)

    def _send(self, instance_id: str, out: _Outbox) -> None:
        if out.spawn is not None:
            self._cast(self.compute.spawn, out.spawn)
        if out.destroy_on:
            self._cast(self.compute.destroy, GuestAction(host=out.destroy_on, instance_id=instance_id))
        if out.stop_on:
            self._cast(self.compute.stop, GuestAction(host=out.stop_on, instance_id=instance_id, force=True))

    # --- schedule_instances ------------------------------------------------------

    def schedule_instances(self, req: ScheduleInstances) -> ScheduleResult:
        """Place the launch's instances; calls that arrive together (from the bus
        server's worker threads) are decided in one batch (:meth:`_schedule_batch`)."""
        return self.combiner.call(req)

    def _schedule_batch(self, reqs: list[ScheduleInstances]) -> list[ScheduleResult | BaseException]:
        if len(reqs) == 1:
            return [self._outcome(self._schedule_one, reqs[0])]
        try:
            return self._schedule_many(reqs)
        except _Fallback:
            return [self._outcome(self._schedule_one, req) for req in reqs]

    @staticmethod
    def _outcome(work: Callable[[ScheduleInstances], ScheduleResult], req: ScheduleInstances) -> Any:
        try:
            return work(req)
        except Exception as exc:  # noqa: BLE001 (raised again in the caller's thread)
            return exc

    def _schedule_one(self, req: ScheduleInstances) -> ScheduleResult:
        with self._tx() as s:
            insts = db_events.load_instances(s, req.instance_ids)
        already = [i.id for i in insts if i.host is not None and i.state != lifecycle.TERMINATED]
        todo = [
            i
            for i in insts
            if i.state == lifecycle.PENDING and i.task == lifecycle.SCHEDULING and i.host is None
        ]
        if not todo:
            return ScheduleResult(placed=already)
        wanted = max(1, min(len(todo), req.min_count - len(already)))
        batch = _Batch(request_for(todo[0], count=len(todo), min_count=wanted), todo)
        try:
            self._place(batch)
        except NoValidHost:
            self._abandon(batch)
            raise
        placed = {iid for ids in batch.placed.values() for iid in ids}
        leftover = [i.id for i in todo if i.id not in placed]
        if leftover:
            self._in_tx(lambda s: db_events.delete_unplaced(s, leftover), "deleting the unplaced")
        self._spawn_all(batch)
        return ScheduleResult(placed=[i.id for i in insts if i.id in placed or i.id in already])

    def _schedule_many(self, reqs: list[ScheduleInstances]) -> list[ScheduleResult | BaseException]:
        """Several launches decided together: their instances read in one transaction,
        placed on the host view, every host's share claimed in one transaction (hosts in
        name order, so that two schedulers claiming at once never deadlock), their spawns
        built there and checked in one more. The same guarantees as one launch alone:
        each claim a conditional update, a lost claim scheduled again, a launch of which
        fewer than ``min_count`` fit abandoned (its caller gets NoValidHost, the others
        are not affected). Raises :class:`_Fallback` when nothing was written and each
        launch must be decided alone."""
        with self._tx() as s:
            insts = db_events.load_instances(s, [i for req in reqs for i in req.instance_ids])
        by_id = {i.id: i for i in insts}
        out: list[ScheduleResult | BaseException | None] = [None] * len(reqs)
        jobs: list[_Job] = []
        alone: list[int] = []  # launches that do not all fit on the view: decided alone, after
        for n, req in enumerate(reqs):
            mine = [by_id[i] for i in dict.fromkeys(req.instance_ids) if i in by_id]
            mine.sort(key=lambda i: (i.reservation_id, i.launch_index, i.id))
            already = [i.id for i in mine if i.host is not None and i.state != lifecycle.TERMINATED]
            todo = [i for i in mine if _unplaced(i)]
            if not todo:
                out[n] = ScheduleResult(placed=already)
                continue
            wanted = max(1, min(len(todo), req.min_count - len(already)))
            batch = _Batch(request_for(todo[0], count=len(todo), min_count=wanted), todo)
            chosen, states = self.view.place(batch.request)
            if len(chosen) < len(todo):
                alone.append(n)
                continue
            jobs.append(_Job(n, mine, already, batch, list(zip(todo, chosen, strict=True)), states))
        if alone:
            self.view.invalidate()  # it holds the simulated part of those launches
        try:
            got = self._claims(jobs, f"claims of {len(jobs)} launches") if jobs else {}
        except Exception:
            self.view.invalidate()
            LOG.exception("deciding %d launches together failed: deciding each alone", len(reqs))
            raise _Fallback() from None
        for job in jobs:
            out[job.index] = self._finish_job(job, got)
        waiting = {iid for job in jobs for iid in job.batch.waiting}
        self._spawn_all(
            _Batch(jobs[0].batch.request, [], spawns=_all_spawns(jobs), waiting=waiting) if jobs else None
        )
        for n in alone:
            out[n] = self._outcome(self._schedule_one, reqs[n])
        return [o if o is not None else RuntimeError("not decided") for o in out]

    def _claim_jobs(
        self, s: Session, jobs: list[_Job]
    ) -> tuple[dict[tuple[int, str], list[str]], dict[int, dict[str, Spawn]], set[str]]:
        """Claim each launch's share of each host (in host order: two schedulers claiming
        at once lock hosts in the same order, so neither waits for the other in a cycle)
        and build the spawns of the instances placed; ``{(launch index, host): instance
        ids placed}``, ``{launch index: {instance id: spawn}}`` and the instances placed
        whose launch volumes are not made yet (no spawn: see :meth:`launch_volume`)."""
        shares: list[tuple[str, int, _Job, list[Instance]]] = []
        for job in jobs:
            groups: dict[str, list[Instance]] = {}
            for inst, host in job.chosen:
                groups.setdefault(host, []).append(inst)
            shares += [(host, job.index, job, group) for host, group in groups.items()]
        shares.sort(key=lambda share: (share[0], share[1]))
        got: dict[tuple[int, str], list[str]] = {}
        placed: list[tuple[_Job, str, Instance]] = []
        for host, index, job, group in shares:
            state = job.states[host]
            totals = db_hosts.Amount(state.total_vcpus, state.total_memory_mib, state.total_disk_gib)
            each = db_events.amount(job.batch.todo[0])
            got[(index, host)] = taken = self._claim_group(s, host, group, each, self._limits(state), totals)
            ids = set(taken)
            placed += [(job, host, inst) for inst in group if inst.id in ids]
        keys = jobs[0].batch.keys if len(jobs) == 1 else {}
        waiting = launch_volumes.waiting_among(s, [inst.id for _, _, inst in placed])
        ready = [(job, host, inst) for job, host, inst in placed if inst.id not in waiting]
        specs = guest_specs(s, [inst for _, _, inst in ready], keys)
        spawns: dict[int, dict[str, Spawn]] = {}
        for job, host, inst in ready:
            spawn = Spawn(host=host, spec=specs[inst.id], attempt=attempt_of(inst))
            spawns.setdefault(job.index, {})[inst.id] = spawn
        return got, spawns, waiting

    def _finish_job(self, job: _Job, got: dict[tuple[int, str], list[str]]) -> ScheduleResult | BaseException:
        """After the claims committed: schedule again what lost its claim, as one launch
        alone does; abandon the launch if fewer than min_count fit; delete the rest."""
        batch, lost = job.batch, []
        for inst, host in job.chosen:
            if inst.id in got.get((job.index, host), ()):
                if inst.id not in batch.placed.get(host, []):
                    batch.placed.setdefault(host, []).append(inst.id)
            else:
                lost.append(inst)
        lost = [i for i in lost if self._still_unplaced(i.id)]
        try:
            if lost:
                self.view.invalidate()
                LOG.info("lost %d claims to another scheduler; scheduling them again", len(lost))
                self._place(batch, lost, _rest_request(batch, lost))
        except NoValidHost as exc:
            self._abandon(batch)
            return exc
        except Exception as exc:  # noqa: BLE001 (raised again in the caller's thread)
            return exc
        placed = {iid for ids in batch.placed.values() for iid in ids}
        leftover = [i.id for i in batch.todo if i.id not in placed]
        if leftover:
            self._in_tx(lambda s: db_events.delete_unplaced(s, leftover), "deleting the unplaced")
        return ScheduleResult(placed=[i.id for i in job.insts if i.id in placed or i.id in job.already])

    def _place(
        self, batch: _Batch, remaining: list[Instance] | None = None, request: Request | None = None
    ) -> None:
        """Schedule and claim until everything that fits is placed (``remaining``: the
        instances still to place, with ``request`` for them; by default the whole batch).

        Raises NoValidHost (the claims made are still held: see
        :meth:`_abandon`) when fewer than ``min_count`` instances were placed.
        """
        base = batch.request
        remaining = list(batch.todo) if remaining is None else remaining
        request = request or base
        report = None
        for _ in range(MAX_ROUNDS):
            chosen, states = self.view.place(request)
            if len(chosen) < request.count:
                # Not everything fits in the view: decide on fresh states, with the core
                # (which explains a refusal), rather than refuse on a view that may be stale.
                self.view.invalidate()
                states = {h.name: h for h in self._read_hosts()}
                try:
                    placement = self.scheduler.schedule(states.values(), request)
                except NoValidHost:
                    if batch.placed_count >= base.min_count:
                        return
                    raise
                report, chosen = placement.report, list(placement.hosts)
            lost = self._claim_round(batch, list(zip(remaining, chosen, strict=False)), states)
            if not lost:
                return
            self.view.invalidate()
            placed = batch.placed_count
            need = max(1, min(len(lost), base.min_count - placed))
            if placed + len(lost) < base.min_count:
                need = len(lost)  # cannot reach min_count unless every lost one fits
            request = replace(request, count=len(lost), min_count=need)
            remaining = lost
            LOG.info("lost %d claims to another scheduler; scheduling them again", len(lost))
        if batch.placed_count < base.min_count:
            if report is None:
                states = {h.name: h for h in self._read_hosts()}
                try:
                    report = self.scheduler.schedule(states.values(), request).report
                except NoValidHost as exc:
                    report = exc.report
            raise NoValidHost(replace(report, placed=batch.placed_count, min_count=base.min_count))

    def _claim_round(
        self, batch: _Batch, chosen: list[tuple[Instance, str]], states: dict[str, HostState]
    ) -> list[Instance]:
        """Claim and place each host's share, every host in one transaction; returns the
        instances whose claim was lost."""
        job = _Job(0, [], [], batch, chosen, states)
        got = self._claims([job], f"claims of {len(chosen)} instances")
        lost = []
        for inst, host in chosen:
            if inst.id in got.get((0, host), ()):
                batch.placed.setdefault(host, []).append(inst.id)
            else:
                lost.append(inst)
        return [i for i in lost if self._still_unplaced(i.id)]

    def _claims(self, jobs: list[_Job], what: str) -> dict[tuple[int, str], list[str]]:
        """:meth:`_claim_jobs` in a transaction of its own (run again whole after a
        deadlock); the spawns built go to each job's batch once it has committed."""
        got, spawns, waiting = self._in_tx(lambda s: self._claim_jobs(s, jobs), what)
        for job in jobs:
            job.batch.spawns.update(spawns.get(job.index, {}))
            job.batch.waiting.update(i for ids in got.values() for i in ids if i in waiting)
        return got

    def _claim_group(
        self,
        s: Session,
        host: str,
        group: list[Instance],
        each: db_hosts.Amount,
        limits: db_hosts.Amount,
        totals: db_hosts.Amount,
    ) -> list[str]:
        alive = self._alive_since()
        n = len(group)
        if not db_hosts.claim(s, host, each, limits, count=n, alive_since=alive, totals=totals):
            n = 0  # another scheduler claimed meanwhile: take what still fits, one at a time
            while n < len(group) and db_hosts.claim(s, host, each, limits, alive_since=alive, totals=totals):
                n += 1
        got = db_events.assign(s, [i.id for i in group[:n]], host, task=lifecycle.SPAWNING)
        db_hosts.release(s, host, each, count=n - len(got))  # instances deleted meanwhile
        return got

    def _still_unplaced(self, instance_id: str) -> bool:
        with self._tx() as s:
            row = db_events.get_instance(s, instance_id)
            return row is not None and row.host is None and row.state == lifecycle.PENDING

    def _abandon(self, batch: _Batch) -> None:
        """Fewer than min_count fit: undo the claims, delete the instances and
        their reservation (nothing was sent to any agent yet)."""
        self.view.invalidate()  # its simulated placements of this batch never happen
        each = db_events.amount(batch.todo[0])

        def undo(s: Session) -> None:
            for host, ids in batch.placed.items():
                removed = db_events.unassign(s, ids, host, lifecycle.SPAWNING)
                db_hosts.release(s, host, each, count=removed)
            db_events.delete_unplaced(
                s, [i.id for i in batch.todo], reservation_id=batch.todo[0].reservation_id
            )

        self._in_tx(undo, "abandoning a launch")
        batch.placed.clear()
        batch.spawns.clear()

    def _spawn_all(self, batch: _Batch | None) -> None:
        """Cast the spawns built with the claims, of the instances still pending where
        they were placed (one terminated or moved since is left alone)."""
        if batch is None:
            return
        if batch.spawns:
            with self._tx() as s:
                now = db_events.hosts_of(s, list(batch.spawns))
            for iid, spawn in batch.spawns.items():
                if now.get(iid) == (spawn.host, lifecycle.PENDING):
                    self._cast(self.compute.spawn, spawn)
        for iid in sorted(batch.waiting):  # their volumes may be made by now
            self.launch_volume(LaunchVolume(instance_id=iid))

    # --- launch volumes ---------------------------------------------------------------

    def launch_volume(self, req: LaunchVolume) -> None:
        """A volume of an instance's launch was made (or could not be): build the guest
        once all of them are, fail the launch if one failed. Idempotent: a spawn sent
        twice finds the guest there (the agent reports it spawned)."""
        with self._tx() as s:
            inst = db_events.get_instance(s, req.instance_id)
            if inst is None or inst.state != lifecycle.PENDING or inst.task != lifecycle.SPAWNING:
                return
            if not inst.host:
                return
            status, reason = launch_volumes.status(s, inst.id)
            spawn = None
            if status == launch_volumes.READY:
                spawn = Spawn(host=inst.host, spec=guest_spec(s, inst), attempt=attempt_of(inst))
        if spawn is not None:
            LOG.info("%s: its volumes are made; building it on %s", req.instance_id, spawn.host)
            self._cast(self.compute.spawn, spawn)
        elif status == launch_volumes.FAILED:
            self.observe(req.instance_id, self._volume_failer(reason))

    def _volume_failer(self, reason: str) -> Callable[[Instance | None], lifecycle.Decision]:
        def decide(inst: Instance | None) -> lifecycle.Decision:
            if inst is None or inst.state != lifecycle.PENDING or inst.task != lifecycle.SPAWNING:
                return lifecycle.NOTHING
            return lifecycle.failed_launch(self.now(), reason)

        return decide

    # --- orphans (periodic) -------------------------------------------------------

    def place_orphans(self, before: dt.datetime) -> int:
        """Place the instances pending without a host since before ``before``: their
        RunInstances was answered without a placement (no reply from a scheduler in
        time, its worker killed after it committed the launch). Each launch's
        instances are placed as far as they fit; the rest end terminated with
        ``Server.InsufficientInstanceCapacity`` (never deleted: the client saw them).
        Returns how many were placed."""
        with self._tx() as s:
            rows = [
                i
                for i in db_events.stuck(s, [(lifecycle.PENDING, lifecycle.SCHEDULING)], before)
                if not i.host
            ]
        launches: dict[str, list[Instance]] = {}
        for inst in rows:
            launches.setdefault(inst.reservation_id, []).append(inst)
        placed = 0
        for group in launches.values():
            batch = _Batch(request_for(group[0], count=len(group), min_count=1), group)
            try:
                self._place(batch)
            except NoValidHost as exc:
                detail = exc.report.message
            else:
                detail = "no host has room for the rest of the launch"
            done = {iid for ids in batch.placed.values() for iid in ids}
            LOG.info("placed %d of %d instances left unscheduled: %s", len(done), len(group), sorted(done))
            for inst in group:
                if inst.id not in done:
                    self.observe(inst.id, self._orphan_failer(before, detail))
            self._spawn_all(batch)
            placed += len(done)
        return placed

    def _orphan_failer(
        self, before: dt.datetime, detail: str
    ) -> Callable[[Instance | None], lifecycle.Decision]:
        def decide(inst: Instance | None) -> lifecycle.Decision:
            unplaced = inst is not None and inst.host is None and inst.task == lifecycle.SCHEDULING
            if not unplaced or inst is None or inst.state != lifecycle.PENDING or inst.updated_at >= before:
                return lifecycle.NOTHING
            return lifecycle.no_capacity(self.now(), detail)

        return decide

    # --- instance_event ------------------------------------------------------------

    def instance_event(self, ev: InstanceEvent) -> None:
        ob = lifecycle.Observation(
            host=ev.host,
            event=ev.event,
            power_state=ev.power_state,
            reason=ev.reason,
            retryable=ev.retryable,
            attempt=ev.attempt,
        )
        max_attempts = self.settings.max_attempts

        def decide(inst: Instance | None) -> lifecycle.Decision:
            return lifecycle.on_event(view(inst) if inst else None, ob, self.now(), max_attempts=max_attempts)

        db_engine.retry_on_deadlock(
            lambda: self.observe(ev.instance_id, decide), what=f"{ev.event} of {ev.instance_id}"
        )

    def observe(
        self, instance_id: str, decide: Callable[[Instance | None], lifecycle.Decision]
    ) -> lifecycle.Decision:
        """Read the instance, decide, write conditionally (again on a conflict),
        then send what the decision asks for."""
        for _ in range(MAX_CONFLICTS):
            try:
                with self._tx() as s:
                    inst = db_events.get_instance(s, instance_id)
                    decision = decide(inst)
                    if decision.noop:
                        return decision
                    out = self._apply(s, inst, decision)
            except _Conflict:
                continue
            if decision.why:
                LOG.info("%s: %s", instance_id, decision.why)
            self._send(instance_id, out)
            return decision
        LOG.warning("%s: gave up after %d conflicting updates", instance_id, MAX_CONFLICTS)
        return lifecycle.NOTHING

    def _apply(self, s: Session, inst: Instance | None, decision: lifecycle.Decision) -> _Outbox:
        """Write one decision (raises _Conflict); returns the casts to send."""
        out = _Outbox(destroy_on=decision.destroy_on, stop_on=decision.stop_on)
        if inst is None:
            return out
        if decision.reschedule:
            return self._reschedule(s, inst)
        changes = decision.values or decision.release_claim
        if changes and not db_events.apply(s, inst, decision.values, release_claim=decision.release_claim):
            raise _Conflict()
        if inst.state == lifecycle.PENDING and decision.values.get("state") == lifecycle.RUNNING:
            launch_volumes.mark_attached(s, inst.id)  # the guest runs with its launch volumes
        if decision.respawn and inst.host:
            out = replace(
                out, spawn=Spawn(host=inst.host, spec=guest_spec(s, inst), attempt=attempt_of(inst))
            )
        return out

    def _reschedule(self, s: Session, inst: Instance) -> _Outbox:
        """A failed build: release its host and build it on another one, or give up."""
        tried = [*(inst.hosts_tried or ()), inst.host or ""]
        states = self.host_states(s)
        try:
            placement = self.scheduler.schedule(states, request_for(inst, excluded=tried))
        except NoValidHost as exc:
            LOG.info("%s: no other host can build it: %s", inst.id, exc.report.message)
            values = lifecycle.failed_launch(self.now(), "no other host could build it").values
            if not db_events.apply(s, inst, {**values, "hosts_tried": tried}, release_claim=True):
                raise _Conflict() from None
            return _Outbox()
        host = placement.hosts[0]
        limits = self._limits(next(h for h in states if h.name == host))
        if not db_events.apply(s, inst, {"host": host, "hosts_tried": tried}, release_claim=True):
            raise _Conflict()
        if not db_hosts.claim(s, host, db_events.amount(inst), limits, alive_since=self._alive_since()):
            raise _Conflict()  # lost the host to another scheduler: roll back, try again
        inst.host, inst.hosts_tried = host, tried
        LOG.info(
            "%s: building it again on %s (attempt %d; %s did not)", inst.id, host, len(tried) + 1, tried[-1]
        )
        return _Outbox(spawn=Spawn(host=host, spec=guest_spec(s, inst), attempt=len(tried) + 1))

    # --- volume_event -------------------------------------------------------------------

    def volume_event(self, ev: VolumeEvent) -> None:
        """An agent attached or detached a volume (or could not): the attachment moves on."""
        attach = ev.event in ("attached", "attach_failed")
        if not attach and ev.event not in ("detached", "detach_failed"):
            LOG.warning("%s: unknown volume event %r about %s", ev.instance_id, ev.event, ev.volume_id)
            return
        ok = ev.event in ("attached", "detached")
        with self._tx() as s:
            finish = db_attachments.finish_attach if attach else db_attachments.finish_detach
            changed = finish(s, ev.volume_id, ev.instance_id, ok)
        if not changed:
            return  # a repeated report, or the attachment changed meanwhile
        if ok:
            LOG.info("%s: volume %s %s on %s", ev.instance_id, ev.volume_id, ev.event, ev.host)
        else:
            LOG.warning(
                "%s: volume %s %s on %s: %s", ev.instance_id, ev.volume_id, ev.event, ev.host, ev.reason
            )

    # --- host_report -------------------------------------------------------------------

    def host_report(self, report: HostReport) -> None:
        """Record the host and its heartbeat, then reconcile its guests; run again
        whole when the database picks it as a deadlock victim (every step is a
        conditional update, so what a first run committed is not done twice)."""
        db_engine.retry_on_deadlock(lambda: self._host_report(report), what=f"report of {report.host}")

    def _host_report(self, report: HostReport) -> None:
        facts = db_hosts.HostFacts(
            name=report.host,
            availability_zone=report.availability_zone,
            hypervisor_type=report.hypervisor_type,
            hypervisor_version=report.hypervisor_version,
            architectures=tuple(report.architectures),
            vcpus=report.vcpus,
            memory_mib=report.memory_mib,
            disk_gib=report.disk_gib,
        )
        now = self.now()
        with self._tx() as s:
            db_hosts.upsert_host(s, facts, now)
            db_hosts.record_heartbeat(s, "compute", report.host, now=now)
        self.reconcile(report)

    def reconcile(self, report: HostReport) -> None:
        """Bring the database and the host's guests in line (rules in :mod:`lifecycle`)."""
        guests = {g.instance_id: g.power_state for g in report.guests}
        with self._tx() as s:
            placed = db_events.on_host(s, report.host)
            ours = {i.id for i in placed}
            strangers = db_events.hosts_of(s, [g for g in guests if g not in ours])
        cutoff = self.now() - dt.timedelta(seconds=self.settings.reconcile_grace)
        for inst in placed:
            if inst.updated_at > cutoff:
                continue  # changed after the report may have been made: the next one judges
            power = guests.get(inst.id)
            decision = lifecycle.on_report(view(inst), power, self.now())
            if decision.noop:
                continue
            if decision.values == {"power_state": power}:
                with self._tx() as s:
                    db_events.set_power_state(s, inst, str(power))
                continue
            self.observe(inst.id, self._settler(power, cutoff))
        for iid in guests:
            if iid in ours:
                continue
            host, state = strangers.get(iid, (None, "unknown"))
            LOG.info("%s: guest on %s of an instance %s on %s: destroying it", iid, report.host, state, host)
            self._cast(self.compute.destroy, GuestAction(host=report.host, instance_id=iid))

    def _settler(
        self, power: str | None, cutoff: dt.datetime
    ) -> Callable[[Instance | None], lifecycle.Decision]:
        def decide(inst: Instance | None) -> lifecycle.Decision:
            if inst is None or inst.updated_at > cutoff:
                return lifecycle.NOTHING  # changed since: the next heartbeat decides
            return lifecycle.on_report(view(inst), power, self.now())

        return decide


def attempt_of(inst: Instance) -> int:
    """The number of the build in progress: one more than the hosts already tried."""
    return len(inst.hosts_tried or ()) + 1


class SchedulerService:
    """The scheduler endpoint on the bus plus its periodic tasks."""

    def __init__(
        self, bus: Bus, sessions: sessionmaker[Session], settings: SchedulerSettings, *, workers: int = 4
    ) -> None:
        from ocs.scheduler.periodic import Periodic  # it builds on this module

        self.endpoint = SchedulerEndpoint(sessions, ComputeApi(bus), settings)
        # A database outage fails a handler for no fault of the message: it is run again
        # once the database is back rather than dropped (see RpcServer).
        self.server = RpcServer(
            bus, SchedulerApi, self.endpoint, workers=workers, transient=db_engine.is_outage
        )
        self.periodic = Periodic(self.endpoint)

    def start(self, wait: float | None = 10.0) -> None:
        self.server.start(wait=wait)
        self.periodic.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.periodic.stop(timeout)
        self.server.stop(timeout)
