"""networks and subnetworks, read-only: the account's VPCs and subnets as Compute Engine
shows them.

A VPC is a network: the account's default VPC is named ``default`` (Compute Engine's
default network), any other by its VPC ID (``vpc-...``). A subnet is a subnetwork of
the region, named by its subnet ID; OCS subnets live in one zone each, which
Compute Engine's regional subnetworks do not show (an instance inserted in a zone
must name a subnetwork of that zone). Creating and deleting them through Compute
Engine is not supported yet (the EC2 API does it).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ocs.api_gce import errors, ids
from ocs.api_gce.context import GceContext, timestamp
from ocs.api_gce.lists import page_of
from ocs.api_gce.routes import Route
from ocs.db import vpcs as db_vpcs
from ocs.db.models.network import Subnet, Vpc

DEFAULT = "default"


def network_name(vpc_id: str, default_vpc_id: str | None) -> str:
    return DEFAULT if vpc_id and vpc_id == default_vpc_id else vpc_id


def _default_id(ctx: GceContext) -> str | None:
    return db_vpcs.default_vpc_id(ctx.session, ctx.account_id)


def find_network(ctx: GceContext, name: str) -> Vpc | None:
    """The account's VPC that Compute Engine calls ``name`` (``default`` or a VPC ID)."""
    if name == DEFAULT:
        return db_vpcs.default_vpc(ctx.session, ctx.account_id)
    if name.startswith("vpc-") and db_vpcs.vpc_exists(ctx.session, ctx.account_id, name):
        return db_vpcs.get_vpc(ctx.session, ctx.account_id, name)
    return None


def find_subnetwork(ctx: GceContext, name: str) -> Subnet | None:
    if name.startswith("subnet-") and db_vpcs.subnet_exists(ctx.session, ctx.account_id, name):
        return db_vpcs.get_subnet(ctx.session, ctx.account_id, name)
    return None


def network_item(ctx: GceContext, vpc: Vpc, subnets: list[Subnet], default_id: str | None) -> dict[str, Any]:
    name = network_name(vpc.id, default_id)
    region = ctx.settings.region
    return {
        "kind": "compute#network",
        "id": ids.numeric_id("network", vpc.id),
        "creationTimestamp": timestamp(vpc.created_at),
        "name": name,
        "description": f"{vpc.id} ({vpc.cidr_block})",
        "selfLink": ctx.links.network(name),
        "autoCreateSubnetworks": bool(vpc.is_default),
        "subnetworks": [ctx.links.subnetwork(region, s.id) for s in subnets if s.vpc_id == vpc.id],
        "routingConfig": {"routingMode": "REGIONAL"},
        "mtu": 1500,
    }


def subnetwork_item(ctx: GceContext, subnet: Subnet, default_id: str | None) -> dict[str, Any]:
    block = ipaddress.IPv4Network(subnet.cidr_block)
    region = ctx.settings.region
    return {
        "kind": "compute#subnetwork",
        "id": ids.numeric_id("subnetwork", subnet.id),
        "creationTimestamp": timestamp(subnet.created_at),
        "name": subnet.id,
        "description": f"{subnet.availability_zone}",
        "network": ctx.links.network(network_name(subnet.vpc_id, default_id)),
        "ipCidrRange": subnet.cidr_block,
        "gatewayAddress": str(block.network_address + 1),
        "region": ctx.links.region(region),
        "selfLink": ctx.links.subnetwork(region, subnet.id),
        "privateIpGoogleAccess": False,
        "stackType": "IPV4_ONLY",
        "purpose": "PRIVATE",
        "fingerprint": ids.numeric_id("subnetwork-fingerprint", subnet.id)[:12],
    }


def list_networks(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    default_id = _default_id(ctx)
    subnets = db_vpcs.list_subnets(ctx.session, ctx.account_id)
    items = [
        network_item(ctx, v, subnets, default_id) for v in db_vpcs.list_vpcs(ctx.session, ctx.account_id)
    ]
    return page_of("compute#networkList", items, query, ctx.links.project_url() + "/global/networks")


def get_network(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    vpc = find_network(ctx, path["network"])
    if vpc is None:
        raise errors.not_found(f"projects/{ctx.project}/global/networks/{path['network']}")
    subnets = db_vpcs.list_subnets(ctx.session, ctx.account_id)
    return network_item(ctx, vpc, subnets, _default_id(ctx))


def _check_region(ctx: GceContext, region: str) -> None:
    if region != ctx.settings.region:
        raise errors.invalid_field("region", region, "Unknown region.")


def list_subnetworks(
    ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any
) -> dict[str, Any]:
    _check_region(ctx, path["region"])
    default_id = _default_id(ctx)
    items = [subnetwork_item(ctx, s, default_id) for s in db_vpcs.list_subnets(ctx.session, ctx.account_id)]
    return page_of("compute#subnetworkList", items, query, ctx.links.region(path["region"]) + "/subnetworks")


def get_subnetwork(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    _check_region(ctx, path["region"])
    subnet = find_subnetwork(ctx, path["subnetwork"])
    if subnet is None:
        raise errors.not_found(
            f"projects/{ctx.project}/regions/{path['region']}/subnetworks/{path['subnetwork']}"
        )
    return subnetwork_item(ctx, subnet, _default_id(ctx))


ROUTES = [
    Route(
        "GET",
        "projects/{project}/global/networks",
        list_networks,
        "compute.networks.list",
        response="NetworkList",
    ),
    Route(
        "GET",
        "projects/{project}/global/networks/{network}",
        get_network,
        "compute.networks.get",
        response="Network",
    ),
    Route(
        "GET",
        "projects/{project}/regions/{region}/subnetworks",
        list_subnetworks,
        "compute.subnetworks.list",
        response="SubnetworkList",
    ),
    Route(
        "GET",
        "projects/{project}/regions/{region}/subnetworks/{subnetwork}",
        get_subnetwork,
        "compute.subnetworks.get",
        response="Subnetwork",
    ),
]
