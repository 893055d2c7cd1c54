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
transaction as its own change, see :mod:`ocs.db.volume_cleanup`).

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

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ocs.bus import Bus, RpcServer
from ocs.db import engine as db_engine
from ocs.db import volumes as repo
from ocs.db.models.base import utcnow
from ocs.db.models.volumes import Snapshot, Volume
from ocs.service import StatusEndpoint
from ocs.volume.backend import BackendError, VolumeBackend
from ocs.volume.rpcapi import CreateSnapshot, CreateVolume, DeleteSnapshot, DeleteVolume, VolumeApi

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class VolumeSettings:
    """The service's settings, read from configuration at the edge."""

    host: str = "volume"
    workers: int = 4
    sweep_interval: float = 5.0


class VolumeEndpoint(StatusEndpoint):
    def __init__(
        self,
        sessions: sessionmaker[Session],
        backend: VolumeBackend,
        settings: VolumeSettings | None = None,
        *,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.settings = settings = settings or VolumeSettings()
        super().__init__("volume", settings.host)
        self.sessions = sessions
        self.backend = backend
        self.now = now

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
                repo.finish_volume(s, req.volume_id, "creating", "error", str(exc))
            return
        export = self._export(req.volume_id)
        with self._tx() as s:
            if repo.finish_volume(s, req.volume_id, "creating", "available", export=export):
                LOG.info("volume %s: available (%d GiB)", req.volume_id, size)

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
            volume_id = row.volume_id
        try:
            data_bytes = self.backend.snapshot(volume_id, req.snapshot_id)
        except BackendError as exc:
            LOG.error("snapshot %s of %s failed: %s", req.snapshot_id, volume_id, exc)
            with self._tx() as s:
                repo.finish_snapshot(s, req.snapshot_id, "error", message=str(exc), now=self.now())
            return
        with self._tx() as s:
            done = repo.finish_snapshot(
                s, req.snapshot_id, "completed", data_bytes=data_bytes, now=self.now()
            )
            gone = not done and s.get(Snapshot, req.snapshot_id) is None
        if gone:  # DeleteSnapshot came while the bytes were copied
            self.backend.delete_snapshot(req.snapshot_id)
        elif done:
            LOG.info("snapshot %s of %s: completed (%d bytes)", req.snapshot_id, volume_id, data_bytes)

    def delete_snapshot(self, req: DeleteSnapshot) -> None:
        with self._tx() as s:
            if s.get(Snapshot, req.snapshot_id) is not None:
                return  # not deleted (a stray message)
            cloning = list(
                s.scalars(
                    select(Volume.id).where(Volume.snapshot_id == req.snapshot_id, Volume.state == "creating")
                )
            )
        for volume_id in cloning:
            self.create_volume(CreateVolume(volume_id))
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


class VolumeService:
    """The volume endpoint on the bus; reconciles once before it takes messages, then
    sweeps every ``sweep_interval`` seconds."""

    def __init__(self, bus: Bus, endpoint: VolumeEndpoint) -> None:
        self.endpoint = endpoint
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
