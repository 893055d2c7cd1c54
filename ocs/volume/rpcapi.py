"""The volume service's operations on the bus (topic ``volume``).

The API makes the database rows and the state a request starts (a volume
``creating`` or ``deleting``, a snapshot ``pending``), commits, and then casts
one of these; ``ocs-volume`` does the work on its backend and commits the state
that follows. Every cast is persistent and acknowledged after it is handled;
the handlers are idempotent (at-least-once delivery), and a service that starts
re-drives whatever its database says is unfinished, so a lost message delays an
operation until the next start, never loses it.

- ``create_volume``: make the bytes (blank, or from the volume's snapshot), then
  ``creating`` → ``available`` (``error`` if the backend fails).
- ``delete_volume``: finish the volume's pending snapshots, remove the bytes,
  then the ``deleting`` row.
- ``create_snapshot``: copy the volume's bytes, then ``pending`` → ``completed``.
- ``delete_snapshot``: the row is gone already; remove the bytes (after the
  volumes being made from it, and the copies being made of it, are made).
- ``snapshot_now`` (a call, from a compute agent during CreateImage): copy the
  bytes of these pending snapshots now, while the agent holds the instance's
  guest powered off, and answer once they are done (their states).
- ``modify_volume``: grow the volume's bytes to its modification's target size
  (through the hypervisor of a running guest it is plugged into, so that the guest
  sees it), then the modification ``modifying`` → ``optimizing`` and the volume its
  new values (``failed`` if that cannot be done).

A snapshot with a ``source_snapshot_id`` (CopySnapshot) is made by
``create_snapshot`` too: its bytes are copied from that snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ocs.bus import call, cast
from ocs.service import ServiceApi


@dataclass(frozen=True)
class CreateVolume:
    volume_id: str


@dataclass(frozen=True)
class DeleteVolume:
    volume_id: str


@dataclass(frozen=True)
class CreateSnapshot:
    snapshot_id: str


@dataclass(frozen=True)
class DeleteSnapshot:
    snapshot_id: str


@dataclass(frozen=True)
class ModifyVolume:
    volume_id: str


@dataclass(frozen=True)
class SnapshotNow:
    snapshot_ids: list[str]


@dataclass(frozen=True)
class SnapshotsTaken:
    states: dict[str, str] = field(default_factory=dict)  # snapshot id -> its state now


#: Seconds a compute agent waits for ``snapshot_now`` (a copy of a large volume takes a while).
SNAPSHOT_NOW_TIMEOUT = 1800.0


class VolumeApi(ServiceApi):
    service = "volume"

    create_volume = cast(CreateVolume)
    delete_volume = cast(DeleteVolume)
    create_snapshot = cast(CreateSnapshot)
    delete_snapshot = cast(DeleteSnapshot)
    modify_volume = cast(ModifyVolume)
    snapshot_now = call(SnapshotNow, SnapshotsTaken, timeout=SNAPSHOT_NOW_TIMEOUT)
