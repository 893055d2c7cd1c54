"""The EBS volumes an instance gets at launch, and the launch's wait for them.

Plain functions taking the session; the caller owns the transaction.

RunInstances makes, in the transaction that makes the instances, one volume
(``creating``) and one attachment (``attaching``, DeleteOnTermination as asked)
per EBS block device of each instance: its root volume, made from the image's
snapshot, and the blank or snapshot-based volumes of the other mappings
(:func:`create`). The volume service makes their bytes; a volume attached when it
is made becomes ``in-use`` rather than ``available`` (:func:`ready_state`) and the
service tells the scheduler. The scheduler builds the guest only once every one
of the instance's volumes exists (:func:`status` ``ready``: the spawn carries
their exports); a volume the service could not make (``error``) fails the launch
(the instance ends terminated with ``Server.InternalError``, as any launch that
fails). When the guest runs, the attachments become ``attached``
(:func:`mark_attached`).

An instance deleted without ever having existed for the account (a launch that
found no room: its rows are deleted, not terminated) takes all its volumes with
it, whatever DeleteOnTermination said
(:func:`ocs.db.volume_cleanup.discard_instance_volumes`); an instance that ends
terminated keeps the rules of :mod:`ocs.db.volume_cleanup`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from ocs.db import volumes as db_volumes
from ocs.db.models.base import utcnow
from ocs.db.models.compute import Instance
from ocs.db.models.volumes import Volume, VolumeAttachment

WAITING, READY, FAILED = "waiting", "ready", "failed"


@dataclass(frozen=True)
class PlannedVolume:
    """One EBS volume of a launch, all of it checked already."""

    device: str
    size_gib: int
    volume_type: str
    iops: int | None
    throughput: int | None
    encrypted: bool
    snapshot_id: str | None
    delete_on_termination: bool


def create(
    s: Session, instance: Instance, planned: Sequence[PlannedVolume], *, now: dt.datetime | None = None
) -> list[str]:
    """The instance's launch volumes (``creating``) and their attachments (``attaching``);
    the new volume IDs, for the volume service."""
    when = now or utcnow()
    made = []
    for p in planned:
        volume = db_volumes.create_volume(
            s,
            instance.account_id,
            availability_zone=instance.availability_zone,
            size_gib=p.size_gib,
            volume_type=p.volume_type,
            iops=p.iops,
            throughput=p.throughput,
            encrypted=p.encrypted,
            snapshot_id=p.snapshot_id,
            now=when,
        )
        s.add(
            VolumeAttachment(
                volume_id=volume.id,
                instance_id=instance.id,
                device=p.device,
                state="attaching",
                delete_on_termination=p.delete_on_termination,
                attach_time=when,
                changed_at=when,
            )
        )
        made.append(volume.id)
    s.flush()
    return made


def room(s: Session, account_id: str, gib_each: int, limit_gib: int) -> int:
    """How many instances of ``gib_each`` GiB of volumes the account's volume storage
    limit still allows (the caller holds the account's lock: ``check_volume_limit``)."""
    held = s.scalar(
        select(func.coalesce(func.sum(Volume.size_gib), 0)).where(Volume.account_id == account_id)
    )
    return max(0, (limit_gib - int(held or 0)) // max(1, gib_each))


def is_launching(instance: Instance) -> bool:
    """Whether the instance is being built: its ``attaching`` volumes are its launch's,
    which become ``attached`` with its guest (not through a hot-plug's report)."""
    return instance.state == "pending" and instance.task in ("scheduling", "spawning")


def ready_state(s: Session, volume_id: str) -> str:
    """The state a volume whose bytes were just made moves to: ``in-use`` when it is
    attached (made for a launch), else ``available``."""
    held = s.scalar(select(exists().where(VolumeAttachment.volume_id == volume_id)))
    return "in-use" if held else "available"


def instance_of(s: Session, volume_id: str) -> str | None:
    """The instance a volume is attached to (None: none)."""
    return s.scalars(
        select(VolumeAttachment.instance_id).where(VolumeAttachment.volume_id == volume_id).limit(1)
    ).first()


def status(s: Session, instance_id: str) -> tuple[str, str]:
    """Whether the instance's launch volumes (its ``attaching`` attachments) are made:
    ``ready`` (all of them, with their exports, or it has none), ``waiting``, or
    ``failed`` with the reason the volume service recorded."""
    rows = s.execute(
        select(Volume.id, Volume.state, Volume.export, Volume.status_reason)
        .join(VolumeAttachment, VolumeAttachment.volume_id == Volume.id)
        .where(VolumeAttachment.instance_id == instance_id, VolumeAttachment.state == "attaching")
        .order_by(Volume.id)
    ).all()
    for volume_id, state, _export, reason in rows:
        if state in ("error", "deleting"):
            return FAILED, f"volume {volume_id} could not be created: {reason or state}"[:200]
    if any(state != "in-use" or not export for _v, state, export, _r in rows):
        return WAITING, ""
    return READY, ""


def waiting_among(s: Session, instance_ids: Sequence[str]) -> set[str]:
    """Those of the instances whose launch volumes are not all made (one query per 500):
    a volume of theirs attached ``attaching`` that is not ``in-use`` with its export."""
    out: set[str] = set()
    wanted = list(instance_ids)
    for start in range(0, len(wanted), 500):
        q = (
            select(VolumeAttachment.instance_id)
            .join(Volume, Volume.id == VolumeAttachment.volume_id)
            .where(
                VolumeAttachment.instance_id.in_(wanted[start : start + 500]),
                VolumeAttachment.state == "attaching",
                (Volume.state != "in-use") | Volume.export.is_(None),
            )
        )
        out.update(s.scalars(q))
    return out


def mark_attached(s: Session, instance_id: str) -> None:
    """The guest runs with its launch volumes: ``attaching`` → ``attached``."""
    s.execute(
        update(VolumeAttachment)
        .where(VolumeAttachment.instance_id == instance_id, VolumeAttachment.state == "attaching")
        .values(state="attached", changed_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def waiting_launches(s: Session, before: dt.datetime, limit: int = 500) -> list[str]:
    """Instances being built (pending, placed) since before ``before`` whose launch
    volumes are still ``attaching``: their wait may have missed the volume service's word."""
    q = (
        select(Instance.id)
        .where(
            Instance.state == "pending",
            Instance.task == "spawning",
            Instance.host.is_not(None),
            Instance.updated_at < before,
            exists().where(
                VolumeAttachment.instance_id == Instance.id, VolumeAttachment.state == "attaching"
            ),
        )
        .order_by(Instance.updated_at)
        .limit(limit)
    )
    return list(s.scalars(q))
