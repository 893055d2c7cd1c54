"""Images (EC2's AMIs, AKIs and ARIs) and their launch permissions.

An image always belongs to an account: images the operator imports with
``ocs-manage image import`` belong to the account given there (``admin`` by
default) and are made visible to everyone with ``--public``. The image's bytes
live in the image store (:mod:`ocs.images.store`) under ``location``, a key
derived from their SHA-256 checksum, so two images with the same bytes share
one file. A kernel-booted machine image registered with RegisterImage may have
no bytes of its own (``location`` is NULL): it boots its kernel and ramdisk.

Deregistered images keep their row (state ``deregistered``) so that instances
launched from them still name a known image; they never appear in DescribeImages.

An EBS-backed image (RegisterImage with a BlockDeviceMapping of snapshots, or
CreateImage) has no bytes of its own: its block devices
(:class:`ImageBlockDevice`, one row per device name) name the snapshots its
instances' volumes are made from, and ephemeral or suppressed devices.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ocs.db.models.base import Base, utcnow

IMAGE_TYPES: Final = ("machine", "kernel", "ramdisk")
IMAGE_STATES: Final = (
    "pending",
    "available",
    "invalid",
    "deregistered",
    "transient",
    "failed",
    "error",
    "disabled",
)
ROOT_DEVICE_TYPES: Final = ("ebs", "instance-store")
VIRTUALIZATION_TYPES: Final = ("hvm", "paravirtual")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ('" + "', '".join(values) + "')"


class Image(Base):
    """One registered image of an account (machine, kernel or ramdisk)."""

    __tablename__ = "images"
    __table_args__ = (
        CheckConstraint(_in("image_type", IMAGE_TYPES), name="image_type"),
        CheckConstraint(_in("state", IMAGE_STATES), name="state"),
        CheckConstraint(_in("root_device_type", ROOT_DEVICE_TYPES), name="root_device_type"),
        CheckConstraint(_in("virtualization_type", VIRTUALIZATION_TYPES), name="virtualization_type"),
        Index("ix_images_account_name", "account_id", "name"),
    )

    id: Mapped[str] = mapped_column(String(21), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(12), ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(String(255))
    image_type: Mapped[str] = mapped_column(String(8), default="machine")
    state: Mapped[str] = mapped_column(String(16), default="available")
    architecture: Mapped[str] = mapped_column(String(16), default="x86_64")
    kernel_id: Mapped[str | None] = mapped_column(String(21))
    ramdisk_id: Mapped[str | None] = mapped_column(String(21))
    root_device_name: Mapped[str | None] = mapped_column(String(32))
    root_device_type: Mapped[str] = mapped_column(String(16), default="ebs")
    virtualization_type: Mapped[str] = mapped_column(String(16), default="hvm")
    is_public: Mapped[bool] = mapped_column(default=False, server_default=false(), index=True)
    ena_support: Mapped[bool | None] = mapped_column()
    sriov_net_support: Mapped[str | None] = mapped_column(String(16))
    boot_mode: Mapped[str | None] = mapped_column(String(16))
    tpm_support: Mapped[str | None] = mapped_column(String(8))
    imds_support: Mapped[str | None] = mapped_column(String(8))
    # The bytes in the image store (NULL for a kernel-booted image without a disk).
    location: Mapped[str | None] = mapped_column(String(255))
    disk_format: Mapped[str | None] = mapped_column(String(8))
    size: Mapped[int | None] = mapped_column(BigInteger)  # bytes in the store
    virtual_size: Mapped[int | None] = mapped_column(BigInteger)  # bytes the guest sees
    checksum: Mapped[str | None] = mapped_column(String(64))  # sha256, hex
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    deregistered_at: Mapped[dt.datetime | None] = mapped_column()
    last_launched_at: Mapped[dt.datetime | None] = mapped_column()

    launch_permissions: Mapped[list[ImageLaunchPermission]] = relationship(
        back_populates="image",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ImageLaunchPermission.account_id",
    )

    def __repr__(self) -> str:
        return (
            f"Image(id={self.id!r}, account_id={self.account_id!r}, name={self.name!r}, "
            f"type={self.image_type!r}, state={self.state!r}, public={self.is_public!r})"
        )


class ImageLaunchPermission(Base):
    """An explicit launch permission: ``account_id`` may launch ``image_id``.

    The public group ``all`` is :attr:`Image.is_public`, not a row here. The
    account is not a foreign key: EC2 lets an owner share with any account ID.
    """

    __tablename__ = "image_launch_permissions"

    image_id: Mapped[str] = mapped_column(
        String(21), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(String(12), primary_key=True, index=True)

    image: Mapped[Image] = relationship(back_populates="launch_permissions")


class ImageBlockDevice(Base):
    """One block device mapping of an image, as RegisterImage and CreateImage record it.

    Exactly one of: an EBS volume (``snapshot_id`` and/or ``volume_size``, with the
    volume's type, IOPS, throughput, encryption and DeleteOnTermination), an
    instance store volume (``virtual_name`` ``ephemeralN``) or a suppressed device
    (``no_device``). ``snapshot_id`` is not a foreign key: DeleteSnapshot refuses a
    snapshot a live image names (``InvalidSnapshot.InUse``), and a deregistered
    image's rows stay with it.
    """

    __tablename__ = "image_block_devices"

    image_id: Mapped[str] = mapped_column(
        String(21), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    device_name: Mapped[str] = mapped_column(String(32), primary_key=True)
    snapshot_id: Mapped[str | None] = mapped_column(String(32), index=True)
    volume_size: Mapped[int | None] = mapped_column(Integer)
    volume_type: Mapped[str | None] = mapped_column(String(16))
    iops: Mapped[int | None] = mapped_column(Integer)
    throughput: Mapped[int | None] = mapped_column(Integer)
    encrypted: Mapped[bool | None] = mapped_column(Boolean)
    delete_on_termination: Mapped[bool | None] = mapped_column(Boolean)
    virtual_name: Mapped[str | None] = mapped_column(String(32))
    no_device: Mapped[bool] = mapped_column(Boolean, default=False)
