"""Importing image files as images, and the all-in-one's default image.

An operator imports a file with ``ocs-manage image import``: its bytes go into
the image store (checksummed, deduplicated) and an image is registered for an
account: a machine image (``ami-``), a kernel (``aki-``) or a ramdisk (``ari-``).

How an imported image looks through the EC2 API (decisions, see the module
docstring of :mod:`ocs.api_ec2.actions.images` for the evidence):

* machine images with a disk are ``ebs``-backed, root device ``/dev/xvda``
  (``/dev/sda1`` when booted by a kernel image), with one block device mapping
  whose VolumeSize is the disk's virtual size rounded up to whole GiB. There is
  no snapshot behind it until block storage exists, so SnapshotId is absent.
  ``ebs`` rather than ``instance-store`` because instances booted from a
  qcow2 overlay keep their disk across stop/start, as EBS-backed ones do.
* kernels and ramdisks are ``instance-store`` images without block devices.
* a machine image booted by a kernel image is ``paravirtual``, others ``hvm``.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from ocs import errors
from ocs.db import images as repo
from ocs.db.models.images import Image
from ocs.images.store import ImageStore, StoredImage

LOG = logging.getLogger(__name__)

GIB = 1024**3
DEFAULT_IMAGE_NAME = "ocs-demo"
DEFAULT_IMAGE_SIZE = 1024 * 1024
DEFAULT_IMAGE_DESCRIPTION = (
    "A blank 1 MiB disk registered by the all-in-one: enough for the simulated "
    "hypervisor. Import a bootable image for real guests."
)


@dataclass(frozen=True)
class ImportRequest:
    """What ``ocs-manage image import`` asks for (the file and the new image's fields)."""

    path: Path
    account_id: str
    name: str
    image_type: str = "machine"
    architecture: str = "x86_64"
    kernel_id: str | None = None
    ramdisk_id: str | None = None
    public: bool = False
    description: str | None = None


def volume_size_gib(virtual_size: int | None) -> int:
    """A disk's size in whole GiB, rounded up, at least 1 (EC2's VolumeSize)."""
    return max(1, -(-(virtual_size or 0) // GIB))


def machine_fields(kernel_id: str | None) -> dict[str, Any]:
    """Device and virtualization fields of a machine image with a disk."""
    if kernel_id:
        return {
            "root_device_type": "ebs",
            "root_device_name": "/dev/sda1",
            "virtualization_type": "paravirtual",
        }
    return {
        "root_device_type": "ebs",
        "root_device_name": "/dev/xvda",
        "virtualization_type": "hvm",
        "ena_support": True,
    }


def stored_fields(stored: StoredImage) -> dict[str, Any]:
    """The :class:`Image` columns describing bytes put in the store."""
    return {
        "location": stored.key,
        "checksum": stored.sha256,
        "size": stored.size,
        "virtual_size": stored.virtual_size,
        "disk_format": stored.disk_format,
    }


def check_boot_images(s: Session, req: ImportRequest) -> None:
    """Validate the kernel and ramdisk of a machine image before any bytes move."""
    if req.image_type != "machine" and (req.kernel_id or req.ramdisk_id):
        raise errors.InvalidParameterCombination(
            reason="Only a machine image can name a kernel or a ramdisk."
        )
    if req.kernel_id:
        repo.get_boot_image(s, req.account_id, req.kernel_id, "kernel")
    if req.ramdisk_id:
        repo.get_boot_image(s, req.account_id, req.ramdisk_id, "ramdisk")


def import_image(s: Session, store: ImageStore, req: ImportRequest) -> Image:
    """Copy ``req.path`` into ``store`` and register it; the new image, ``available``.

    Everything that can be refused (name, kernel, ramdisk, missing file) is checked
    before the copy. If registering fails after the copy, bytes no live image uses
    are removed again.
    """
    repo.validate_name(req.name)
    repo.validate_description(req.description)
    taken = repo.find_by_name(s, req.account_id, req.name)
    if taken is not None:
        raise errors.Duplicate(
            f"AMI name {req.name} is already in use by AMI {taken.id}", code="InvalidAMIName.Duplicate"
        )
    check_boot_images(s, req)
    if not req.path.is_file():
        raise errors.InvalidParameterValue(f"No such image file: {req.path}")
    stored = store.put_file(req.path)
    try:
        return _register(s, req, stored)
    except BaseException:
        _discard_if_unused(s, store, stored.key)
        raise


def _discard_if_unused(s: Session, store: ImageStore, key: str) -> None:
    try:
        unused = repo.live_references(s, key) == 0
    except Exception:  # noqa: BLE001 - the session may be unusable; keep the bytes then
        LOG.warning("Could not tell whether image bytes %s are still used; keeping them", key)
        return
    if unused:
        store.delete(key)


def _register(s: Session, req: ImportRequest, stored: StoredImage) -> Image:
    fields = stored_fields(stored)
    if req.image_type == "machine":
        fields.update(machine_fields(req.kernel_id), kernel_id=req.kernel_id, ramdisk_id=req.ramdisk_id)
    else:
        fields.update(root_device_type="instance-store", virtualization_type="paravirtual")
    return repo.create_image(
        s,
        req.account_id,
        req.name,
        image_type=req.image_type,
        architecture=req.architecture,
        description=req.description,
        is_public=req.public,
        state=repo.AVAILABLE,
        **fields,
    )


def ensure_default_image(
    s: Session, store: ImageStore, owner_account_id: str, name: str = DEFAULT_IMAGE_NAME
) -> Image | None:
    """Register the public default image once; None if it exists or existed.

    An image of that name that the operator has since deregistered is not
    registered again: "once" means once per cloud.
    """
    if repo.find_by_name(s, owner_account_id, name, live_only=False) is not None:
        return None
    stored = store.put(io.BytesIO(bytes(DEFAULT_IMAGE_SIZE)))
    fields = stored_fields(stored) | machine_fields(None)
    image = repo.create_image(
        s,
        owner_account_id,
        name,
        architecture="x86_64",
        description=DEFAULT_IMAGE_DESCRIPTION,
        is_public=True,
        state=repo.AVAILABLE,
        **fields,
    )
    LOG.info("Registered the default image %s (%s)", image.id, name)
    return image


def delete_image(s: Session, image_id: str) -> tuple[Image, str | None]:
    """Deregister any account's image (if still live); the store key now unused, if any.

    The caller removes that key from the store once the transaction committed,
    so a failed commit never leaves a live image without its bytes.
    """
    image = repo.get_image(s, image_id)
    if image.state != repo.DEREGISTERED:
        repo.deregister(s, image)
    key = image.location
    if key and repo.live_references(s, key) == 0:
        return image, key
    return image, None


def remove_unused(store: ImageStore, key: str | None) -> bool:
    """Remove ``key`` from ``store`` (after the deregistration committed)."""
    if not key:
        return False
    removed = store.delete(key)
    if removed:
        LOG.info("Removed unused image bytes %s from %s", key, os.fspath(store.root))
    return removed
