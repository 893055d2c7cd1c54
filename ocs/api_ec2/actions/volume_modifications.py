"""EBS volumes, continued: ModifyVolume, DescribeVolumesModifications, DescribeVolumeStatus,
DescribeVolumeAttribute, ModifyVolumeAttribute.

* ModifyVolume (Elastic Volumes): ``Size`` (grow only), ``VolumeType``, ``Iops``,
  ``Throughput``, checked as CreateVolume checks a new volume
  (:func:`ocs.volume.types.modification`); unchanged members keep the volume's
  values. The answer is the modification ``modifying``; the volume service grows
  the bytes (through the hypervisor of a running guest it is plugged into, which
  then sees the new size at once), the volume takes its new size and type and the
  modification moves to ``optimizing``, then ``completed`` (or ``failed``, the
  volume as it was). One modification at a time (``IncorrectModificationState``,
  :mod:`ocs.db.volume_modifications`); a larger volume counts against the
  account's storage limit (``VolumeLimitExceeded``), more provisioned IOPS
  (io1, io2) against its IOPS limit (``MaxIOPSLimitExceeded``). ``MultiAttachEnabled`` true
  is ``Unsupported``, as at CreateVolume; magnetic (``standard``) volumes cannot be
  modified (EC2's Elastic Volumes do not take previous-generation volumes):
  ``UnsupportedOperation``. A request that changes nothing is
  ``InvalidParameterCombination``.
* DescribeVolumesModifications: the latest modification of each of the caller's
  volumes (EC2 reports the latest), filters, ``MaxResults``/``NextToken``.
* DescribeVolumeStatus: ``ok`` with ``io-enabled`` ``passed`` for a volume that has
  its bytes (``available``, ``in-use``); ``impaired`` (``io-enabled`` ``failed``) for
  one in ``error``; ``insufficient-data`` while it is made or deleted. No events or
  actions: nothing here ever stops a volume's I/O, so ``autoEnableIO`` has nothing
  to enable, and is recorded and reported as EC2 does.
"""

from __future__ import annotations

from typing import Any

from ocs import errors
from ocs.api_ec2 import filters, pagination
from ocs.api_ec2.actions import regions
from ocs.api_ec2.context import RequestContext
from ocs.db import volume_modifications as db_modifications
from ocs.db import volumes as repo
from ocs.db.models.volumes import Volume, VolumeModification
from ocs.volume import types
from ocs.volume.rpcapi import ModifyVolume

_CHANGES = ("Size", "VolumeType", "Iops", "Throughput", "MultiAttachEnabled")


def modification_item(row: VolumeModification) -> dict[str, Any]:
    """A botocore ``VolumeModification``."""
    item = {
        "VolumeId": row.volume_id,
        "ModificationState": row.state,
        "StatusMessage": row.status_message or None,
        "TargetSize": row.target_size,
        "TargetIops": row.target_iops,
        "TargetVolumeType": row.target_volume_type,
        "TargetThroughput": row.target_throughput,
        "TargetMultiAttachEnabled": row.target_multi_attach,
        "OriginalSize": row.original_size,
        "OriginalIops": row.original_iops,
        "OriginalVolumeType": row.original_volume_type,
        "OriginalThroughput": row.original_throughput,
        "OriginalMultiAttachEnabled": row.original_multi_attach,
        "Progress": row.progress,
        "StartTime": row.start_time,
        "EndTime": row.end_time,
    }
    return {k: v for k, v in item.items() if v is not None}


def _cast(ctx: RequestContext, message: ModifyVolume) -> None:
    service = ctx.services.get("volume")
    if service is not None:
        ctx.on_commit(lambda: service.modify_volume(message))


def modify_volume(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    volume_id = params.get("VolumeId")
    if not volume_id:
        raise errors.MissingParameter(name="volumeId")
    if params.get("MultiAttachEnabled"):
        raise errors.Unsupported(reason="Multi-Attach is not supported by this cloud.")
    if all(params.get(name) is None for name in _CHANGES):
        raise errors.MissingParameter(name="size, volumeType, iops, throughput or multiAttachEnabled")
    s = ctx.session
    volume = repo.get_volume(s, ctx.account_id, volume_id)
    if "standard" in (volume.volume_type, params.get("VolumeType")):
        raise errors.Unsupported(
            reason="Volumes of type standard (magnetic) cannot be modified.", code="UnsupportedOperation"
        )
    current = types.Current(volume.size_gib, volume.volume_type, volume.iops, volume.throughput)
    size, perf = types.modification(
        current, params.get("Size"), params.get("VolumeType"), params.get("Iops"), params.get("Throughput")
    )
    if (size, perf.volume_type, perf.iops, perf.throughput) == (
        volume.size_gib,
        volume.volume_type,
        volume.iops,
        volume.throughput,
    ):
        raise errors.InvalidParameterCombination(
            reason=f"The modification would not change volume {volume.id}: give a larger size, "
            "another type, IOPS or throughput."
        )
    if size > volume.size_gib:
        repo.check_volume_limit(
            s, ctx.account_id, size - volume.size_gib, ctx.settings.volume_gib_per_account
        )
    provisioned = repo.PROVISIONED_IOPS_TYPES
    before = (volume.iops or 0) if volume.volume_type in provisioned else 0
    after = (perf.iops or 0) if perf.volume_type in provisioned else 0
    repo.check_iops_limit(s, ctx.account_id, after - before, ctx.settings.provisioned_iops_per_account)
    row = db_modifications.start_modify(s, volume, size, perf, now=ctx.now())
    _cast(ctx, ModifyVolume(volume.id))
    return {"VolumeModification": modification_item(row)}


def describe_volumes_modifications(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    action = "DescribeVolumesModifications"
    rows = db_modifications.list_modifications(ctx.session, ctx.account_id, params.get("VolumeIds") or [])
    items = filters.filter_action(action, [modification_item(r) for r in rows], params.get("Filters"))
    scope = pagination.token_scope(action, ctx.account_id)
    page, token = pagination.paginate_action(action, items, params, key="VolumeId", scope=scope)
    return {"VolumesModifications": page, "NextToken": token}


# --- status and attributes ---------------------------------------------------------------

_STATUS = {
    "available": ("ok", "passed"),
    "in-use": ("ok", "passed"),
    "error": ("impaired", "failed"),
}


def status_item(
    ctx: RequestContext, row: Volume, zone_ids: dict[str, str], attached_to: list[str]
) -> dict[str, Any]:
    """A botocore ``VolumeStatusItem``."""
    status, io = _STATUS.get(row.state, ("insufficient-data", "insufficient-data"))
    provisioned = types.TYPES[row.volume_type].iops is not None if row.volume_type in types.TYPES else False
    performance = ("normal" if status == "ok" else status) if provisioned else "not-applicable"
    item = {
        "VolumeId": row.id,
        "AvailabilityZone": row.availability_zone,
        "AvailabilityZoneId": zone_ids.get(row.availability_zone),
        "VolumeStatus": {
            "Status": status,
            "Details": [
                {"Name": "io-enabled", "Status": io},
                {"Name": "io-performance", "Status": performance},
            ],
        },
        "Actions": [],
        "Events": [],
        "AttachmentStatuses": [
            {"InstanceId": i, **({"IoPerformance": performance} if provisioned else {})} for i in attached_to
        ]
        or None,
    }
    return {k: v for k, v in item.items() if v is not None}


def describe_volume_status(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    action = "DescribeVolumeStatus"
    pagination.check_max_results_combination(action, params)
    rows = repo.list_volumes(ctx.session, ctx.account_id, params.get("VolumeIds") or [])
    zone_ids = {z["ZoneName"]: z["ZoneId"] for z in regions._zone_items(ctx)}
    attachments = repo.attachments_of(ctx.session, [r.id for r in rows])
    items = filters.filter_action(
        action,
        [status_item(ctx, r, zone_ids, [a.instance_id for a in attachments.get(r.id, [])]) for r in rows],
        params.get("Filters"),
    )
    scope = pagination.token_scope(action, ctx.account_id)
    page, token = pagination.paginate_action(action, items, params, key="VolumeId", scope=scope)
    return {"VolumeStatuses": page, "NextToken": token}


_ATTRIBUTES = ("autoEnableIO", "productCodes")


def describe_volume_attribute(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    attribute = params.get("Attribute")
    if attribute not in _ATTRIBUTES:
        raise errors.InvalidParameterValue(
            value=attribute, name="attribute", reason="Valid values: autoEnableIO | productCodes."
        )
    volume = repo.get_volume(ctx.session, ctx.account_id, params["VolumeId"])
    if attribute == "autoEnableIO":
        return {"VolumeId": volume.id, "AutoEnableIO": {"Value": volume.auto_enable_io}}
    return {"VolumeId": volume.id, "ProductCodes": []}


def modify_volume_attribute(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    volume_id = params.get("VolumeId")
    if not volume_id:
        raise errors.MissingParameter(name="volumeId")
    value = (params.get("AutoEnableIO") or {}).get("Value")
    if value is None:
        raise errors.MissingParameter(name="autoEnableIO")
    volume = repo.get_volume(ctx.session, ctx.account_id, volume_id)
    volume.auto_enable_io = bool(value)
    ctx.session.flush()
    return {}


ACTIONS = {
    "ModifyVolume": modify_volume,
    "DescribeVolumesModifications": describe_volumes_modifications,
    "DescribeVolumeStatus": describe_volume_status,
    "DescribeVolumeAttribute": describe_volume_attribute,
    "ModifyVolumeAttribute": modify_volume_attribute,
}
