"""Repository of EBS volumes and snapshots: the rules of their states, and EC2's errors.

Plain functions taking the session and the caller's account id; the caller owns
the transaction. The API creates rows and moves them into the states a request
starts (``creating``, ``deleting``, ``pending``); the volume service moves them on
once the backend has done the work (:func:`finish_volume`, :func:`finish_snapshot`),
each move a conditional update, so that a message handled twice changes nothing.

Behaviour, as EC2 documents or answers it (evidence in brackets):

* DeleteVolume of an attached volume: ``VolumeInUse`` "Volume vol-… is currently
  attached to i-…"; of a volume neither ``available`` nor ``error``:
  ``IncorrectState`` "Volume 'vol-…' is in the 'creating' state." (the wording EC2
  uses for DetachVolume of a volume in the wrong state, aws-ebs-csi-driver#1801).
* CreateSnapshot of a volume that is ``creating``, ``deleting`` or ``error``:
  ``IncorrectState``. A snapshot of a snapshot-in-progress volume is fine.
* CreateVolume from a snapshot that is not ``completed``: ``IncorrectState``.
* Unknown (or another account's) IDs: ``InvalidVolume.NotFound`` /
  ``InvalidSnapshot.NotFound``; malformed: ``InvalidVolumeID.Malformed`` /
  ``InvalidSnapshotID.Malformed`` (:mod:`ocs.ids`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.orm import Session

from ocs import errors, ids
from ocs.db import tags as db_tags
from ocs.db.compute import lock_account, quota_override
from ocs.db.models.base import utcnow
from ocs.db.models.volumes import Snapshot, SnapshotPermission, Volume, VolumeAttachment
from ocs.db.owned import get_owned, owned_exists

DELETABLE = ("available", "error")
SNAPSHOTTABLE = ("available", "in-use")


def incorrect_state(kind: str, resource_id: str, state: str) -> errors.IncorrectState:
    return errors.IncorrectState(f"{kind} '{resource_id}' is in the '{state}' state.")


# --- volumes --------------------------------------------------------------------------------------


def get_volume(s: Session, account_id: str, volume_id: str) -> Volume:
    return get_owned(s, Volume, "volume", account_id, volume_id)


def volume_exists(s: Session, account_id: str, volume_id: str) -> bool:
    return owned_exists(s, Volume, account_id, volume_id)


def list_volumes(s: Session, account_id: str, volume_ids: Sequence[str] = ()) -> list[Volume]:
    """The account's volumes (those named, each must exist), by ID."""
    for volume_id in volume_ids:
        ids.validate("volume", volume_id)
    q = select(Volume).where(Volume.account_id == account_id)
    if volume_ids:
        q = q.where(Volume.id.in_(list(volume_ids)))
    rows = list(s.scalars(q.order_by(Volume.id)))
    found = {r.id for r in rows}
    for volume_id in volume_ids:
        if volume_id not in found:
            raise ids.not_found("volume", volume_id)
    return rows


def attachments_of(s: Session, volume_ids: Sequence[str]) -> dict[str, list[VolumeAttachment]]:
    out: dict[str, list[VolumeAttachment]] = defaultdict(list)
    if volume_ids:
        q = select(VolumeAttachment).where(VolumeAttachment.volume_id.in_(list(volume_ids)))
        for row in s.scalars(q.order_by(VolumeAttachment.volume_id, VolumeAttachment.instance_id)):
            out[row.volume_id].append(row)
    return out


def create_volume(
    s: Session,
    account_id: str,
    *,
    availability_zone: str,
    size_gib: int,
    volume_type: str,
    iops: int | None,
    throughput: int | None,
    encrypted: bool,
    snapshot_id: str | None,
    now: dt.datetime | None = None,
) -> Volume:
    """A new volume in state ``creating`` (the volume service makes its bytes)."""
    row = Volume(
        id=ids.new_id("volume"),
        account_id=account_id,
        availability_zone=availability_zone,
        size_gib=size_gib,
        volume_type=volume_type,
        iops=iops,
        throughput=throughput,
        encrypted=encrypted,
        snapshot_id=snapshot_id,
        multi_attach_enabled=False,
        state="creating",
        status_reason="",
        created_at=now or utcnow(),
    )
    s.add(row)
    s.flush()
    return row


def start_delete_volume(s: Session, account_id: str, volume_id: str) -> Volume:
    """Move the volume to ``deleting`` (the service removes its bytes, then the row)."""
    row = get_volume(s, account_id, volume_id)
    attached = attachments_of(s, [row.id]).get(row.id)
    if attached:
        raise errors.InUse(
            f"Volume {row.id} is currently attached to {attached[0].instance_id}", code="VolumeInUse"
        )
    if row.state == "deleting":
        return row  # DeleteVolume again while it goes: EC2 answers true
    if row.state not in DELETABLE:
        raise incorrect_state("Volume", row.id, row.state)
    done = s.execute(
        update(Volume).where(Volume.id == row.id, Volume.state == row.state).values(state="deleting")
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise errors.IncorrectState(f"Volume '{row.id}' changed state; try again.")
    s.refresh(row)
    return row


def finish_volume(
    s: Session,
    volume_id: str,
    from_state: str,
    to_state: str,
    reason: str = "",
    *,
    export: dict[str, Any] | None = None,
) -> bool:
    """Move the volume ``from_state`` → ``to_state`` (recording where hypervisors find it,
    ``export``, if given); False if it was not in ``from_state``."""
    values: dict[str, Any] = {"state": to_state, "status_reason": reason[:255]}
    if export is not None:
        values["export"] = export
    done = s.execute(
        update(Volume).where(Volume.id == volume_id, Volume.state == from_state).values(**values)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def record_export(s: Session, volume_id: str, export: dict[str, Any]) -> None:
    """Record where hypervisors find the volume (a row made before exports were kept)."""
    s.execute(update(Volume).where(Volume.id == volume_id).values(export=export))


def forget_volume(s: Session, volume_id: str) -> bool:
    """Remove a ``deleting`` volume's row and tags; False if it is not (or no longer) deleting."""
    done = s.execute(delete(Volume).where(Volume.id == volume_id, Volume.state == "deleting"))
    if done.rowcount:  # type: ignore[attr-defined]
        db_tags.delete_all_for(s, volume_id)
        return True
    return False


# --- snapshots ------------------------------------------------------------------------------------


def get_snapshot(s: Session, account_id: str, snapshot_id: str) -> Snapshot:
    return get_owned(s, Snapshot, "snapshot", account_id, snapshot_id)


def snapshot_exists(s: Session, account_id: str, snapshot_id: str) -> bool:
    return owned_exists(s, Snapshot, account_id, snapshot_id)


def visible_to(account_id: str) -> ColumnElement[bool]:
    """The snapshots ``account_id`` may see and create volumes from: its own, those
    shared with it, and public ones (createVolumePermission ``all``)."""
    shared = select(SnapshotPermission.snapshot_id).where(SnapshotPermission.grantee.in_([account_id, "all"]))
    return or_(Snapshot.account_id == account_id, Snapshot.id.in_(shared))


def get_visible_snapshot(s: Session, account_id: str, snapshot_id: str) -> Snapshot:
    """A snapshot the account owns or that is shared with it; one it may not see is
    InvalidSnapshot.NotFound, exactly as one that does not exist."""
    ids.validate("snapshot", snapshot_id)
    row = s.scalar(select(Snapshot).where(Snapshot.id == snapshot_id, visible_to(account_id)))
    if row is None:
        raise ids.not_found("snapshot", snapshot_id)
    return row


def permissions_of(s: Session, snapshot_ids: Sequence[str]) -> dict[str, set[str]]:
    """The grantees (account IDs, ``all``) of each snapshot's createVolumePermission."""
    out: dict[str, set[str]] = defaultdict(set)
    if snapshot_ids:
        q = select(SnapshotPermission).where(SnapshotPermission.snapshot_id.in_(list(snapshot_ids)))
        for row in s.scalars(q):
            out[row.snapshot_id].add(row.grantee)
    return out


def list_snapshots(
    s: Session,
    account_id: str,
    snapshot_ids: Sequence[str] = (),
    owner_ids: Sequence[str] = (),
    restorable_by: Sequence[str] = (),
) -> list[Snapshot]:
    """The snapshots the account can see (its own, shared with it, public), by ID.

    ``owner_ids`` (``self``, account IDs; aliases such as ``amazon`` own none here)
    narrows them to those owners; ``restorable_by`` (``self``, account IDs, ``all``)
    to those these accounts may create volumes from (whom the caller's own snapshots
    are shared with; of others' snapshots only whether they are public is told).
    Every snapshot named must be visible, else InvalidSnapshot.NotFound."""
    for snapshot_id in snapshot_ids:
        ids.validate("snapshot", snapshot_id)
    q = select(Snapshot).where(visible_to(account_id))
    if snapshot_ids:
        q = q.where(Snapshot.id.in_(list(snapshot_ids)))
    rows = list(s.scalars(q.order_by(Snapshot.id)))
    found = {r.id for r in rows}
    for snapshot_id in snapshot_ids:
        if snapshot_id not in found:
            raise ids.not_found("snapshot", snapshot_id)
    if owner_ids:
        owners = {account_id if o == "self" else o for o in owner_ids}
        rows = [r for r in rows if r.account_id in owners]
    if restorable_by:
        users = {account_id if u == "self" else u for u in restorable_by}
        grants = permissions_of(s, [r.id for r in rows])
        rows = [r for r in rows if _restorable(r, grants[r.id], users, account_id)]
    return rows


def _restorable(row: Snapshot, grantees: set[str], users: set[str], caller: str) -> bool:
    if "all" in grantees:
        return True  # public: anyone, "all" included, may restore it
    if row.account_id == caller:
        return bool(users & ({caller} | grantees))
    return caller in users  # shared with the caller: only the caller's own access is told


def create_snapshot(
    s: Session, account_id: str, volume_id: str, description: str, *, now: dt.datetime | None = None
) -> Snapshot:
    """A new ``pending`` snapshot of the account's volume (the service copies the bytes)."""
    volume = get_volume(s, account_id, volume_id)
    if volume.state not in SNAPSHOTTABLE:
        raise incorrect_state("Volume", volume.id, volume.state)
    row = Snapshot(
        id=ids.new_id("snapshot"),
        account_id=account_id,
        volume_id=volume.id,
        volume_size=volume.size_gib,
        description=description,
        encrypted=volume.encrypted,
        state="pending",
        progress=0,
        status_message="",
        started_at=now or utcnow(),
    )
    s.add(row)
    s.flush()
    return row


def usable_snapshot(s: Session, account_id: str, snapshot_id: str) -> Snapshot:
    """The snapshot a new volume is made from: visible (its own, or shared with the
    account) and ``completed``."""
    row = get_visible_snapshot(s, account_id, snapshot_id)
    if row.state != "completed":
        raise incorrect_state("Snapshot", row.id, row.state)
    return row


def delete_snapshot(s: Session, account_id: str, snapshot_id: str) -> None:
    """Forget the snapshot (the service then removes its bytes)."""
    row = get_snapshot(s, account_id, snapshot_id)
    db_tags.delete_all_for(s, row.id)
    s.delete(row)
    s.flush()


def pending_snapshots(s: Session, volume_id: str | None = None) -> list[Snapshot]:
    q = select(Snapshot).where(Snapshot.state == "pending")
    if volume_id is not None:
        q = q.where(Snapshot.volume_id == volume_id)
    return list(s.scalars(q.order_by(Snapshot.started_at, Snapshot.id)))


def finish_snapshot(
    s: Session,
    snapshot_id: str,
    state: str,
    *,
    data_bytes: int | None = None,
    message: str = "",
    now: dt.datetime,
) -> bool:
    """Move a ``pending`` snapshot to ``completed`` (100%) or ``error``; False if it is
    not pending (done already, or deleted meanwhile)."""
    done = s.execute(
        update(Snapshot)
        .where(Snapshot.id == snapshot_id, Snapshot.state == "pending")
        .values(
            state=state,
            progress=100 if state == "completed" else 0,
            data_bytes=data_bytes,
            status_message=message[:255],
            completed_at=now,
        )
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


# --- limits ---------------------------------------------------------------------------------------


def check_volume_limit(s: Session, account_id: str, adding_gib: int, limit_gib: int) -> None:
    """VolumeLimitExceeded if the account's volumes would exceed its limit in total:
    its own (``ocs-manage quota set --volume-gib``) or else ``limit_gib``, the default
    (checked under the account's lock: concurrent requests cannot pass it together)."""
    lock_account(s, account_id)
    limit_gib = volume_gib_limit(s, account_id, limit_gib)
    held = volume_gib_used(s, account_id)
    if held + adding_gib > limit_gib:
        raise errors.LimitExceeded(
            f"You have exceeded your maximum volume storage limit of {limit_gib} GiB.",
            code="VolumeLimitExceeded",
        )


def check_snapshot_limit(s: Session, account_id: str, limit: int, adding: int = 1) -> None:
    """SnapshotLimitExceeded if ``adding`` more snapshots would exceed the account's
    limit: its own (``ocs-manage quota set --snapshots``) or else ``limit``."""
    lock_account(s, account_id)
    limit = snapshot_limit(s, account_id, limit)
    if snapshots_used(s, account_id) + adding > limit:
        raise errors.LimitExceeded(
            "The maximum number of snapshots has been reached.", code="SnapshotLimitExceeded"
        )


def volume_gib_limit(s: Session, account_id: str, default: int) -> int:
    found = quota_override(s, account_id, "volume_gib")
    return default if found is None else found


def snapshot_limit(s: Session, account_id: str, default: int) -> int:
    found = quota_override(s, account_id, "snapshots")
    return default if found is None else found


def volume_gib_used(s: Session, account_id: str) -> int:
    held = s.scalar(
        select(func.coalesce(func.sum(Volume.size_gib), 0)).where(Volume.account_id == account_id)
    )
    return int(held or 0)


def snapshots_used(s: Session, account_id: str) -> int:
    return int(s.scalar(select(func.count()).where(Snapshot.account_id == account_id)) or 0)


#: The volume types whose IOPS are provisioned (and count against the IOPS limit).
PROVISIONED_IOPS_TYPES = ("io1", "io2")


def provisioned_iops_limit(s: Session, account_id: str, default: int) -> int:
    found = quota_override(s, account_id, "provisioned_iops")
    return default if found is None else found


def provisioned_iops_used(s: Session, account_id: str) -> int:
    held = s.scalar(
        select(func.coalesce(func.sum(Volume.iops), 0)).where(
            Volume.account_id == account_id, Volume.volume_type.in_(PROVISIONED_IOPS_TYPES)
        )
    )
    return int(held or 0)


def check_iops_limit(s: Session, account_id: str, adding_iops: int, limit: int) -> None:
    """MaxIOPSLimitExceeded if ``adding_iops`` more provisioned IOPS (io1, io2) would
    exceed the account's limit: its own (``ocs-manage quota set --provisioned-iops``)
    or else ``limit``. EC2's words: "You've reached the limit on your IOPS usage for
    that region." (its error-code list)."""
    if adding_iops <= 0:
        return
    lock_account(s, account_id)
    limit = provisioned_iops_limit(s, account_id, limit)
    if provisioned_iops_used(s, account_id) + adding_iops > limit:
        raise errors.LimitExceeded(
            "You've reached the limit on your IOPS usage for that region.", code="MaxIOPSLimitExceeded"
        )
