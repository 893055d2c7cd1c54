"""Zonal disks and global snapshots through Compute Engine: a disk IS one EBS volume and a
snapshot one EBS snapshot, made and changed by the same service code as EC2's
CreateVolume, ModifyVolume, CreateSnapshot ... (:mod:`ocs.api_ec2.actions`), so a disk
made here is the volume DescribeVolumes shows, and the other way round.

* ``name``: unique per project and zone (disks) or per project (snapshots), kept in
  ``gce_disks`` / ``gce_snapshots`` (unique constraints) and copied into the EC2
  ``Name`` tag. A volume or snapshot made through EC2 shows under its ID
  (``vol-...``, ``snap-...``: valid Compute Engine names). A name is free again once
  its volume or snapshot is gone.
* ``type`` ↔ EBS volume type: ``pd-standard`` ↔ ``gp2`` (the default, as
  pd-standard is Compute Engine's), ``pd-balanced`` ↔ ``gp3``, ``pd-ssd`` ↔
  ``io1`` with pd-ssd's 30 IOPS per GiB (at least 100). Volumes made through EC2
  show ``standard``, ``st1`` and ``sc1`` as pd-standard, ``io2`` as pd-ssd.
* ``sizeGb``: a blank disk without it is :data:`DEFAULT_GIB` GiB; from a snapshot,
  the snapshot's size. ``resize`` only grows (ModifyVolume).
* ``status``: volume creating CREATING, available/in-use READY, deleting DELETING,
  error FAILED; snapshot pending CREATING (UPLOADING once it has progress),
  completed READY, error FAILED.
* ``users``: the instances the disk is attached to (their URLs).
* delete of an attached disk: 400 ``resourceInUseByAnotherResource``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from ocs import errors as ocs_errors
from ocs.api_ec2.actions import snapshots as ec2_snapshots
from ocs.api_ec2.actions import volume_modifications as ec2_modifications
from ocs.api_ec2.actions import volumes as ec2_volumes
from ocs.api_gce import errors, ids
from ocs.api_gce.context import GceContext, timestamp
from ocs.api_gce.lists import aggregated, by_zone, page_of
from ocs.api_gce.resources import catalog, instances, operations
from ocs.api_gce.routes import Route
from ocs.db import gce as db_gce
from ocs.db import volumes as db_volumes
from ocs.db.models.gce import GceDisk, GceSnapshot
from ocs.db.models.volumes import Snapshot, Volume

DEFAULT_GIB = 10
TO_EBS = {"pd-standard": "gp2", "pd-balanced": "gp3", "pd-ssd": "io1"}
FROM_EBS = {
    "gp2": "pd-standard",
    "standard": "pd-standard",
    "st1": "pd-standard",
    "sc1": "pd-standard",
    "gp3": "pd-balanced",
    "io1": "pd-ssd",
    "io2": "pd-ssd",
}
SSD_IOPS_PER_GIB = 30
_DISK_STATUS = {
    "creating": "CREATING",
    "available": "READY",
    "in-use": "READY",
    "deleting": "DELETING",
    "error": "FAILED",
}


def disk_name(volume: Volume, g: GceDisk | None) -> str:
    return g.name if g is not None else volume.id


def _parse_name(body: dict[str, Any]) -> str:
    name = body.get("name")
    if not ids.valid_name(name):
        raise errors.invalid_field(
            "resource.name", name or "", f"Must be a match of regex '{ids.NAME_REGEX}'"
        )
    return str(name)


def _description(body: dict[str, Any]) -> str:
    value = body.get("description") or ""
    if not isinstance(value, str) or len(value) > 2048:
        raise errors.invalid_field("resource.description", str(value)[:20], "At most 2048 characters.")
    return value


# --- disks: output --------------------------------------------------------------------------------


def _instance_names(ctx: GceContext, instance_ids: list[str]) -> dict[str, str]:
    rows = db_gce.gce_rows(ctx.session, instance_ids)
    return {i: (rows[i].name if i in rows else i) for i in instance_ids}


def disk_items(ctx: GceContext, pairs: list[tuple[Volume, GceDisk | None]]) -> list[dict[str, Any]]:
    s, links = ctx.session, ctx.links
    attachments = db_volumes.attachments_of(s, [v.id for v, _ in pairs])
    names = _instance_names(ctx, sorted({a.instance_id for v in attachments.values() for a in v}))
    snaps = {
        g.snapshot_id: g.name
        for g in (s.get(GceSnapshot, v.snapshot_id) for v, _ in pairs if v.snapshot_id)
        if g is not None
    }
    out = []
    for volume, g in pairs:
        zone = volume.availability_zone
        labels = dict(g.labels) if g is not None else {}
        attached = attachments.get(volume.id, [])
        item: dict[str, Any] = {
            "kind": "compute#disk",
            "id": ids.numeric_id("disk", volume.id),
            "creationTimestamp": timestamp(volume.created_at),
            "name": disk_name(volume, g),
            "description": g.description if g is not None else "",
            "sizeGb": str(volume.size_gib),
            "zone": links.zone(zone),
            "status": _DISK_STATUS.get(volume.state, "READY"),
            "type": f"{links.zone(zone)}/diskTypes/{FROM_EBS.get(volume.volume_type, 'pd-standard')}",
            "selfLink": links.disk(zone, disk_name(volume, g)),
            "labels": labels,
            "labelFingerprint": instances.fingerprint(labels),
            "physicalBlockSizeBytes": "4096",
            "users": [links.instance(zone, names[a.instance_id]) for a in attached],
        }
        if volume.volume_type in ("io1", "io2", "gp3") and volume.iops:
            item["provisionedIops"] = str(volume.iops)
        if volume.throughput:
            item["provisionedThroughput"] = str(volume.throughput)
        if attached:
            item["lastAttachTimestamp"] = timestamp(max(a.attach_time for a in attached))
        if volume.snapshot_id:
            item["sourceSnapshot"] = (
                links.project_url() + "/global/snapshots/" + snaps.get(volume.snapshot_id, volume.snapshot_id)
            )
            item["sourceSnapshotId"] = ids.numeric_id("snapshot", volume.snapshot_id)
        out.append(item)
    return out


def resolve_disk(ctx: GceContext, zone: str, name: str) -> tuple[Volume, GceDisk | None]:
    """The volume of disk ``name`` (its name, volume ID or numeric id) in ``zone``; 404 otherwise."""
    s = ctx.session
    g = db_gce.disk_by_name(s, ctx.account_id, zone, name)
    if g is not None:
        volume = s.get(Volume, g.volume_id)
        if volume is not None:
            return volume, g
    if name.startswith("vol-"):
        volume = s.get(Volume, name)
        if volume is not None and volume.account_id == ctx.account_id and volume.availability_zone == zone:
            return volume, db_gce.disk_names(s, [volume.id]).get(volume.id)
    if name.isdigit():
        for volume, g in db_gce.disk_rows(s, ctx.account_id, zone):
            if ids.numeric_id("disk", volume.id) == name:
                return volume, g
    raise errors.not_found(f"projects/{ctx.project}/zones/{zone}/disks/{name}")


def _gce_disk(ctx: GceContext, volume: Volume, g: GceDisk | None) -> GceDisk:
    if g is not None:
        return g
    return db_gce.add_gce_disk(
        ctx.session, volume.id, ctx.account_id, volume.availability_zone, volume.id, "", {}
    )


# --- disks: handlers ------------------------------------------------------------------------------


def _op(
    ctx: GceContext,
    kind: str,
    scope_zone: str,
    link: str,
    target_id: str,
    target: str | None,
    query: dict[str, str],
) -> dict[str, Any]:
    op = operations.create(
        ctx,
        kind,
        scope="zone",
        location=scope_zone,
        target_link=link,
        target_id=target_id,
        target=target,
        request_id=query.get("requestId") or None,
    )
    return operations.item(ctx, op)


def _volume_type(zone: str, value: Any) -> str:
    if value in (None, ""):
        return "pd-standard"
    _, name = instances._last(value, "diskTypes", "resource.type")
    if name not in TO_EBS:
        raise errors.invalid_field(
            "resource.type", value, f"Unknown disk type; one of {', '.join(sorted(TO_EBS))}."
        )
    return name


def _size(value: Any, field_name: str) -> int | None:
    if value is None:
        return None
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise errors.invalid_field(field_name, value, "Must be an integer.") from None
    if size < 1:
        raise errors.invalid_field(field_name, value, "Must be at least 1.")
    return size


def _source_snapshot(ctx: GceContext, value: Any) -> str:
    project, name = instances._last(value, "snapshots", "resource.sourceSnapshot")
    if project not in (None, ctx.project):
        raise errors.not_found(f"projects/{project}/global/snapshots/{name}")
    g = db_gce.snapshot_by_name(ctx.session, ctx.account_id, name)
    if g is not None:
        return g.snapshot_id
    if name.startswith("snap-"):
        return name  # the service checks it is the caller's (or shared with it)
    raise errors.not_found(f"projects/{ctx.project}/global/snapshots/{name}")


def insert_disk(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    zone = catalog.check_zone(ctx, path["zone"])
    replay = instances._replayed(ctx, query)
    if replay is not None:
        return replay
    body = body or {}
    name = _parse_name(body)
    description = _description(body)
    labels = instances.parse_labels(body.get("labels"))
    gtype = _volume_type(zone, body.get("type"))
    size = _size(body.get("sizeGb"), "resource.sizeGb")
    if body.get("sourceImage"):
        raise errors.invalid("Disks from images are not supported by this cloud; use sourceSnapshot.")
    params: dict[str, Any] = {
        "AvailabilityZone": zone,
        "VolumeType": TO_EBS[gtype],
        "TagSpecifications": [{"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": name}]}],
    }
    if body.get("sourceSnapshot"):
        params["SnapshotId"] = _source_snapshot(ctx, body["sourceSnapshot"])
        if size is None:
            snap = ctx.session.get(Snapshot, params["SnapshotId"])
            size = snap.volume_size if snap is not None else None
    size = size if size is not None or "SnapshotId" in params else DEFAULT_GIB
    if size is not None:
        params["Size"] = size
    if gtype == "pd-ssd":
        params["Iops"] = max(100, SSD_IOPS_PER_GIB * (size or DEFAULT_GIB))
    link = ctx.links.disk(zone, name)
    if not db_gce.release_stale_disk_name(ctx.session, ctx.account_id, zone, name):
        raise errors.already_exists(ctx.links.path(link))
    made = ec2_volumes.create_volume(ctx.ec2("CreateVolume"), params)
    try:
        db_gce.add_gce_disk(ctx.session, made["VolumeId"], ctx.account_id, zone, name, description, labels)
    except IntegrityError:  # another insert took the name meanwhile
        ctx.session.rollback()
        raise errors.already_exists(ctx.links.path(link)) from None
    return _op(ctx, "insert", zone, link, ids.numeric_id("disk", made["VolumeId"]), made["VolumeId"], query)


def get_disk(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    zone = catalog.check_zone(ctx, path["zone"])
    return disk_items(ctx, [resolve_disk(ctx, zone, path["disk"])])[0]


def list_disks(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    zone = catalog.check_zone(ctx, path["zone"])
    found = disk_items(ctx, db_gce.disk_rows(ctx.session, ctx.account_id, zone))
    return page_of("compute#diskList", found, query, ctx.links.zone(zone) + "/disks")


def aggregated_disks(
    ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any
) -> dict[str, Any]:
    found = disk_items(ctx, db_gce.disk_rows(ctx.session, ctx.account_id))
    by_scope = by_zone(ctx.settings.zones, found)
    link = ctx.links.project_url() + "/aggregated/disks"
    return aggregated("compute#diskAggregatedList", "disks", by_scope, query, link)


def delete_disk(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    zone = catalog.check_zone(ctx, path["zone"])
    replay = instances._replayed(ctx, query)
    if replay is not None:
        return replay
    volume, g = resolve_disk(ctx, zone, path["disk"])
    link = ctx.links.disk(zone, disk_name(volume, g))
    users = db_volumes.attachments_of(ctx.session, [volume.id]).get(volume.id, [])
    if users:
        where = ctx.links.path(link)
        user = ctx.links.path(
            ctx.links.instance(zone, _instance_names(ctx, [users[0].instance_id])[users[0].instance_id])
        )
        raise errors.GceError(
            f"The disk resource '{where}' is already being used by '{user}'",
            reason="resourceInUseByAnotherResource",
            status=400,
        )
    try:
        ec2_volumes.delete_volume(ctx.ec2("DeleteVolume"), {"VolumeId": volume.id})
    except ocs_errors.OcsError as exc:
        if exc.code == "IncorrectState":
            raise errors.not_ready(ctx.links.path(link)) from None
        raise
    return _op(ctx, "delete", zone, link, ids.numeric_id("disk", volume.id), volume.id, query)


def resize_disk(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    zone = catalog.check_zone(ctx, path["zone"])
    replay = instances._replayed(ctx, query)
    if replay is not None:
        return replay
    size = _size((body or {}).get("sizeGb"), "sizeGb")
    if size is None:
        raise errors.invalid_field("sizeGb", "", "Required.")
    volume, g = resolve_disk(ctx, zone, path["disk"])
    link = ctx.links.disk(zone, disk_name(volume, g))
    if size <= volume.size_gib:
        raise errors.invalid(
            f"Invalid value for field 'sizeGb': '{size}'. New disk size '{size}' GiB must be larger "
            f"than existing size '{volume.size_gib}' GiB."
        )
    try:
        ec2_modifications.modify_volume(ctx.ec2("ModifyVolume"), {"VolumeId": volume.id, "Size": size})
    except ocs_errors.OcsError as exc:
        if exc.code in ("IncorrectState", "IncorrectModificationState"):
            raise errors.not_ready(ctx.links.path(link)) from None
        raise
    return _op(ctx, "resize", zone, link, ids.numeric_id("disk", volume.id), volume.id, query)


def _check_fingerprint(body: dict[str, Any], labels: dict[str, str], where: str) -> None:
    given = body.get("labelFingerprint")
    if given is not None and given != instances.fingerprint(labels):
        raise errors.fingerprint_mismatch(where)


def set_disk_labels(
    ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any
) -> dict[str, Any]:
    zone = catalog.check_zone(ctx, path["zone"])
    replay = instances._replayed(ctx, query)
    if replay is not None:
        return replay
    body = body or {}
    labels = instances.parse_labels(body.get("labels"), "labels")
    volume, g = resolve_disk(ctx, zone, path["resource"])
    link = ctx.links.disk(zone, disk_name(volume, g))
    row = _gce_disk(ctx, volume, g)
    _check_fingerprint(body, dict(row.labels), ctx.links.path(link))
    row.labels = labels
    ctx.session.flush()
    return _op(ctx, "setLabels", zone, link, ids.numeric_id("disk", volume.id), None, query)


# --- snapshots ------------------------------------------------------------------------------------


def _snapshot_status(snap: Snapshot) -> str:
    if snap.state == "completed":
        return "READY"
    if snap.state == "error":
        return "FAILED"
    return "UPLOADING" if snap.progress > 0 else "CREATING"


def snapshot_items(ctx: GceContext, pairs: list[tuple[Snapshot, GceSnapshot | None]]) -> list[dict[str, Any]]:
    links = ctx.links
    out = []
    for snap, g in pairs:
        name = g.name if g is not None else snap.id
        labels = dict(g.labels) if g is not None else {}
        item: dict[str, Any] = {
            "kind": "compute#snapshot",
            "id": ids.numeric_id("snapshot", snap.id),
            "creationTimestamp": timestamp(snap.started_at),
            "name": name,
            "description": g.description if g is not None else snap.description,
            "status": _snapshot_status(snap),
            "diskSizeGb": str(snap.volume_size),
            "storageBytes": str(snap.data_bytes or 0),
            "storageBytesStatus": "UP_TO_DATE" if snap.state == "completed" else "UPDATING",
            "sourceDiskId": ids.numeric_id("disk", snap.volume_id),
            "selfLink": links.project_url() + "/global/snapshots/" + name,
            "labels": labels,
            "labelFingerprint": instances.fingerprint(labels),
            "snapshotType": "STANDARD",
            "storageLocations": [ctx.settings.region],
        }
        if g is not None and g.source_disk:
            item["sourceDisk"] = g.source_disk
        out.append(item)
    return out


def resolve_snapshot(ctx: GceContext, name: str) -> tuple[Snapshot, GceSnapshot | None]:
    s = ctx.session
    g = db_gce.snapshot_by_name(s, ctx.account_id, name)
    if g is not None:
        snap = s.get(Snapshot, g.snapshot_id)
        if snap is not None:
            return snap, g
    for snap, g in (
        db_gce.snapshot_rows(s, ctx.account_id) if name.startswith("snap-") or name.isdigit() else []
    ):
        if name in (snap.id, ids.numeric_id("snapshot", snap.id)):
            return snap, g
    raise errors.not_found(f"projects/{ctx.project}/global/snapshots/{name}")


def create_snapshot(
    ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any
) -> dict[str, Any]:
    zone = catalog.check_zone(ctx, path["zone"])
    replay = instances._replayed(ctx, query)
    if replay is not None:
        return replay
    body = body or {}
    name = _parse_name(body)
    description = _description(body)
    labels = instances.parse_labels(body.get("labels"))
    volume, g = resolve_disk(ctx, zone, path["disk"])
    disk_link = ctx.links.disk(zone, disk_name(volume, g))
    link = ctx.links.project_url() + "/global/snapshots/" + name
    if not db_gce.release_stale_snapshot_name(ctx.session, ctx.account_id, name):
        raise errors.already_exists(ctx.links.path(link))
    try:
        made = ec2_snapshots.create_snapshot(
            ctx.ec2("CreateSnapshot"),
            {
                "VolumeId": volume.id,
                "Description": description[:255],
                "TagSpecifications": [{"ResourceType": "snapshot", "Tags": [{"Key": "Name", "Value": name}]}],
            },
        )
    except ocs_errors.OcsError as exc:
        if exc.code == "IncorrectState":
            raise errors.not_ready(ctx.links.path(disk_link)) from None
        raise
    try:
        db_gce.add_gce_snapshot(
            ctx.session,
            made["SnapshotId"],
            ctx.account_id,
            name,
            description=description,
            labels=labels,
            source_disk=disk_link,
        )
    except IntegrityError:
        ctx.session.rollback()
        raise errors.already_exists(ctx.links.path(link)) from None
    return _op(
        ctx, "createSnapshot", zone, disk_link, ids.numeric_id("disk", volume.id), made["SnapshotId"], query
    )


def get_snapshot(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    return snapshot_items(ctx, [resolve_snapshot(ctx, path["snapshot"])])[0]


def list_snapshots(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    found = snapshot_items(ctx, db_gce.snapshot_rows(ctx.session, ctx.account_id))
    return page_of("compute#snapshotList", found, query, ctx.links.project_url() + "/global/snapshots")


def _global_op(
    ctx: GceContext, kind: str, link: str, snap: Snapshot, query: dict[str, str]
) -> dict[str, Any]:
    op = operations.create(
        ctx,
        kind,
        scope="global",
        location="",
        target_link=link,
        target_id=ids.numeric_id("snapshot", snap.id),
        target=None,
        request_id=query.get("requestId") or None,
    )
    return operations.item(ctx, op)


def delete_snapshot(
    ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any
) -> dict[str, Any]:
    replay = instances._replayed(ctx, query)
    if replay is not None:
        return replay
    snap, g = resolve_snapshot(ctx, path["snapshot"])
    link = ctx.links.project_url() + "/global/snapshots/" + (g.name if g is not None else snap.id)
    ec2_snapshots.delete_snapshot(ctx.ec2("DeleteSnapshot"), {"SnapshotId": snap.id})
    return _global_op(ctx, "delete", link, snap, query)


def set_snapshot_labels(
    ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any
) -> dict[str, Any]:
    replay = instances._replayed(ctx, query)
    if replay is not None:
        return replay
    body = body or {}
    labels = instances.parse_labels(body.get("labels"), "labels")
    snap, g = resolve_snapshot(ctx, path["resource"])
    if g is None:
        g = db_gce.add_gce_snapshot(
            ctx.session, snap.id, ctx.account_id, snap.id, description=snap.description, labels={}
        )
    link = ctx.links.project_url() + "/global/snapshots/" + g.name
    _check_fingerprint(body, dict(g.labels), ctx.links.path(link))
    g.labels = labels
    ctx.session.flush()
    return _global_op(ctx, "setLabels", link, snap, query)


_D = "projects/{project}/zones/{zone}/disks"
_S = "projects/{project}/global/snapshots"
_OP = "Operation"
ROUTES = [
    Route("GET", _D, list_disks, "compute.disks.list", response="DiskList"),
    Route("POST", _D, insert_disk, "compute.disks.create", response=_OP, request="Disk"),
    Route(
        "GET",
        "projects/{project}/aggregated/disks",
        aggregated_disks,
        "compute.disks.list",
        response="DiskAggregatedList",
    ),
    Route("GET", _D + "/{disk}", get_disk, "compute.disks.get", response="Disk"),
    Route("DELETE", _D + "/{disk}", delete_disk, "compute.disks.delete", response=_OP),
    Route(
        "POST",
        _D + "/{disk}/resize",
        resize_disk,
        "compute.disks.resize",
        response=_OP,
        request="DisksResizeRequest",
    ),
    Route(
        "POST",
        _D + "/{resource}/setLabels",
        set_disk_labels,
        "compute.disks.setLabels",
        response=_OP,
        request="ZoneSetLabelsRequest",
    ),
    Route(
        "POST",
        _D + "/{disk}/createSnapshot",
        create_snapshot,
        "compute.disks.createSnapshot",
        response=_OP,
        request="Snapshot",
    ),
    Route("GET", _S, list_snapshots, "compute.snapshots.list", response="SnapshotList"),
    Route("GET", _S + "/{snapshot}", get_snapshot, "compute.snapshots.get", response="Snapshot"),
    Route("DELETE", _S + "/{snapshot}", delete_snapshot, "compute.snapshots.delete", response=_OP),
    Route(
        "POST",
        _S + "/{resource}/setLabels",
        set_snapshot_labels,
        "compute.snapshots.setLabels",
        response=_OP,
        request="GlobalSetLabelsRequest",
    ),
]
