"""EBS volumes, their attachments to instances, and snapshots.

A volume's ``state`` is EC2's: ``creating`` (the API made the row and asked the
volume service for the bytes), ``available``, ``in-use`` (attached), ``deleting``
(the service removes the bytes, then the row) or ``error``. A snapshot's is
``pending`` until the service has copied the bytes, then ``completed`` (or
``error``); ``progress`` is the percentage EC2 shows as ``Progress``.

A snapshot outlives its volume and a volume its snapshot, so neither refers to
the other by a foreign key. An attachment belongs to its volume; the primary key
(volume, instance) leaves room for Multi-Attach, the unique (instance, device)
keeps two volumes off one device name of an instance. An attachment's ``state`` is
EC2's: ``attaching`` until the instance's host has plugged the volume in, then
``attached``; ``detaching`` until it has let go (the row is then removed).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from ocs.db.models.base import Base, utcnow

_ID = 32


class Volume(Base):
    __tablename__ = "volumes"

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)  # vol-...
    account_id: Mapped[str] = mapped_column(
        String(12), ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    availability_zone: Mapped[str] = mapped_column(String(64))
    size_gib: Mapped[int] = mapped_column(Integer)
    volume_type: Mapped[str] = mapped_column(String(16))
    iops: Mapped[int | None] = mapped_column(Integer)
    throughput: Mapped[int | None] = mapped_column(Integer)
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    snapshot_id: Mapped[str | None] = mapped_column(String(_ID))
    multi_attach_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16), default="creating")
    status_reason: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Where a hypervisor finds the bytes ({"backend", "target", "options"}: the backend's
    # Export), recorded by the volume service once it has made them; None before.
    export: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    auto_enable_io: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class VolumeAttachment(Base):
    __tablename__ = "volume_attachments"
    __table_args__ = (UniqueConstraint("instance_id", "device"),)

    volume_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("volumes.id", ondelete="CASCADE"), primary_key=True
    )
    instance_id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    device: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="attaching")
    delete_on_termination: Mapped[bool] = mapped_column(Boolean, default=False)
    attach_time: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # When the attachment entered its state (None: before this was kept; attach_time
    # then): the volume service settles one stuck attaching or detaching past a timeout.
    changed_at: Mapped[dt.datetime | None] = mapped_column()


class Snapshot(Base):
    __tablename__ = "snapshots"

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)  # snap-...
    account_id: Mapped[str] = mapped_column(
        String(12), ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    volume_id: Mapped[str] = mapped_column(String(_ID), index=True)
    volume_size: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(255), default="")
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    progress: Mapped[int] = mapped_column(Integer, default=0)
    status_message: Mapped[str] = mapped_column(String(255), default="")
    data_bytes: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column()
    # CopySnapshot: the snapshot whose bytes the service copies (None: from volume_id).
    source_snapshot_id: Mapped[str | None] = mapped_column(String(_ID))
    kms_key_id: Mapped[str | None] = mapped_column(String(255))


class SnapshotPermission(Base):
    """EC2's createVolumePermission: ``grantee`` (an account ID, or ``all``) may see the
    snapshot and create volumes from it."""

    __tablename__ = "snapshot_permissions"

    snapshot_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    grantee: Mapped[str] = mapped_column(String(12), primary_key=True, index=True)


class VolumeModification(Base):
    """The latest ModifyVolume of a volume: ``modifying`` (the service grows the bytes)
    → ``optimizing`` (the volume has its new size and type) → ``completed``, or
    ``failed`` (the volume keeps its original values)."""

    __tablename__ = "volume_modifications"

    volume_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("volumes.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(16), default="modifying")
    status_message: Mapped[str] = mapped_column(String(255), default="")
    progress: Mapped[int] = mapped_column(Integer, default=0)
    original_size: Mapped[int] = mapped_column(Integer)
    original_volume_type: Mapped[str] = mapped_column(String(16))
    original_iops: Mapped[int | None] = mapped_column(Integer)
    original_throughput: Mapped[int | None] = mapped_column(Integer)
    original_multi_attach: Mapped[bool] = mapped_column(Boolean, default=False)
    target_size: Mapped[int] = mapped_column(Integer)
    target_volume_type: Mapped[str] = mapped_column(String(16))
    target_iops: Mapped[int | None] = mapped_column(Integer)
    target_throughput: Mapped[int | None] = mapped_column(Integer)
    target_multi_attach: Mapped[bool] = mapped_column(Boolean, default=False)
    start_time: Mapped[dt.datetime] = mapped_column(default=utcnow)
    end_time: Mapped[dt.datetime | None] = mapped_column()
