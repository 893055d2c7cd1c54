"""EBS snapshots, continued: CopySnapshot, CreateSnapshots, and createVolumePermission
(DescribeSnapshotAttribute, ModifySnapshotAttribute, ResetSnapshotAttribute).

* CopySnapshot: a new snapshot of the caller with bytes of its own, copied by the
  volume service from the source (``pending`` → ``completed``), which the caller
  owns or which is shared with it, and which must be ``completed``. ``SourceRegion``
  (and ``DestinationRegion``, if given) must be this cloud's region:
  ``InvalidParameterValue`` otherwise (there is no other region to copy from).
  ``Encrypted`` and ``KmsKeyId`` are recorded (a copy of an encrypted snapshot is
  encrypted; ``KmsKeyId`` without ``Encrypted`` is EC2's
  ``InvalidParameterDependency``); the bytes are not encrypted by the ``file``
  backend. Without ``Description`` the copy is described as EC2 describes one,
  "[Copied snap-… from REGION]". Its ``VolumeId`` is ``vol-ffffffff``, as on EC2.
* CreateSnapshots: one snapshot of each volume attached to the instance
  (``ExcludeBootVolume``, ``ExcludeDataVolumeIds``), ``CopyTagsFromSource=volume``
  copies each volume's tags, ``TagSpecifications`` add to them.
* createVolumePermission: account IDs (12 digits, as EC2's owner IDs are OCS
  account IDs) and the group ``all``; the accounts see the snapshot in
  DescribeSnapshots and may create volumes from it and copy it. The rules and
  errors are in :mod:`ocs.db.snapshot_sharing`.
"""

from __future__ import annotations

from typing import Any

from ocs import errors, ids
from ocs.api_ec2 import tagging
from ocs.api_ec2.actions.snapshots import snapshot_items
from ocs.api_ec2.context import RequestContext
from ocs.db import compute as db_compute
from ocs.db import snapshot_sharing as sharing
from ocs.db import tags as db_tags
from ocs.db import volume_attachments as db_attachments
from ocs.db import volumes as repo
from ocs.volume.rpcapi import CreateSnapshot


def _cast_snapshot(ctx: RequestContext, snapshot_id: str) -> None:
    service = ctx.services.get("volume")
    if service is not None:
        ctx.on_commit(lambda: service.create_snapshot(CreateSnapshot(snapshot_id)))


def _description(params: dict[str, Any], default: str = "") -> str:
    description = params.get("Description")
    description = default if description is None else str(description)
    if len(description) > 255:
        raise errors.InvalidParameterValue(
            value=description[:20] + "...", name="description", reason="It is longer than 255 characters."
        )
    return description


# --- CopySnapshot ----------------------------------------------------------------------------


def copy_snapshot(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    region = ctx.settings.region
    for member, wire in (("SourceRegion", "sourceRegion"), ("DestinationRegion", "destinationRegion")):
        value = params.get(member)
        if member == "SourceRegion" and not value:
            raise errors.MissingParameter(name=wire)
        if value is not None and value != region:
            raise errors.InvalidParameterValue(
                value=value, name=wire, reason=f"This cloud has one region: {region}."
            )
    for member in ("DestinationOutpostArn", "DestinationAvailabilityZone"):
        if params.get(member):
            raise errors.Unsupported(reason=f"{member} is not supported by this cloud.")
    source_id = params.get("SourceSnapshotId")
    if not source_id:
        raise errors.MissingParameter(name="sourceSnapshotId")
    kms_key_id = params.get("KmsKeyId") or None
    if kms_key_id and not params.get("Encrypted"):
        raise errors.InvalidParameterCombination(
            "The parameter KmsKeyId requires the parameter Encrypted to be set.",
            code="InvalidParameterDependency",
        )
    s = ctx.session
    source = repo.get_visible_snapshot(s, ctx.account_id, source_id)
    description = _description(params, f"[Copied {source.id} from {region}]")
    tags = tagging.tag_specifications_for(params, "snapshot", action="CopySnapshot")
    repo.check_snapshot_limit(s, ctx.account_id, ctx.settings.snapshots_per_account)
    row = sharing.copy_snapshot(
        s,
        ctx.account_id,
        source,
        description=description,
        encrypted=bool(params.get("Encrypted")),
        kms_key_id=kms_key_id,
        now=ctx.now(),
    )
    if tags:
        db_tags.set_tags(s, ctx.account_id, [(row.id, "snapshot")], tags)
    _cast_snapshot(ctx, row.id)
    return {"SnapshotId": row.id, "Tags": tags or None}


# --- CreateSnapshots -------------------------------------------------------------------------

_INFO_MEMBERS = (
    "Description",
    "Tags",
    "Encrypted",
    "VolumeId",
    "State",
    "VolumeSize",
    "StartTime",
    "Progress",
    "OwnerId",
    "SnapshotId",
)


def create_snapshots(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("OutpostArn"):
        raise errors.Unsupported(reason="Outposts are not supported by this cloud.")
    if params.get("Location") not in (None, "", "regional"):
        raise errors.Unsupported(reason="Local snapshots are not supported by this cloud.")
    spec = params.get("InstanceSpecification") or {}
    instance_id = spec.get("InstanceId")
    if not instance_id:
        raise errors.MissingParameter(name="instanceSpecification.instanceId")
    copy_tags = params.get("CopyTagsFromSource")
    if copy_tags not in (None, "volume"):
        raise errors.InvalidParameterValue(
            value=copy_tags, name="copyTagsFromSource", reason="Valid value: volume."
        )
    excluded = set()
    for volume_id in spec.get("ExcludeDataVolumeIds") or []:
        excluded.add(ids.validate("volume", volume_id))
    description = _description(params)
    s = ctx.session
    instance = db_compute.get_instance(s, ctx.account_id, instance_id)
    tags = tagging.tag_specifications_for(params, "snapshot", action="CreateSnapshots")
    wanted = []
    for attachment in db_attachments.of_instances(s, [instance.id]).get(instance.id, []):
        boot = attachment.device == instance.root_device_name
        if boot and spec.get("ExcludeBootVolume"):
            continue
        if not boot and attachment.volume_id in excluded:
            continue
        wanted.append(attachment.volume_id)
    if wanted:
        repo.check_snapshot_limit(s, ctx.account_id, ctx.settings.snapshots_per_account, adding=len(wanted))
    volume_tags = db_tags.tags_for(s, ctx.account_id, wanted) if copy_tags else {}
    rows = []
    for volume_id in wanted:
        row = repo.create_snapshot(s, ctx.account_id, volume_id, description, now=ctx.now())
        merged = {t["Key"]: t["Value"] for t in volume_tags.get(volume_id, [])}
        merged.update({t["Key"]: t["Value"] for t in tags})
        if merged:
            db_tags.set_tags(
                s, ctx.account_id, [(row.id, "snapshot")], [{"Key": k, "Value": v} for k, v in merged.items()]
            )
        _cast_snapshot(ctx, row.id)
        rows.append(row)
    items = snapshot_items(ctx, rows)
    return {"Snapshots": [{k: item[k] for k in _INFO_MEMBERS if k in item} for item in items]}


# --- createVolumePermission ------------------------------------------------------------------


def _attribute(params: dict[str, Any], *, default: str | None = None) -> str:
    attribute = params.get("Attribute") or default
    if attribute not in ("createVolumePermission", "productCodes"):
        raise errors.InvalidParameterValue(
            value=attribute, name="attribute", reason="Valid values: createVolumePermission | productCodes."
        )
    return str(attribute)


def describe_snapshot_attribute(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    attribute = _attribute(params)
    row = sharing.get_own_snapshot(ctx.session, ctx.account_id, params["SnapshotId"])
    if attribute == "productCodes":
        return {"SnapshotId": row.id, "ProductCodes": []}
    grantees = repo.permissions_of(ctx.session, [row.id])[row.id]
    permissions = [{"Group": "all"}] if "all" in grantees else []
    permissions += [{"UserId": g} for g in sorted(grantees - {"all"})]
    return {"SnapshotId": row.id, "CreateVolumePermissions": permissions}


def _grantees(entries: list[dict[str, Any]]) -> list[str]:
    out = []
    for entry in entries:
        if entry.get("Group") is not None:
            out.append(sharing.check_group(entry["Group"]))
        elif entry.get("UserId") is not None:
            out.append(sharing.check_user_id(entry["UserId"]))
        else:
            raise errors.InvalidParameterValue("A createVolumePermission needs a UserId or a Group.")
    return out


def _changes(params: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(add, remove) from the structured CreateVolumePermission or the legacy form."""
    structured = params.get("CreateVolumePermission")
    if structured is not None:
        add, remove = _grantees(structured.get("Add") or []), _grantees(structured.get("Remove") or [])
    else:
        operation = params.get("OperationType")
        entries = [{"UserId": u} for u in params.get("UserIds") or []]
        entries += [{"Group": g} for g in params.get("GroupNames") or []]
        if operation not in ("add", "remove") or not entries:
            raise errors.MissingParameter(name="createVolumePermission")
        grantees = _grantees(entries)
        add, remove = (grantees, []) if operation == "add" else ([], grantees)
    if not add and not remove:
        raise errors.MissingParameter(name="createVolumePermission")
    return add, remove


def modify_snapshot_attribute(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    if _attribute(params, default="createVolumePermission") == "productCodes":
        raise errors.InvalidParameterValue(
            value="productCodes", name="attribute", reason="Only createVolumePermission can be modified."
        )
    add, remove = _changes(params)
    row = sharing.get_own_snapshot(ctx.session, ctx.account_id, params["SnapshotId"])
    sharing.change_permissions(ctx.session, row, add, remove)
    return {}


def reset_snapshot_attribute(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    if _attribute(params) == "productCodes":
        raise errors.InvalidParameterValue(
            value="productCodes", name="attribute", reason="Only createVolumePermission can be reset."
        )
    row = sharing.get_own_snapshot(ctx.session, ctx.account_id, params["SnapshotId"])
    sharing.reset_permissions(ctx.session, row)
    return {}


ACTIONS = {
    "CopySnapshot": copy_snapshot,
    "CreateSnapshots": create_snapshots,
    "DescribeSnapshotAttribute": describe_snapshot_attribute,
    "ModifySnapshotAttribute": modify_snapshot_attribute,
    "ResetSnapshotAttribute": reset_snapshot_attribute,
}
