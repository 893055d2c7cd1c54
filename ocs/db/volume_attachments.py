"""Attaching EBS volumes to instances and detaching them: the rules, EC2's errors, the states.

The API starts an attach or a detach here; when the instance's guest must be
changed (it is on a host and not stopped) the row waits in ``attaching`` or
``detaching`` until the compute agent has done it and the scheduler service
records the outcome (:func:`finish_attach`, :func:`finish_detach`, conditional
updates: a report handled twice changes nothing). A stopped instance's volumes
change on the record at once; its guest gets them when it starts.

EC2's answers (evidence in brackets; :mod:`ocs.volume.devices` for device names):

* AttachVolume of a volume attached already: ``VolumeInUse`` "vol-… is already
  attached to an instance" [ansible-collections/amazon.aws ec2_vol tests]; of one
  not ``available``: ``IncorrectState`` "Volume 'vol-…' is in the 'creating' state."
  (:func:`ocs.db.volumes.incorrect_state`).
* An instance neither ``running`` nor ``stopped``: ``IncorrectState`` "Instance
  'i-…' is not 'running'." [ansible-collections/amazon.aws#497, dstack#3603].
* Another zone: ``InvalidVolume.ZoneMismatch`` "The volume 'vol-…' is not in the
  same availability zone as instance 'i-…'" (the issue's wording, as EC2's).
* DetachVolume of a volume not attached: ``IncorrectState`` "Volume 'vol-…' is in
  the 'available' state." [aws-ebs-csi-driver#1801]; of the root device:
  ``IncorrectState`` "Unable to detach root volume 'vol-…' from instance 'i-…'"
  [terraform report quoted in a public README]. An InstanceId or Device that does
  not match the attachment: ``InvalidAttachment.NotFound`` (EC2's code for a missing
  attachment; its exact words were not found).
* IDs of other accounts are ``InvalidVolume.NotFound`` / ``InvalidInstanceID.NotFound``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ocs import errors
from ocs.db import compute as db_compute
from ocs.db import volume_modifications as db_modifications
from ocs.db import volumes as db_volumes
from ocs.db.models.base import utcnow
from ocs.db.models.compute import Instance
from ocs.db.models.volumes import Volume, VolumeAttachment
from ocs.volume import devices

#: Instance states a volume may be attached in (EC2: running or stopped).
ATTACHABLE = ("running", "stopped")
#: Instance states whose guest is changed at once (a stopped one's when it starts).
HOT = ("pending", "running", "stopping")


@dataclass(frozen=True)
class Change:
    """An attach or detach started: the attachment and whether the guest must follow now."""

    attachment: VolumeAttachment
    instance: Instance | None  # None: the instance is gone (purged)
    volume: Volume
    hot: bool


def is_hot(instance: Instance) -> bool:
    return bool(instance.host) and instance.state in HOT


def of_instances(s: Session, instance_ids: Sequence[str]) -> dict[str, list[VolumeAttachment]]:
    """The instances' attachments, by device name."""
    out: dict[str, list[VolumeAttachment]] = defaultdict(list)
    if instance_ids:
        q = select(VolumeAttachment).where(VolumeAttachment.instance_id.in_(list(instance_ids)))
        for row in s.scalars(q.order_by(VolumeAttachment.instance_id, VolumeAttachment.device)):
            out[row.instance_id].append(row)
    return out


def for_guest(s: Session, instance_id: str) -> list[tuple[VolumeAttachment, Volume]]:
    """What the instance's guest must have plugged in: its attachments that are not
    being detached, with their volumes, by device name."""
    return for_guests(s, [instance_id])[instance_id]


def for_guests(s: Session, instance_ids: Sequence[str]) -> dict[str, list[tuple[VolumeAttachment, Volume]]]:
    """:func:`for_guest` of each of the instances, in one query per 500 of them."""
    out: dict[str, list[tuple[VolumeAttachment, Volume]]] = {i: [] for i in instance_ids}
    wanted = list(out)
    for start in range(0, len(wanted), 500):
        q = (
            select(VolumeAttachment, Volume)
            .join(Volume, Volume.id == VolumeAttachment.volume_id)
            .where(
                VolumeAttachment.instance_id.in_(wanted[start : start + 500]),
                VolumeAttachment.state != "detaching",
            )
            .order_by(VolumeAttachment.device)
        )
        for att, vol in s.execute(q):
            out[att.instance_id].append((att, vol))
    return out


def start_attach(
    s: Session,
    account_id: str,
    volume_id: str,
    instance_id: str,
    device: str,
    *,
    now: dt.datetime | None = None,
) -> Change:
    volume = db_volumes.get_volume(s, account_id, volume_id)
    instance = db_compute.get_instance(s, account_id, instance_id)
    devices.check_device(device)
    if db_volumes.attachments_of(s, [volume.id]).get(volume.id):
        raise errors.InUse(f"{volume.id} is already attached to an instance", code="VolumeInUse")
    if volume.state != "available":
        raise db_volumes.incorrect_state("Volume", volume.id, volume.state)
    db_modifications.check_attachable(s, volume.id)
    if instance.state not in ATTACHABLE:
        raise errors.IncorrectState(f"Instance '{instance.id}' is not 'running'.")
    if volume.availability_zone != instance.availability_zone:
        raise errors.IncorrectState(
            f"The volume '{volume.id}' is not in the same availability zone as instance '{instance.id}'",
            code="InvalidVolume.ZoneMismatch",
        )
    taken = [instance.root_device_name or "/dev/sda1"]
    taken += [a.device for a in of_instances(s, [instance.id]).get(instance.id, [])]
    devices.check_free(device, taken)
    moved = s.execute(
        update(Volume).where(Volume.id == volume.id, Volume.state == "available").values(state="in-use")
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise errors.IncorrectState(f"Volume '{volume.id}' changed state; try again.")
    hot = is_hot(instance)
    row = VolumeAttachment(
        volume_id=volume.id,
        instance_id=instance.id,
        device=device,
        state="attaching" if hot else "attached",
        delete_on_termination=False,
        attach_time=now or utcnow(),
        changed_at=now or utcnow(),
    )
    try:
        with s.begin_nested():
            s.add(row)
            s.flush()
    except IntegrityError:  # another request took the device (or the volume) meanwhile
        raise devices.in_use(device) from None
    s.refresh(volume)
    return Change(row, instance, volume, hot)


def start_detach(
    s: Session, account_id: str, volume_id: str, instance_id: str | None, device: str | None
) -> Change:
    volume = db_volumes.get_volume(s, account_id, volume_id)
    if instance_id:
        db_compute.get_instance(s, account_id, instance_id)  # NotFound for a stranger's
    attached = db_volumes.attachments_of(s, [volume.id]).get(volume.id) or []
    if not attached:
        raise db_volumes.incorrect_state("Volume", volume.id, volume.state)
    row = attached[0]
    if instance_id and row.instance_id != instance_id:
        raise errors.NotFound(
            f"The volume '{volume.id}' is not attached to instance '{instance_id}'.",
            code="InvalidAttachment.NotFound",
        )
    if device and row.device != device:
        raise errors.NotFound(
            f"The volume '{volume.id}' is not attached at device '{device}'.",
            code="InvalidAttachment.NotFound",
        )
    instance = s.get(Instance, row.instance_id)
    if instance is None:  # purged meanwhile: nothing holds the volume any more
        _forget(s, row)
        return Change(row, None, volume, False)
    if row.device == instance.root_device_name:
        raise errors.IncorrectState(
            f"Unable to detach root volume '{volume.id}' from instance '{instance.id}'"
        )
    if row.state == "attaching":
        raise errors.IncorrectState(f"Volume '{volume.id}' is in the 'attaching' state.")
    hot = is_hot(instance)
    if not hot:
        _forget(s, row)
    elif row.state != "detaching":
        row.state = "detaching"
        row.changed_at = utcnow()
        s.flush()
    return Change(row, instance, volume, hot)


def _forget(s: Session, row: VolumeAttachment) -> None:
    """Remove the attachment; its volume is ``available`` once nothing holds it."""
    s.execute(
        delete(VolumeAttachment).where(
            VolumeAttachment.volume_id == row.volume_id, VolumeAttachment.instance_id == row.instance_id
        )
    )
    _free(s, row.volume_id)


def _free(s: Session, volume_id: str) -> None:
    held = exists().where(VolumeAttachment.volume_id == volume_id)
    s.execute(
        update(Volume)
        .where(Volume.id == volume_id, Volume.state == "in-use", ~held)
        .values(state="available")
        .execution_options(synchronize_session=False)
    )


# --- what the agents report (through the scheduler service) ------------------------------------


def _where(volume_id: str, instance_id: str, state: str) -> Any:
    return (
        VolumeAttachment.volume_id == volume_id,
        VolumeAttachment.instance_id == instance_id,
        VolumeAttachment.state == state,
    )


def finish_attach(s: Session, volume_id: str, instance_id: str, ok: bool) -> bool:
    """``attaching`` → ``attached``; or, if the host could not, the attachment is undone
    (the volume ``available`` again). False if it was not attaching (a repeated report)."""
    if ok:
        done = s.execute(
            update(VolumeAttachment)
            .where(*_where(volume_id, instance_id, "attaching"))
            .values(state="attached")
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]
    done = s.execute(delete(VolumeAttachment).where(*_where(volume_id, instance_id, "attaching")))
    if done.rowcount:  # type: ignore[attr-defined]
        _free(s, volume_id)
    return bool(done.rowcount)  # type: ignore[attr-defined]


def finish_detach(s: Session, volume_id: str, instance_id: str, ok: bool) -> bool:
    """``detaching`` → gone (the volume ``available``); or, if the guest would not let go,
    ``attached`` again. False if it was not detaching."""
    if not ok:
        done = s.execute(
            update(VolumeAttachment)
            .where(*_where(volume_id, instance_id, "detaching"))
            .values(state="attached")
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]
    done = s.execute(delete(VolumeAttachment).where(*_where(volume_id, instance_id, "detaching")))
    if done.rowcount:  # type: ignore[attr-defined]
        _free(s, volume_id)
    return bool(done.rowcount)  # type: ignore[attr-defined]


def set_delete_on_termination(
    s: Session, instance: Instance, device: str, value: bool, volume_id: str | None = None
) -> None:
    """ModifyInstanceAttribute's BlockDeviceMapping: the flag of the volume at ``device``
    (which must be ``volume_id`` when that is given)."""
    q = update(VolumeAttachment).where(
        VolumeAttachment.instance_id == instance.id, VolumeAttachment.device == device
    )
    if volume_id:
        q = q.where(VolumeAttachment.volume_id == volume_id)
    done = s.execute(q.values(delete_on_termination=bool(value)))
    if not done.rowcount:  # type: ignore[attr-defined]
        raise errors.InvalidParameterValue(
            f"No device is currently mapped at {device} on instance '{instance.id}'.",
            code="InvalidInstanceAttributeValue",
        )
