"""EBS volumes: CreateVolume, DescribeVolumes, DeleteVolume, AttachVolume, DetachVolume.

The type rules and their errors are in :mod:`ocs.volume.types`, the state rules
in :mod:`ocs.db.volumes`; the bytes are made by the volume service
(:mod:`ocs.volume.service`), cast to once the request has committed. A volume
answers ``creating`` at once and becomes ``available`` when the service has made
it (boto3's ``volume_available`` waiter); DeleteVolume answers at once, the
volume shows ``deleting`` and then ``InvalidVolume.NotFound``
(``volume_deleted``).

* CreateVolume: ``AvailabilityZone`` or ``AvailabilityZoneId`` (not both); an
  unknown zone is ``InvalidZone.NotFound`` "The zone 'x' does not exist."
  [hashicorp/terraform#6110]. ``Size`` and/or ``SnapshotId``; a size below the
  snapshot's is ``InvalidParameterValue`` "Volume of size 1GB is smaller than
  snapshot 'snap-…', expect size >= 8GB" [scylladb#6999]. A volume from an
  encrypted snapshot is encrypted. ``Encrypted`` is recorded and reported; the
  ``file`` backend does not encrypt the bytes at rest. KMS keys, Outposts,
  Multi-Attach and initialization rates are ``Unsupported``.
* AttachVolume / DetachVolume: the rules and EC2's errors are in
  :mod:`ocs.db.volume_attachments` and :mod:`ocs.volume.devices`. The answer is
  the attachment ``attaching`` (``detaching``), the volume ``in-use``. For an
  instance on a host and not stopped, the host's agent is told once the request
  has committed (``ComputeApi.attach_volume`` / ``detach_volume``, carrying the
  export the volume service recorded) and its report, through the scheduler
  service, makes the attachment ``attached`` (or removes it: the volume
  ``available``). A stopped instance's attachment is recorded ``attached`` (its
  detachment done) at once; its guest gets its volumes when it starts. ``Force``
  reports the volume detached whatever the guest does.
* DescribeVolumes: every documented filter whose field the ``Volume`` shape has
  (:mod:`ocs.api_ec2.filters`), tags, ``MaxResults``/``NextToken`` (not with
  ``VolumeIds``; values past 1000 return 1000, as documented).
"""

from __future__ import annotations

from typing import Any

from ocs import errors
from ocs.api_ec2 import filters, pagination, resources, tagging
from ocs.api_ec2.actions import regions
from ocs.api_ec2.context import RequestContext
from ocs.compute_agent.driver import VolumeAttachment
from ocs.compute_agent.rpcapi import VolumeAction
from ocs.db import tags as db_tags
from ocs.db import volume_attachments as db_attachments
from ocs.db import volumes as repo
from ocs.db.models.volumes import Volume
from ocs.volume import types
from ocs.volume.rpcapi import CreateVolume, DeleteVolume

resources.register("volume", "volume", repo.volume_exists)

_UNSUPPORTED = {
    "KmsKeyId": "KMS keys are not supported by this cloud.",
    "OutpostArn": "Outposts are not supported by this cloud.",
    "MultiAttachEnabled": "Multi-Attach is not supported by this cloud.",
    "VolumeInitializationRate": "Volume initialization rates are not supported by this cloud.",
}


def _zone_ids(ctx: RequestContext) -> dict[str, str]:
    return {z["ZoneName"]: z["ZoneId"] for z in regions._zone_items(ctx)}


def volume_items(ctx: RequestContext, rows: list[Volume]) -> list[dict[str, Any]]:
    """botocore ``Volume`` items."""
    s = ctx.session
    tags = db_tags.tags_for(s, ctx.account_id, [r.id for r in rows])
    attachments = repo.attachments_of(s, [r.id for r in rows])
    zone_ids = _zone_ids(ctx)
    items = []
    for r in rows:
        item = {
            "VolumeId": r.id,
            "Size": r.size_gib,
            "SnapshotId": r.snapshot_id or "",
            "AvailabilityZone": r.availability_zone,
            "AvailabilityZoneId": zone_ids.get(r.availability_zone),
            "State": r.state,
            "CreateTime": r.created_at,
            "Attachments": [
                {
                    "VolumeId": a.volume_id,
                    "InstanceId": a.instance_id,
                    "Device": a.device,
                    "State": a.state,
                    "AttachTime": a.attach_time,
                    "DeleteOnTermination": a.delete_on_termination,
                }
                for a in attachments.get(r.id, [])
            ],
            "Encrypted": r.encrypted,
            "VolumeType": r.volume_type,
            "Iops": r.iops,
            "Throughput": r.throughput,
            "MultiAttachEnabled": r.multi_attach_enabled,
            "FastRestored": False,
            "Tags": tags[r.id] or None,
        }
        items.append({k: v for k, v in item.items() if v is not None})
    return items


def _zone(ctx: RequestContext, params: dict[str, Any]) -> str:
    name, zone_id = params.get("AvailabilityZone"), params.get("AvailabilityZoneId")
    if name and zone_id:
        raise errors.InvalidParameterCombination(
            reason="Only one of availabilityZone and availabilityZoneId may be given."
        )
    if not name and not zone_id:
        raise errors.MissingParameter(name="availabilityZone")
    zones = _zone_ids(ctx)
    if zone_id:
        by_id = {v: k for k, v in zones.items()}
        if zone_id not in by_id:
            raise errors.InvalidParameterValue(
                f"The zone ID '{zone_id}' does not exist.", code="InvalidZone.NotFound"
            )
        return by_id[zone_id]
    if name not in zones:
        raise errors.InvalidParameterValue(f"The zone '{name}' does not exist.", code="InvalidZone.NotFound")
    return str(name)


def create_volume(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    for name, reason in _UNSUPPORTED.items():
        if params.get(name):
            raise errors.Unsupported(reason=reason)
    zone = _zone(ctx, params)
    vtype = types.volume_type(params.get("VolumeType"))
    size, snapshot_id = params.get("Size"), params.get("SnapshotId")
    if size is None and not snapshot_id:
        raise errors.MissingParameter(name="size or snapshotId")
    s = ctx.session
    encrypted = bool(params.get("Encrypted"))
    if snapshot_id:
        snap = repo.usable_snapshot(s, ctx.account_id, snapshot_id)
        if size is None:
            size = snap.volume_size
        elif size < snap.volume_size:
            raise errors.InvalidParameterValue(
                f"Volume of size {size}GB is smaller than snapshot '{snap.id}', expect size >= {snap.volume_size}GB"
            )
        encrypted = encrypted or snap.encrypted
    assert size is not None
    types.check_size(vtype, size)
    perf = types.performance(vtype, size, params.get("Iops"), params.get("Throughput"))
    tags = tagging.tag_specifications_for(params, "volume", action="CreateVolume")
    repo.check_volume_limit(s, ctx.account_id, size, ctx.settings.volume_gib_per_account)
    if perf.volume_type in repo.PROVISIONED_IOPS_TYPES and perf.iops:
        repo.check_iops_limit(s, ctx.account_id, perf.iops, ctx.settings.provisioned_iops_per_account)
    row = repo.create_volume(
        s,
        ctx.account_id,
        availability_zone=zone,
        size_gib=size,
        volume_type=perf.volume_type,
        iops=perf.iops,
        throughput=perf.throughput,
        encrypted=encrypted,
        snapshot_id=snapshot_id or None,
        now=ctx.now(),
    )
    if tags:
        db_tags.set_tags(s, ctx.account_id, [(row.id, "volume")], tags)
    _cast(ctx, "create_volume", CreateVolume(row.id))
    item = volume_items(ctx, [row])[0]
    item.pop("Attachments", None)  # "This parameter is not returned by CreateVolume."
    item.pop("FastRestored", None)
    return item


def _cast(ctx: RequestContext, op: str, message: object) -> None:
    """Send ``message`` to the volume service once the request has committed."""
    service = ctx.services.get("volume")
    if service is not None:
        ctx.on_commit(lambda: getattr(service, op)(message))


def delete_volume(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    volume_id = params.get("VolumeId")
    if not volume_id:
        raise errors.MissingParameter(name="volumeId")
    row = repo.start_delete_volume(ctx.session, ctx.account_id, volume_id)
    _cast(ctx, "delete_volume", DeleteVolume(row.id))
    return {}


def describe_volumes(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    action = "DescribeVolumes"
    pagination.check_max_results_combination(action, params)
    rows = repo.list_volumes(ctx.session, ctx.account_id, params.get("VolumeIds") or [])
    items = filters.filter_action(action, volume_items(ctx, rows), params.get("Filters"))
    scope = pagination.token_scope(action, ctx.account_id)
    page, token = pagination.paginate_action(action, items, params, key="VolumeId", scope=scope)
    return {"Volumes": page, "NextToken": token}


def _attachment_item(change: db_attachments.Change, state: str) -> dict[str, Any]:
    a = change.attachment
    return {
        "VolumeId": a.volume_id,
        "InstanceId": a.instance_id,
        "Device": a.device,
        "State": state,
        "AttachTime": a.attach_time,
        "DeleteOnTermination": a.delete_on_termination,
    }


def _tell_host(
    ctx: RequestContext, operation: str, change: db_attachments.Change, force: bool = False
) -> None:
    """Cast ``operation`` about the attachment to the instance's host once ``ctx`` has committed."""
    compute = ctx.services.get("compute")
    instance = change.instance
    if compute is None or instance is None or not change.hot or not instance.host:
        return
    volume = VolumeAttachment.of_export(change.volume.id, change.attachment.device, change.volume.export)
    message = VolumeAction(host=instance.host, instance_id=instance.id, volume=volume, force=force)
    ctx.on_commit(lambda: getattr(compute, operation)(message))


def _required(params: dict[str, Any], *names: str) -> list[Any]:
    for name in names:
        if not params.get(name):
            raise errors.MissingParameter(name=name[0].lower() + name[1:])
    return [params[name] for name in names]


def attach_volume(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    volume_id, instance_id, device = _required(params, "VolumeId", "InstanceId", "Device")
    change = db_attachments.start_attach(
        ctx.session, ctx.account_id, volume_id, instance_id, device, now=ctx.now()
    )
    _tell_host(ctx, "attach_volume", change)
    return _attachment_item(change, "attaching")


def detach_volume(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    (volume_id,) = _required(params, "VolumeId")
    change = db_attachments.start_detach(
        ctx.session, ctx.account_id, volume_id, params.get("InstanceId"), params.get("Device")
    )
    _tell_host(ctx, "detach_volume", change, force=bool(params.get("Force")))
    return _attachment_item(change, "detaching")


ACTIONS = {
    "AttachVolume": attach_volume,
    "DetachVolume": detach_volume,
    "CreateVolume": create_volume,
    "DeleteVolume": delete_volume,
    "DescribeVolumes": describe_volumes,
}
