"""What a project can choose from: zones and regions (the cloud's availability zones and
region), machineTypes (the operator's instance types, the same in every zone) and images.

Images: a project's images are the OCS images its account owns. An image's Compute
Engine ``name`` is its OCS name when that is a valid Compute Engine name (``ocs-demo``),
else its image ID (``ami-...``); either resolves. Another project's images are
readable where the caller may launch them (public or shared), as
``projects/{owner}/global/images/{name}`` (Compute Engine's ``debian-cloud`` pattern:
the all-in-one's demo image is ``projects/admin/global/images/ocs-demo``).
``global/images/family/{name}`` is the newest image of that name.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ocs.api_gce import errors, ids
from ocs.api_gce.context import GceContext, timestamp
from ocs.api_gce.lists import page_of
from ocs.api_gce.routes import Route
from ocs.db import compute as db_compute
from ocs.db import images as db_images
from ocs.db import instance_types as db_types
from ocs.db.models.accounts import Account
from ocs.db.models.images import Image
from ocs.db.models.instance_types import InstanceType

EPOCH = "1970-01-01T00:00:00.000+00:00"


# --- zones and regions ----------------------------------------------------------------------------


def check_zone(ctx: GceContext, zone: str) -> str:
    if zone not in ctx.settings.zones:
        raise errors.invalid_field("zone", zone, "Unknown zone.")
    return zone


def zone_item(ctx: GceContext, zone: str) -> dict[str, Any]:
    return {
        "kind": "compute#zone",
        "id": ids.numeric_id("zone", zone),
        "creationTimestamp": EPOCH,
        "name": zone,
        "description": zone,
        "status": "UP",
        "region": ctx.links.region(ctx.settings.region),
        "selfLink": ctx.links.zone(zone),
        "availableCpuPlatforms": ["OCS virtual CPU"],
        "supportsPzs": False,
    }


def list_zones(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    items = [zone_item(ctx, z) for z in ctx.settings.zones]
    return page_of("compute#zoneList", items, query, ctx.links.project_url() + "/zones")


def get_zone(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    if path["zone"] not in ctx.settings.zones:
        raise errors.not_found(f"projects/{ctx.project}/zones/{path['zone']}")
    return zone_item(ctx, path["zone"])


def region_item(ctx: GceContext) -> dict[str, Any]:
    region = ctx.settings.region
    limits = db_compute.get_quotas(ctx.session, ctx.account_id)
    used = db_compute.usage(ctx.session, ctx.account_id)
    return {
        "kind": "compute#region",
        "id": ids.numeric_id("region", region),
        "creationTimestamp": EPOCH,
        "name": region,
        "description": region,
        "status": "UP",
        "zones": [ctx.links.zone(z) for z in ctx.settings.zones],
        "quotas": [
            {"metric": "INSTANCES", "limit": float(limits["instances"]), "usage": float(used["instances"])},
            {"metric": "CPUS", "limit": float(limits["vcpus"]), "usage": float(used["vcpus"])},
        ],
        "selfLink": ctx.links.region(region),
        "supportsPzs": False,
    }


def list_regions(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    return page_of("compute#regionList", [region_item(ctx)], query, ctx.links.project_url() + "/regions")


def get_region(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    if path["region"] != ctx.settings.region:
        raise errors.not_found(f"projects/{ctx.project}/regions/{path['region']}")
    return region_item(ctx)


# --- machine types --------------------------------------------------------------------------------


def machine_type_item(ctx: GceContext, zone: str, t: InstanceType) -> dict[str, Any]:
    return {
        "kind": "compute#machineType",
        "id": ids.numeric_id("machineType", t.name),
        "creationTimestamp": timestamp(t.created_at),
        "name": t.name,
        "description": f"{t.vcpus} vCPU{'s' if t.vcpus != 1 else ''}, {t.memory_mib / 1024:g} GB RAM",
        "guestCpus": t.vcpus,
        "memoryMb": t.memory_mib,
        "imageSpaceGb": 0,
        "maximumPersistentDisks": 16,
        "maximumPersistentDisksSizeGb": "65536",
        "zone": zone,
        "selfLink": ctx.links.machine_type(zone, t.name),
        "isSharedCpu": bool(t.burstable),
        "architecture": "ARM64" if t.architecture == "arm64" else "X86_64",
    }


def get_machine_type_row(ctx: GceContext, zone: str, name: str) -> InstanceType:
    found = db_types.find_instance_type(ctx.session, name)
    if found is None:
        raise errors.not_found(f"projects/{ctx.project}/zones/{zone}/machineTypes/{name}")
    return found


def list_machine_types(
    ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any
) -> dict[str, Any]:
    zone = check_zone(ctx, path["zone"])
    items = [machine_type_item(ctx, zone, t) for t in db_types.list_instance_types(ctx.session)]
    return page_of("compute#machineTypeList", items, query, ctx.links.zone(zone) + "/machineTypes")


def get_machine_type(
    ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any
) -> dict[str, Any]:
    zone = check_zone(ctx, path["zone"])
    return machine_type_item(ctx, zone, get_machine_type_row(ctx, zone, path["machineType"]))


# --- images ---------------------------------------------------------------------------------------


def image_name(image: Image) -> str:
    return image.name if ids.valid_name(image.name) else image.id


_IMAGE_STATUS = {"available": "READY", "pending": "PENDING", "failed": "FAILED"}


def image_item(ctx: GceContext, image: Image, owner: str) -> dict[str, Any]:
    size = image.virtual_size or image.size or 0
    item: dict[str, Any] = {
        "kind": "compute#image",
        "id": ids.numeric_id("image", image.id),
        "creationTimestamp": timestamp(image.created_at),
        "name": image_name(image),
        "description": image.description or "",
        "sourceType": "RAW",
        "status": _IMAGE_STATUS.get(image.state, "PENDING"),
        "archiveSizeBytes": str(image.size or 0),
        "diskSizeGb": str(max(1, -(-size // (1 << 30)))),
        "family": image.name,
        "selfLink": ctx.links.image(owner, image_name(image)),
        "architecture": "ARM64" if image.architecture == "arm64" else "X86_64",
        "labels": {},
        "labelFingerprint": "42WmSpB8rSM=",
    }
    return item


def _owner(ctx: GceContext, project: str) -> Account | None:
    return ctx.session.scalars(select(Account).where(Account.name == project)).first()


def _project_images(ctx: GceContext, project: str) -> list[Image]:
    owner = _owner(ctx, project)
    if owner is None:
        return []
    return db_images.query_images(ctx.session, ctx.account_id, owners=[owner.id])


def find_image(ctx: GceContext, project: str, name: str, *, family: bool = False) -> Image | None:
    """The image ``name`` (its GCE name or image ID; with ``family``, the newest of that name)
    of ``project`` that the caller may launch."""
    images = _project_images(ctx, project)
    if family:
        named = [i for i in images if i.name == name]
        return max(named, key=lambda i: (i.created_at, i.id)) if named else None
    for image in images:
        if image.id == name or image_name(image) == name:
            return image
    return None


def list_images(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    project = path["project"]
    items = [image_item(ctx, i, project) for i in _project_images(ctx, project) if i.image_type == "machine"]
    return page_of("compute#imageList", items, query, ctx.links.project_url(project) + "/global/images")


def get_image(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    image = find_image(ctx, path["project"], path["image"])
    if image is None:
        raise errors.not_found(f"projects/{path['project']}/global/images/{path['image']}")
    return image_item(ctx, image, path["project"])


def get_from_family(
    ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any
) -> dict[str, Any]:
    image = find_image(ctx, path["project"], path["family"], family=True)
    if image is None:
        raise errors.not_found(f"projects/{path['project']}/global/images/family/{path['family']}")
    return image_item(ctx, image, path["project"])


ROUTES = [
    Route("GET", "projects/{project}/zones", list_zones, "compute.zones.list", response="ZoneList"),
    Route("GET", "projects/{project}/zones/{zone}", get_zone, "compute.zones.get", response="Zone"),
    Route("GET", "projects/{project}/regions", list_regions, "compute.regions.list", response="RegionList"),
    Route("GET", "projects/{project}/regions/{region}", get_region, "compute.regions.get", response="Region"),
    Route(
        "GET",
        "projects/{project}/zones/{zone}/machineTypes",
        list_machine_types,
        "compute.machineTypes.list",
        response="MachineTypeList",
    ),
    Route(
        "GET",
        "projects/{project}/zones/{zone}/machineTypes/{machineType}",
        get_machine_type,
        "compute.machineTypes.get",
        response="MachineType",
    ),
    Route(
        "GET",
        "projects/{project}/global/images",
        list_images,
        "compute.images.list",
        response="ImageList",
        other_projects=True,
    ),
    Route(
        "GET",
        "projects/{project}/global/images/family/{family}",
        get_from_family,
        "compute.images.getFromFamily",
        response="Image",
        other_projects=True,
    ),
    Route(
        "GET",
        "projects/{project}/global/images/{image}",
        get_image,
        "compute.images.get",
        response="Image",
        other_projects=True,
    ),
]


def find_public_image(ctx: GceContext, name: str) -> Image | None:
    """The newest image named ``name`` (GCE name or ID) the caller may launch, whoever owns it."""
    images = db_images.query_images(ctx.session, ctx.account_id)
    found = [i for i in images if i.id == name or image_name(i) == name]
    return max(found, key=lambda i: (i.account_id == ctx.account_id, i.created_at, i.id)) if found else None
