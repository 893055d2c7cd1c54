"""CreateImage: an EBS-backed image made from an instance's EBS volumes.

CreateImage snapshots every EBS volume of the instance (its root volume and the
others attached, but those the request's ``NoDevice`` leaves out) and registers
an EBS-backed image whose block device mappings name the snapshots (each with its
volume's size, type, IOPS, throughput and encryption, and the attachment's
DeleteOnTermination). The image answers ``pending`` at once and becomes
``available`` when all its snapshots are ``completed`` (``failed`` if one fails:
:mod:`ocs.db.block_devices`). The snapshots are described "Created by
CreateImage(i-…) for ami-…", as EC2 describes them; TagSpecifications tag the image
and the snapshots.

Rebooting: without ``NoReboot``, a running instance's guest is powered off (ACPI,
as StopInstances does, the plug pulled after the agent's stop timeout), the volume
service copies the volumes while it is off, and the guest starts again
(``ComputeApi.image_guest``); the instance stays ``running`` (its task is
``rebooting`` meanwhile), as EC2's does. With ``NoReboot``, or for an instance
that is stopped, the snapshots are taken as CreateSnapshot takes them: at once,
crash-consistent for a guest that writes meanwhile.

EC2's answers (evidence in brackets):

* An instance neither ``running``, ``stopping`` nor ``stopped``:
  ``InvalidParameterValue`` "Invalid value 'i-…' for instanceId. Instance is not in
  state 'running' or 'stopping' or 'stopped'"
  [aws-samples/aws-systemsmanagerautomation-with-asglifecyclehooks#2].
* CreateImage makes "an Amazon EBS-backed AMI from an Amazon EBS-backed instance"
  (API reference): an instance without a volume at its root device (one of an
  instance-store image, or of an image of the image store, whose root disk is the
  host's, not a volume) is ``InvalidParameterValue`` "Invalid value 'i-…' for
  instanceId. Instance does not have a volume attached at root (/dev/sda1)" (the
  words EC2 uses for an instance without its root volume, EC2 VM Import guide; nova's
  EC2 API answered CreateImage so).
* ``BlockDeviceMapping``: "The only option that can be changed for existing
  mappings or snapshots is DeleteOnTermination" (API reference): any other field
  of an instance's device is ``InvalidBlockDeviceMapping``; ``NoDevice`` leaves a
  volume out (not the root's); a device the instance has no volume at adds a
  mapping to the image (a snapshot of the caller's, a blank size, ``ephemeralN``).
* The name is checked and must be unused as in RegisterImage
  (``InvalidAMIName.Malformed``, ``InvalidAMIName.Duplicate``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ocs import errors
from ocs.api_ec2 import tagging
from ocs.api_ec2.actions import block_devices
from ocs.api_ec2.context import RequestContext
from ocs.compute_agent.rpcapi import ImageGuest
from ocs.db import block_devices as db_block_devices
from ocs.db import compute as db_compute
from ocs.db import images as db_images
from ocs.db import tags as db_tags
from ocs.db import volume_attachments as db_attachments
from ocs.db import volumes as db_volumes
from ocs.db.models.compute import Instance
from ocs.db.models.images import Image
from ocs.db.models.volumes import Volume, VolumeAttachment
from ocs.volume.rpcapi import CreateSnapshot

IMAGEABLE = ("running", "stopping", "stopped")


def _invalid_instance(instance_id: str, why: str) -> errors.OcsError:
    return errors.InvalidParameterValue(f"Invalid value '{instance_id}' for instanceId. {why}")


def _volumes(ctx: RequestContext, instance: Instance) -> dict[str, VolumeAttachment]:
    """The instance's EBS volumes by device (those being detached are no longer its)."""
    if instance.state not in IMAGEABLE:
        raise _invalid_instance(instance.id, "Instance is not in state 'running' or 'stopping' or 'stopped'")
    attached = db_attachments.of_instances(ctx.session, [instance.id])[instance.id]
    volumes = {a.device: a for a in attached if a.state != "detaching"}
    root = instance.root_device_name
    if root not in volumes:
        raise _invalid_instance(instance.id, f"Instance does not have a volume attached at root ({root})")
    return volumes


def _kept(
    requested: dict[str, block_devices.Requested], volumes: dict[str, VolumeAttachment], root: str
) -> dict[str, bool]:
    """The instance's devices the image gets, with their DeleteOnTermination."""
    kept = {}
    for device, attachment in volumes.items():
        req = requested.get(device)
        if req is not None and req.no_device:
            if device == root:
                raise block_devices.bad(f"The root device {root} cannot be suppressed with NoDevice")
            continue
        ebs = (req.ebs if req is not None else None) or {}
        if (req is not None and req.virtual_name) or set(ebs) - {"DeleteOnTermination"}:
            raise block_devices.bad(
                f"Only DeleteOnTermination can be changed for the instance's volume at {device}"
            )
        dot = ebs.get("DeleteOnTermination")
        kept[device] = attachment.delete_on_termination if dot is None else bool(dot)
    return kept


def create_image(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    s, me, now = ctx.session, ctx.account_id, ctx.now()
    instance = db_compute.get_instance(s, me, params.get("InstanceId"))
    name = db_images.validate_name(params.get("Name") or "")
    description = db_images.validate_description(params.get("Description") or None)
    tags = tagging.tag_specifications(params, "CreateImage")
    volumes = _volumes(ctx, instance)
    root = instance.root_device_name
    requested = block_devices.parse(params.get("BlockDeviceMappings"), root)
    kept = _kept(requested, volumes, root)
    added = [block_devices.image_mapping(ctx, r) for d, r in requested.items() if d not in volumes]
    source = s.get(Image, instance.image_id)
    image = db_images.create_image(
        s,
        me,
        name,
        image_type="machine",
        description=description,
        state="pending",
        architecture=instance.architecture,
        kernel_id=instance.kernel_id,
        ramdisk_id=instance.ramdisk_id,
        root_device_type="ebs",
        root_device_name=root,
        virtualization_type=source.virtualization_type if source else "hvm",
        ena_support=source.ena_support if source else None,
        boot_mode=source.boot_mode if source else None,
        created_at=now,
    )
    mappings, snapshot_ids = [], []
    for device in sorted(kept, key=lambda d: (d != root, d)):
        db_volumes.check_snapshot_limit(s, me, ctx.settings.snapshots_per_account)
        volume = s.get(Volume, volumes[device].volume_id)
        assert volume is not None  # an attachment belongs to its volume
        words = f"Created by CreateImage({instance.id}) for {image.id}"
        snapshot = db_volumes.create_snapshot(s, me, volume.id, words, now=now)
        snapshot_ids.append(snapshot.id)
        mapping = block_devices.mapping_of(volume, device, kept[device])
        mappings.append(dataclasses.replace(mapping, snapshot_id=snapshot.id))
    db_block_devices.record(s, image.id, mappings + added)
    if tags.get("image"):
        db_tags.set_tags(s, me, [(image.id, "image")], tags["image"])
    if tags.get("snapshot"):
        db_tags.set_tags(s, me, [(i, "snapshot") for i in snapshot_ids], tags["snapshot"])
    _take(ctx, instance, snapshot_ids, reboot=not params.get("NoReboot"))
    return {"ImageId": image.id}


def _take(ctx: RequestContext, instance: Instance, snapshot_ids: list[str], *, reboot: bool) -> None:
    """Have the snapshots taken once the request has committed: by the instance's agent,
    which holds the guest off meanwhile (reboot of a running instance), else at once."""
    compute, volume = ctx.services.get("compute"), ctx.services.get("volume")
    host = instance.host
    held = reboot and instance.state == "running" and host and instance.task is None
    if (
        compute is not None
        and held
        and db_compute.update_if_unchanged(ctx.session, instance, task="rebooting")
    ):
        message = ImageGuest(host=str(host), instance_id=instance.id, snapshot_ids=snapshot_ids)
        ctx.on_commit(lambda: compute.image_guest(message))
        return
    if volume is not None:
        for snapshot_id in snapshot_ids:
            request = CreateSnapshot(snapshot_id)
            ctx.on_commit(lambda r=request: volume.create_snapshot(r))  # type: ignore[misc]


ACTIONS = {"CreateImage": create_image}
