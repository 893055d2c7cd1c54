"""An instance's disks and machine type through Compute Engine: ``attachDisk`` and
``detachDisk`` are EC2's AttachVolume and DetachVolume, ``setMachineType`` is
ModifyInstanceAttribute ``instanceType``.

* attachDisk: ``source`` (a disk URL in the instance's zone), ``deviceName`` (default:
  the disk's name, as Compute Engine), ``mode`` READ_WRITE (READ_ONLY is refused:
  no read-only attachments here). The EBS device is the first free of
  ``/dev/sdb`` … ``/dev/sdy``; the deviceName is kept on the disk's row while
  attached. The operation is DONE once the attachment is ``attached``.
* detachDisk: ``deviceName`` (an attached disk's, or its EBS device); DONE once the
  volume is detached.
* The instance's ``disks[]``: the boot disk (index 0) and its attached disks
  (``source``, ``deviceName``, ``index`` in attach order from 1, ``boot: false``).
* setMachineType: only while the instance is TERMINATED (stopped); otherwise 400
  ``resourceNotReady`` as Compute Engine ("The resource ... is not ready").
"""

from __future__ import annotations

import string
from typing import Any

from ocs import errors as ocs_errors
from ocs.api_ec2.actions import instance_attributes as ec2_changes
from ocs.api_ec2.actions import volumes as ec2_volumes
from ocs.api_gce import errors, ids
from ocs.api_gce.context import GceContext
from ocs.api_gce.resources import catalog, disks, instances, operations
from ocs.api_gce.routes import Route
from ocs.db import gce as db_gce
from ocs.db import volume_attachments as db_attachments
from ocs.db.models.compute import Instance

_DEVICES = [f"/dev/sd{c}" for c in string.ascii_lowercase[1:25]]


def attached_entries(ctx: GceContext, row: Instance) -> list[dict[str, Any]]:
    """``disks[]`` entries of the volumes attached to ``row`` (after its boot disk)."""
    found = db_attachments.of_instances(ctx.session, [row.id]).get(row.id, [])
    found = sorted(found, key=lambda a: (a.attach_time, a.device))
    names = db_gce.disk_names(ctx.session, [a.volume_id for a in found])
    out = []
    for n, a in enumerate(found, start=1):
        g = names.get(a.volume_id)
        name = g.name if g is not None else a.volume_id
        out.append(
            {
                "kind": "compute#attachedDisk",
                "type": "PERSISTENT",
                "mode": "READ_WRITE",
                "source": ctx.links.disk(row.availability_zone, name),
                "deviceName": (g.device_name if g is not None else None) or a.device.rsplit("/", 1)[-1],
                "index": n,
                "boot": False,
                "autoDelete": bool(a.delete_on_termination),
                "interface": "SCSI",
            }
        )
    return out


def _operation(
    ctx: GceContext, kind: str, zone: str, link: str, row: Instance, target: str | None, query: dict[str, str]
) -> dict[str, Any]:
    op = operations.create(
        ctx,
        kind,
        scope="zone",
        location=zone,
        target_link=link,
        target_id=ids.numeric_id("instance", row.id),
        target=target,
        request_id=query.get("requestId") or None,
    )
    return operations.item(ctx, op)


def attach_disk(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    zone = catalog.check_zone(ctx, path["zone"])
    replay = instances._replayed(ctx, query)
    if replay is not None:
        return replay
    body = body or {}
    row, g = instances.resolve(ctx, zone, path["instance"])
    link = ctx.links.instance(zone, instances.gce_name(row, g))
    if body.get("boot"):
        raise errors.invalid("Attaching a boot disk is not supported by this cloud.")
    if body.get("mode", "READ_WRITE") != "READ_WRITE":
        raise errors.invalid_field(
            "resource.mode", body.get("mode"), "Only READ_WRITE is supported by this cloud."
        )
    if not body.get("source"):
        raise errors.invalid_field("resource.source", "", "Required.")
    project, name = instances._last(body["source"], "disks", "resource.source")
    source_zone = _zone_of(body["source"]) or zone
    if project not in (None, ctx.project) or source_zone != zone:
        raise errors.not_found(f"projects/{project or ctx.project}/zones/{source_zone}/disks/{name}")
    volume, dg = disks.resolve_disk(ctx, zone, name)
    disk = disks._gce_disk(ctx, volume, dg)
    device_name = body.get("deviceName") or disk.name
    if not isinstance(device_name, str) or not ids.valid_name(device_name):
        raise errors.invalid_field(
            "resource.deviceName", device_name, f"Must be a match of regex '{ids.NAME_REGEX}'"
        )
    if device_name in {e["deviceName"] for e in attached_entries(ctx, row)}:
        raise errors.invalid(f"A disk with deviceName '{device_name}' is already attached to the instance.")
    if volume.state == "in-use":
        raise errors.GceError(
            f"The disk resource '{ctx.links.path(ctx.links.disk(zone, disk.name))}' is already being used",
            reason="resourceInUseByAnotherResource",
            status=400,
        )
    taken = {a.device for a in db_attachments.of_instances(ctx.session, [row.id]).get(row.id, [])}
    device = next((d for d in _DEVICES if d not in taken), None)
    if device is None:
        raise errors.invalid("The instance has no free device for another disk.")
    try:
        ec2_volumes.attach_volume(
            ctx.ec2("AttachVolume"), {"VolumeId": volume.id, "InstanceId": row.id, "Device": device}
        )
    except ocs_errors.OcsError as exc:
        if exc.code in ("IncorrectState", "IncorrectInstanceState"):
            raise errors.not_ready(ctx.links.path(link)) from None
        raise
    disk.device_name = device_name
    ctx.session.flush()
    return _operation(ctx, "attachDisk", zone, link, row, volume.id, query)


def _zone_of(url: str) -> str | None:
    parts = url.split("/")
    return parts[parts.index("zones") + 1] if "zones" in parts[:-1] else None


def detach_disk(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    zone = catalog.check_zone(ctx, path["zone"])
    replay = instances._replayed(ctx, query)
    if replay is not None:
        return replay
    row, g = instances.resolve(ctx, zone, path["instance"])
    link = ctx.links.instance(zone, instances.gce_name(row, g))
    device_name = query.get("deviceName")
    if not device_name:
        raise errors.invalid_field("deviceName", "", "Required.")
    found = db_attachments.of_instances(ctx.session, [row.id]).get(row.id, [])
    names = db_gce.disk_names(ctx.session, [a.volume_id for a in found])
    attachment = next(
        (
            a
            for a in found
            if device_name
            in (getattr(names.get(a.volume_id), "device_name", None), a.device.rsplit("/", 1)[-1])
        ),
        None,
    )
    if attachment is None:
        raise errors.invalid(f"No attached disk found with device name '{device_name}'")
    try:
        ec2_volumes.detach_volume(
            ctx.ec2("DetachVolume"), {"VolumeId": attachment.volume_id, "InstanceId": row.id}
        )
    except ocs_errors.OcsError as exc:
        if exc.code == "IncorrectState":
            raise errors.not_ready(ctx.links.path(link)) from None
        raise
    disk = names.get(attachment.volume_id)
    if disk is not None:
        disk.device_name = None
    ctx.session.flush()
    return _operation(ctx, "detachDisk", zone, link, row, attachment.volume_id, query)


def set_machine_type(
    ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any
) -> dict[str, Any]:
    zone = catalog.check_zone(ctx, path["zone"])
    replay = instances._replayed(ctx, query)
    if replay is not None:
        return replay
    body = body or {}
    row, g = instances.resolve(ctx, zone, path["instance"])
    link = ctx.links.instance(zone, instances.gce_name(row, g))
    _, machine_type = instances._last(body.get("machineType"), "machineTypes", "machineType")
    catalog.get_machine_type_row(ctx, zone, machine_type)
    if row.state != "stopped":
        raise errors.GceError(
            f"The resource '{ctx.links.path(link)}' is not ready",
            reason="resourceNotReady",
            status=400,
        )
    if machine_type != row.instance_type:
        try:
            ec2_changes.ACTIONS["ModifyInstanceAttribute"](
                ctx.ec2("ModifyInstanceAttribute"),
                {"InstanceId": row.id, "InstanceType": {"Value": machine_type}},
            )
        except ocs_errors.OcsError as exc:
            if exc.code == "IncorrectInstanceState":
                raise errors.not_ready(ctx.links.path(link)) from None
            raise
    return _operation(ctx, "setMachineType", zone, link, row, None, query)


_I = "projects/{project}/zones/{zone}/instances/{instance}"
ROUTES = [
    Route(
        "POST",
        _I + "/attachDisk",
        attach_disk,
        "compute.instances.attachDisk",
        response="Operation",
        request="AttachedDisk",
    ),
    Route("POST", _I + "/detachDisk", detach_disk, "compute.instances.detachDisk", response="Operation"),
    Route(
        "POST",
        _I + "/setMachineType",
        set_machine_type,
        "compute.instances.setMachineType",
        response="Operation",
        request="InstancesSetMachineTypeRequest",
    ),
]
