"""addresses: regional static external addresses, which are the account's Elastic IPs.

* insert is EC2's AllocateAddress (the cloud's public address pool, the account's
  Elastic IP quota); the ``name`` is kept in ``gce_addresses`` (unique per project
  and region) and as the Elastic IP's EC2 ``Name`` tag. An Elastic IP made through
  EC2 shows under its allocation ID. ``address`` (choosing the address) and internal
  addresses are not supported (400).
* ``status`` is IN_USE while the Elastic IP is associated (``users`` names the
  instance), RESERVED otherwise; delete is ReleaseAddress and refuses an address in
  use (400 resourceInUseByAnotherResource), as Compute Engine does.
* An instance inserted with ``accessConfigs[].natIP`` = a reserved address gets it
  associated (:mod:`ocs.api_gce.resources.instances`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from ocs.api_ec2.actions import addresses as ec2_addresses
from ocs.api_gce import errors, ids
from ocs.api_gce.context import GceContext, timestamp
from ocs.api_gce.lists import aggregated, page_of
from ocs.api_gce.resources import networks
from ocs.api_gce.routes import Route
from ocs.db import addresses as db_addresses
from ocs.db import gce as db_gce
from ocs.db import gce_network as db_names
from ocs.db import tags as db_tags
from ocs.db.models.compute import Instance
from ocs.db.models.interfaces import ElasticAddress


def _users(ctx: GceContext, rows: list[ElasticAddress]) -> dict[str, str]:
    """Allocation ID → the selfLink of the instance it is associated with."""
    enis = [r.network_interface_id for r in rows if r.network_interface_id]
    instance_of = db_addresses.instances_of(ctx.session, enis)
    gce_rows = db_gce.gce_rows(ctx.session, instance_of.values())
    out = {}
    for r in rows:
        instance_id = instance_of.get(r.network_interface_id or "")
        instance = ctx.session.get(Instance, instance_id) if instance_id else None
        if instance is not None:
            g = gce_rows.get(instance.id)
            out[r.id] = ctx.links.instance(
                instance.availability_zone, g.name if g is not None else instance.id
            )
    return out


def _items(ctx: GceContext, rows: list[ElasticAddress]) -> list[dict[str, Any]]:
    names = db_names.address_names(ctx.session, ctx.account_id)
    users = _users(ctx, rows)
    region = ctx.settings.region
    out = []
    for r in rows:
        row = names.get(r.id)
        name = row.name if row is not None else r.id
        item: dict[str, Any] = {
            "kind": "compute#address",
            "id": ids.numeric_id("address", r.id),
            "creationTimestamp": timestamp(r.created_at),
            "name": name,
            "description": row.description if row is not None else "",
            "address": r.public_ip,
            "status": "IN_USE" if r.association_id else "RESERVED",
            "region": ctx.links.region(region),
            "selfLink": ctx.links.region(region) + f"/addresses/{name}",
            "addressType": "EXTERNAL",
            "networkTier": "PREMIUM",
            "ipVersion": "IPV4",
        }
        if r.id in users:
            item["users"] = [users[r.id]]
        out.append(item)
    return out


def _rows(ctx: GceContext) -> list[ElasticAddress]:
    return db_addresses.list_addresses(ctx.session, ctx.account_id)


def find(ctx: GceContext, name: str) -> ElasticAddress | None:
    """The account's Elastic IP Compute Engine calls ``name`` (its name or allocation ID)."""
    named = db_names.address_by_name(ctx.session, ctx.account_id, ctx.settings.region, name)
    if named is not None:
        return db_addresses.get_allocation(ctx.session, ctx.account_id, named.allocation_id)
    if name.startswith("eipalloc-") and db_addresses.allocation_exists(ctx.session, ctx.account_id, name):
        return db_addresses.get_allocation(ctx.session, ctx.account_id, name)
    return None


def by_ip(ctx: GceContext, address: str) -> ElasticAddress | None:
    return next((r for r in _rows(ctx) if r.public_ip == address), None)


def _check_region(ctx: GceContext, region: str) -> None:
    if region != ctx.settings.region:
        raise errors.invalid_field("region", region, "Unknown region.")


def _or_404(ctx: GceContext, region: str, name: str) -> ElasticAddress:
    _check_region(ctx, region)
    row = find(ctx, name)
    if row is None:
        raise errors.not_found(f"projects/{ctx.project}/regions/{region}/addresses/{name}")
    return row


def list_(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    _check_region(ctx, path["region"])
    link = ctx.links.region(path["region"]) + "/addresses"
    return page_of("compute#addressList", _items(ctx, _rows(ctx)), query, link)


def aggregated_list(
    ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any
) -> dict[str, Any]:
    by_scope = {f"regions/{ctx.settings.region}": _items(ctx, _rows(ctx))}
    link = ctx.links.project_url() + "/aggregated/addresses"
    return aggregated("compute#addressAggregatedList", "addresses", by_scope, query, link)


def get(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    return _items(ctx, [_or_404(ctx, path["region"], path["address"])])[0]


def insert(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    region = path["region"]
    _check_region(ctx, region)
    replay = networks.replayed(ctx, query)
    if replay is not None:
        return replay
    body = body or {}
    name = networks.check_name(body)
    if (body.get("addressType") or "EXTERNAL") != "EXTERNAL":
        raise errors.invalid("Only EXTERNAL addresses are supported by this cloud.")
    if body.get("address"):
        raise errors.invalid("Reserving a chosen address is not supported by this cloud.")
    link = ctx.links.region(region) + f"/addresses/{name}"
    if find(ctx, name) is not None:
        raise errors.already_exists(ctx.links.path(link))
    made = ec2_addresses.allocate_address(ctx.ec2("AllocateAddress"), {})
    allocation_id = made["AllocationId"]
    db_tags.set_tags(
        ctx.session, ctx.account_id, [(allocation_id, "elastic-ip")], [{"Key": "Name", "Value": name}]
    )
    try:
        db_names.add_address(
            ctx.session,
            allocation_id,
            ctx.account_id,
            region,
            name,
            description=str(body.get("description") or ""),
        )
    except IntegrityError:
        ctx.session.rollback()
        raise errors.already_exists(ctx.links.path(link)) from None
    return networks.done_operation(
        ctx, "insert", link, ids.numeric_id("address", allocation_id), query, region
    )


def delete(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    replay = networks.replayed(ctx, query)
    if replay is not None:
        return replay
    row = _or_404(ctx, path["region"], path["address"])
    link = ctx.links.region(path["region"]) + f"/addresses/{path['address']}"
    if row.association_id:
        raise errors.GceError(
            f"The address resource '{ctx.links.path(link)}' is already being used by "
            f"'{ctx.links.path(_users(ctx, [row]).get(row.id, ''))}'",
            reason="resourceInUseByAnotherResource",
            status=400,
        )
    allocation_id = row.id
    ec2_addresses.release_address(ctx.ec2("ReleaseAddress"), {"AllocationId": allocation_id})
    return networks.done_operation(
        ctx, "delete", link, ids.numeric_id("address", allocation_id), query, path["region"]
    )


_A = "projects/{project}/regions/{region}/addresses"
ROUTES = [
    Route("GET", _A, list_, "compute.addresses.list", response="AddressList"),
    Route("POST", _A, insert, "compute.addresses.create", response="Operation", request="Address"),
    Route(
        "GET",
        "projects/{project}/aggregated/addresses",
        aggregated_list,
        "compute.addresses.list",
        response="AddressAggregatedList",
    ),
    Route("GET", _A + "/{address}", get, "compute.addresses.get", response="Address"),
    Route("DELETE", _A + "/{address}", delete, "compute.addresses.delete", response="Operation"),
]
