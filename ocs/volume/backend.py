"""The volume backend contract: where the bytes of EBS volumes and snapshots live.

A backend stores volumes and snapshots under the IDs OCS gives them
(``vol-…``, ``snap-…``); it knows nothing of accounts, states or the database.
The volume service (:mod:`ocs.volume.service`) drives it and records the
outcome. Every method is idempotent, because the service may be asked twice
for one operation (a redelivered message, a restart that re-drives what was in
flight); every method either completes or leaves nothing half-made that the
name of the object points to (work happens under temporary names that
:meth:`VolumeBackend.cleanup` removes).

Failure semantics, common to every method: a failure the backend understands
raises :class:`BackendError` (with what the tool said); the object named then
either does not exist or is as it was before the call. A missing object where
one is needed raises :class:`ObjectMissing` (a subclass).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field


class BackendError(Exception):
    """The backend could not do what it was asked; the object is as it was before."""


class ObjectMissing(BackendError):
    """The volume or snapshot the operation needs does not exist in the backend."""


@dataclass(frozen=True)
class Export:
    """How a hypervisor reaches a volume: the compute agent's ``VolumeAttachment``
    takes ``backend``, ``target`` (a path, ``pool/image``) and ``options``
    (``format``: the disk format the hypervisor must declare; for ``rbd`` also
    ``monitors`` (``host:port,…``), ``auth_username`` (the cephx user) and
    ``secret_uuid`` (the libvirt secret holding that user's key on compute hosts),
    never a key itself)."""

    backend: str
    target: str
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Stats:
    """What the backend holds and has room for, in bytes (``capacity`` 0: unknown)."""

    volumes: int
    snapshots: int
    provisioned_bytes: int  # the sum of the volumes' virtual sizes
    allocated_bytes: int  # what volumes and snapshots really occupy
    capacity_bytes: int
    free_bytes: int


GIB = 1024**3


class VolumeBackend(abc.ABC):
    """Volumes and snapshots of one backend. Sizes are whole GiB, as in EC2."""

    name: str = ""

    @abc.abstractmethod
    def create(self, volume_id: str, size_gib: int) -> None:
        """Make a blank (all zeros) volume of ``size_gib``.

        A volume of that ID that already exists is left alone (idempotent). On
        failure no volume of that ID exists."""

    @abc.abstractmethod
    def clone(self, snapshot_id: str, volume_id: str, size_gib: int) -> None:
        """Make a volume holding the snapshot's bytes, grown to ``size_gib``
        (never smaller than the snapshot). The snapshot stays immutable and may be
        deleted afterwards without harm to the clone.

        An existing volume of that ID is left alone. ObjectMissing if the snapshot
        does not exist; on failure no volume of that ID exists."""

    @abc.abstractmethod
    def delete(self, volume_id: str) -> None:
        """Delete the volume; deleting one that does not exist is a no-op.
        Its snapshots are independent of it and stay."""

    @abc.abstractmethod
    def snapshot(self, volume_id: str, snapshot_id: str) -> int:
        """Make an immutable point-in-time copy of the volume; the bytes it holds
        (what a restore would have to copy), for ``FullSnapshotSizeInBytes``.

        An existing snapshot of that ID is left alone (and its size returned).
        ObjectMissing if the volume does not exist; on failure no snapshot of that
        ID exists. The copy is crash-consistent only while nothing writes to the
        volume: a volume attached to a running guest needs the hypervisor's help."""

    @abc.abstractmethod
    def copy_snapshot(self, source_id: str, snapshot_id: str) -> int:
        """Make snapshot ``snapshot_id`` an independent copy of snapshot ``source_id``
        (CopySnapshot: its own bytes, so deleting either never touches the other);
        the bytes it holds, as :meth:`snapshot` returns them.

        An existing snapshot of that ID is left alone (and its size returned).
        ObjectMissing if the source does not exist; on failure no snapshot of that ID
        exists."""

    @abc.abstractmethod
    def delete_snapshot(self, snapshot_id: str) -> None:
        """Delete the snapshot; volumes cloned from it keep their bytes. A snapshot
        that does not exist is a no-op."""

    @abc.abstractmethod
    def grow(self, volume_id: str, size_gib: int) -> None:
        """Grow the volume to ``size_gib`` (a no-op if it is that large already).

        Never shrinks: a smaller size raises BackendError. ObjectMissing if the
        volume does not exist."""

    @abc.abstractmethod
    def size_gib(self, volume_id: str) -> int:
        """The volume's virtual size in GiB (ObjectMissing if it does not exist)."""

    @abc.abstractmethod
    def export(self, volume_id: str) -> Export:
        """Where a hypervisor on this backend's hosts finds the volume
        (ObjectMissing if it does not exist)."""

    @abc.abstractmethod
    def volumes(self) -> set[str]:
        """The IDs of every volume the backend holds."""

    @abc.abstractmethod
    def snapshots(self) -> set[str]:
        """The IDs of every snapshot the backend holds."""

    @abc.abstractmethod
    def cleanup(self) -> None:
        """Remove what interrupted operations left under temporary names. Call it
        only while no operation of this backend runs (the service does at start)."""

    @abc.abstractmethod
    def stats(self) -> Stats:
        """What the backend holds and has room for."""
