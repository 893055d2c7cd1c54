"""The volume service: EBS volumes' and snapshots' bytes on a backend, their states in the database.

:class:`VolumeEndpoint` serves :class:`~ocs.volume.rpcapi.VolumeApi`. Each handler
reads the row, does nothing unless the row is in the state the operation
started (so a redelivered or repeated message is a no-op), runs the backend
outside any transaction (copying a snapshot may take minutes) and commits the
state that follows with a conditional update. Backend failures end in EC2's
``error`` state with the reason kept in the row, never in a stuck ``creating``.

Ordering between operations that depend on each other is made safe here, not by
the bus: deleting a volume first finishes its pending snapshots (EC2 completes a
snapshot whose volume is deleted meanwhile), and deleting a snapshot first makes
the volumes that are being created from it.

:meth:`VolumeEndpoint.reconcile` runs when the service starts: it removes the
backend's half-made work, re-drives every unfinished operation the database
records, and deletes backend objects no row knows any more (whose deletion was
interrupted), and records the export (:meth:`~ocs.volume.backend.VolumeBackend.export`)
of volumes that have none. Then :meth:`VolumeEndpoint.sweep` runs every
``sweep_interval`` seconds: it deletes volumes moved to ``deleting`` by others
(an instance that ends deletes its DeleteOnTermination volumes in the same
transaction as its own change, see :mod:`ocs.db.volume_cleanup`), completes the
volume modifications that are ``optimizing``, and settles attachments stuck in
``attaching`` or ``detaching`` for longer than ``attachment_timeout`` seconds (the
agent's report, or the request to the agent, was lost): it asks the instance's
host which volumes its guest has plugged in (``ComputeApi.guest_volumes``) and
records that — ``attached``, or detached (the volume ``available``; the host is
then told to detach, so that a request to attach that is only late cannot plug in
a volume the record gave back). An instance that is stopped or gone needs no
question: a stopped one's guest gets its volumes when it starts. A host that does
not answer is asked again at the next sweep: the record is never guessed. The
volumes of an instance still being built are left to the scheduler (they become
``attached`` when the guest runs, :mod:`ocs.db.launch_volumes`).

ModifyVolume (:meth:`VolumeEndpoint.modify_volume`): a volume plugged into a
running guest is grown by the guest's hypervisor (``ComputeApi.resize_volume``:
QEMU holds the image open, and the guest sees the new size at once); the backend's
:meth:`~ocs.volume.backend.VolumeBackend.grow` then grows what is still short (all
of it for a volume no running guest has).

A volume made for an instance's launch (attached already: :mod:`ocs.db.launch_volumes`)
becomes ``in-use`` rather than ``available``, and the scheduler is told
(``SchedulerApi.launch_volume``: it builds the guest once all of them exist, or
fails the launch on an ``error``); one whose launch was called off while its bytes
were made (``deleting``, or its row gone) is deleted at once. A snapshot that
finishes moves the pending images made from it (CreateImage) to ``available`` or
``failed`` in the same transaction (:func:`ocs.db.block_devices.snapshot_finished`).
``snapshot_now`` copies snapshots while a compute agent waits (CreateImage of a
running instance, whose guest the agent holds powered off meanwhile).

The export (backend, target, options) is recorded on the volume's row when its
bytes are made: the API and the scheduler put it into the compute agent's
messages (the agent never reads the database). With the ``file`` backend the
target is a path on this service's machine: compute hosts must see the same
path (one machine, or the state directory shared at the same path), and QEMU's
user must be able to reach it. One service owns one backend: with the ``file`` backend, run one
``ocs-volume`` per state directory.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from ocs.bus import Bus, RpcServer
from ocs.compute_agent.driver import VolumeAttachment as AgentVolume
from ocs.compute_agent.rpcapi import ComputeApi, GuestVolumesRequest, VolumeAction, VolumeResize
from ocs.db import block_devices, launch_volumes
from ocs.db import engine as db_engine
from ocs.db import volume_attachments as db_attachments
from ocs.db import volume_modifications as db_modifications
from ocs.db import volumes as repo
from ocs.db.models.base import utcnow
from ocs.db.models.compute import Instance
from ocs.db.models.volumes import Snapshot, Volume, VolumeAttachment, VolumeModification
from ocs.scheduler.rpcapi import LaunchVolume, SchedulerApi
from ocs.service import StatusEndpoint
from ocs.volume.backend import BackendError, VolumeBackend
from ocs.volume.rpcapi import (
    CreateSnapshot,
    CreateVolume,
    DeleteSnapshot,
    DeleteVolume,
    ModifyVolume,
    SnapshotNow,
    SnapshotsTaken,
    VolumeApi,
)

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class VolumeSettings:
    """The service's settings, read from configuration at the edge."""

    host: str = "volume"
    workers: int = 4
    sweep_interval: float = 5.0
    attachment_timeout: float = 120.0


class VolumeEndpoint(StatusEndpoint):
    def __init__(
        self,
        sessions: sessionmaker[Session],
        backend: VolumeBackend,
        settings: VolumeSettings | None = None,
        *,
        now: Callable[[], dt.datetime] = utcnow,
        on_launch_volume: Callable[[LaunchVolume], object] | None = None,
        compute: ComputeApi | None = None,
    ) -> None:
        self.settings = settings = settings or VolumeSettings()
        super().__init__("volume", settings.host)
        self.sessions = sessions
        self.backend = backend
        self.now = now
        self.on_launch_volume = on_launch_volume  # tells the scheduler (SchedulerApi.launch_volume)
        self.compute = compute  # the compute agents (None: no hypervisor to tell)

    def _tx(self) -> AbstractContextManager[Session]:
        return db_engine.transaction(self.sessions)

    # --- volumes ---------------------------------------------------------------------------

    def create_volume(self, req: CreateVolume) -> None:
        with self._tx() as s:
            row = s.get(Volume, req.volume_id)
            if row is None or row.state != "creating":
                return
            size, snapshot_id = row.size_gib, row.snapshot_id
        try:
            if snapshot_id:
                self.backend.clone(snapshot_id, req.volume_id, size)
            else:
                self.backend.create(req.volume_id, size)
        except BackendError as exc:
            LOG.error("volume %s: the backend could not make it: %s", req.volume_id, exc)
            with self._tx() as s:
                failed = repo.finish_volume(s, req.volume_id, "creating", "error", str(exc))
                instance_id = launch_volumes.instance_of(s, req.volume_id) if failed else None
            self._tell_launch(instance_id, req.volume_id)
            return
        export = self._export(req.volume_id)
        with self._tx() as s:
            state = launch_volumes.ready_state(s, req.volume_id)
            done = repo.finish_volume(s, req.volume_id, "creating", state, export=export)
            instance_id = launch_volumes.instance_of(s, req.volume_id) if done else None
            row = None if done else s.get(Volume, req.volume_id)
            gone = not done and (row is None or row.state == "deleting")
        if done:
            LOG.info("volume %s: %s (%d GiB)", req.volume_id, state, size)
            self._tell_launch(instance_id, req.volume_id)
        elif gone:  # its launch was called off while the bytes were made
            LOG.info("volume %s: deleted while it was made; removing its bytes", req.volume_id)
            self.backend.delete(req.volume_id)
            self.delete_volume(DeleteVolume(req.volume_id))

    def _tell_launch(self, instance_id: str | None, volume_id: str) -> None:
        """Tell the scheduler that a volume of an instance's launch is made (or failed)."""
        if instance_id is None or self.on_launch_volume is None:
            return
        try:
            self.on_launch_volume(LaunchVolume(instance_id=instance_id, volume_id=volume_id))
        except Exception:  # the scheduler's periodic check finds the launch all the same
            LOG.exception("volume %s: could not tell the scheduler about %s", volume_id, instance_id)

    def _export(self, volume_id: str) -> dict[str, Any] | None:
        """Where hypervisors find the volume, as the row records it (None if the backend
        cannot tell now: the next start of the service records it)."""
        try:
            found = self.backend.export(volume_id)
        except BackendError as exc:
            LOG.warning("volume %s: no export: %s", volume_id, exc)
            return None
        return {"backend": found.backend, "target": found.target, "options": dict(found.options)}

    def delete_volume(self, req: DeleteVolume) -> None:
        with self._tx() as s:
            row = s.get(Volume, req.volume_id)
            if row is None or row.state != "deleting":
                return
            pending = [p.id for p in repo.pending_snapshots(s, req.volume_id)]
        for snapshot_id in pending:
            self.create_snapshot(CreateSnapshot(snapshot_id))
        try:
            self.backend.delete(req.volume_id)
        except BackendError as exc:
            LOG.error("volume %s: the backend could not delete it: %s", req.volume_id, exc)
            with self._tx() as s:
                repo.finish_volume(s, req.volume_id, "deleting", "error", str(exc))
            return
        with self._tx() as s:
            if repo.forget_volume(s, req.volume_id):
                LOG.info("volume %s: deleted", req.volume_id)

    # --- snapshots -------------------------------------------------------------------------

    def create_snapshot(self, req: CreateSnapshot) -> None:
        with self._tx() as s:
            row = s.get(Snapshot, req.snapshot_id)
            if row is None or row.state != "pending":
                return
            volume_id, source_id = row.volume_id, row.source_snapshot_id
        try:
            if source_id:
                data_bytes = self.backend.copy_snapshot(source_id, req.snapshot_id)
            else:
                data_bytes = self.backend.snapshot(volume_id, req.snapshot_id)
        except BackendError as exc:
            LOG.error("snapshot %s of %s failed: %s", req.snapshot_id, volume_id, exc)
            with self._tx() as s:
                if repo.finish_snapshot(s, req.snapshot_id, "error", message=str(exc), now=self.now()):
                    self._images_after(s, req.snapshot_id)
            return
        with self._tx() as s:
            done = repo.finish_snapshot(
                s, req.snapshot_id, "completed", data_bytes=data_bytes, now=self.now()
            )
            if done:
                self._images_after(s, req.snapshot_id)
            gone = not done and s.get(Snapshot, req.snapshot_id) is None
        if gone:  # DeleteSnapshot came while the bytes were copied
            self.backend.delete_snapshot(req.snapshot_id)
        elif done:
            LOG.info("snapshot %s of %s: completed (%d bytes)", req.snapshot_id, volume_id, data_bytes)

    @staticmethod
    def _images_after(s: Session, snapshot_id: str) -> None:
        for image_id, state in block_devices.snapshot_finished(s, snapshot_id):
            LOG.info("image %s: %s (its snapshots are done)", image_id, state)

    def snapshot_now(self, req: SnapshotNow) -> SnapshotsTaken:
        """Copy these pending snapshots now (the caller holds their volumes still)."""
        for snapshot_id in req.snapshot_ids:
            self.create_snapshot(CreateSnapshot(snapshot_id))
        with self._tx() as s:
            rows = s.scalars(select(Snapshot).where(Snapshot.id.in_(list(req.snapshot_ids))))
            return SnapshotsTaken(states={r.id: r.state for r in rows})

    def delete_snapshot(self, req: DeleteSnapshot) -> None:
        with self._tx() as s:
            if s.get(Snapshot, req.snapshot_id) is not None:
                return  # not deleted (a stray message)
            cloning = list(
                s.scalars(
                    select(Volume.id).where(Volume.snapshot_id == req.snapshot_id, Volume.state == "creating")
                )
            )
            copying = list(
                s.scalars(
                    select(Snapshot.id).where(
                        Snapshot.source_snapshot_id == req.snapshot_id, Snapshot.state == "pending"
                    )
                )
            )
        for volume_id in cloning:
            self.create_volume(CreateVolume(volume_id))
        for snapshot_id in copying:
            self.create_snapshot(CreateSnapshot(snapshot_id))
        self.backend.delete_snapshot(req.snapshot_id)
        LOG.info("snapshot %s: bytes removed", req.snapshot_id)

    # --- start -----------------------------------------------------------------------------

    def reconcile(self) -> None:
        """Finish what the database says is unfinished; remove what no row knows."""
        self.backend.cleanup()
        with self._tx() as s:
            states = {row.id: row.state for row in s.execute(select(Volume.id, Volume.state))}
            pending = [p.id for p in repo.pending_snapshots(s)]
        for volume_id in sorted(v for v, st in states.items() if st == "creating"):
            self.create_volume(CreateVolume(volume_id))
        for snapshot_id in pending:
            self.create_snapshot(CreateSnapshot(snapshot_id))
        for volume_id in sorted(v for v, st in states.items() if st == "deleting"):
            self.delete_volume(DeleteVolume(volume_id))
        with self._tx() as s:
            modifying = db_modifications.modifying(s)
        for volume_id in modifying:
            self.modify_volume(ModifyVolume(volume_id))
        self.record_exports()
        with self._tx() as s:
            volumes = set(s.scalars(select(Volume.id)))
            snapshots = set(s.scalars(select(Snapshot.id)))
        for volume_id in sorted(self.backend.volumes() - volumes):
            LOG.info("volume %s: no row knows it; removing its bytes", volume_id)
            self.backend.delete(volume_id)
        for snapshot_id in sorted(self.backend.snapshots() - snapshots):
            LOG.info("snapshot %s: no row knows it; removing its bytes", snapshot_id)
            self.backend.delete_snapshot(snapshot_id)

    def record_exports(self) -> None:
        """Record the export of every volume that has bytes and no export yet."""
        with self._tx() as s:
            missing = list(
                s.scalars(
                    select(Volume.id).where(
                        Volume.export.is_(None), Volume.state.in_(("available", "in-use"))
                    )
                )
            )
        for volume_id in missing:
            export = self._export(volume_id)
            if export is not None:
                with self._tx() as s:
                    repo.record_export(s, volume_id, export)

    def sweep(self) -> None:
        """Delete the volumes others moved to ``deleting`` without a message to this
        service (an instance terminated with DeleteOnTermination volumes, in the
        scheduler's transaction), and those whose message was lost."""
        with self._tx() as s:
            doomed = list(s.scalars(select(Volume.id).where(Volume.state == "deleting").order_by(Volume.id)))
        for volume_id in doomed:
            self.delete_volume(DeleteVolume(volume_id))
        with self._tx() as s:
            for volume_id in db_modifications.complete_optimized(s, now=self.now()):
                LOG.info("volume %s: modification completed", volume_id)
        self.settle_attachments()

    # --- modifications ---------------------------------------------------------------------

    def modify_volume(self, req: ModifyVolume) -> None:
        """Grow the bytes to the modification's target size, then record the outcome."""
        with self._tx() as s:
            mod = s.get(VolumeModification, req.volume_id)
            if mod is None or mod.state != "modifying":
                return
            size = mod.target_size
            guests = [
                (a.instance_id, inst.host)
                for a, inst in s.execute(
                    select(VolumeAttachment, Instance)
                    .join(Instance, Instance.id == VolumeAttachment.instance_id)
                    .where(VolumeAttachment.volume_id == req.volume_id)
                )
                if db_attachments.is_hot(inst) and inst.host
            ]
        try:
            for instance_id, host in guests:
                self._resize_guest(host, instance_id, req.volume_id, size)
            self.backend.grow(req.volume_id, size)
        except (BackendError, _GuestResizeFailed) as exc:
            LOG.error("volume %s: could not grow it to %d GiB: %s", req.volume_id, size, exc)
            with self._tx() as s:
                db_modifications.finish_modify(s, req.volume_id, ok=False, message=str(exc), now=self.now())
            return
        with self._tx() as s:
            if db_modifications.finish_modify(s, req.volume_id, ok=True, now=self.now()):
                LOG.info("volume %s: modified (%d GiB), optimizing", req.volume_id, size)

    def _resize_guest(self, host: str, instance_id: str, volume_id: str, size_gib: int) -> None:
        if self.compute is None:
            return
        try:
            answer = self.compute.resize_volume(VolumeResize(host, instance_id, volume_id, size_gib))
        except Exception as exc:  # the agent did not answer: the guest's image is held open
            raise _GuestResizeFailed(f"the host {host} of {instance_id} did not answer: {exc}") from exc
        if answer.error:
            raise _GuestResizeFailed(f"the hypervisor of {instance_id} could not resize it: {answer.error}")

    # --- attachments whose report was lost ------------------------------------------------

    def settle_attachments(self) -> None:
        """Record the true state of attachments stuck in attaching/detaching."""
        cutoff = self.now() - dt.timedelta(seconds=self.settings.attachment_timeout)
        with self._tx() as s:
            stuck = [
                (a.volume_id, a.instance_id, a.device, a.state, inst)
                for a, inst in s.execute(
                    select(VolumeAttachment, Instance)
                    .outerjoin(Instance, Instance.id == VolumeAttachment.instance_id)
                    .where(
                        VolumeAttachment.state.in_(("attaching", "detaching")),
                        or_(
                            VolumeAttachment.changed_at < cutoff,
                            VolumeAttachment.changed_at.is_(None) & (VolumeAttachment.attach_time < cutoff),
                        ),
                    )
                    .order_by(VolumeAttachment.volume_id)
                )
            ]
            hosts = {inst.id: (inst.host or "", db_attachments.is_hot(inst)) for *_, inst in stuck if inst}
        for volume_id, instance_id, device, state, inst in stuck:
            if inst is not None and launch_volumes.is_launching(inst):
                continue  # a launch's volumes: the scheduler settles them with the build
            host, hot = hosts.get(instance_id, ("", False))
            if inst is None or not hot or not host or self.compute is None:
                plugged = state == "attaching" and inst is not None  # a stopped guest gets it at start
            else:
                try:
                    found = self.compute.guest_volumes(GuestVolumesRequest(host, instance_id))
                except Exception as exc:  # noqa: BLE001 - asked again at the next sweep
                    LOG.warning("%s: cannot settle %s of %s: %s", instance_id, state, volume_id, exc)
                    continue
                plugged = found.exists and volume_id in found.volumes
            self._settle(volume_id, instance_id, device, state, plugged, host if inst is not None else "")

    def _settle(
        self, volume_id: str, instance_id: str, device: str, state: str, plugged: bool, host: str
    ) -> None:
        with self._tx() as s:
            if state == "attaching":
                changed = db_attachments.finish_attach(s, volume_id, instance_id, plugged)
            else:
                changed = db_attachments.finish_detach(s, volume_id, instance_id, not plugged)
        if not changed:
            return
        LOG.warning(
            "%s: volume %s was stuck %s: settled %s (what its host says)",
            instance_id,
            volume_id,
            state,
            "attached" if plugged else "detached",
        )
        if not plugged and host and self.compute is not None:
            # A request to attach that is only late must not plug in a volume now free.
            volume = AgentVolume(volume_id=volume_id, device=device, backend="", target="")
            try:
                self.compute.detach_volume(VolumeAction(host, instance_id, volume, force=True))
            except Exception:
                LOG.exception("%s: could not tell %s to let go of %s", instance_id, host, volume_id)


class _GuestResizeFailed(Exception):
    """The hypervisor of a guest the volume is plugged into did not grow it."""


class VolumeService:
    """The volume endpoint on the bus; reconciles once before it takes messages, then
    sweeps every ``sweep_interval`` seconds."""

    def __init__(self, bus: Bus, endpoint: VolumeEndpoint) -> None:
        self.endpoint = endpoint
        if endpoint.on_launch_volume is None:
            endpoint.on_launch_volume = SchedulerApi(bus).launch_volume
        if endpoint.compute is None:
            endpoint.compute = ComputeApi(bus)
        # Casts whose handler finds the database unreachable are held and run again
        # once it is back (see RpcServer), not acknowledged and lost: a volume left
        # ``creating`` would otherwise wait for the next start of the service.
        self.server = RpcServer(
            bus, VolumeApi, endpoint, workers=endpoint.settings.workers, transient=db_engine.is_outage
        )
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, wait: float | None = 10.0) -> None:
        self.endpoint.reconcile()
        self.server.start(wait=wait)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._sweep, name="ocs-volume-sweep", daemon=True)
        self._thread.start()

    def _sweep(self) -> None:
        while not self._stopping.wait(self.endpoint.settings.sweep_interval):
            try:
                self.endpoint.sweep()
            except Exception:  # the next sweep tries again
                LOG.exception("volume sweep failed")

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        self.server.stop(timeout)
