"""Block device mappings of images (EBS-backed AMIs) and the snapshots they hold.

Plain functions taking the session; the caller owns the transaction. An image
registered with a BlockDeviceMapping of snapshots (RegisterImage) or made from an
instance (CreateImage) records one :class:`~ocs.db.models.images.ImageBlockDevice`
per device name. The rules, as EC2 has them (evidence in brackets):

* A snapshot that a live (not deregistered) image names cannot be deleted:
  ``InvalidSnapshot.InUse`` "The snapshot snap-… is currently in use by ami-…"
  [Answers4AWS/backup-monkey#10, rebuy-de/aws-nuke#81, gruntwork-io/cloud-nuke#727].
  DeregisterImage leaves the snapshots (they are the account's, and billed, until
  it deletes them).
* An image made by CreateImage is ``pending`` until every snapshot it names is
  ``completed``, then ``available``; a snapshot that fails makes it ``failed``
  (:func:`snapshot_finished`, in the volume service's transaction that finishes the
  snapshot).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ocs import errors
from ocs.db.images import DEREGISTERED
from ocs.db.models.images import Image, ImageBlockDevice
from ocs.db.models.volumes import Snapshot


@dataclass(frozen=True)
class Mapping:
    """One device of an image, as RegisterImage or CreateImage asks it recorded."""

    device_name: str
    snapshot_id: str | None = None
    volume_size: int | None = None
    volume_type: str | None = None
    iops: int | None = None
    throughput: int | None = None
    encrypted: bool | None = None
    delete_on_termination: bool | None = None
    virtual_name: str | None = None
    no_device: bool = False


def record(s: Session, image_id: str, mappings: Sequence[Mapping]) -> None:
    """Record the image's block device mappings (one per device name, checked by the caller)."""
    for m in mappings:
        s.add(
            ImageBlockDevice(
                image_id=image_id,
                device_name=m.device_name,
                snapshot_id=m.snapshot_id,
                volume_size=m.volume_size,
                volume_type=m.volume_type,
                iops=m.iops,
                throughput=m.throughput,
                encrypted=m.encrypted,
                delete_on_termination=m.delete_on_termination,
                virtual_name=m.virtual_name,
                no_device=m.no_device,
            )
        )
    s.flush()


def of_images(s: Session, image_ids: Iterable[str]) -> dict[str, list[ImageBlockDevice]]:
    """``{image_id: [its mappings by device name]}`` (images without any are absent)."""
    wanted = list(dict.fromkeys(image_ids))
    out: dict[str, list[ImageBlockDevice]] = defaultdict(list)
    if wanted:
        q = select(ImageBlockDevice).where(ImageBlockDevice.image_id.in_(wanted))
        for row in s.scalars(q.order_by(ImageBlockDevice.image_id, ImageBlockDevice.device_name)):
            out[row.image_id].append(row)
    return dict(out)


def snapshots_of(s: Session, image_id: str) -> list[str]:
    """The snapshots the image's mappings name."""
    q = select(ImageBlockDevice.snapshot_id).where(
        ImageBlockDevice.image_id == image_id, ImageBlockDevice.snapshot_id.is_not(None)
    )
    return sorted({str(v) for v in s.scalars(q)})


def image_using(s: Session, snapshot_id: str, *, besides: str | None = None) -> str | None:
    """A live image (other than ``besides``) whose mappings name the snapshot, or None."""
    q = (
        select(Image.id)
        .join(ImageBlockDevice, ImageBlockDevice.image_id == Image.id)
        .where(ImageBlockDevice.snapshot_id == snapshot_id, Image.state != DEREGISTERED)
    )
    if besides is not None:
        q = q.where(Image.id != besides)
    return s.scalars(q.order_by(Image.id).limit(1)).first()


def check_not_in_use(s: Session, snapshot_id: str) -> None:
    """EC2's ``InvalidSnapshot.InUse`` if a live image uses the snapshot."""
    image_id = image_using(s, snapshot_id)
    if image_id is not None:
        raise errors.InUse(
            f"The snapshot {snapshot_id} is currently in use by {image_id}", code="InvalidSnapshot.InUse"
        )


def snapshot_finished(s: Session, snapshot_id: str) -> list[tuple[str, str]]:
    """After the snapshot finished (``completed`` or ``error``): move the pending images
    that name it to ``available`` (all their snapshots completed) or ``failed`` (one
    failed); the (image, new state) pairs."""
    pending = list(
        s.scalars(
            select(Image.id)
            .join(ImageBlockDevice, ImageBlockDevice.image_id == Image.id)
            .where(ImageBlockDevice.snapshot_id == snapshot_id, Image.state == "pending")
        )
    )
    moved = []
    for image_id in sorted(set(pending)):
        states = set(
            s.scalars(
                select(Snapshot.state)
                .join(ImageBlockDevice, ImageBlockDevice.snapshot_id == Snapshot.id)
                .where(ImageBlockDevice.image_id == image_id)
            )
        )
        if "error" in states:
            new = "failed"
        elif states <= {"completed"}:
            new = "available"
        else:
            continue
        done = s.execute(
            update(Image).where(Image.id == image_id, Image.state == "pending").values(state=new)
        )
        if done.rowcount:  # type: ignore[attr-defined]
            moved.append((image_id, new))
    return moved
