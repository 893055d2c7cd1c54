"""Block device mappings: what RunInstances, RegisterImage and CreateImage take, and
what DescribeImages shows of an image's.

A mapping names a device and one of ``Ebs`` (a volume made from ``SnapshotId``,
or blank of ``VolumeSize``; ``VolumeType`` gp2/gp3/io1/io2/st1/sc1/standard with
``Iops`` and ``Throughput`` checked as CreateVolume checks them,
:mod:`ocs.volume.types`; ``Encrypted``; ``DeleteOnTermination``), ``VirtualName``
(an instance store volume, ``ephemeral0`` to ``ephemeral23``) or ``NoDevice`` (the
image's mapping of that device is suppressed).

EC2's answers (evidence in brackets; ``InvalidBlockDeviceMapping`` unless said):

* A device name that is not an EBS device name (:mod:`ocs.volume.devices`: the
  Linux ``/dev/sd[a-z]``, ``/dev/xvd[a-z]``, ``/dev/xvd[b-c][a-z]``) nor the
  image's root device name: "Invalid device name /dev/sde1" [aws/aws-cli#1071];
  none: "Missing device name" [hashicorp/packer#6138]. One device mapped twice:
  "/dev/sde is being assigned to multiple times." [hashicorp/packer#2320]; so is
  ``/dev/sdf`` beside ``/dev/xvdf`` here (one virtio slot to the guest), and a
  device in the root device's slot. ``z`` is the config drive's slot here.
* A new EBS mapping with neither snapshot nor size: "Either snapshot ID or volume
  size must be provided for: /dev/sda1" [nortontruter/infracoders-workshop#3,
  hashicorp/packer#1500]; a size below the snapshot's: "Volume of size 15GB is
  smaller than  snapshot 'snap-…', expect size >= 30GB" (EC2's double space)
  [scylladb/scylladb#6999, openshift/origin-ci-tool#153].
* A snapshot the caller does not own is ``InvalidSnapshot.NotFound``; one not
  ``completed``, ``IncorrectState`` (as CreateVolume answers). The snapshots of
  an image being launched are the image's: their owner's, not checked against
  the caller (EC2 lets anyone who may launch an AMI launch its snapshots).
* KMS keys, Outposts and initialization rates are ``Unsupported`` (as in
  CreateVolume). OCS's instance types have no instance store: an ``ephemeralN``
  mapping is accepted and gives the instance no device, as on an EC2 type
  without instance store volumes.

RunInstances merges the request's mappings into the image's, device by device:
a request mapping overrides the image's fields it names (``SnapshotId`` only for
a device other than the root); ``NoDevice`` drops an image mapping (not the
root's); ``DeleteOnTermination`` defaults to true, for the root and for mappings
made at launch alike. An image whose root device is an EBS snapshot (an
EBS-backed AMI) gets a root volume made from it; any other image (one imported
into the image store, an instance-store image) boots from a disk of its own on
the host, whose size the root mapping's ``VolumeSize`` sets. Words of OCS's own,
where EC2's were not found: the conflicting-mapping, root ``NoDevice``,
root ``SnapshotId`` and reserved-slot messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ocs import errors
from ocs.api_ec2.context import RequestContext
from ocs.db import block_devices as db_block_devices
from ocs.db import volumes as db_volumes
from ocs.db.launch_volumes import PlannedVolume
from ocs.db.models.images import Image, ImageBlockDevice
from ocs.db.models.instance_types import InstanceType
from ocs.db.models.volumes import Snapshot, Volume
from ocs.images.importer import volume_size_gib
from ocs.volume import devices, types

_EPHEMERAL = re.compile(r"^ephemeral([0-9]|1[0-9]|2[0-3])$")
_UNSUPPORTED = {
    "KmsKeyId": "KMS keys are not supported by this cloud.",
    "OutpostArn": "Outposts are not supported by this cloud.",
    "VolumeInitializationRate": "Volume initialization rates are not supported by this cloud.",
}
#: The slot of the config drive (:mod:`ocs.compute_agent.domain_xml`).
_CONFIG_DRIVE_SLOT = "z"


def bad(message: str) -> errors.OcsError:
    return errors.InvalidParameterValue(message, code="InvalidBlockDeviceMapping")


@dataclass(frozen=True)
class Requested:
    """One mapping of a request, its device name checked."""

    device: str
    ebs: dict[str, Any] | None = None
    virtual_name: str | None = None
    no_device: bool = False


def parse(mappings: list[dict[str, Any]] | None, root_device: str) -> dict[str, Requested]:
    """The request's mappings by device name, in request order; EC2's errors for bad ones."""
    out: dict[str, Requested] = {}
    slots = {devices.slot_of(root_device): root_device}
    for m in mappings or []:
        device = m.get("DeviceName")
        if not device:
            raise bad("Missing device name")
        ebs, virtual, no_device = m.get("Ebs"), m.get("VirtualName"), m.get("NoDevice") is not None
        if device != root_device and not devices.is_valid(device):
            raise bad(f"Invalid device name {device}")
        slot = devices.slot_of(device)
        if device in out or (slot in slots and slots[slot] != device):
            raise bad(f"{device} is being assigned to multiple times.")
        if slot == _CONFIG_DRIVE_SLOT:
            raise bad(f"Invalid device name {device}: its slot is the config drive's on this cloud")
        if sum((ebs is not None, bool(virtual), no_device)) > 1:
            raise bad(f"The mapping of {device} takes only one of Ebs, VirtualName and NoDevice")
        if virtual and not _EPHEMERAL.match(virtual):
            raise bad(f"Invalid virtual name {virtual} for {device}: expecting ephemeral0 to ephemeral23")
        if ebs is None and not virtual and not no_device:
            raise bad(f"Either snapshot ID or volume size must be provided for: {device}")
        for name, reason in _UNSUPPORTED.items():
            if (ebs or {}).get(name):
                raise errors.Unsupported(reason=reason)
        slots[slot] = device
        out[device] = Requested(device, dict(ebs) if ebs is not None else None, virtual or None, no_device)
    return out


def planned_volume(
    device: str,
    snapshot: Snapshot | None,
    *,
    size: int | None,
    volume_type: str | None,
    iops: int | None,
    throughput: int | None,
    encrypted: bool,
    delete_on_termination: bool,
) -> PlannedVolume:
    """A volume of ``device`` checked as CreateVolume checks one (size, type, IOPS, throughput)."""
    vtype = types.volume_type(volume_type)
    if snapshot is not None:
        if size is None:
            size = snapshot.volume_size
        elif size < snapshot.volume_size:
            raise bad(
                f"Volume of size {size}GB is smaller than  snapshot '{snapshot.id}', "
                f"expect size >= {snapshot.volume_size}GB"
            )
        encrypted = encrypted or snapshot.encrypted
    elif size is None:
        raise bad(f"Either snapshot ID or volume size must be provided for: {device}")
    types.check_size(vtype, size)
    perf = types.performance(vtype, size, iops, throughput)
    return PlannedVolume(
        device=device,
        size_gib=int(size),
        volume_type=perf.volume_type,
        iops=perf.iops,
        throughput=perf.throughput,
        encrypted=bool(encrypted),
        snapshot_id=snapshot.id if snapshot else None,
        delete_on_termination=delete_on_termination,
    )


def _flag(value: Any, default: bool) -> bool:
    return default if value is None else bool(value)


def _with_image(
    device: str, ebs: dict[str, Any], base: ImageBlockDevice | None, snapshot_of: Callable[[str], Snapshot]
) -> PlannedVolume:
    """The volume of ``device``: the image's mapping ``base`` (if any) with the request's ``ebs`` fields."""
    snapshot_id = ebs.get("SnapshotId") or (base.snapshot_id if base else None)
    vtype = ebs.get("VolumeType") or (base.volume_type if base else None)
    same_type = base is not None and (not ebs.get("VolumeType") or ebs["VolumeType"] == base.volume_type)
    iops, throughput = ebs.get("Iops"), ebs.get("Throughput")
    if same_type and base is not None:
        iops = base.iops if iops is None else iops
        throughput = base.throughput if throughput is None else throughput
    size = ebs.get("VolumeSize")
    if size is None and base is not None and base.snapshot_id == snapshot_id:
        size = base.volume_size
    return planned_volume(
        device,
        snapshot_of(snapshot_id) if snapshot_id else None,
        size=size,
        volume_type=vtype,
        iops=iops,
        throughput=throughput,
        encrypted=_flag(ebs.get("Encrypted"), bool(base and base.encrypted)),
        delete_on_termination=_flag(
            ebs.get("DeleteOnTermination"), _flag(base.delete_on_termination if base else None, True)
        ),
    )


# --- RunInstances -----------------------------------------------------------------------


@dataclass(frozen=True)
class LaunchDisks:
    """What the instances of a launch get: EBS volumes (the root's first, if the image is
    EBS-backed) and the size of a root disk of their own (0: the root is a volume)."""

    volumes: tuple[PlannedVolume, ...]
    local_root_gib: int

    @property
    def volume_gib(self) -> int:
        return sum(v.size_gib for v in self.volumes)


def is_ebs_backed(rows: list[ImageBlockDevice], root_device: str) -> bool:
    """Whether an image's mappings make its root device an EBS snapshot."""
    return any(r.device_name == root_device and r.snapshot_id for r in rows)


def plan_launch(
    ctx: RequestContext, image: Image, itype: InstanceType, mappings: list[dict[str, Any]] | None
) -> LaunchDisks:
    """The disks of each instance of a launch of ``image`` (module docstring); nothing written."""
    s = ctx.session
    root = image.root_device_name or "/dev/sda1"
    requested = parse(mappings, root)
    rows = {r.device_name: r for r in db_block_devices.of_images(s, [image.id]).get(image.id, [])}
    ebs_root = is_ebs_backed(list(rows.values()), root)

    image_snapshots = {r.snapshot_id for r in rows.values() if r.snapshot_id}

    def snapshot_of(snapshot_id: str) -> Snapshot:
        found = s.get(Snapshot, snapshot_id) if snapshot_id in image_snapshots else None
        if found is not None:  # the image's: launchable by whoever may launch the image
            return found
        return db_volumes.usable_snapshot(s, ctx.account_id, snapshot_id)

    planned: list[PlannedVolume] = []
    for device in sorted({*rows, *requested}, key=lambda d: (d != root, d)):
        req, row = requested.get(device), rows.get(device)
        if req is not None and req.no_device:
            if device == root:
                raise bad(f"The root device {root} cannot be suppressed with NoDevice")
            continue
        image_volume = row is not None and not row.virtual_name and not row.no_device
        if (req is not None and req.virtual_name) or (req is None and not image_volume):
            continue  # instance store (none on this cloud's types) or suppressed by the image
        if device == root and not ebs_root:
            continue  # a root disk of its own: local_root_gib
        ebs = req.ebs if req is not None and req.ebs is not None else {}
        if (
            device == root
            and ebs.get("SnapshotId")
            and row is not None
            and ebs["SnapshotId"] != row.snapshot_id
        ):
            raise bad(
                f"The snapshot of the root device {root} is the image's; it cannot be changed at launch"
            )
        planned.append(_with_image(device, ebs, row if image_volume else None, snapshot_of))
    local = 0 if ebs_root else _local_root_gib(requested.get(root), image, itype)
    return LaunchDisks(tuple(planned), local)


def _local_root_gib(root: Requested | None, image: Image, itype: InstanceType) -> int:
    """A root disk of the instance's own: the root mapping's VolumeSize, else the larger
    of the type's and the image's."""
    image_gib = volume_size_gib(image.virtual_size) if image.virtual_size else 0
    size = max(itype.root_disk_gib, image_gib)
    ebs = root.ebs if root is not None else None
    if not ebs:
        return size
    if ebs.get("SnapshotId"):
        raise errors.Unsupported(
            reason=f"The root device of {image.id} is a disk of the image store, not an EBS snapshot: "
            "only its VolumeSize can be given at launch."
        )
    wanted = ebs.get("VolumeSize")
    if wanted is None:
        return size
    if wanted < image_gib:
        raise bad(
            f"Volume of size {wanted}GB is smaller than the image's root volume, expect size >= {image_gib}GB"
        )
    return int(wanted)


# --- RegisterImage and CreateImage ------------------------------------------------------


def image_mapping(ctx: RequestContext, req: Requested) -> db_block_devices.Mapping:
    """What an image records for one requested mapping (an EBS one checked: the caller's
    completed snapshot, or a blank size)."""
    if req.no_device:
        return db_block_devices.Mapping(req.device, no_device=True)
    if req.virtual_name:
        return db_block_devices.Mapping(req.device, virtual_name=req.virtual_name)
    ebs = req.ebs or {}
    snapshot = None
    if ebs.get("SnapshotId"):
        snapshot = db_volumes.usable_snapshot(ctx.session, ctx.account_id, str(ebs["SnapshotId"]))
    volume = planned_volume(
        req.device,
        snapshot,
        size=ebs.get("VolumeSize"),
        volume_type=ebs.get("VolumeType"),
        iops=ebs.get("Iops"),
        throughput=ebs.get("Throughput"),
        encrypted=bool(ebs.get("Encrypted")),
        delete_on_termination=_flag(ebs.get("DeleteOnTermination"), True),
    )
    return mapping_of(volume, req.device, volume.delete_on_termination)


def mapping_of(
    volume: PlannedVolume | Volume, device: str, delete_on_termination: bool
) -> db_block_devices.Mapping:
    """What an image records of a volume (planned, or an instance's): its IOPS only where
    they are provisioned (a gp2 volume's are its size's baseline, not a setting)."""
    provisioned = types.TYPES[volume.volume_type].iops is not None
    return db_block_devices.Mapping(
        device,
        snapshot_id=volume.snapshot_id,
        volume_size=volume.size_gib,
        volume_type=volume.volume_type,
        iops=volume.iops if provisioned else None,
        throughput=volume.throughput,
        encrypted=volume.encrypted,
        delete_on_termination=delete_on_termination,
    )


# --- DescribeImages -------------------------------------------------------------------------


def image_items(rows: list[ImageBlockDevice]) -> list[dict[str, Any]]:
    """botocore ``BlockDeviceMapping`` items of an image, as EC2 renders them."""
    out: list[dict[str, Any]] = []
    for r in rows:
        if r.no_device:
            out.append({"DeviceName": r.device_name, "NoDevice": ""})
        elif r.virtual_name:
            out.append({"DeviceName": r.device_name, "VirtualName": r.virtual_name})
        else:
            vtype = r.volume_type or types.DEFAULT_TYPE
            ebs = {
                "DeleteOnTermination": _flag(r.delete_on_termination, True),
                "SnapshotId": r.snapshot_id,
                "VolumeSize": r.volume_size,
                "VolumeType": vtype,
                "Iops": r.iops if vtype in ("io1", "io2", "gp3") else None,
                "Throughput": r.throughput if vtype == "gp3" else None,
                "Encrypted": bool(r.encrypted),
            }
            out.append({"DeviceName": r.device_name, "Ebs": {k: v for k, v in ebs.items() if v is not None}})
    return out
