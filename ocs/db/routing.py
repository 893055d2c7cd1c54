"""Repository of internet gateways, route tables (routes, associations) and NAT gateways.

Plain functions taking the session and the caller's account id; the caller owns
the transaction. :mod:`ocs.db.vpcs` calls :func:`create_main_route_table`,
:func:`create_default_gateway`, :func:`vpc_has_dependencies`,
:func:`delete_vpc_routing` and :func:`forget_subnet`, so every VPC has its main
table and nothing outlives its VPC or subnet. This module does not import
:mod:`ocs.db.vpcs` (that would be a cycle); it looks VPCs and subnets up itself.

Messages are EC2's where it is known what EC2 answers (evidence in
:mod:`ocs.api_ec2.actions.route_tables` and friends).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ocs import errors, ids
from ocs.db import tags as db_tags
from ocs.db.hosts import is_alive
from ocs.db.models.base import utcnow
from ocs.db.models.compute import Host, Instance
from ocs.db.models.interfaces import ElasticAddress, NetworkInterface
from ocs.db.models.network import Subnet, Vpc
from ocs.db.models.routing import InternetGateway, NatGateway, Route, RouteTable, RouteTableAssociation
from ocs.db.owned import get_owned, owned_exists
from ocs.network import cidr

LOCAL = "local"
DEFAULT_ROUTE = "0.0.0.0/0"
NAT_DELETED_VISIBLE = dt.timedelta(hours=1)
"""How long a deleted (or failed) NAT gateway stays visible, as on EC2."""


def _new_id(kind: str, s: Session, model: type[object]) -> str:
    while True:
        candidate = ids.new_id(kind)
        if s.get(model, candidate) is None:
            return candidate


def _unique_insert(s: Session, row: object, error: errors.OcsError) -> None:
    """Insert ``row``; ``error`` if a unique constraint refuses it (also against a concurrent request)."""
    try:
        with s.begin_nested():
            s.add(row)
            s.flush()
    except IntegrityError as exc:
        raise error from exc


def _vpc(s: Session, account_id: str, vpc_id: str) -> Vpc:
    return get_owned(s, Vpc, "vpc", account_id, vpc_id)


def _subnet(s: Session, account_id: str, subnet_id: str) -> Subnet:
    return get_owned(s, Subnet, "subnet", account_id, subnet_id)


def _dependency(kind: str, resource_id: str) -> errors.OcsError:
    return errors.InUse(f"The {kind} '{resource_id}' has dependencies and cannot be deleted.")


# --- internet gateways ----------------------------------------------------------------------


def create_internet_gateway(
    s: Session, account_id: str, *, vpc_id: str | None = None, now: dt.datetime | None = None
) -> InternetGateway:
    igw = InternetGateway(
        id=_new_id("internet_gateway", s, InternetGateway),
        account_id=account_id,
        vpc_id=vpc_id,
        created_at=now or utcnow(),
    )
    s.add(igw)
    s.flush()
    return igw


def get_internet_gateway(s: Session, account_id: str, igw_id: str) -> InternetGateway:
    """InvalidInternetGatewayID.Malformed or .NotFound unless the account has ``igw_id``."""
    return get_owned(s, InternetGateway, "internet_gateway", account_id, igw_id)


def internet_gateway_exists(s: Session, account_id: str, igw_id: str) -> bool:
    return owned_exists(s, InternetGateway, account_id, igw_id)


def list_internet_gateways(s: Session, account_id: str, igw_ids: Sequence[str] = ()) -> list[InternetGateway]:
    """The account's internet gateways (those of ``igw_ids`` if given, each must exist), by id."""
    if igw_ids:
        found = {g.id: g for g in (get_internet_gateway(s, account_id, i) for i in igw_ids)}
        return [found[k] for k in sorted(found)]
    q = select(InternetGateway).where(InternetGateway.account_id == account_id)
    return list(s.scalars(q.order_by(InternetGateway.id)))


def gateway_of_vpc(s: Session, vpc_id: str) -> InternetGateway | None:
    return s.scalar(select(InternetGateway).where(InternetGateway.vpc_id == vpc_id))


def require_internet_gateway(s: Session, eni: NetworkInterface) -> None:
    """EC2 maps an elastic IP only into a VPC with an internet gateway attached."""
    if gateway_of_vpc(s, eni.vpc_id) is None:
        raise errors.IncorrectState(
            f"Network {eni.vpc_id} is not attached to any internet gateway", code="Gateway.NotAttached"
        )


def attach_internet_gateway(s: Session, account_id: str, igw_id: str, vpc_id: str) -> None:
    """Attach; Resource.AlreadyAssociated if the gateway is attached, InvalidParameterValue
    if the VPC already has one."""
    igw = get_internet_gateway(s, account_id, igw_id)
    vpc = _vpc(s, account_id, vpc_id)
    if igw.vpc_id is not None:
        raise errors.IncorrectState(
            f"resource {igw.id} is already attached to network {igw.vpc_id}",
            code="Resource.AlreadyAssociated",
        )
    taken = errors.InvalidParameterValue(f"Network {vpc.id} already has an internet gateway attached")
    if gateway_of_vpc(s, vpc.id) is not None:
        raise taken
    try:
        with s.begin_nested():
            igw.vpc_id = vpc.id
            s.flush()
    except IntegrityError as exc:  # another request attached one to this VPC first
        raise taken from exc


def detach_internet_gateway(s: Session, account_id: str, igw_id: str, vpc_id: str) -> None:
    """Detach; Gateway.NotAttached unless the gateway is attached to that VPC."""
    igw = get_internet_gateway(s, account_id, igw_id)
    vpc = _vpc(s, account_id, vpc_id)
    if igw.vpc_id != vpc.id:
        raise errors.IncorrectState(
            f"resource {igw.id} is not attached to network {vpc.id}", code="Gateway.NotAttached"
        )
    igw.vpc_id = None
    s.flush()


def delete_internet_gateway(s: Session, account_id: str, igw_id: str) -> None:
    """Delete; DependencyViolation while it is attached."""
    igw = get_internet_gateway(s, account_id, igw_id)
    if igw.vpc_id is not None:
        raise _dependency("internetGateway", igw.id)
    db_tags.delete_all_for(s, igw.id)
    s.delete(igw)
    s.flush()


# --- route tables ---------------------------------------------------------------------------


def create_route_table(
    s: Session, account_id: str, vpc: Vpc, *, main: bool = False, now: dt.datetime | None = None
) -> RouteTable:
    """A table of ``vpc`` with its ``local`` route; the VPC's main table if ``main``."""
    when = now or utcnow()
    table = RouteTable(
        id=_new_id("route_table", s, RouteTable), account_id=account_id, vpc_id=vpc.id, created_at=when
    )
    s.add(table)
    s.flush()
    s.add(
        Route(
            route_table_id=table.id,
            destination_cidr_block=vpc.cidr_block,
            gateway_id=LOCAL,
            origin="CreateRouteTable",
            created_at=when,
        )
    )
    if main:
        s.add(_association(s, account_id, table.id, main_vpc_id=vpc.id, now=when))
    s.flush()
    return table


def create_main_route_table(
    s: Session, account_id: str, vpc: Vpc, *, now: dt.datetime | None = None
) -> RouteTable:
    return create_route_table(s, account_id, vpc, main=True, now=now)


def create_default_gateway(s: Session, account_id: str, vpc: Vpc, *, now: dt.datetime | None = None) -> None:
    """What a default VPC has on EC2: an attached internet gateway, 0.0.0.0/0 to it in the main table."""
    igw = create_internet_gateway(s, account_id, vpc_id=vpc.id, now=now)
    table = main_route_table(s, vpc.id)
    assert table is not None, "a VPC without its main route table"
    s.add(
        Route(
            route_table_id=table.id,
            destination_cidr_block=DEFAULT_ROUTE,
            gateway_id=igw.id,
            origin="CreateRoute",
            created_at=now or utcnow(),
        )
    )
    s.flush()


def get_route_table(s: Session, account_id: str, table_id: str) -> RouteTable:
    """InvalidRouteTableID.Malformed or .NotFound unless the account has ``table_id``."""
    return get_owned(s, RouteTable, "route_table", account_id, table_id)


def route_table_exists(s: Session, account_id: str, table_id: str) -> bool:
    return owned_exists(s, RouteTable, account_id, table_id)


def list_route_tables(s: Session, account_id: str, table_ids: Sequence[str] = ()) -> list[RouteTable]:
    """The account's route tables (those of ``table_ids`` if given, each must exist), by id."""
    if table_ids:
        found = {t.id: t for t in (get_route_table(s, account_id, i) for i in table_ids)}
        return [found[k] for k in sorted(found)]
    return list(
        s.scalars(select(RouteTable).where(RouteTable.account_id == account_id).order_by(RouteTable.id))
    )


def main_route_table(s: Session, vpc_id: str) -> RouteTable | None:
    return s.scalar(
        select(RouteTable)
        .join(RouteTableAssociation, RouteTableAssociation.route_table_id == RouteTable.id)
        .where(RouteTableAssociation.main_vpc_id == vpc_id)
    )


def routes_of(s: Session, table_ids: Iterable[str]) -> dict[str, list[Route]]:
    """``{table_id: [routes, the local one first, then by creation]}`` for each of ``table_ids``."""
    wanted = list(dict.fromkeys(table_ids))
    out: dict[str, list[Route]] = {t: [] for t in wanted}
    for start in range(0, len(wanted), 500):
        q = select(Route).where(Route.route_table_id.in_(wanted[start : start + 500]))
        for route in s.scalars(q.order_by(Route.created_at, Route.destination_cidr_block)):
            out[route.route_table_id].append(route)
    for table_routes in out.values():
        table_routes.sort(key=lambda r: r.gateway_id != LOCAL)
    return out


def associations_of(s: Session, table_ids: Iterable[str]) -> dict[str, list[RouteTableAssociation]]:
    """``{table_id: [associations, the main one first]}`` for each of ``table_ids``."""
    wanted = list(dict.fromkeys(table_ids))
    out: dict[str, list[RouteTableAssociation]] = {t: [] for t in wanted}
    for start in range(0, len(wanted), 500):
        q = select(RouteTableAssociation).where(
            RouteTableAssociation.route_table_id.in_(wanted[start : start + 500])
        )
        for assoc in s.scalars(q.order_by(RouteTableAssociation.created_at, RouteTableAssociation.id)):
            out[assoc.route_table_id].append(assoc)
    for assocs in out.values():
        assocs.sort(key=lambda a: a.main_vpc_id is None)
    return out


def delete_route_table(s: Session, account_id: str, table_id: str) -> None:
    """Delete; DependencyViolation while it is associated (the main table always is)."""
    table = get_route_table(s, account_id, table_id)
    associated = s.scalar(
        select(RouteTableAssociation.id).where(RouteTableAssociation.route_table_id == table.id).limit(1)
    )
    if associated is not None:
        raise _dependency("routeTable", table.id)
    _delete_tables(s, [table.id])


def _delete_tables(s: Session, table_ids: Sequence[str]) -> None:
    if not table_ids:
        return
    s.execute(delete(Route).where(Route.route_table_id.in_(table_ids)))
    s.execute(delete(RouteTableAssociation).where(RouteTableAssociation.route_table_id.in_(table_ids)))
    for table_id in table_ids:
        db_tags.delete_all_for(s, table_id)
    s.execute(delete(RouteTable).where(RouteTable.id.in_(table_ids)))
    s.expire_all()


# --- associations ---------------------------------------------------------------------------


def _association(
    s: Session,
    account_id: str,
    table_id: str,
    *,
    subnet_id: str | None = None,
    main_vpc_id: str | None = None,
    now: dt.datetime | None = None,
) -> RouteTableAssociation:
    return RouteTableAssociation(
        id=_new_id("route_table_association", s, RouteTableAssociation),
        account_id=account_id,
        route_table_id=table_id,
        subnet_id=subnet_id,
        main_vpc_id=main_vpc_id,
        created_at=now or utcnow(),
    )


def get_association(s: Session, account_id: str, association_id: str) -> RouteTableAssociation:
    """InvalidAssociationID.Malformed or .NotFound unless the account has ``association_id``."""
    return get_owned(s, RouteTableAssociation, "route_table_association", account_id, association_id)


def _vpc_of_association(s: Session, assoc: RouteTableAssociation) -> str:
    if assoc.main_vpc_id is not None:
        return assoc.main_vpc_id
    subnet = s.get(Subnet, assoc.subnet_id)
    assert subnet is not None, "an association of a subnet that is gone"
    return subnet.vpc_id


def associate_subnet(
    s: Session, account_id: str, table_id: str, subnet_id: str, *, now: dt.datetime | None = None
) -> RouteTableAssociation:
    """Associate the table with a subnet of its VPC; Resource.AlreadyAssociated if the subnet has one."""
    table = get_route_table(s, account_id, table_id)
    subnet = _subnet(s, account_id, subnet_id)
    if subnet.vpc_id != table.vpc_id:
        raise errors.InvalidParameterValue(
            f"Route table {table.id} and subnet {subnet.id} belong to different networks"
        )
    taken = errors.IncorrectState(
        f"The specified association for route table {table.id} conflicts with an existing association",
        code="Resource.AlreadyAssociated",
    )
    if s.scalar(select(RouteTableAssociation.id).where(RouteTableAssociation.subnet_id == subnet.id)):
        raise taken
    assoc = _association(s, account_id, table.id, subnet_id=subnet.id, now=now)
    _unique_insert(s, assoc, taken)
    return assoc


def disassociate(s: Session, account_id: str, association_id: str) -> None:
    """Remove a subnet association (the subnet falls back to the main table); not the main one."""
    assoc = get_association(s, account_id, association_id)
    if assoc.main_vpc_id is not None:
        raise errors.InvalidParameterValue(f"cannot disassociate the main route table association {assoc.id}")
    s.delete(assoc)
    s.flush()


def replace_association(
    s: Session, account_id: str, association_id: str, table_id: str, *, now: dt.datetime | None = None
) -> RouteTableAssociation:
    """Point a subnet's (or the VPC's main) association at another table of the VPC; a new association ID."""
    assoc = get_association(s, account_id, association_id)
    table = get_route_table(s, account_id, table_id)
    if _vpc_of_association(s, assoc) != table.vpc_id:
        raise errors.InvalidParameterValue(
            f"Route table association {assoc.id} and route table {table.id} belong to different networks"
        )
    subnet_id, main_vpc_id = assoc.subnet_id, assoc.main_vpc_id
    s.delete(assoc)
    s.flush()
    new = _association(s, account_id, table.id, subnet_id=subnet_id, main_vpc_id=main_vpc_id, now=now)
    # A concurrent replacement of the same association got there first: this one is gone.
    _unique_insert(s, new, ids.not_found("route_table_association", association_id))
    return new


# --- routes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a route sends traffic: exactly one of these is set (instance routes set both)."""

    gateway_id: str | None = None
    nat_gateway_id: str | None = None
    instance_id: str | None = None
    network_interface_id: str | None = None

    @property
    def is_interface(self) -> bool:
        return self.network_interface_id is not None


def resolve_target(
    s: Session,
    account_id: str,
    table: RouteTable,
    *,
    gateway_id: str | None = None,
    nat_gateway_id: str | None = None,
    instance_id: str | None = None,
    network_interface_id: str | None = None,
) -> Target:
    """Check a route target against the table's VPC (exactly one was given: the caller checked)."""
    if gateway_id is not None and gateway_id.startswith("nat-"):
        # EC2 takes a NAT gateway given as GatewayId, and says "gateway" when it is missing.
        nat_gateway_id, gateway_id = gateway_id, None
        if not _live_nat(s, account_id, nat_gateway_id):
            raise errors.NotFound(
                f"The gateway ID '{nat_gateway_id}' does not exist", code="InvalidGatewayID.NotFound"
            )
    if gateway_id is not None:
        if ids.kind_of(gateway_id) != "internet_gateway":
            raise errors.NotFound(
                f"The gateway ID '{gateway_id}' does not exist", code="InvalidGatewayID.NotFound"
            )
        igw = get_internet_gateway(s, account_id, gateway_id)
        if igw.vpc_id != table.vpc_id:
            raise errors.InvalidParameterValue(
                f"route table {table.id} and network gateway {igw.id} belong to different networks"
            )
        return Target(gateway_id=igw.id)
    if nat_gateway_id is not None:
        nat = _live_nat(s, account_id, nat_gateway_id)
        if nat is None:
            raise errors.NotFound(
                f"The natGateway ID '{nat_gateway_id}' does not exist", code="InvalidNatGatewayID.NotFound"
            )
        if nat.vpc_id != table.vpc_id:
            raise errors.InvalidParameterValue(
                f"route table {table.id} and NAT gateway {nat.id} belong to different networks"
            )
        return Target(nat_gateway_id=nat.id)
    if network_interface_id is not None:
        eni = _route_interface(s, account_id, network_interface_id)
        if eni.vpc_id != table.vpc_id:
            raise errors.InvalidParameterValue(
                f"Route table {table.id} and interface {eni.id} belong to different networks"
            )
        return Target(network_interface_id=eni.id)
    instance = _route_instance(s, account_id, instance_id)
    if instance.vpc_id != table.vpc_id:
        raise errors.InvalidParameterValue(
            f"Route table {table.id} and interface {instance.network_interface_id} belong to different networks"
        )
    return Target(instance_id=instance.id, network_interface_id=instance.network_interface_id)


def _route_instance(s: Session, account_id: str, instance_id: str | None) -> Instance:
    """The instance an InstanceId route names (the route goes to its primary interface)."""
    instance = get_owned(s, Instance, "instance", account_id, instance_id or "")
    if instance.state == "terminated" or instance.network_interface_id is None:
        raise errors.InvalidParameterValue(
            f"Invalid value '{instance.id}' for instance ID. Instance is not in a VPC."
        )
    return instance


def _route_interface(s: Session, account_id: str, eni_id: str) -> NetworkInterface:
    """Any interface of the account, attached or not (EC2 routes to an unattached one as a
    blackhole until it is attached to a running instance)."""
    ids.validate("network_interface", eni_id)
    eni = s.get(NetworkInterface, eni_id)
    if eni is None or eni.account_id != account_id:
        raise ids.not_found("network_interface", eni_id)
    return eni


def _live_nat(s: Session, account_id: str, nat_id: str) -> NatGateway | None:
    if not ids.is_valid("nat_gateway", nat_id):
        return None
    nat = s.get(NatGateway, nat_id)
    if nat is None or nat.account_id != account_id or nat.state in ("deleted", "deleting", "failed"):
        return None
    return nat


def _route(s: Session, table_id: str, destination: str) -> Route | None:
    return s.get(Route, (table_id, destination))


def _vpc_block_check(s: Session, table: RouteTable, destination: str, target: Target) -> None:
    """RouteAlreadyExists for the VPC's own block (the local route); a block inside it only to an interface."""
    vpc = s.get(Vpc, table.vpc_id)
    assert vpc is not None
    if destination == vpc.cidr_block and not target.is_interface:
        raise _route_exists(destination)
    if destination == vpc.cidr_block:  # the local route's block: no second route to it
        raise errors.InvalidParameterValue(
            f"The destination CIDR block {destination} is equal to one of this VPC's CIDR blocks "
            "(the local route's)."
        )
    if cidr.contains(vpc.cidr_block, destination) and not target.is_interface:
        raise errors.InvalidParameterValue(
            f"The destination CIDR block {destination} is equal to or more specific than one of this "
            "VPC's CIDR blocks. This route can target only an interface or an instance."
        )


def _route_exists(destination: str) -> errors.OcsError:
    return errors.Duplicate(
        f"The route identified by {destination} already exists.", code="RouteAlreadyExists"
    )


def create_route(
    s: Session,
    account_id: str,
    table: RouteTable,
    destination: str,
    target: Target,
    *,
    now: dt.datetime | None = None,
) -> Route:
    """Add a route; RouteAlreadyExists if the table has one for ``destination``."""
    _vpc_block_check(s, table, destination, target)
    if _route(s, table.id, destination) is not None:
        raise _route_exists(destination)
    route = Route(
        route_table_id=table.id,
        destination_cidr_block=destination,
        origin="CreateRoute",
        created_at=now or utcnow(),
        **_target_columns(target),
    )
    _unique_insert(s, route, _route_exists(destination))
    return route


def _target_columns(target: Target) -> dict[str, str | None]:
    return {
        "gateway_id": target.gateway_id,
        "nat_gateway_id": target.nat_gateway_id,
        "instance_id": target.instance_id,
        "network_interface_id": target.network_interface_id,
    }


def replace_route(s: Session, account_id: str, table: RouteTable, destination: str, target: Target) -> Route:
    """Point an existing route at another target; the ``local`` route cannot be."""
    route = _route(s, table.id, destination)
    if route is None:
        raise errors.InvalidParameterValue(
            f"There is no route defined for '{destination}' in the route table. Use CreateRoute instead."
        )
    if route.gateway_id == LOCAL:
        raise errors.IncorrectState(
            f"The local route {destination} in route table {table.id} cannot be replaced.",
            code="InvalidRoute.InvalidState",
        )
    _vpc_block_check(s, table, destination, target)
    for column, value in _target_columns(target).items():
        setattr(route, column, value)
    s.flush()
    return route


def delete_route(s: Session, account_id: str, table: RouteTable, destination: str) -> None:
    """Remove a route; InvalidRoute.NotFound if there is none, InvalidParameterValue for ``local``."""
    route = _route(s, table.id, destination)
    if route is None:
        raise errors.NotFound(
            f"no route with destination-cidr-block {destination} in route table {table.id}",
            code="InvalidRoute.NotFound",
        )
    if route.gateway_id == LOCAL:
        raise errors.InvalidParameterValue(
            f"cannot remove local route {destination} in route table {table.id}"
        )
    s.delete(route)
    s.flush()


def usable_targets(s: Session, account_id: str, routes: Iterable[Route]) -> dict[str, str]:
    """``{target id: the VPC it serves}`` for the targets of ``routes`` that can carry traffic.

    A route is ``active`` when its target serves the route table's VPC (an attached
    gateway, a live NAT gateway, a running instance's interface), else ``blackhole``.
    """
    routes = list(routes)
    gateways = {r.gateway_id for r in routes if r.gateway_id and r.gateway_id != LOCAL}
    nats = {r.nat_gateway_id for r in routes if r.nat_gateway_id}
    enis = {r.network_interface_id for r in routes if r.network_interface_id}
    usable: dict[str, str] = {}
    if gateways:
        q = select(InternetGateway.id, InternetGateway.vpc_id).where(
            InternetGateway.account_id == account_id, InternetGateway.id.in_(gateways)
        )
        usable.update({igw: vpc for igw, vpc in s.execute(q) if vpc})
    if nats:
        q2 = select(NatGateway.id, NatGateway.vpc_id).where(
            NatGateway.account_id == account_id,
            NatGateway.id.in_(nats),
            NatGateway.state.in_(("pending", "available")),
        )
        usable.update({str(nat): str(vpc) for nat, vpc in s.execute(q2)})
    if enis:
        q3 = (
            select(NetworkInterface.id, NetworkInterface.vpc_id)
            .join(Instance, Instance.id == NetworkInterface.instance_id)
            .where(
                NetworkInterface.account_id == account_id,
                NetworkInterface.id.in_(enis),
                Instance.state.in_(("pending", "running")),
            )
        )
        usable.update({eni: vpc for eni, vpc in s.execute(q3) if eni and vpc})
    return usable


# --- the VPC's side -------------------------------------------------------------------------


def vpc_has_dependencies(s: Session, vpc_id: str) -> bool:
    """Whether a route table other than the main one, or an internet gateway, holds on to the VPC."""
    if gateway_of_vpc(s, vpc_id) is not None:
        return True
    main = main_route_table(s, vpc_id)
    q = select(RouteTable.id).where(RouteTable.vpc_id == vpc_id)
    if main is not None:
        q = q.where(RouteTable.id != main.id)
    return s.scalar(q.limit(1)) is not None


def delete_vpc_routing(s: Session, vpc_id: str) -> None:
    """Delete the VPC's route tables (by now only its main one)."""
    _delete_tables(s, list(s.scalars(select(RouteTable.id).where(RouteTable.vpc_id == vpc_id))))


def forget_subnet(s: Session, subnet_id: str) -> None:
    """Drop a deleted subnet's route table association."""
    s.execute(delete(RouteTableAssociation).where(RouteTableAssociation.subnet_id == subnet_id))


def subnet_has_nat_gateway(s: Session, subnet_id: str) -> bool:
    q = select(NatGateway.id).where(NatGateway.subnet_id == subnet_id, NatGateway.state.in_(LIVE_NAT))
    return s.scalar(q.limit(1)) is not None


# --- NAT gateways ---------------------------------------------------------------------------


def nat_not_found(nat_id: str) -> errors.OcsError:
    return errors.NotFound(f"The Nat Gateway {nat_id} was not found", code="NatGatewayNotFound")


LIVE_NAT = ("pending", "available")
NAT_DESCRIPTION = "Interface for NAT Gateway {nat_id}"


def create_nat_gateway(
    s: Session,
    account_id: str,
    subnet_id: str,
    *,
    connectivity_type: str,
    allocation_id: str | None,
    hosts: Sequence[str] = (),
    now: dt.datetime | None = None,
) -> NatGateway:
    """A NAT gateway in the subnet, or ``failed`` as EC2 fails one.

    A public gateway fails (FailureCode ``Gateway.NotAttached``) when the VPC has no
    internet gateway, and (``Resource.AlreadyAssociated``) when its elastic IP is
    associated already (with another live gateway or an interface); these are EC2's
    documented failure codes. A gateway that does not fail gets its network interface
    (requester-managed, ``nat_gateway``, an address of the subnet) with the elastic
    IP associated to it. A public one is placed on the first of ``hosts`` (the
    candidates, best first) and stays ``pending`` until that host's network service
    has built it (:func:`settle_nat_gateways`); a private one, or a public one with no
    host to carry it, is ``available`` at once and only a record (nothing carries it).
    """
    subnet = _subnet(s, account_id, subnet_id)
    nat = NatGateway(
        id=_new_id("nat_gateway", s, NatGateway),
        account_id=account_id,
        vpc_id=subnet.vpc_id,
        subnet_id=subnet.id,
        connectivity_type=connectivity_type,
        allocation_id=allocation_id,
        network_interface_id=ids.new_id("network_interface"),
        state="available",
        created_at=now or utcnow(),
    )
    if connectivity_type == "public":
        if gateway_of_vpc(s, subnet.vpc_id) is None:
            _fail(
                nat, "Gateway.NotAttached", f"Network {subnet.vpc_id} has no Internet gateway attached", now
            )
        elif _allocation_in_use(s, account_id, allocation_id):
            _fail(
                nat,
                "Resource.AlreadyAssociated",
                f"Elastic IP address {allocation_id} is already associated",
                now,
            )
    if nat.state != "failed":
        _nat_interface(s, nat, subnet, now)
        if connectivity_type == "public" and hosts:
            nat.host = hosts[0]
            nat.state = "pending"
    s.add(nat)
    s.flush()
    return nat


def _nat_interface(s: Session, nat: NatGateway, subnet: Subnet, now: dt.datetime | None) -> None:
    """The gateway's network interface, and its elastic IP associated to it."""
    from ocs.db import interfaces as db_interfaces  # here: interfaces → ipam → vpcs → routing

    eni = db_interfaces.create_interface(
        s, nat.account_id, subnet, (), description=NAT_DESCRIPTION.format(nat_id=nat.id), now=now
    )
    eni.status = "in-use"
    eni.interface_type = "nat_gateway"
    eni.requester_managed = True
    nat.network_interface_id = eni.id
    if nat.allocation_id:
        row = s.get(ElasticAddress, nat.allocation_id)
        if row is not None:
            row.association_id = ids.new_id("association")
            row.network_interface_id = eni.id
            row.private_ip_address = eni.private_ip_address
    s.flush()


def nat_interfaces(s: Session, nats: Iterable[NatGateway]) -> dict[str, NetworkInterface]:
    """The network interfaces of these gateways that exist, by interface ID."""
    wanted = sorted({n.network_interface_id for n in nats})
    if not wanted:
        return {}
    return {e.id: e for e in s.scalars(select(NetworkInterface).where(NetworkInterface.id.in_(wanted)))}


def _fail(nat: NatGateway, code: str, message: str, now: dt.datetime | None) -> None:
    nat.state = "failed"
    nat.failure_code = code
    nat.failure_message = message
    nat.deleted_at = now or utcnow()


def _allocation_in_use(s: Session, account_id: str, allocation_id: str | None) -> bool:
    if allocation_id is None:
        return False
    q = select(NatGateway.id).where(
        NatGateway.account_id == account_id,
        NatGateway.allocation_id == allocation_id,
        NatGateway.state.in_(LIVE_NAT),
    )
    row = s.get(ElasticAddress, allocation_id)
    return s.scalar(q.limit(1)) is not None or (row is not None and row.network_interface_id is not None)


def nat_hosts(
    s: Session, availability_zone: str, *, now: dt.datetime | None = None, down_after: float = 60.0
) -> list[str]:
    """Hosts that can carry a new NAT gateway, best first: enabled, heard from within
    ``down_after`` seconds, in the subnet's zone before others (EC2's NAT gateways are
    zonal), the fewest live gateways first, then by name."""
    when = now or utcnow()
    rows = [h for h in s.scalars(select(Host).where(Host.enabled.is_(True))) if is_alive(h, when, down_after)]
    if not rows:
        return []
    load: dict[str, int] = {}
    for host in s.scalars(
        select(NatGateway.host).where(
            NatGateway.host.in_([h.name for h in rows]), NatGateway.state.in_(LIVE_NAT)
        )
    ):
        if host:
            load[host] = load.get(host, 0) + 1
    rows.sort(key=lambda h: (h.availability_zone != availability_zone, load.get(h.name, 0), h.name))
    return [h.name for h in rows]


def has_unsettled_nat_gateways(s: Session, host: str) -> bool:
    """Whether ``host`` carries NAT gateways that are ``pending`` or ``deleting``."""
    q = select(NatGateway.id).where(NatGateway.host == host, NatGateway.state.in_(("pending", "deleting")))
    return s.scalar(q.limit(1)) is not None


def settle_nat_gateways(
    s: Session, host: str, built: Iterable[str], *, now: dt.datetime | None = None
) -> list[str]:
    """After ``host``'s network service converged: its ``pending`` gateways it ``built``
    are ``available``, its ``deleting`` ones (gone from its plan) ``deleted``. The IDs
    whose state changed."""
    done = set(built)
    changed = []
    for nat in s.scalars(
        select(NatGateway).where(NatGateway.host == host, NatGateway.state.in_(("pending", "deleting")))
    ):
        if nat.state == "pending" and nat.id in done:
            nat.state = "available"
        elif nat.state == "deleting":
            nat.state = "deleted"
            nat.deleted_at = now or utcnow()
        else:
            continue
        changed.append(nat.id)
    s.flush()
    return changed


def _visible(nat: NatGateway, now: dt.datetime) -> bool:
    return nat.deleted_at is None or now - nat.deleted_at < NAT_DELETED_VISIBLE


def get_nat_gateway(
    s: Session, account_id: str, nat_id: str, *, now: dt.datetime | None = None
) -> NatGateway:
    """NatGatewayMalformed or NatGatewayNotFound unless the account has ``nat_id`` (still visible)."""
    ids.validate("nat_gateway", nat_id)
    nat = s.get(NatGateway, nat_id)
    if nat is None or nat.account_id != account_id or not _visible(nat, now or utcnow()):
        raise nat_not_found(nat_id)
    return nat


def nat_gateway_exists(s: Session, account_id: str, nat_id: str) -> bool:
    nat = s.get(NatGateway, nat_id)
    return nat is not None and nat.account_id == account_id and _visible(nat, utcnow())


def list_nat_gateways(
    s: Session, account_id: str, nat_ids: Sequence[str] = (), *, now: dt.datetime | None = None
) -> list[NatGateway]:
    """The account's visible NAT gateways (those of ``nat_ids`` if given, each must exist), by id."""
    when = now or utcnow()
    if nat_ids:
        found = {n.id: n for n in (get_nat_gateway(s, account_id, i, now=when) for i in nat_ids)}
        return [found[k] for k in sorted(found)]
    rows = s.scalars(select(NatGateway).where(NatGateway.account_id == account_id).order_by(NatGateway.id))
    return [n for n in rows if _visible(n, when)]


def delete_nat_gateway(
    s: Session, account_id: str, nat_id: str, *, now: dt.datetime | None = None
) -> NatGateway:
    """Delete its network interface (the elastic IP is free again) and mark it
    ``deleting`` for its host's network service to tear down (then ``deleted``), or
    ``deleted`` at once when no host carries it. It stays visible for an hour;
    NatGatewayNotFound if it is already going or gone."""
    from ocs.db.interface_cleanup import delete_interfaces

    nat = get_nat_gateway(s, account_id, nat_id, now=now)
    if nat.state in ("deleted", "deleting", "failed"):
        raise nat_not_found(nat_id)
    delete_interfaces(s, [nat.network_interface_id])
    if nat.host:
        nat.state = "deleting"
    else:
        nat.state = "deleted"
        nat.deleted_at = now or utcnow()
    s.flush()
    return nat


def purge_nat_gateways(s: Session, before: dt.datetime, limit: int = 500) -> list[str]:
    """Forget NAT gateways deleted (or failed) before ``before``, with their tags; returns their IDs."""
    gone = list(s.scalars(select(NatGateway.id).where(NatGateway.deleted_at < before).limit(limit)))
    for nat_id in gone:
        db_tags.delete_all_for(s, nat_id)
    if gone:
        s.execute(
            delete(NatGateway).where(NatGateway.id.in_(gone)).execution_options(synchronize_session=False)
        )
    return gone
