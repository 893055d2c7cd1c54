"""Instances through Compute Engine: the cloud's own instances, made and changed by the same
service code as EC2's RunInstances, StopInstances ... (:mod:`ocs.api_ec2.actions`), so an
instance made here is the instance DescribeInstances shows, and the other way round.

* ``name``: unique per project and zone, kept in ``gce_instances`` (a unique
  constraint, so two concurrent inserts cannot both take it) and copied into the
  instance's EC2 ``Name`` tag. An instance made through EC2 shows under its
  instance ID (``i-...``, a valid Compute Engine name). An instance's name is free
  again once it is deleted (terminated).
* ``id``: a decimal uint64 derived from the instance ID (:mod:`ocs.api_gce.ids`);
  it resolves wherever the name does.
* ``status``: pending without a host PROVISIONING, pending on a host STAGING,
  running RUNNING, stopping and shutting-down STOPPING, stopped TERMINATED (Compute
  Engine's word for a stopped instance); terminated instances are deleted: 404.
* ``metadata``: kept as given; the item ``user-data`` at insert becomes the instance's
  EC2 user data (what cloud-init reads from the config drive; setMetadata does not
  change it, as EC2 changes user data only while stopped). ``labels`` and
  ``tags.items`` are kept as given (their EC2 view is not written).
* The boot disk: ``disks[]`` must hold exactly one disk, the boot disk, with
  ``initializeParams.sourceImage`` (an image URL) and optionally ``diskSizeGb``.
  Existing disks are attached afterwards (``attachDisk``, :mod:`.instance_disks`) and
  follow the boot disk in ``disks[]``.
* ``networkInterfaces``: at most one; ``subnetwork`` names an OCS subnet by ID,
  ``network`` a VPC (``default`` or its ID: its subnet in the zone); neither: the
  default subnet of the zone; ``networkIP`` a private address; an
  ``accessConfigs`` entry of type ONE_TO_ONE_NAT asks for a public address (none
  when there is no accessConfigs, as on Compute Engine).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError

from ocs import errors as ocs_errors
from ocs.api_ec2.actions import addresses as ec2_addresses
from ocs.api_ec2.actions import instance_attributes as ec2_changes
from ocs.api_ec2.actions import instances as ec2_instances
from ocs.api_gce import errors, ids
from ocs.api_gce.context import GceContext, timestamp
from ocs.api_gce.lists import aggregated, by_zone, page_of
from ocs.api_gce.resources import addresses, catalog, networks, operations
from ocs.api_gce.routes import Route
from ocs.db import gce as db_gce
from ocs.db import vpcs as db_vpcs
from ocs.db.models.compute import Instance
from ocs.db.models.gce import GceInstance
from ocs.db.models.images import Image

_STATUS = {
    "running": "RUNNING",
    "stopping": "STOPPING",
    "shutting-down": "STOPPING",
    "stopped": "TERMINATED",
}
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_METADATA_KEY = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
METADATA_LIMIT = 512 * 1024
MAX_LABELS = 64


def fingerprint(value: Any) -> str:
    digest = hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).digest()
    return base64.b64encode(digest[:8]).decode("ascii")


def status_of(row: Instance) -> str:
    if row.state == "pending":
        return "STAGING" if row.host else "PROVISIONING"
    return _STATUS.get(row.state, "TERMINATED")


def gce_name(row: Instance, g: GceInstance | None) -> str:
    return g.name if g is not None else row.id


# --- output ---------------------------------------------------------------------------------------


def _network_interface(
    ctx: GceContext, row: Instance, ec2: dict[str, Any], default_vpc: str | None
) -> dict[str, Any]:
    links = ctx.links
    vpc = ec2.get("VpcId") or row.vpc_id or ""
    nic: dict[str, Any] = {
        "kind": "compute#networkInterface",
        "name": "nic0",
        "network": links.network(networks.network_name_of(ctx, vpc)),
        "subnetwork": links.subnetwork(
            ctx.settings.region, networks.subnetwork_name(ctx, ec2.get("SubnetId") or row.subnet_id or "")
        ),
        "networkIP": ec2.get("PrivateIpAddress") or row.private_ip_address or "",
        "stackType": "IPV4_ONLY",
        "fingerprint": fingerprint([row.id, row.private_ip_address]),
    }
    if ec2.get("PublicIpAddress"):
        nic["accessConfigs"] = [
            {
                "kind": "compute#accessConfig",
                "type": "ONE_TO_ONE_NAT",
                "name": "External NAT",
                "natIP": ec2["PublicIpAddress"],
                "networkTier": "PREMIUM",
            }
        ]
    return nic


def item(
    ctx: GceContext, row: Instance, g: GceInstance | None, ec2: dict[str, Any], default_vpc: str | None
) -> dict[str, Any]:
    links, zone = ctx.links, row.availability_zone
    name = gce_name(row, g)
    labels = dict(g.labels) if g is not None else {}
    metadata = list(g.metadata_items) if g is not None else []
    tags = list(g.network_tags) if g is not None else []
    out: dict[str, Any] = {
        "kind": "compute#instance",
        "id": ids.numeric_id("instance", row.id),
        "creationTimestamp": timestamp(g.created_at if g is not None else row.launch_time),
        "name": name,
        "description": g.description if g is not None else "",
        "tags": {"items": tags, "fingerprint": fingerprint(tags)}
        if tags
        else {"fingerprint": fingerprint(tags)},
        "machineType": links.machine_type(zone, row.instance_type),
        "status": status_of(row),
        "zone": links.zone(zone),
        "canIpForward": False,
        "networkInterfaces": [_network_interface(ctx, row, ec2, default_vpc)] if row.subnet_id else [],
        "disks": [
            {
                "kind": "compute#attachedDisk",
                "type": "PERSISTENT",
                "mode": "READ_WRITE",
                "source": links.disk(zone, name),
                "deviceName": "persistent-disk-0",
                "index": 0,
                "boot": True,
                "autoDelete": True,
                "interface": "SCSI",
                "diskSizeGb": str(row.disk_gib),
            }
        ],
        "metadata": {"kind": "compute#metadata", "fingerprint": fingerprint(metadata), "items": metadata},
        "selfLink": links.instance(zone, name),
        "scheduling": {"onHostMaintenance": "MIGRATE", "automaticRestart": True, "preemptible": False},
        "cpuPlatform": "OCS virtual CPU",
        "labels": labels,
        "labelFingerprint": fingerprint(labels),
        "startRestricted": False,
        "deletionProtection": bool(row.disable_api_termination),
        "lastStartTimestamp": timestamp(row.launch_time),
        "fingerprint": fingerprint([row.id, row.state, labels, metadata, tags]),
    }
    if row.state_reason_message and row.state in ("stopped", "stopping"):
        out["statusMessage"] = row.state_reason_message
    return out


def items(ctx: GceContext, pairs: list[tuple[Instance, GceInstance | None]]) -> list[dict[str, Any]]:
    rows = [r for r, _ in pairs]
    ec2ctx = ctx.ec2("DescribeInstances")
    rel = ec2_instances.related(ec2ctx, rows)
    vpc = db_vpcs.default_vpc(ctx.session, ctx.account_id)
    default_vpc = vpc.id if vpc is not None else None
    out = [item(ctx, r, g, ec2_instances.instance_item(ec2ctx, r, rel), default_vpc) for r, g in pairs]
    from ocs.api_gce.resources.instance_disks import attached_entries  # it builds on this module

    for entry, (r, _) in zip(out, pairs, strict=True):
        entry["disks"] += attached_entries(ctx, r)
    return out


# --- lookups --------------------------------------------------------------------------------------


def resolve(ctx: GceContext, zone: str, name: str) -> tuple[Instance, GceInstance | None]:
    """The live instance ``name`` (its name, instance ID or numeric id) in ``zone``; 404 otherwise."""
    s = ctx.session
    g = db_gce.gce_row_by_name(s, ctx.account_id, zone, name)
    if g is not None:
        row = s.get(Instance, g.instance_id)
        if row is not None and row.state != "terminated":
            return row, g
    if _INSTANCE_ID.match(name):
        row = s.get(Instance, name)
        if (
            row is not None
            and row.account_id == ctx.account_id
            and row.availability_zone == zone
            and row.state != "terminated"
        ):
            return row, db_gce.gce_rows(s, [row.id]).get(row.id)
    if name.isdigit():
        for row, g in db_gce.instance_rows(s, ctx.account_id, zone):
            if ids.numeric_id("instance", row.id) == name:
                return row, g
    raise errors.not_found(f"projects/{ctx.project}/zones/{zone}/instances/{name}")


def _gce_row(ctx: GceContext, row: Instance, g: GceInstance | None) -> GceInstance:
    """The instance's Compute Engine row, made (named by its instance ID) for an EC2-made one."""
    if g is not None:
        return g
    return db_gce.add_gce_instance(
        ctx.session,
        row.id,
        ctx.account_id,
        row.availability_zone,
        row.id,
        description="",
        labels={},
        metadata_items=[],
        network_tags=[],
    )


# --- insert: the request ---------------------------------------------------------------------------


@dataclass
class InsertSpec:
    name: str
    params: dict[str, Any]  # RunInstances parameters
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    metadata: list[dict[str, str]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    nat_allocation: str | None = None  # the reserved address (natIP) to associate


def _last(url: Any, collection: str, field_name: str) -> tuple[str | None, str]:
    """(project or None, name) of a resource URL ``.../{collection}/{name}`` (full or partial)."""
    if not isinstance(url, str) or not url:
        raise errors.invalid_field(field_name, url or "", "The URL is malformed.")
    parts = url.split("?", 1)[0].rstrip("/").split("/")
    if collection not in parts or parts.index(collection) == len(parts) - 1:
        if "/" not in url:
            return None, url
        raise errors.invalid_field(field_name, url, "The URL is malformed.")
    at = len(parts) - 1 - parts[::-1].index(collection)
    project = parts[parts.index("projects") + 1] if "projects" in parts[:at] else None
    return project, "/".join(parts[at + 1 :])


def parse_labels(value: Any, field_name: str = "resource.labels") -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.invalid_field(field_name, value, "Labels must be a map of strings.")
    if len(value) > MAX_LABELS:
        raise errors.invalid_field(field_name, len(value), f"At most {MAX_LABELS} labels are allowed.")
    for key, val in value.items():
        if not _LABEL_KEY.match(str(key)):
            raise errors.invalid_field(
                f"labels.{key}",
                key,
                "Label keys must start with a lowercase letter and contain only lowercase letters, digits, '_' and '-' (at most 63).",
            )
        if not isinstance(val, str) or not _LABEL_VALUE.match(val):
            raise errors.invalid_field(
                f"labels.{key}",
                val,
                "Label values may contain only lowercase letters, digits, '_' and '-' (at most 63).",
            )
    return {str(k): str(v) for k, v in value.items()}


def parse_metadata(value: Any, field_name: str = "resource.metadata") -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise errors.invalid_field(field_name, value, "Metadata must be an object.")
    raw = value.get("items") or []
    if not isinstance(raw, list):
        raise errors.invalid_field(f"{field_name}.items", raw, "Items must be a list.")
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    size = 0
    for n, entry in enumerate(raw):
        key = entry.get("key") if isinstance(entry, dict) else None
        val = entry.get("value", "") if isinstance(entry, dict) else None
        if not isinstance(key, str) or not _METADATA_KEY.match(key):
            raise errors.invalid_field(
                f"{field_name}.items[{n}].key", key or "", "Must be a match of regex '[a-zA-Z0-9-_]{1,128}'"
            )
        if key in seen:
            raise errors.invalid(f"Duplicate metadata key '{key}'.")
        if not isinstance(val, str):
            raise errors.invalid_field(f"{field_name}.items[{n}].value", val, "Must be a string.")
        seen.add(key)
        size += len(key) + len(val.encode("utf-8"))
        out.append({"key": key, "value": val})
    if size > METADATA_LIMIT:
        raise errors.invalid(f"Metadata may hold at most {METADATA_LIMIT} bytes.")
    return out


def _boot_disk(ctx: GceContext, body: dict[str, Any]) -> tuple[str, int | None]:
    """The boot disk's image ID and size (GiB, None: the default)."""
    disks = body.get("disks")
    if not isinstance(disks, list) or not disks:
        raise errors.invalid_field("resource.disks", "", "Boot disk must be specified.")
    if len(disks) > 1:
        raise errors.invalid(
            "Only a boot disk is supported at insert by this cloud (attach more disks later)."
        )
    disk = disks[0]
    if not isinstance(disk, dict):
        raise errors.invalid_field("resource.disks[0]", disk, "Must be an object.")
    if disk.get("source"):
        raise errors.invalid("Attaching an existing disk as the boot disk is not supported by this cloud.")
    params = disk.get("initializeParams") or {}
    source = params.get("sourceImage") if isinstance(params, dict) else None
    if not source:
        raise errors.invalid_field(
            "resource.disks[0].initializeParams.sourceImage", "", "A boot disk needs a source image."
        )
    project, name = _last(source, "images", "resource.disks[0].initializeParams.sourceImage")
    family = name.startswith("family/")
    if family:
        name = name[len("family/") :]
    image = catalog.find_image(ctx, project or ctx.project, name, family=family)
    if image is None and project is None:  # a partial URL: the public images too
        image = catalog.find_public_image(ctx, name)
    if image is None:
        raise errors.not_found(
            f"projects/{project or ctx.project}/global/images/{'family/' if family else ''}{name}"
        )
    size = params.get("diskSizeGb")
    if size is not None:
        try:
            size = int(size)
        except (TypeError, ValueError):
            raise errors.invalid_field(
                "resource.disks[0].initializeParams.diskSizeGb", size, "Must be an integer."
            ) from None
        if size < 1:
            raise errors.invalid_field(
                "resource.disks[0].initializeParams.diskSizeGb", size, "Must be at least 1."
            )
    return image.id, size


def _network(ctx: GceContext, zone: str, body: dict[str, Any]) -> dict[str, Any]:
    nics = body.get("networkInterfaces") or []
    if not isinstance(nics, list):
        raise errors.invalid_field("resource.networkInterfaces", nics, "Must be a list.")
    if len(nics) > 1:
        raise errors.invalid("More than one network interface is not supported by this cloud.")
    nic = nics[0] if nics else {}
    if not isinstance(nic, dict):
        raise errors.invalid_field("resource.networkInterfaces[0]", nic, "Must be an object.")
    wanted: dict[str, Any] = {"DeviceIndex": 0}
    vpc = None
    if nic.get("network"):
        _, network = _last(nic["network"], "networks", "resource.networkInterfaces[0].network")
        vpc = networks.find_network(ctx, network)
        if vpc is None:
            raise errors.not_found(f"projects/{ctx.project}/global/networks/{network}")
    if nic.get("subnetwork"):
        _, name = _last(nic["subnetwork"], "subnetworks", "resource.networkInterfaces[0].subnetwork")
        subnet = networks.find_subnetwork(ctx, name)
        if subnet is None:
            raise errors.not_found(f"projects/{ctx.project}/regions/{ctx.settings.region}/subnetworks/{name}")
        if vpc is not None and subnet.vpc_id != vpc.id:
            raise errors.invalid(f"Subnetwork '{name}' does not belong to the network of the interface.")
    elif vpc is not None and not vpc.is_default:
        subnet = next(
            (
                x
                for x in db_vpcs.list_subnets(ctx.session, ctx.account_id, vpc_id=vpc.id)
                if x.availability_zone == zone
            ),
            None,
        )
        if subnet is None:
            raise errors.invalid(f"Network '{vpc.id}' has no subnetwork in zone '{zone}'.")
    else:
        subnet = None  # the default subnet of the zone
    if subnet is not None:
        if subnet.availability_zone != zone:
            raise errors.invalid(
                f"Subnetwork '{subnet.id}' is in zone {subnet.availability_zone}, not {zone}."
            )
        wanted["SubnetId"] = subnet.id
    if nic.get("networkIP"):
        wanted["PrivateIpAddress"] = str(nic["networkIP"])
    configs = nic.get("accessConfigs") or []
    wanted["AssociatePublicIpAddress"] = any(
        isinstance(c, dict) and c.get("type", "ONE_TO_ONE_NAT") == "ONE_TO_ONE_NAT" for c in configs
    )
    nat_ip = next((c["natIP"] for c in configs if isinstance(c, dict) and c.get("natIP")), None)
    if nat_ip is not None:  # a reserved static address instead of an ephemeral one
        static = addresses.by_ip(ctx, str(nat_ip))
        if static is None or static.association_id:
            raise errors.invalid_field(
                "resource.networkInterfaces[0].accessConfigs[0].natIP",
                nat_ip,
                "The address is not a reserved (unused) static address of this project.",
            )
        wanted["AssociatePublicIpAddress"], wanted["_NatAllocation"] = False, static.id
    return wanted


def parse_insert(ctx: GceContext, zone: str, body: dict[str, Any]) -> InsertSpec:
    name = body.get("name")
    if not ids.valid_name(name):
        raise errors.invalid_field(
            "resource.name", name or "", f"Must be a match of regex '{ids.NAME_REGEX}'"
        )
    _, machine_type = _last(body.get("machineType"), "machineTypes", "resource.machineType")
    catalog.get_machine_type_row(ctx, zone, machine_type)
    image_id, size = _boot_disk(ctx, body)
    metadata = parse_metadata(body.get("metadata"))
    labels = parse_labels(body.get("labels"))
    tags = (body.get("tags") or {}).get("items") or [] if isinstance(body.get("tags"), dict) else []
    if not all(ids.valid_name(t) for t in tags):
        raise errors.invalid_field(
            "resource.tags.items", tags, "Tags must be valid names (lowercase letters, digits, '-')."
        )
    params: dict[str, Any] = {
        "ImageId": image_id,
        "InstanceType": machine_type,
        "MinCount": 1,
        "MaxCount": 1,
        "Placement": {"AvailabilityZone": zone},
        "NetworkInterfaces": [nic := _network(ctx, zone, body)],
        "DisableApiTermination": bool(body.get("deletionProtection")),
        "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}],
    }
    user_data = next((m["value"] for m in metadata if m["key"] == "user-data"), None)
    if user_data:
        params["UserData"] = base64.b64encode(user_data.encode("utf-8")).decode("ascii")
    if size is not None:
        params["BlockDeviceMappings"] = [
            {"DeviceName": _root_device(ctx, image_id), "Ebs": {"VolumeSize": size}}
        ]
    description = body.get("description") or ""
    nat = nic.pop("_NatAllocation", None)
    return InsertSpec(str(name), params, str(description), labels, metadata, list(tags), nat)


def _root_device(ctx: GceContext, image_id: str) -> str:
    image = ctx.session.get(Image, image_id)
    return (image.root_device_name if image is not None else None) or "/dev/sda1"


# --- handlers -------------------------------------------------------------------------------------


def _replayed(ctx: GceContext, query: dict[str, str]) -> dict[str, Any] | None:
    """The operation of an earlier request with this ``requestId`` (Compute Engine's idempotency)."""
    request_id = query.get("requestId")
    if not request_id:
        return None
    if len(request_id) > 64:
        raise errors.invalid_field("requestId", request_id[:16] + "...", "Must be at most 64 characters.")
    op = db_gce.find_by_request_id(ctx.session, ctx.account_id, request_id)
    if op is None:
        return None
    operations.settle(ctx, op)
    return operations.item(ctx, op)


def insert(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    zone = catalog.check_zone(ctx, path["zone"])
    replay = _replayed(ctx, query)
    if replay is not None:
        return replay
    spec = parse_insert(ctx, zone, body or {})
    link = ctx.links.instance(zone, spec.name)
    if not db_gce.release_stale_name(ctx.session, ctx.account_id, zone, spec.name):
        raise errors.already_exists(ctx.links.path(link))

    def on_made(rows: list[Instance]) -> None:
        [row] = rows
        db_gce.add_gce_instance(
            ctx.session,
            row.id,
            ctx.account_id,
            zone,
            spec.name,
            description=spec.description,
            labels=spec.labels,
            metadata_items=spec.metadata,
            network_tags=spec.tags,
        )
        if spec.nat_allocation:
            ec2_addresses.associate_address(
                ctx.ec2("AssociateAddress"), {"AllocationId": spec.nat_allocation, "InstanceId": row.id}
            )

    try:
        result = ec2_instances.run_instances(ctx.ec2("RunInstances"), spec.params, on_made=on_made)
    except IntegrityError:  # another insert took the name meanwhile
        ctx.session.rollback()
        raise errors.already_exists(ctx.links.path(link)) from None
    instance_id = result["Instances"][0]["InstanceId"]
    op = operations.create(
        ctx,
        "insert",
        scope="zone",
        location=zone,
        target_link=link,
        target_id=ids.numeric_id("instance", instance_id),
        target=instance_id,
        request_id=query.get("requestId") or None,
    )
    return operations.item(ctx, op)


def get(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    zone = catalog.check_zone(ctx, path["zone"])
    row, g = resolve(ctx, zone, path["instance"])
    return items(ctx, [(row, g)])[0]


def list_(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    zone = catalog.check_zone(ctx, path["zone"])
    found = items(ctx, db_gce.instance_rows(ctx.session, ctx.account_id, zone))
    return page_of("compute#instanceList", found, query, ctx.links.zone(zone) + "/instances")


def aggregated_list(
    ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any
) -> dict[str, Any]:
    found = items(ctx, db_gce.instance_rows(ctx.session, ctx.account_id))
    by_scope = by_zone(ctx.settings.zones, found)
    link = ctx.links.project_url() + "/aggregated/instances"
    return aggregated("compute#instanceAggregatedList", "instances", by_scope, query, link)


def _change(
    ctx: GceContext, path: dict[str, str], query: dict[str, str], action: str, op_type: str
) -> dict[str, Any]:
    zone = catalog.check_zone(ctx, path["zone"])
    replay = _replayed(ctx, query)
    if replay is not None:
        return replay
    row, g = resolve(ctx, zone, path["instance"])
    instance_id, link = row.id, ctx.links.instance(zone, gce_name(row, g))
    handler = ec2_changes.ACTIONS[action]
    try:
        handler(ctx.ec2(action), {"InstanceIds": [instance_id]})
    except ocs_errors.OcsError as exc:
        if exc.code == "IncorrectInstanceState":
            raise errors.not_ready(ctx.links.path(link)) from None
        if exc.code == "OperationNotPermitted":
            raise errors.GceError(
                "Invalid resource usage: 'Resource cannot be deleted if it's protected against deletion.'",
                reason="resourceInUseByAnotherResource",
                status=400,
            ) from None
        raise
    op = operations.create(
        ctx,
        op_type,
        scope="zone",
        location=zone,
        target_link=link,
        target_id=ids.numeric_id("instance", instance_id),
        target=instance_id,
        request_id=query.get("requestId") or None,
    )
    return operations.item(ctx, op)


def delete(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    return _change(ctx, path, query, "TerminateInstances", "delete")


def stop(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    return _change(ctx, path, query, "StopInstances", "stop")


def start(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    return _change(ctx, path, query, "StartInstances", "start")


def reset(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    return _change(ctx, path, query, "RebootInstances", "reset")


def _set(
    ctx: GceContext, path: dict[str, str], query: dict[str, str], op_type: str, apply: Any
) -> dict[str, Any]:
    zone = catalog.check_zone(ctx, path["zone"])
    replay = _replayed(ctx, query)
    if replay is not None:
        return replay
    row, g = resolve(ctx, zone, path["instance"])
    link = ctx.links.instance(zone, gce_name(row, g))
    apply(_gce_row(ctx, row, g), ctx.links.path(link))
    ctx.session.flush()
    op = operations.create(
        ctx,
        op_type,
        scope="zone",
        location=zone,
        target_link=link,
        target_id=ids.numeric_id("instance", row.id),
        target=None,
        request_id=query.get("requestId") or None,
    )
    return operations.item(ctx, op)


def set_labels(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    body = body or {}
    labels = parse_labels(body.get("labels"), "labels")

    def apply(g: GceInstance, where: str) -> None:
        given = body.get("labelFingerprint")
        if given is not None and given != fingerprint(dict(g.labels)):
            raise errors.fingerprint_mismatch(where)
        g.labels = labels

    return _set(ctx, path, query, "setLabels", apply)


def set_metadata(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    body = body or {}
    metadata = parse_metadata(body, "metadata")

    def apply(g: GceInstance, where: str) -> None:
        given = body.get("fingerprint")
        if given is not None and given != fingerprint(list(g.metadata_items)):
            raise errors.fingerprint_mismatch(where)
        g.metadata_items = metadata

    return _set(ctx, path, query, "setMetadata", apply)


def serial_port_output(
    ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any
) -> dict[str, Any]:
    zone = catalog.check_zone(ctx, path["zone"])
    row, g = resolve(ctx, zone, path["instance"])
    try:
        port = int(query.get("port") or 1)
        start_at = int(query.get("start") or 0)
    except ValueError:
        raise errors.invalid("Invalid value for 'port' or 'start': must be an integer.") from None
    if not 1 <= port <= 4:
        raise errors.invalid_field("port", port, "Must be between 1 and 4.")
    link = ctx.links.instance(zone, gce_name(row, g))
    text = b""
    if port == 1:
        result = ec2_changes.get_console_output(ctx.ec2("GetConsoleOutput"), {"InstanceId": row.id})
        if result.get("Output"):
            text = base64.b64decode(result["Output"])
    begin = max(0, min(start_at, len(text))) if start_at >= 0 else max(0, len(text) + start_at)
    return {
        "kind": "compute#serialPortOutput",
        "contents": text[begin:].decode("utf-8", "replace"),
        "start": str(begin),
        "next": str(len(text)),
        "selfLink": f"{link}/serialPort?port={port}",
    }


_I = "projects/{project}/zones/{zone}/instances"
_OP = "Operation"
ROUTES = [
    Route("GET", _I, list_, "compute.instances.list", response="InstanceList"),
    Route("POST", _I, insert, "compute.instances.create", response=_OP, request="Instance"),
    Route(
        "GET",
        "projects/{project}/aggregated/instances",
        aggregated_list,
        "compute.instances.list",
        response="InstanceAggregatedList",
    ),
    Route("GET", _I + "/{instance}", get, "compute.instances.get", response="Instance"),
    Route("DELETE", _I + "/{instance}", delete, "compute.instances.delete", response=_OP),
    Route("POST", _I + "/{instance}/stop", stop, "compute.instances.stop", response=_OP),
    Route("POST", _I + "/{instance}/start", start, "compute.instances.start", response=_OP),
    Route("POST", _I + "/{instance}/reset", reset, "compute.instances.reset", response=_OP),
    Route(
        "POST",
        _I + "/{instance}/setLabels",
        set_labels,
        "compute.instances.setLabels",
        response=_OP,
        request="InstancesSetLabelsRequest",
    ),
    Route(
        "POST",
        _I + "/{instance}/setMetadata",
        set_metadata,
        "compute.instances.setMetadata",
        response=_OP,
        request="Metadata",
    ),
    Route(
        "GET",
        _I + "/{instance}/serialPort",
        serial_port_output,
        "compute.instances.getSerialPortOutput",
        response="SerialPortOutput",
    ),
]
