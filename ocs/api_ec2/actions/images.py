"""Images: DescribeImages, RegisterImage, DeregisterImage and the image attributes.

Behaviour and the evidence for it where the EC2 reference is silent:

* DescribeImages shows the caller's own images, public images and images shared
  with the caller. ``Owners`` takes ``self``, account IDs and the aliases
  ``amazon``, ``aws-marketplace``, ``aws-backup-vault`` (no OCS image carries an
  alias, so these match nothing); ``ExecutableUsers`` takes ``self``, ``all``
  and account IDs and means *explicit* launch permissions (API reference).
  Anything else is ``InvalidUserID.Malformed`` (EC2's answer to a bad owner,
  aws/aws-fpga docs). ``ImageIds``: a malformed ID is
  ``InvalidAMIID.Malformed``; an ID that was never registered is
  ``InvalidAMIID.NotFound``; an existing image the caller may not see, or one
  deregistered, is simply left out of the result, as EC2 does (the SDK docs:
  "If you specify an AMI ID for which you do not have access, it will not be
  included in the returned results"; "Recently deregistered images ... return
  empty results"; a private AMI of another account answers ``{"Images": []}``,
  aws-samples/automotive-software-developer-workbench#5).
* Owner-only actions on an image the caller sees but does not own answer
  ``AuthFailure`` "Not authorized for image:ami-x"; on one it cannot see,
  ``InvalidAMIID.NotFound`` (see :mod:`ocs.db.images`).
* DescribeImageAttribute ``blockDeviceMapping`` answers ``AuthFailure``: the
  reference documents that attribute as deprecated with exactly that error.
  An unknown attribute is ``InvalidRequest`` there; ModifyImageAttribute answers
  ``InvalidParameter`` for ``blockDeviceMapping`` and
  ``InvalidParameterCombination`` for any other attribute it cannot change
  (what EC2 answers the openstack ec2api-tempest-plugin).
* RegisterImage (there is no S3): a machine image is registered from a disk
  already in the image store, named by ``ImageLocation`` as DescribeImages shows
  it (``<owner-account-id>/<image-name>`` of a machine image the caller sees;
  anything else is ``InvalidManifest``), or without a disk, booting its
  ``KernelId`` (and ``RamdiskId``), or as an EBS-backed image from a
  ``BlockDeviceMapping`` whose ``RootDeviceName`` device is a snapshot of the
  caller's (``completed``; more devices may be snapshots, blank volumes,
  ``ephemeralN`` or ``NoDevice``: :mod:`ocs.api_ec2.actions.block_devices`).
  Without a mapping for the root device: ``InvalidBlockDeviceMapping``; mappings
  with an ImageLocation: ``InvalidParameterCombination`` (EBS-backed images have
  no bytes of their own). Architecture defaults to x86_64, VirtualizationType to
  hvm. DescribeImages shows an EBS-backed image's mappings as EC2 renders them
  (``Ebs`` with SnapshotId, VolumeSize, VolumeType, DeleteOnTermination,
  Encrypted, Iops/Throughput for the types that have them; ``VirtualName``;
  ``NoDevice`` "").
* DeregisterImage leaves the image's bytes in the store (as EC2 leaves an
  instance-store AMI's S3 files); ``ocs-manage image delete`` removes them. It
  leaves an EBS-backed image's snapshots too (as EC2 does: DescribeSnapshots shows
  them, DeleteSnapshot deletes them now), unless ``DeleteAssociatedSnapshots``:
  then each is deleted and reported in ``DeleteSnapshotResults`` (``success``, or
  ``skipped`` for one another live image still uses).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session

from ocs import errors
from ocs.api_ec2 import filters, pagination, resources, tagging
from ocs.api_ec2.actions import block_devices
from ocs.api_ec2.context import RequestContext
from ocs.db import block_devices as db_block_devices
from ocs.db import images as repo
from ocs.db import tags as db_tags
from ocs.db import volumes as db_volumes
from ocs.db.models.images import Image, ImageBlockDevice
from ocs.images.importer import machine_fields, volume_size_gib
from ocs.volume.rpcapi import DeleteSnapshot

OWNER_ALIASES = frozenset({"amazon", "aws-marketplace", "aws-backup-vault"})
MODIFIABLE = ("description", "imdsSupport", "launchPermission")
_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
_LOCATION = re.compile(r"^(?P<owner>[0-9]{12})/(?P<name>.+)$")
_DEVICE = re.compile(r"^(/dev/)?[a-z][a-z0-9]{1,15}$")

for _kind in ("image", "kernel", "ramdisk"):
    resources.register(_kind, "image", repo.is_visible)


# --- output ------------------------------------------------------------------


def block_device_mappings(image: Image, rows: list[ImageBlockDevice] | None = None) -> list[dict[str, Any]]:
    """An EBS-backed image's recorded mappings; for an image of the image store, the
    root device of an ebs image with a disk (no snapshot: its disk is in the store)."""
    if rows:
        return block_devices.image_items(rows)
    if image.root_device_type != "ebs" or not image.location or not image.root_device_name:
        return []
    ebs = {
        "DeleteOnTermination": True,
        "VolumeSize": volume_size_gib(image.virtual_size),
        "VolumeType": "gp2",
        "Encrypted": False,
    }
    return [{"DeviceName": image.root_device_name, "Ebs": ebs}]


def image_item(
    image: Image,
    account_id: str,
    tags: list[dict[str, str]],
    mappings: list[ImageBlockDevice] | None = None,
) -> dict[str, Any]:
    """An image as DescribeImages shows it to ``account_id`` (botocore ``Image``)."""
    owned = image.account_id == account_id
    item: dict[str, Any] = {
        "ImageId": image.id,
        "ImageLocation": f"{image.account_id}/{image.name}",
        "State": image.state,
        "OwnerId": image.account_id,
        "CreationDate": filters.wire_string(image.created_at),
        "Public": image.is_public,
        "Architecture": image.architecture,
        "ImageType": image.image_type,
        "KernelId": image.kernel_id,
        "RamdiskId": image.ramdisk_id,
        "PlatformDetails": "Linux/UNIX",
        "UsageOperation": "RunInstances",
        "Name": image.name,
        "Description": image.description,
        "EnaSupport": image.ena_support,
        "SriovNetSupport": image.sriov_net_support,
        "Hypervisor": "xen",
        "RootDeviceName": image.root_device_name,
        "RootDeviceType": image.root_device_type,
        "BlockDeviceMappings": block_device_mappings(image, mappings),
        "VirtualizationType": image.virtualization_type,
        "BootMode": image.boot_mode,
        "TpmSupport": image.tpm_support,
        "ImdsSupport": image.imds_support,
        "DeregistrationProtection": "disabled" if owned else None,
        "LastLaunchedTime": filters.wire_string(image.last_launched_at)
        if owned and image.last_launched_at
        else None,
        "Tags": tags or None,
    }
    return {k: v for k, v in item.items() if v is not None}


def image_items(s: Session, account_id: str, images: list[Image]) -> list[dict[str, Any]]:
    tags = db_tags.tags_for(s, account_id, [i.id for i in images])
    mappings = db_block_devices.of_images(s, [i.id for i in images])
    return [image_item(i, account_id, tags[i.id], mappings.get(i.id)) for i in images]


# --- DescribeImages ------------------------------------------------------------


def _bad_user(value: str) -> errors.OcsError:
    return errors.InvalidParameterValue(f"User ID '{value}' is invalid", code="InvalidUserID.Malformed")


def owner_ids(account_id: str, owners: list[str] | None) -> set[str] | None:
    """``Owners`` as account IDs (``self`` resolved, aliases own nothing here)."""
    if not owners:
        return None
    out: set[str] = set()
    for owner in owners:
        if owner == "self":
            out.add(account_id)
        elif _ACCOUNT_ID.match(owner or ""):
            out.add(owner)
        elif owner not in OWNER_ALIASES:
            raise _bad_user(owner)
    return out


def executable_by(account_id: str, users: list[str] | None) -> set[str] | None:
    """``ExecutableUsers`` as account IDs and ``all``."""
    if not users:
        return None
    out: set[str] = set()
    for user in users:
        if user == "self":
            out.add(account_id)
        elif user == "all" or _ACCOUNT_ID.match(user or ""):
            out.add(user)
        else:
            raise _bad_user(user)
    return out


def describe_images(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    s, me = ctx.session, ctx.account_id
    wanted = [repo.validate_image_id(i) for i in params.get("ImageIds") or []]
    owners = owner_ids(me, params.get("Owners"))
    users = executable_by(me, params.get("ExecutableUsers"))
    spec = filters.compile_filters(params.get("Filters"), filters.FILTERS["DescribeImages"])
    if wanted:
        known = repo.existing_ids(s, wanted)
        unknown = [i for i in dict.fromkeys(wanted) if i not in known]
        if unknown:
            raise repo.not_found(unknown)
    images = repo.query_images(s, me, image_ids=wanted or None, owners=owners, executable_by=users)
    items = [item for item in image_items(s, me, images) if spec(item)]
    scope = pagination.token_scope("DescribeImages", me)
    page, token = pagination.paginate_action("DescribeImages", items, params, key="ImageId", scope=scope)
    return {"Images": page, "NextToken": token}


# --- RegisterImage -------------------------------------------------------------


def _ebs_mappings(ctx: RequestContext, params: dict[str, Any]) -> list[db_block_devices.Mapping]:
    """An EBS-backed registration's mappings, checked (none: not one)."""
    mappings = params.get("BlockDeviceMappings") or []
    if not mappings:
        return []
    if params.get("ImageLocation"):
        raise errors.InvalidParameterCombination(
            reason="Block device mappings register an EBS-backed image; it cannot have an imageLocation."
        )
    root = params.get("RootDeviceName")
    if not root:
        raise errors.MissingParameter(name="rootDeviceName")
    requested = block_devices.parse(mappings, root)
    out = [block_devices.image_mapping(ctx, r) for r in requested.values()]
    if not any(m.device_name == root and m.snapshot_id for m in out):
        raise block_devices.bad(f"The root device {root} must be mapped to an EBS snapshot")
    return out


def _source_disk(s: Session, account_id: str, location: str | None) -> Image | None:
    """The machine image whose stored disk ``ImageLocation`` names, or InvalidManifest."""
    if not location:
        return None
    match = _LOCATION.match(location)
    source = repo.find_by_location(s, account_id, match["owner"], match["name"]) if match else None
    if source is None or source.image_type != "machine" or not source.location:
        raise errors.InvalidParameterValue(
            f"The image location '{location}' does not name a machine image in the image "
            "store that you can access (expecting <owner-account-id>/<image-name>).",
            code="InvalidManifest",
        )
    return source


def _check_options(params: dict[str, Any]) -> None:
    if params.get("BillingProducts"):
        raise errors.InvalidParameterValue(
            "Your account is not authorized to specify billing product codes.", code="InvalidParameter"
        )
    virt = params.get("VirtualizationType")
    if virt is not None and virt not in ("hvm", "paravirtual"):
        raise errors.InvalidParameterValue(
            value=virt, name="virtualizationType", reason="Valid values: hvm | paravirtual."
        )
    sriov = params.get("SriovNetSupport")
    if sriov is not None and sriov != "simple":
        raise errors.InvalidParameterValue(value=sriov, name="sriovNetSupport", reason="Valid value: simple.")
    device = params.get("RootDeviceName")
    if device is not None and not _DEVICE.match(device):
        raise errors.InvalidParameterValue(value=device, name="rootDeviceName", reason="Invalid device name.")


def _registered_fields(
    params: dict[str, Any], source: Image | None, kernel: Image | None, *, ebs: bool = False
) -> dict[str, Any]:
    """The new image's columns from the request, its source disk and its kernel (``ebs``:
    an EBS-backed image, no bytes of its own, its root device the mapped snapshot)."""
    kernel_id = kernel.id if kernel else None
    if ebs:
        fields: dict[str, Any] = {
            "root_device_type": "ebs",
            "virtualization_type": "hvm",
            "architecture": kernel.architecture if kernel else "x86_64",
        }
    elif source is not None:
        fields = machine_fields(kernel_id)
        fields.update(
            location=source.location,
            checksum=source.checksum,
            size=source.size,
            virtual_size=source.virtual_size,
            disk_format=source.disk_format,
            architecture=source.architecture,
        )
        if not kernel_id:
            fields.update(
                root_device_name=source.root_device_name, virtualization_type=source.virtualization_type
            )
    else:
        assert kernel is not None
        fields = {
            "root_device_type": "instance-store",
            "root_device_name": "/dev/sda1",
            "virtualization_type": "paravirtual",
            "architecture": kernel.architecture,
        }
    overrides = {
        "architecture": params.get("Architecture"),
        "root_device_name": params.get("RootDeviceName"),
        "virtualization_type": params.get("VirtualizationType"),
        "ena_support": params.get("EnaSupport"),
        "sriov_net_support": params.get("SriovNetSupport"),
        "boot_mode": params.get("BootMode"),
        "tpm_support": params.get("TpmSupport"),
        "imds_support": params.get("ImdsSupport"),
    }
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return fields


def register_image(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    s, me = ctx.session, ctx.account_id
    name = repo.validate_name(params["Name"])
    description = repo.validate_description(params.get("Description") or None)
    tags = tagging.tag_specifications_for(params, "image", action="RegisterImage")
    _check_options(params)
    mappings = _ebs_mappings(ctx, params)
    kernel = repo.get_boot_image(s, me, params["KernelId"], "kernel") if params.get("KernelId") else None
    ramdisk = repo.get_boot_image(s, me, params["RamdiskId"], "ramdisk") if params.get("RamdiskId") else None
    source = _source_disk(s, me, params.get("ImageLocation"))
    if source is None and kernel is None and not mappings:
        raise errors.InvalidParameterCombination(
            reason="Either imageLocation (a disk in the image store) or kernelId must be set."
        )
    fields = _registered_fields(params, source, kernel, ebs=bool(mappings))
    image = repo.create_image(
        s,
        me,
        name,
        image_type="machine",
        description=description,
        state=repo.AVAILABLE,
        kernel_id=kernel.id if kernel else None,
        ramdisk_id=ramdisk.id if ramdisk else None,
        created_at=ctx.now(),
        **fields,
    )
    if mappings:
        db_block_devices.record(s, image.id, mappings)
    if tags:
        db_tags.set_tags(s, me, [(image.id, "image")], tags)
    return {"ImageId": image.id}


# --- DeregisterImage -----------------------------------------------------------


def deregister_image(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    s = ctx.session
    image = repo.get_owned_image(s, ctx.account_id, params["ImageId"])
    repo.deregister(s, image, ctx.now())
    db_tags.delete_all_for(s, image.id)
    out: dict[str, Any] = {"Return": True}
    if params.get("DeleteAssociatedSnapshots"):
        out["DeleteSnapshotResults"] = _delete_snapshots(ctx, image)
    return out


def _delete_snapshots(ctx: RequestContext, image: Image) -> list[dict[str, str]]:
    """DeleteAssociatedSnapshots: the deregistered image's snapshots that no other live
    image uses are deleted (the volume service then removes their bytes)."""
    s, results = ctx.session, []
    volume_service = ctx.services.get("volume")
    for snapshot_id in db_block_devices.snapshots_of(s, image.id):
        if db_block_devices.image_using(s, snapshot_id) is not None:
            results.append({"SnapshotId": snapshot_id, "ReturnCode": "skipped"})
            continue
        try:
            db_volumes.delete_snapshot(s, ctx.account_id, snapshot_id)
        except errors.NotFound:
            results.append({"SnapshotId": snapshot_id, "ReturnCode": "missing-permissions"})
            continue
        if volume_service is not None:
            message = DeleteSnapshot(snapshot_id)
            ctx.on_commit(lambda m=message: volume_service.delete_snapshot(m))  # type: ignore[misc]
        results.append({"SnapshotId": snapshot_id, "ReturnCode": "success"})
    return results


# --- image attributes ------------------------------------------------------------


def _value(value: Any) -> dict[str, Any]:
    return {} if value is None else {"Value": value}


def launch_permission_list(image: Image, accounts: list[str]) -> list[dict[str, str]]:
    group = [{"Group": "all"}] if image.is_public else []
    return group + [{"UserId": a} for a in accounts]


_IMAGE_ATTRIBUTES = frozenset(
    {
        "description",
        "kernel",
        "ramdisk",
        "launchPermission",
        "productCodes",
        "blockDeviceMapping",
        "sriovNetSupport",
        "bootMode",
        "tpmSupport",
        "uefiData",
        "lastLaunchedTime",
        "imdsSupport",
        "deregistrationProtection",
    }
)


def describe_image_attribute(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    s = ctx.session
    attribute = params["Attribute"]
    if attribute not in _IMAGE_ATTRIBUTES:  # checked before the image, as EC2 does
        raise errors.InvalidRequest(f"Attribute {attribute} is not supported.")
    image = repo.get_owned_image(s, ctx.account_id, params["ImageId"])
    if attribute == "blockDeviceMapping":
        raise repo.ImageAuthFailure("Unauthorized attempt to access restricted resource")
    out: dict[str, Any] = {"ImageId": image.id}
    if attribute == "launchPermission":
        accounts = repo.launch_permissions(s, [image.id])[image.id]
        out["LaunchPermissions"] = launch_permission_list(image, accounts)
    elif attribute == "productCodes":
        out["ProductCodes"] = []
    else:
        member, value = _scalar_attribute(image, attribute)
        if value is not None or attribute not in ("kernel", "ramdisk"):
            out[member] = _value(value)  # an image without a kernel (ramdisk) names none
    return out


def _scalar_attribute(image: Image, attribute: str) -> tuple[str, Any]:
    launched = filters.wire_string(image.last_launched_at) if image.last_launched_at else None
    table: dict[str, tuple[str, Any]] = {
        "description": ("Description", image.description),
        "kernel": ("KernelId", image.kernel_id),
        "ramdisk": ("RamdiskId", image.ramdisk_id),
        "sriovNetSupport": ("SriovNetSupport", image.sriov_net_support),
        "bootMode": ("BootMode", image.boot_mode),
        "tpmSupport": ("TpmSupport", image.tpm_support),
        "uefiData": ("UefiData", None),
        "lastLaunchedTime": ("LastLaunchedTime", launched),
        "imdsSupport": ("ImdsSupport", image.imds_support),
        "deregistrationProtection": ("DeregistrationProtection", "disabled"),
    }
    if attribute not in table:
        raise errors.InvalidRequest(f"Attribute {attribute} is not supported.")
    return table[attribute]


def _attributes_named(params: dict[str, Any]) -> set[str]:
    """Which attribute a ModifyImageAttribute request changes (exactly one, or an error)."""
    if params.get("ProductCodes"):
        raise errors.InvalidParameter(
            reason="Parameter productCodes is invalid. The attribute is not supported."
        )
    if params.get("OrganizationArns") or params.get("OrganizationalUnitArns"):
        raise errors.Unsupported(reason="Sharing images with organizations is not supported.")
    named: set[str] = set()
    attribute = params.get("Attribute")
    if attribute is not None:
        if attribute == "blockDeviceMapping":
            raise errors.InvalidParameter(
                reason="Parameter blockDeviceMapping is invalid. The attribute is not supported."
            )
        if attribute not in MODIFIABLE:
            raise errors.InvalidParameterCombination(
                reason=f"Attribute {attribute} is not modifiable. "
                "Valid values: description | imdsSupport | launchPermission."
            )
        named.add(attribute)
    legacy = params.get("UserIds") or params.get("UserGroups") or params.get("OperationType")
    for member, name in (
        ("LaunchPermission", "launchPermission"),
        ("Description", "description"),
        ("ImdsSupport", "imdsSupport"),
    ):
        if params.get(member) is not None:
            named.add(name)
    if legacy:
        named.add("launchPermission")
    if not named:
        raise errors.InvalidParameterCombination(reason="No attributes specified.")
    if len(named) > 1:
        raise errors.InvalidParameterCombination(
            reason=f"Fields for multiple attribute types specified: {', '.join(sorted(named))}"
        )
    return named


def _permission_changes(params: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(add, remove) as LaunchPermission lists, from the structured or the legacy form."""
    structured = params.get("LaunchPermission")
    if structured is not None:
        add, remove = structured.get("Add") or [], structured.get("Remove") or []
    else:
        operation = params.get("OperationType")
        entries = [{"UserId": u} for u in params.get("UserIds") or []]
        entries += [{"Group": g} for g in params.get("UserGroups") or []]
        if operation is None or not entries:
            raise errors.InvalidParameterCombination(
                reason="No operation specified for launchPermission attribute."
            )
        add, remove = (entries, []) if operation == "add" else ([], entries)
    if not add and not remove:
        raise errors.InvalidParameterCombination(
            reason="No operation specified for launchPermission attribute."
        )
    return add, remove


def _split_permissions(entries: list[dict[str, Any]]) -> tuple[list[str], bool]:
    users: list[str] = []
    group_all = False
    for entry in entries:
        if entry.get("OrganizationArn") or entry.get("OrganizationalUnitArn"):
            raise errors.Unsupported(reason="Sharing images with organizations is not supported.")
        if entry.get("Group") is not None:
            if entry["Group"] != "all":
                raise errors.InvalidParameterValue(
                    f'Invalid attribute item value "{entry["Group"]}" for group item type.',
                    code="InvalidAMIAttributeItemValue",
                )
            group_all = True
        elif entry.get("UserId") is not None:
            users.append(repo.validate_account_id(entry["UserId"]))
        else:
            raise errors.InvalidParameterValue("A launch permission needs a UserId or a Group.")
    return users, group_all


def _modify_launch_permission(s: Session, image: Image, params: dict[str, Any]) -> None:
    add, remove = _permission_changes(params)
    add_users, add_all = _split_permissions(add)
    remove_users, remove_all = _split_permissions(remove)
    public = False if remove_all else (True if add_all else None)
    repo.change_launch_permissions(s, image, add=add_users, remove=remove_users, public=public)


def _attribute_value(params: dict[str, Any], member: str, name: str) -> Any:
    structured = params.get(member)
    value = structured.get("Value") if structured is not None else params.get("Value")
    if value is None:
        raise errors.MissingParameter(name=name)
    return value


def modify_image_attribute(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """The request is checked whole before the image (EC2 answers a malformed request
    so even for an image the caller does not own)."""
    s = ctx.session
    (attribute,) = _attributes_named(params)
    if attribute == "launchPermission":
        _permission_changes(params)
        value = None
    elif attribute == "description":
        value = repo.validate_description(_attribute_value(params, "Description", "description")) or None
    else:
        value = _attribute_value(params, "ImdsSupport", "imdsSupport")
        if value != "v2.0":
            raise errors.InvalidParameterValue(value=value, name="imdsSupport", reason="Valid value: v2.0.")
    image = repo.get_owned_image(s, ctx.account_id, params["ImageId"])
    if attribute == "launchPermission":
        _modify_launch_permission(s, image, params)
    elif attribute == "description":
        image.description = value
    else:
        image.imds_support = value
    s.flush()
    return {}


def reset_image_attribute(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    s = ctx.session
    if params["Attribute"] != "launchPermission":  # checked before the image, as EC2 does
        raise errors.InvalidRequest(
            f"Attribute {params['Attribute']} is not supported. Valid values: launchPermission."
        )
    image = repo.get_owned_image(s, ctx.account_id, params["ImageId"])
    repo.reset_launch_permissions(s, image)
    return {}


ACTIONS = {
    "DescribeImages": describe_images,
    "RegisterImage": register_image,
    "DeregisterImage": deregister_image,
    "DescribeImageAttribute": describe_image_attribute,
    "ModifyImageAttribute": modify_image_attribute,
    "ResetImageAttribute": reset_image_attribute,
}
