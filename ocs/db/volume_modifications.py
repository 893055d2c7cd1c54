"""Repository of ModifyVolume: the modification of each volume, its states and EC2's errors.

The API starts a modification (:func:`start_modify`): the volume's latest
modification row is replaced by a new one in ``modifying`` and the volume keeps its
values until the volume service has grown its bytes (and told the guest), when
:func:`finish_modify` gives the volume its target values and moves the modification
to ``optimizing``; the service's sweep then completes it (:func:`complete_optimized`).
A backend failure ends it ``failed`` with the volume as it was. Each move is a
conditional update: a message handled twice changes nothing.

EC2's answers (evidence in brackets):

* A volume neither ``available`` nor ``in-use``: ``IncorrectState`` "Volume vol-… must
  be in the available or in-use state to be modified."
* A volume whose latest modification is ``modifying`` or ``optimizing``:
  ``IncorrectModificationState`` "Volume vol-… cannot be modified in modification state
  MODIFYING" [sodafoundation/strato#1120].
* DescribeVolumesModifications of a volume never modified:
  ``InvalidVolumeModification.NotFound`` "Modification for volume 'vol-…' does not exist."
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ocs import errors
from ocs.db import volumes as db_volumes
from ocs.db.models.base import utcnow
from ocs.db.models.volumes import Volume, VolumeModification
from ocs.volume.types import Performance

MODIFIABLE = ("available", "in-use")
BUSY = ("modifying", "optimizing")


def latest(s: Session, volume_ids: Sequence[str]) -> dict[str, VolumeModification]:
    if not volume_ids:
        return {}
    q = select(VolumeModification).where(VolumeModification.volume_id.in_(list(volume_ids)))
    return {row.volume_id: row for row in s.scalars(q)}


def busy(s: Session, volume_id: str) -> VolumeModification | None:
    """The volume's modification in progress, if any."""
    row = s.get(VolumeModification, volume_id)
    return row if row is not None and row.state in BUSY else None


def check_not_busy(s: Session, volume: Volume) -> None:
    row = busy(s, volume.id)
    if row is not None:
        raise errors.IncorrectState(
            f"Volume {volume.id} cannot be modified in modification state {row.state.upper()}",
            code="IncorrectModificationState",
        )


def start_modify(
    s: Session,
    volume: Volume,
    size_gib: int,
    perf: Performance,
    *,
    now: dt.datetime | None = None,
) -> VolumeModification:
    """Replace the volume's latest modification with a new one in ``modifying``."""
    if volume.state not in MODIFIABLE:
        raise errors.IncorrectState(
            f"Volume {volume.id} must be in the available or in-use state to be modified."
        )
    check_not_busy(s, volume)
    old = s.get(VolumeModification, volume.id)
    if old is not None:
        s.delete(old)
        s.flush()
    row = VolumeModification(
        volume_id=volume.id,
        state="modifying",
        status_message="",
        progress=0,
        original_size=volume.size_gib,
        original_volume_type=volume.volume_type,
        original_iops=volume.iops,
        original_throughput=volume.throughput,
        original_multi_attach=volume.multi_attach_enabled,
        target_size=size_gib,
        target_volume_type=perf.volume_type,
        target_iops=perf.iops,
        target_throughput=perf.throughput,
        target_multi_attach=volume.multi_attach_enabled,
        start_time=now or utcnow(),
    )
    s.add(row)
    s.flush()
    return row


def list_modifications(
    s: Session, account_id: str, volume_ids: Sequence[str] = ()
) -> list[VolumeModification]:
    """The latest modification of the account's volumes (of those named: each must exist
    and have been modified), by volume ID."""
    if volume_ids:
        db_volumes.list_volumes(s, account_id, volume_ids)  # NotFound / Malformed first
    q = (
        select(VolumeModification)
        .join(Volume, Volume.id == VolumeModification.volume_id)
        .where(Volume.account_id == account_id)
    )
    if volume_ids:
        q = q.where(VolumeModification.volume_id.in_(list(volume_ids)))
    rows = list(s.scalars(q.order_by(VolumeModification.volume_id)))
    found = {r.volume_id for r in rows}
    for volume_id in volume_ids:
        if volume_id not in found:
            raise errors.NotFound(
                f"Modification for volume '{volume_id}' does not exist.",
                code="InvalidVolumeModification.NotFound",
            )
    return rows


def finish_modify(s: Session, volume_id: str, *, ok: bool, message: str = "", now: dt.datetime) -> bool:
    """``modifying`` → ``optimizing`` with the volume given its target values, or →
    ``failed`` (the volume unchanged). False if it was not modifying."""
    row = s.get(VolumeModification, volume_id)
    if row is None or row.state != "modifying":
        return False
    if not ok:
        done = s.execute(
            update(VolumeModification)
            .where(VolumeModification.volume_id == volume_id, VolumeModification.state == "modifying")
            .values(state="failed", status_message=message[:255], progress=0, end_time=now)
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]
    done = s.execute(
        update(VolumeModification)
        .where(VolumeModification.volume_id == volume_id, VolumeModification.state == "modifying")
        .values(state="optimizing", progress=50)
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        return False
    s.execute(
        update(Volume)
        .where(Volume.id == volume_id)
        .values(
            size_gib=row.target_size,
            volume_type=row.target_volume_type,
            iops=row.target_iops,
            throughput=row.target_throughput,
        )
    )
    return True


def complete_optimized(s: Session, *, now: dt.datetime) -> list[str]:
    """Complete every ``optimizing`` modification (the volume has its new values
    already; the backends have nothing to rebalance); the volume IDs."""
    done = list(
        s.scalars(select(VolumeModification.volume_id).where(VolumeModification.state == "optimizing"))
    )
    if done:
        s.execute(
            update(VolumeModification)
            .where(VolumeModification.volume_id.in_(done), VolumeModification.state == "optimizing")
            .values(state="completed", progress=100, end_time=now)
        )
    return done


def modifying(s: Session) -> list[str]:
    """The volumes whose modification the service has still to do."""
    q = select(VolumeModification.volume_id).where(VolumeModification.state == "modifying")
    return list(s.scalars(q.order_by(VolumeModification.volume_id)))


def check_attachable(s: Session, volume_id: str) -> None:
    """AttachVolume waits for a modification's bytes: ``OperationNotPermitted`` "Cannot
    attach volume vol-… when it is in modification state: MODIFYING"
    [ansible-collections/amazon.aws#1558]."""
    row = s.get(VolumeModification, volume_id)
    if row is not None and row.state == "modifying":
        raise errors.OperationNotPermitted(
            f"Cannot attach volume {volume_id} when it is in modification state: MODIFYING"
        )
