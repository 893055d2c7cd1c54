"""Where the network service reads routing from the database: route tables, NAT gateways,
tunnel addresses.

Per subnet, its route table is its explicit association, else its VPC's main table
(:func:`internet_routes`: the destinations it sends to an internet gateway attached
to its VPC; :func:`hop_routes`: those it sends to NAT gateways and network
interfaces, resolved to next hops). :func:`nat_gateways_on` gives the NAT gateways a
host builds, :func:`nat_carriers` the hosts carrying NAT gateways of some VPCs (tunnel
peers), :func:`tunnel_ips_of` the tunnel addresses the network services recorded.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from ocs.db.models.compute import Instance, ServiceRecord
from ocs.db.models.interfaces import ElasticAddress, NetworkInterface
from ocs.db.models.network import Subnet, Vpc
from ocs.db.models.routing import InternetGateway, NatGateway, Route, RouteTableAssociation
from ocs.db.routing import LIVE_NAT
from ocs.network.plan import HopRoute, NatGatewayState


def _tables_of(s: Session, subnets: list[Subnet]) -> dict[str, str | None]:
    """Per subnet, its route table: its explicit association, else its VPC's main table."""
    vpc_ids = sorted({x.vpc_id for x in subnets})
    assoc = s.execute(
        select(
            RouteTableAssociation.subnet_id,
            RouteTableAssociation.main_vpc_id,
            RouteTableAssociation.route_table_id,
        ).where(
            RouteTableAssociation.subnet_id.in_([x.id for x in subnets])
            | RouteTableAssociation.main_vpc_id.in_(vpc_ids)
        )
    ).all()
    explicit = {a.subnet_id: a.route_table_id for a in assoc if a.subnet_id}
    main = {a.main_vpc_id: a.route_table_id for a in assoc if a.main_vpc_id}
    return {x.id: explicit.get(x.id) or main.get(x.vpc_id) for x in subnets}


def internet_routes(s: Session, subnets: Iterable[Subnet]) -> dict[str, tuple[str, ...]]:
    """Per subnet, the destinations its route table (its explicit association, else its
    VPC's main table) sends to an internet gateway attached to its VPC."""
    subnets = list(subnets)
    if not subnets:
        return {}
    vpc_ids = sorted({x.vpc_id for x in subnets})
    table_of = _tables_of(s, subnets)
    gateways = dict(
        s.execute(
            select(InternetGateway.id, InternetGateway.vpc_id).where(InternetGateway.vpc_id.in_(vpc_ids))
        ).all()
    )
    tables = sorted({t for t in table_of.values() if t})
    to_gateway: dict[str, list[tuple[str, str]]] = {}
    if tables and gateways:
        for table_id, destination, gateway_id in s.execute(
            select(Route.route_table_id, Route.destination_cidr_block, Route.gateway_id).where(
                Route.route_table_id.in_(tables), Route.gateway_id.in_(sorted(gateways))
            )
        ):
            to_gateway.setdefault(table_id, []).append((destination, gateway_id or ""))
    out = {}
    for x in subnets:
        routes = [d for d, g in to_gateway.get(table_of[x.id] or "", ()) if gateways.get(g) == x.vpc_id]
        if routes:
            out[x.id] = tuple(sorted(routes))
    return out


def hop_routes(s: Session, subnets: Iterable[Subnet]) -> dict[str, tuple[HopRoute, ...]]:
    """Per subnet, its route table's routes to NAT gateways and network interfaces,
    resolved to the next hop's address and MAC: a public NAT gateway that is ``pending``
    or ``available`` and placed on a host (its interface), an interface attached to a
    ``pending`` or ``running`` instance of the subnet's VPC. Any other target is a
    blackhole (``HopRoute`` without a next hop), as EC2 shows such a route."""
    subnets = list(subnets)
    if not subnets:
        return {}
    table_of = _tables_of(s, subnets)
    tables = sorted({t for t in table_of.values() if t})
    if not tables:
        return {}
    rows = s.execute(
        select(
            Route.route_table_id,
            Route.destination_cidr_block,
            Route.nat_gateway_id,
            Route.network_interface_id,
        )
        .where(Route.route_table_id.in_(tables))
        .where(Route.nat_gateway_id.is_not(None) | Route.network_interface_id.is_not(None))
    ).all()
    nat_enis = dict(
        s.execute(
            select(NatGateway.id, NatGateway.network_interface_id).where(
                NatGateway.id.in_(sorted({r.nat_gateway_id for r in rows if r.nat_gateway_id})),
                NatGateway.state.in_(LIVE_NAT),
                NatGateway.connectivity_type == "public",
                NatGateway.host.is_not(None),
            )
        ).all()
    )
    eni_ids = {r.network_interface_id for r in rows if r.network_interface_id} | set(nat_enis.values())
    nat_owned = set(nat_enis.values())
    hops: dict[str, tuple[str, str, str]] = {}  # interface -> (vpc, address, mac)
    if eni_ids:
        eni = NetworkInterface
        for iid, vpc_id, address, mac, instance_id, state in s.execute(
            select(
                eni.id, eni.vpc_id, eni.private_ip_address, eni.mac_address, eni.instance_id, Instance.state
            )
            .outerjoin(Instance, Instance.id == eni.instance_id)
            .where(eni.id.in_(sorted(eni_ids)))
        ):
            if iid in nat_owned or (instance_id and state in ("pending", "running")):
                hops[iid] = (vpc_id, address, (mac or "").lower())
    by_table: dict[str, list[tuple[str, str | None]]] = {}
    for r in rows:
        target = nat_enis.get(r.nat_gateway_id) if r.nat_gateway_id else r.network_interface_id
        by_table.setdefault(r.route_table_id, []).append((r.destination_cidr_block, target))
    out: dict[str, tuple[HopRoute, ...]] = {}
    for x in subnets:
        routes = []
        for destination, target in by_table.get(table_of[x.id] or "", ()):
            hop = hops.get(target or "")
            if hop is not None and hop[0] == x.vpc_id and hop[1] and hop[2]:
                routes.append(HopRoute(destination, hop[1], hop[2]))
            else:
                routes.append(HopRoute(destination))
        if routes:
            out[x.id] = tuple(routes)
    return out


def nat_gateways_on(s: Session, host: str) -> tuple[NatGatewayState, ...]:
    """The public NAT gateways placed on ``host`` that are ``pending`` or ``available``,
    with their interface, elastic IP and their subnet's way to the internet gateway
    (those missing a part are left out: nothing to build)."""
    nats = list(
        s.scalars(
            select(NatGateway).where(
                NatGateway.host == host,
                NatGateway.state.in_(LIVE_NAT),
                NatGateway.connectivity_type == "public",
            )
        )
    )
    if not nats:
        return ()
    enis = {
        e.id: e
        for e in s.scalars(
            select(NetworkInterface).where(NetworkInterface.id.in_([n.network_interface_id for n in nats]))
        )
    }
    publics = dict(
        s.execute(
            select(ElasticAddress.id, ElasticAddress.public_ip).where(
                ElasticAddress.id.in_([n.allocation_id for n in nats if n.allocation_id])
            )
        ).all()
    )
    subnets = {x.id: x for x in s.scalars(select(Subnet).where(Subnet.id.in_({n.subnet_id for n in nats})))}
    blocks = dict(s.execute(select(Vpc.id, Vpc.cidr_block).where(Vpc.id.in_({n.vpc_id for n in nats}))).all())
    internet = internet_routes(s, subnets.values())
    out = []
    for n in nats:
        eni, subnet, public = (
            enis.get(n.network_interface_id),
            subnets.get(n.subnet_id),
            publics.get(n.allocation_id or ""),
        )
        if eni is None or subnet is None or not public:
            continue
        out.append(
            NatGatewayState(
                id=n.id,
                vpc_id=n.vpc_id,
                subnet_id=n.subnet_id,
                cidr_block=subnet.cidr_block,
                vpc_cidr_block=blocks.get(n.vpc_id, ""),
                ip=eni.private_ip_address,
                mac=eni.mac_address.lower(),
                public_ip=public,
                internet_routes=internet.get(n.subnet_id, ()),
            )
        )
    return tuple(out)


def nat_carriers(s: Session, vpc_ids: Iterable[str]) -> list[tuple[str, str]]:
    """(VPC, host) for the live NAT gateways of these VPCs placed on a host: those hosts
    carry the VPCs too (tunnel peers)."""
    wanted = sorted(set(vpc_ids))
    if not wanted:
        return []
    rows = s.execute(
        select(NatGateway.vpc_id, NatGateway.host).where(
            NatGateway.vpc_id.in_(wanted),
            NatGateway.state.in_(LIVE_NAT),
            NatGateway.connectivity_type == "public",
            NatGateway.host.is_not(None),
        )
    )
    return [(vpc, host) for vpc, host in rows if host]


def tunnel_ips_of(s: Session) -> dict[str, str]:
    """Host → tunnel address, as the network services recorded them."""
    rows = s.execute(
        select(ServiceRecord.host, ServiceRecord.tunnel_ip).where(
            ServiceRecord.service == "network", ServiceRecord.tunnel_ip.is_not(None)
        )
    )
    return {host: ip for host, ip in rows if ip}
