"""Route tables, their routes and associations.

Behaviour, as EC2 documents or answers it (evidence in brackets):

* Every VPC has a main route table with the ``local`` route to its block (origin
  ``CreateRouteTable``, ``GatewayId`` ``local``); a default VPC's main table also
  sends ``0.0.0.0/0`` to its internet gateway. Subnets without an association use
  the main table. ReplaceRouteTableAssociation moves the main association too.
* DeleteRouteTable of an associated table (the main one always is):
  ``DependencyViolation`` "The routeTable 'rtb-x' has dependencies and cannot be
  deleted." [moto; openstack/ec2-api].
* A subnet already associated: ``Resource.AlreadyAssociated``; a subnet or target
  of another VPC: ``InvalidParameterValue`` "... belong to different networks", the
  text EC2 gives for an internet gateway not attached to the table's VPC ("route
  table rtb-x and network gateway igw-y belong to different networks"
  [giantswarm/aws-operator#632]). The main association cannot be disassociated:
  ``InvalidParameterValue`` [openstack/ec2-api].
* CreateRoute: a destination the table has: ``RouteAlreadyExists`` "The route
  identified by x already exists." [openstack/ec2-api; moto]; the VPC's own block is
  the ``local`` route's; a block inside it only to an interface or instance, else
  ``InvalidParameterValue`` "The destination CIDR block x is equal to or more
  specific than one of this VPC's CIDR blocks. This route can target only an
  interface or an instance."; text that is no CIDR block: ``InvalidParameterValue``
  "Value (x) for parameter destinationCidrBlock is invalid. This is not a valid
  CIDR block." [moto]. Exactly one target: none is ``MissingParameter``, several
  ``InvalidParameterCombination`` [openstack/ec2-api]. A NAT gateway also goes as
  ``GatewayId``; a missing one is then ``InvalidGatewayID.NotFound``
  [devopsacademyau/academy#906].
* DeleteRoute of a destination the table lacks: ``InvalidRoute.NotFound``; of the
  ``local`` route: ``InvalidParameterValue`` "cannot remove local route x in route
  table rtb-y" [openstack/ec2-api]. ReplaceRoute of a missing destination:
  ``InvalidParameterValue`` "There is no route defined for 'x' in the route table.
  Use CreateRoute instead." (so EC2 answers, see moto); of the ``local`` route:
  ``InvalidRoute.InvalidState`` (its target cannot change here).
* A route whose target is gone or unusable (a detached gateway, a deleted NAT
  gateway, an instance not running) shows ``State`` ``blackhole``, else ``active``.
* Network interfaces are being built in parallel: until then a
  ``NetworkInterfaceId`` target is the ``network_interface_id`` of one of the
  account's instances. IPv6 destinations, prefix lists and the targets OCS does
  not have (transit, peering, egress-only, carrier, local gateways, endpoints) are
  ``Unsupported``; so are gateway (edge) associations.
"""

from __future__ import annotations

from typing import Any

from ocs import errors
from ocs.api_ec2 import filters, pagination, resources, tagging
from ocs.api_ec2.context import RequestContext
from ocs.api_ec2.network import routing_changed
from ocs.db import routing as repo
from ocs.db import tags as db_tags
from ocs.db import vpcs as db_vpcs
from ocs.db.models.routing import Route, RouteTable, RouteTableAssociation
from ocs.network import cidr

resources.register("route_table", "route-table", repo.route_table_exists)

_UNSUPPORTED_ROUTE = (
    "DestinationIpv6CidrBlock",
    "DestinationPrefixListId",
    "VpcEndpointId",
    "TransitGatewayId",
    "LocalGatewayId",
    "CarrierGatewayId",
    "CoreNetworkArn",
    "OdbNetworkArn",
    "EgressOnlyInternetGatewayId",
    "VpcPeeringConnectionId",
    "LocalTarget",
)
_TARGETS = ("GatewayId", "NatGatewayId", "InstanceId", "NetworkInterfaceId")
_ONE_TARGET = (
    "The request must contain exactly one of gatewayId, natGatewayId, networkInterfaceId, "
    "vpcPeeringConnectionId or instanceId"
)
_ASSOCIATED = {"State": "associated"}


# --- output ---------------------------------------------------------------------------------


def route_item(route: Route, table: RouteTable, usable: dict[str, str]) -> dict[str, Any]:
    """A botocore ``Route``; ``usable`` maps targets to the VPC they serve."""
    target = route.gateway_id or route.nat_gateway_id or route.network_interface_id or ""
    active = route.gateway_id == repo.LOCAL or usable.get(target) == table.vpc_id
    item: dict[str, Any] = {
        "DestinationCidrBlock": route.destination_cidr_block,
        "Origin": route.origin,
        "State": "active" if active else "blackhole",
        "GatewayId": route.gateway_id,
        "NatGatewayId": route.nat_gateway_id,
        "NetworkInterfaceId": route.network_interface_id,
    }
    if route.instance_id:
        item.update(InstanceId=route.instance_id, InstanceOwnerId=table.account_id)
    return item


def association_item(assoc: RouteTableAssociation) -> dict[str, Any]:
    """A botocore ``RouteTableAssociation``."""
    return {
        "Main": assoc.main_vpc_id is not None,
        "RouteTableAssociationId": assoc.id,
        "RouteTableId": assoc.route_table_id,
        "SubnetId": assoc.subnet_id,
        "AssociationState": dict(_ASSOCIATED),
    }


def _items(ctx: RequestContext, tables: list[RouteTable], tags: dict[str, list[dict[str, str]]]) -> list[Any]:
    routes = repo.routes_of(ctx.session, [t.id for t in tables])
    assocs = repo.associations_of(ctx.session, [t.id for t in tables])
    usable = repo.usable_targets(ctx.session, ctx.account_id, [r for rs in routes.values() for r in rs])
    return [
        {
            "RouteTableId": t.id,
            "VpcId": t.vpc_id,
            "OwnerId": t.account_id,
            "Routes": [route_item(r, t, usable) for r in routes[t.id]],
            "Associations": [association_item(a) for a in assocs[t.id]],
            "PropagatingVgws": [],
            "Tags": tags.get(t.id) or None,
        }
        for t in tables
    ]


# --- input ----------------------------------------------------------------------------------


def _required(params: dict[str, Any], member: str, wire: str) -> str:
    value = params.get(member)
    if not value:
        raise errors.MissingParameter(name=wire)
    return str(value)


def _unsupported(params: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if params.get(name) not in (None, False, ""):
            raise errors.Unsupported(reason=f"The parameter {name} is not supported by this cloud.")


def _destination(params: dict[str, Any]) -> str:
    text = _required(params, "DestinationCidrBlock", "destinationCidrBlock")
    net = cidr.ipv4_network(text)
    if net is None:
        raise errors.InvalidParameterValue(
            value=text, name="destinationCidrBlock", reason="This is not a valid CIDR block."
        )
    return str(net)


def _target(ctx: RequestContext, params: dict[str, Any], table: RouteTable) -> repo.Target:
    given = {m: str(params[m]) for m in _TARGETS if params.get(m)}
    if not given:
        raise errors.MissingParameter(_ONE_TARGET)
    if len(given) > 1:
        raise errors.InvalidParameterCombination(reason=_ONE_TARGET)
    return repo.resolve_target(
        ctx.session,
        ctx.account_id,
        table,
        gateway_id=given.get("GatewayId"),
        nat_gateway_id=given.get("NatGatewayId"),
        instance_id=given.get("InstanceId"),
        network_interface_id=given.get("NetworkInterfaceId"),
    )


def _table(ctx: RequestContext, params: dict[str, Any]) -> RouteTable:
    return repo.get_route_table(
        ctx.session, ctx.account_id, _required(params, "RouteTableId", "routeTableId")
    )


# --- route tables ---------------------------------------------------------------------------


def describe_route_tables(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    rows = repo.list_route_tables(ctx.session, ctx.account_id, params.get("RouteTableIds") or [])
    tags = db_tags.tags_for(ctx.session, ctx.account_id, [t.id for t in rows])
    items = filters.filter_action("DescribeRouteTables", _items(ctx, rows, tags), params.get("Filters"))
    action = "DescribeRouteTables"
    page, token = pagination.paginate_action(
        action,
        items,
        params,
        key="RouteTableId",
        scope=pagination.token_scope(action, ctx.account_id),
    )
    return {"RouteTables": page, "NextToken": token}


def create_route_table(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    vpc = db_vpcs.get_vpc(ctx.session, ctx.account_id, _required(params, "VpcId", "vpcId"))
    tags = tagging.tag_specifications_for(params, "route-table", action="CreateRouteTable")
    table = repo.create_route_table(ctx.session, ctx.account_id, vpc, now=ctx.now())
    if tags:
        db_tags.set_tags(ctx.session, ctx.account_id, [(table.id, "route-table")], tags)
    [item] = _items(ctx, [table], {table.id: tags})
    return {"RouteTable": item, "ClientToken": params.get("ClientToken")}


def delete_route_table(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    repo.delete_route_table(ctx.session, ctx.account_id, _required(params, "RouteTableId", "routeTableId"))
    return {}


# --- associations ---------------------------------------------------------------------------


def associate_route_table(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _unsupported(params, ("GatewayId", "PublicIpv4Pool"))
    table_id = _required(params, "RouteTableId", "routeTableId")
    subnet_id = _required(params, "SubnetId", "subnetId")
    assoc = repo.associate_subnet(ctx.session, ctx.account_id, table_id, subnet_id, now=ctx.now())
    routing_changed(ctx, [repo.get_route_table(ctx.session, ctx.account_id, table_id).vpc_id])
    return {"AssociationId": assoc.id, "AssociationState": dict(_ASSOCIATED)}


def disassociate_route_table(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    association_id = _required(params, "AssociationId", "associationId")
    assoc = ctx.session.get(RouteTableAssociation, association_id)
    table = ctx.session.get(RouteTable, assoc.route_table_id) if assoc is not None else None
    repo.disassociate(ctx.session, ctx.account_id, association_id)
    routing_changed(ctx, [table.vpc_id if table is not None else None])
    return {}


def replace_route_table_association(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    association_id = _required(params, "AssociationId", "associationId")
    table_id = _required(params, "RouteTableId", "routeTableId")
    new = repo.replace_association(ctx.session, ctx.account_id, association_id, table_id, now=ctx.now())
    routing_changed(ctx, [repo.get_route_table(ctx.session, ctx.account_id, table_id).vpc_id])
    return {"NewAssociationId": new.id, "AssociationState": dict(_ASSOCIATED)}


# --- routes ---------------------------------------------------------------------------------


def create_route(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _unsupported(params, _UNSUPPORTED_ROUTE)
    table = _table(ctx, params)
    destination = _destination(params)
    target = _target(ctx, params, table)
    repo.create_route(ctx.session, ctx.account_id, table, destination, target, now=ctx.now())
    routing_changed(ctx, [table.vpc_id])
    return {"Return": True}


def replace_route(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _unsupported(params, _UNSUPPORTED_ROUTE)
    table = _table(ctx, params)
    destination = _destination(params)
    target = _target(ctx, params, table)
    repo.replace_route(ctx.session, ctx.account_id, table, destination, target)
    routing_changed(ctx, [table.vpc_id])
    return {}


def delete_route(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _unsupported(params, ("DestinationIpv6CidrBlock", "DestinationPrefixListId"))
    table = _table(ctx, params)
    repo.delete_route(ctx.session, ctx.account_id, table, _destination(params))
    routing_changed(ctx, [table.vpc_id])
    return {}


ACTIONS = {
    "DescribeRouteTables": describe_route_tables,
    "CreateRouteTable": create_route_table,
    "DeleteRouteTable": delete_route_table,
    "AssociateRouteTable": associate_route_table,
    "DisassociateRouteTable": disassociate_route_table,
    "ReplaceRouteTableAssociation": replace_route_table_association,
    "CreateRoute": create_route,
    "ReplaceRoute": replace_route,
    "DeleteRoute": delete_route,
}
