"""networks and subnetworks: the account's VPCs and subnets as Compute Engine shows them,
and networks and subnetworks made and deleted through Compute Engine.

A VPC is a network: the account's default VPC is named ``default`` (Compute Engine's
default network), a network inserted through Compute Engine by its name (kept in
``gce_networks``, unique per project; the VPC carries it as its EC2 ``Name`` tag), any
other VPC by its VPC ID (``vpc-...``). A subnet is a subnetwork of the region, named
by the name it was inserted with (``gce_subnetworks``) or else its subnet ID.

Compute Engine networks have no address block; OCS VPCs do. A network inserted here
is a VPC on ``10.0.0.0/8`` (:data:`NETWORK_BLOCK`), so its subnetworks may take any
``ipCidrRange`` inside 10.0.0.0/8 of /16 to /28 (what OCS subnets accept). An
auto-mode network (``autoCreateSubnetworks`` true, or absent as gcloud sends it) gets
one subnetwork per zone of the region, ``10.128.0.0/20``, ``10.128.16.0/20`` ...,
named after the network; deleting the network deletes them. OCS subnets live in one
zone each: a subnetwork inserted here lives in the region's first zone (an instance
inserted in another zone must name a subnetwork of that zone).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy.exc import IntegrityError

from ocs.api_gce import errors, ids
from ocs.api_gce.context import GceContext, timestamp
from ocs.api_gce.lists import aggregated, page_of
from ocs.api_gce.resources import operations
from ocs.api_gce.routes import Route
from ocs.db import gce as db_gce
from ocs.db import gce_network as db_names
from ocs.db import tags as db_tags
from ocs.db import vpcs as db_vpcs
from ocs.db.models.network import Subnet, Vpc

DEFAULT = "default"
NETWORK_BLOCK = ipaddress.IPv4Network("10.0.0.0/8")
AUTO_BLOCK = ipaddress.IPv4Network("10.128.0.0/16")
AUTO_PREFIX = 20


def network_name(vpc_id: str, default_vpc_id: str | None, names: dict[str, Any] | None = None) -> str:
    if names and vpc_id in names:
        return str(names[vpc_id].name)
    return DEFAULT if vpc_id and vpc_id == default_vpc_id else vpc_id


def network_name_of(ctx: GceContext, vpc_id: str) -> str:
    """The Compute Engine name of the account's VPC ``vpc_id``."""
    return network_name(vpc_id, _default_id(ctx), db_names.network_names(ctx.session, ctx.account_id))


def subnetwork_name(ctx: GceContext, subnet_id: str) -> str:
    row = db_names.subnetwork_names(ctx.session, ctx.account_id).get(subnet_id)
    return row.name if row is not None else subnet_id


def _default_id(ctx: GceContext) -> str | None:
    return db_vpcs.default_vpc_id(ctx.session, ctx.account_id)


def find_network(ctx: GceContext, name: str) -> Vpc | None:
    """The account's VPC that Compute Engine calls ``name`` (its GCE name, ``default`` or a VPC ID)."""
    named = db_names.network_by_name(ctx.session, ctx.account_id, name)
    if named is not None:
        return db_vpcs.get_vpc(ctx.session, ctx.account_id, named.vpc_id)
    if name == DEFAULT:
        return db_vpcs.default_vpc(ctx.session, ctx.account_id)
    if name.startswith("vpc-") and db_vpcs.vpc_exists(ctx.session, ctx.account_id, name):
        return db_vpcs.get_vpc(ctx.session, ctx.account_id, name)
    return None


def find_subnetwork(ctx: GceContext, name: str) -> Subnet | None:
    named = db_names.subnetwork_by_name(ctx.session, ctx.account_id, ctx.settings.region, name)
    if named is not None:
        return db_vpcs.get_subnet(ctx.session, ctx.account_id, named.subnet_id)
    if name.startswith("subnet-") and db_vpcs.subnet_exists(ctx.session, ctx.account_id, name):
        return db_vpcs.get_subnet(ctx.session, ctx.account_id, name)
    return None


class _Names:
    """The account's Compute Engine names, read once per request."""

    def __init__(self, ctx: GceContext):
        self.default_id = _default_id(ctx)
        self.networks = db_names.network_names(ctx.session, ctx.account_id)
        self.subnetworks = db_names.subnetwork_names(ctx.session, ctx.account_id)

    def network(self, vpc_id: str) -> str:
        return network_name(vpc_id, self.default_id, self.networks)

    def subnetwork(self, subnet_id: str) -> str:
        row = self.subnetworks.get(subnet_id)
        return row.name if row is not None else subnet_id


def network_item(ctx: GceContext, vpc: Vpc, subnets: list[Subnet], names: _Names) -> dict[str, Any]:
    name = names.network(vpc.id)
    row = names.networks.get(vpc.id)
    region = ctx.settings.region
    return {
        "kind": "compute#network",
        "id": ids.numeric_id("network", vpc.id),
        "creationTimestamp": timestamp(vpc.created_at),
        "name": name,
        "description": row.description if row is not None else f"{vpc.id} ({vpc.cidr_block})",
        "selfLink": ctx.links.network(name),
        "autoCreateSubnetworks": bool(row.auto_create_subnetworks if row is not None else vpc.is_default),
        "subnetworks": [
            ctx.links.subnetwork(region, names.subnetwork(s.id)) for s in subnets if s.vpc_id == vpc.id
        ],
        "routingConfig": {"routingMode": "REGIONAL"},
        "mtu": 1500,
    }


def subnetwork_item(ctx: GceContext, subnet: Subnet, names: _Names) -> dict[str, Any]:
    block = ipaddress.IPv4Network(subnet.cidr_block)
    region = ctx.settings.region
    name = names.subnetwork(subnet.id)
    row = names.subnetworks.get(subnet.id)
    return {
        "kind": "compute#subnetwork",
        "id": ids.numeric_id("subnetwork", subnet.id),
        "creationTimestamp": timestamp(subnet.created_at),
        "name": name,
        "description": row.description if row is not None else f"{subnet.availability_zone}",
        "network": ctx.links.network(names.network(subnet.vpc_id)),
        "ipCidrRange": subnet.cidr_block,
        "gatewayAddress": str(block.network_address + 1),
        "region": ctx.links.region(region),
        "selfLink": ctx.links.subnetwork(region, name),
        "privateIpGoogleAccess": False,
        "stackType": "IPV4_ONLY",
        "purpose": "PRIVATE",
        "fingerprint": ids.numeric_id("subnetwork-fingerprint", subnet.id)[:12],
    }


def list_networks(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    names = _Names(ctx)
    subnets = db_vpcs.list_subnets(ctx.session, ctx.account_id)
    items = [network_item(ctx, v, subnets, names) for v in db_vpcs.list_vpcs(ctx.session, ctx.account_id)]
    return page_of("compute#networkList", items, query, ctx.links.project_url() + "/global/networks")


def _network_or_404(ctx: GceContext, name: str) -> Vpc:
    vpc = find_network(ctx, name)
    if vpc is None:
        raise errors.not_found(f"projects/{ctx.project}/global/networks/{name}")
    return vpc


def get_network(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    vpc = _network_or_404(ctx, path["network"])
    subnets = db_vpcs.list_subnets(ctx.session, ctx.account_id)
    return network_item(ctx, vpc, subnets, _Names(ctx))


def check_name(body: dict[str, Any]) -> str:
    name = body.get("name")
    if not ids.valid_name(name):
        raise errors.invalid_field(
            "resource.name", name or "", f"Must be a match of regex '{ids.NAME_REGEX}'"
        )
    return str(name)


def done_operation(
    ctx: GceContext,
    op_type: str,
    link: str,
    resource_id: str,
    query: dict[str, str],
    region: str | None = None,
) -> dict[str, Any]:
    op = operations.create(
        ctx,
        op_type,
        scope="region" if region else "global",
        location=region or "",
        target_link=link,
        target_id=resource_id,
        target=None,
        request_id=query.get("requestId") or None,
    )
    return operations.item(ctx, op)


def replayed(ctx: GceContext, query: dict[str, str]) -> dict[str, Any] | None:
    """The operation of an earlier request with this ``requestId`` (Compute Engine's idempotency)."""
    request_id = query.get("requestId")
    if not request_id:
        return None
    if len(request_id) > 64:
        raise errors.invalid_field("requestId", request_id[:16] + "...", "Must be at most 64 characters.")
    op = db_gce.find_by_request_id(ctx.session, ctx.account_id, request_id)
    return operations.item(ctx, op) if op is not None else None


def insert_network(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    replay = replayed(ctx, query)
    if replay is not None:
        return replay
    body = body or {}
    name = check_name(body)
    if body.get("IPv4Range"):
        raise errors.invalid("Legacy networks (IPv4Range) are not supported by this cloud; use subnetworks.")
    auto = body.get("autoCreateSubnetworks")
    auto = True if auto is None else bool(auto)
    link = ctx.links.network(name)
    if find_network(ctx, name) is not None:
        raise errors.already_exists(ctx.links.path(link))
    now = ctx.now()
    vpc = db_vpcs.create_vpc(ctx.session, ctx.account_id, str(NETWORK_BLOCK), now=now)
    db_tags.set_tags(ctx.session, ctx.account_id, [(vpc.id, "vpc")], [{"Key": "Name", "Value": name}])
    try:
        db_names.add_network(
            ctx.session,
            vpc.id,
            ctx.account_id,
            name,
            description=str(body.get("description") or ""),
            auto=auto,
        )
    except IntegrityError:  # another insert took the name meanwhile
        ctx.session.rollback()
        raise errors.already_exists(ctx.links.path(link)) from None
    if auto:
        region = ctx.settings.region
        blocks = AUTO_BLOCK.subnets(new_prefix=AUTO_PREFIX)
        for index, zone in enumerate(ctx.settings.zones):
            subnet = db_vpcs.create_subnet(ctx.session, ctx.account_id, vpc, str(next(blocks)), zone, now=now)
            db_names.add_subnetwork(
                ctx.session, subnet.id, ctx.account_id, region, f"{name}-{index}"[:63], description=zone
            )
    return done_operation(ctx, "insert", link, ids.numeric_id("network", vpc.id), query)


def delete_network(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    replay = replayed(ctx, query)
    if replay is not None:
        return replay
    vpc = _network_or_404(ctx, path["network"])
    row = db_names.network_names(ctx.session, ctx.account_id).get(vpc.id)
    link = ctx.links.network(path["network"])
    subnets = db_vpcs.list_subnets(ctx.session, ctx.account_id, vpc_id=vpc.id)
    if row is not None and row.auto_create_subnetworks:
        for subnet in subnets:  # an auto-mode network's subnetworks go with it (InUse while used)
            db_vpcs.delete_subnet(ctx.session, ctx.account_id, subnet.id)
    elif subnets:
        names = _Names(ctx)
        raise errors.GceError(
            f"The network resource '{ctx.links.path(link)}' is already being used by "
            f"'{ctx.links.path(ctx.links.subnetwork(ctx.settings.region, names.subnetwork(subnets[0].id)))}'",
            reason="resourceInUseByAnotherResource",
            status=400,
        )
    rules = [f for f in db_names.firewalls(ctx.session, ctx.account_id) if f.vpc_id == vpc.id]
    if rules:
        raise errors.GceError(
            f"The network resource '{ctx.links.path(link)}' is already being used by "
            f"'projects/{ctx.project}/global/firewalls/{rules[0].name}'",
            reason="resourceInUseByAnotherResource",
            status=400,
        )
    db_vpcs.delete_vpc(ctx.session, ctx.account_id, vpc.id)
    return done_operation(ctx, "delete", link, ids.numeric_id("network", vpc.id), query)


def _check_region(ctx: GceContext, region: str) -> None:
    if region != ctx.settings.region:
        raise errors.invalid_field("region", region, "Unknown region.")


def list_subnetworks(
    ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any
) -> dict[str, Any]:
    _check_region(ctx, path["region"])
    names = _Names(ctx)
    items = [subnetwork_item(ctx, s, names) for s in db_vpcs.list_subnets(ctx.session, ctx.account_id)]
    return page_of("compute#subnetworkList", items, query, ctx.links.region(path["region"]) + "/subnetworks")


def aggregated_subnetworks(
    ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any
) -> dict[str, Any]:
    names = _Names(ctx)
    items = [subnetwork_item(ctx, s, names) for s in db_vpcs.list_subnets(ctx.session, ctx.account_id)]
    link = ctx.links.project_url() + "/aggregated/subnetworks"
    by_scope = {f"regions/{ctx.settings.region}": items}
    return aggregated("compute#subnetworkAggregatedList", "subnetworks", by_scope, query, link)


def _subnetwork_or_404(ctx: GceContext, region: str, name: str) -> Subnet:
    _check_region(ctx, region)
    subnet = find_subnetwork(ctx, name)
    if subnet is None:
        raise errors.not_found(f"projects/{ctx.project}/regions/{region}/subnetworks/{name}")
    return subnet


def get_subnetwork(ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any) -> dict[str, Any]:
    subnet = _subnetwork_or_404(ctx, path["region"], path["subnetwork"])
    return subnetwork_item(ctx, subnet, _Names(ctx))


def _last_name(value: Any, field_name: str) -> str:
    if not isinstance(value, str) or not value:
        raise errors.invalid_field(field_name, value or "", "Required field not specified.")
    return value.rstrip("/").rsplit("/", 1)[-1]


def _subnet_block(value: Any) -> str:
    try:
        block = ipaddress.IPv4Network(str(value))
    except ValueError:
        raise errors.invalid_field(
            "resource.ipCidrRange", value, "Must be a valid IPv4 CIDR range."
        ) from None
    if not block.subnet_of(NETWORK_BLOCK) or not 16 <= block.prefixlen <= 28:
        raise errors.invalid_field(
            "resource.ipCidrRange",
            value,
            f"This cloud's networks take subnetwork ranges of /16 to /28 inside {NETWORK_BLOCK}.",
        )
    return str(block)


def insert_subnetwork(
    ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any
) -> dict[str, Any]:
    region = path["region"]
    _check_region(ctx, region)
    replay = replayed(ctx, query)
    if replay is not None:
        return replay
    body = body or {}
    name = check_name(body)
    network = _last_name(body.get("network"), "resource.network")
    if body.get("ipCidrRange") in (None, ""):
        raise errors.invalid_field("resource.ipCidrRange", "", "Required field not specified.")
    block = _subnet_block(body["ipCidrRange"])
    vpc = _network_or_404(ctx, network)
    link = ctx.links.subnetwork(region, name)
    if find_subnetwork(ctx, name) is not None:
        raise errors.already_exists(ctx.links.path(link))
    if not ipaddress.IPv4Network(block).subnet_of(ipaddress.IPv4Network(vpc.cidr_block)):
        raise errors.invalid_field(
            "resource.ipCidrRange", block, f"The network '{network}' takes ranges inside {vpc.cidr_block}."
        )
    subnet = db_vpcs.create_subnet(
        ctx.session, ctx.account_id, vpc, block, ctx.settings.zones[0], now=ctx.now()
    )
    db_tags.set_tags(ctx.session, ctx.account_id, [(subnet.id, "subnet")], [{"Key": "Name", "Value": name}])
    try:
        db_names.add_subnetwork(
            ctx.session,
            subnet.id,
            ctx.account_id,
            region,
            name,
            description=str(body.get("description") or ""),
        )
    except IntegrityError:
        ctx.session.rollback()
        raise errors.already_exists(ctx.links.path(link)) from None
    return done_operation(ctx, "insert", link, ids.numeric_id("subnetwork", subnet.id), query, region)


def delete_subnetwork(
    ctx: GceContext, path: dict[str, str], query: dict[str, str], body: Any
) -> dict[str, Any]:
    replay = replayed(ctx, query)
    if replay is not None:
        return replay
    subnet = _subnetwork_or_404(ctx, path["region"], path["subnetwork"])
    link = ctx.links.subnetwork(path["region"], path["subnetwork"])
    db_vpcs.delete_subnet(ctx.session, ctx.account_id, subnet.id)
    return done_operation(ctx, "delete", link, ids.numeric_id("subnetwork", subnet.id), query, path["region"])


_N = "projects/{project}/global/networks"
_S = "projects/{project}/regions/{region}/subnetworks"
ROUTES = [
    Route("GET", _N, list_networks, "compute.networks.list", response="NetworkList"),
    Route("POST", _N, insert_network, "compute.networks.create", response="Operation", request="Network"),
    Route("GET", _N + "/{network}", get_network, "compute.networks.get", response="Network"),
    Route("DELETE", _N + "/{network}", delete_network, "compute.networks.delete", response="Operation"),
    Route("GET", _S, list_subnetworks, "compute.subnetworks.list", response="SubnetworkList"),
    Route(
        "POST",
        _S,
        insert_subnetwork,
        "compute.subnetworks.create",
        response="Operation",
        request="Subnetwork",
    ),
    Route(
        "GET",
        "projects/{project}/aggregated/subnetworks",
        aggregated_subnetworks,
        "compute.subnetworks.list",
        response="SubnetworkAggregatedList",
    ),
    Route("GET", _S + "/{subnetwork}", get_subnetwork, "compute.subnetworks.get", response="Subnetwork"),
    Route(
        "DELETE", _S + "/{subnetwork}", delete_subnetwork, "compute.subnetworks.delete", response="Operation"
    ),
]
