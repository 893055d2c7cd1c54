"""EBS snapshots: CreateSnapshot, DescribeSnapshots, DeleteSnapshot.

CreateSnapshot answers ``pending`` with ``Progress`` "0%" at once; the volume
service copies the volume's bytes and moves the snapshot to ``completed`` and
"100%" (boto3's ``snapshot_completed`` waiter), or to ``error`` with its reason
in ``StateMessage``. A snapshot is a copy: deleting or writing to its volume later
changes nothing in it, and volumes made from it outlive it.

* DescribeSnapshots shows the snapshots the caller may create volumes from: its
  own, those shared with it and public ones (createVolumePermission, see
  :mod:`ocs.api_ec2.actions.snapshot_sharing`); one it may not see is
  ``InvalidSnapshot.NotFound`` when named, as if it did not exist. ``OwnerIds``
  (``self``, account IDs; an alias such as ``amazon`` owns none here) and
  ``RestorableByUserIds`` (``self``, account IDs, ``all``) narrow them. Filters,
  tags and ``MaxResults``/``NextToken`` (not with ``SnapshotIds``; past 1000
  returns 1000, as documented).
* DeleteSnapshot removes the snapshot at once (also a pending one: its copy is
  discarded when done); the service then removes its bytes. A snapshot a live
  image uses is ``InvalidSnapshot.InUse`` (:mod:`ocs.db.block_devices`).
"""

from __future__ import annotations

from typing import Any

from ocs import errors
from ocs.api_ec2 import filters, pagination, resources, tagging
from ocs.api_ec2.context import RequestContext
from ocs.db import block_devices
from ocs.db import tags as db_tags
from ocs.db import volumes as repo
from ocs.db.models.volumes import Snapshot
from ocs.volume.rpcapi import CreateSnapshot, DeleteSnapshot

resources.register("snapshot", "snapshot", repo.snapshot_exists)


def snapshot_items(ctx: RequestContext, rows: list[Snapshot]) -> list[dict[str, Any]]:
    """botocore ``Snapshot`` items."""
    tags = db_tags.tags_for(ctx.session, ctx.account_id, [r.id for r in rows])
    items = []
    for r in rows:
        item = {
            "SnapshotId": r.id,
            "VolumeId": r.volume_id,
            "VolumeSize": r.volume_size,
            "State": r.state,
            "StateMessage": r.status_message or None,
            "StartTime": r.started_at,
            "CompletionTime": r.completed_at,
            "Progress": f"{r.progress}%",
            "OwnerId": r.account_id,
            "Description": r.description,
            "Encrypted": r.encrypted,
            "StorageTier": "standard",
            "FullSnapshotSizeInBytes": r.data_bytes,
            "KmsKeyId": r.kms_key_id,
            "Tags": tags[r.id] or None,
        }
        items.append({k: v for k, v in item.items() if v is not None})
    return items


def _cast(ctx: RequestContext, op: str, message: object) -> None:
    service = ctx.services.get("volume")
    if service is not None:
        ctx.on_commit(lambda: getattr(service, op)(message))


def create_snapshot(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("OutpostArn"):
        raise errors.Unsupported(reason="Outposts are not supported by this cloud.")
    if params.get("Location") not in (None, "", "regional"):
        raise errors.Unsupported(reason="Local snapshots are not supported by this cloud.")
    volume_id = params.get("VolumeId")
    if not volume_id:
        raise errors.MissingParameter(name="volumeId")
    description = str(params.get("Description") or "")
    if len(description) > 255:
        raise errors.InvalidParameterValue(
            value=description[:20] + "...", name="description", reason="It is longer than 255 characters."
        )
    s = ctx.session
    tags = tagging.tag_specifications_for(params, "snapshot", action="CreateSnapshot")
    repo.check_snapshot_limit(s, ctx.account_id, ctx.settings.snapshots_per_account)
    row = repo.create_snapshot(s, ctx.account_id, volume_id, description, now=ctx.now())
    if tags:
        db_tags.set_tags(s, ctx.account_id, [(row.id, "snapshot")], tags)
    _cast(ctx, "create_snapshot", CreateSnapshot(row.id))
    return snapshot_items(ctx, [row])[0]


def delete_snapshot(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    snapshot_id = params.get("SnapshotId")
    if not snapshot_id:
        raise errors.MissingParameter(name="snapshotId")
    repo.get_snapshot(ctx.session, ctx.account_id, snapshot_id)  # NotFound before InUse
    block_devices.check_not_in_use(ctx.session, snapshot_id)  # an image's snapshot stays
    repo.delete_snapshot(ctx.session, ctx.account_id, snapshot_id)
    _cast(ctx, "delete_snapshot", DeleteSnapshot(snapshot_id))
    return {}


def describe_snapshots(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    action = "DescribeSnapshots"
    pagination.check_max_results_combination(action, params)
    rows = repo.list_snapshots(
        ctx.session,
        ctx.account_id,
        params.get("SnapshotIds") or [],
        _users("owner", params.get("OwnerIds") or [], ("self",)),
        _users("restorableBy", params.get("RestorableByUserIds") or [], ("self", "all")),
    )
    items = filters.filter_action(action, snapshot_items(ctx, rows), params.get("Filters"))
    scope = pagination.token_scope(action, ctx.account_id)
    page, token = pagination.paginate_action(action, items, params, key="SnapshotId", scope=scope)
    return {"Snapshots": page, "NextToken": token}


_OWNER_ALIASES = ("amazon", "aws-marketplace", "aws-backup-vault")


def _users(name: str, values: list[str], words: tuple[str, ...]) -> list[str]:
    """Owner or user IDs as given: 12-digit account IDs, ``words`` and owner aliases;
    anything else is ``InvalidUserID.Malformed``, as for DescribeImages."""
    for value in values:
        if value in words or (name == "owner" and value in _OWNER_ALIASES):
            continue
        if not (isinstance(value, str) and len(value) == 12 and value.isdigit()):
            raise errors.InvalidParameterValue(
                f"User ID '{value}' is invalid", code="InvalidUserID.Malformed"
            )
    return values


ACTIONS = {
    "CreateSnapshot": create_snapshot,
    "DeleteSnapshot": delete_snapshot,
    "DescribeSnapshots": describe_snapshots,
}
