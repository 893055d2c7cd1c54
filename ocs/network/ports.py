"""Where the network service reads instance interfaces ("ports") from the database.

A port is a network interface (ENI) attached to an instance that is not going away
(``shutting-down``, ``terminated``): its row gives the subnet, VPC, MAC, primary
private address, security groups and source/destination check; its other private
addresses are :class:`~ocs.db.models.interfaces.InterfaceAddress` rows, and the
public addresses mapped to them (elastic IPs and auto-assigned addresses alike) are
the association columns of :class:`~ocs.db.models.interfaces.ElasticAddress`. The
host carrying a port is its instance's.

Every reader of ports goes through :func:`ports_where` and the helpers on top of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from ocs.db.models.compute import Instance
from ocs.db.models.interfaces import ElasticAddress, InterfaceAddress, NetworkInterface
from ocs.network.plan import PortState

GONE = ("shutting-down", "terminated")


@dataclass(frozen=True)
class HostedPort:
    """A port with where it is: the host carrying it (None: not placed) and its VPC."""

    host: str | None
    vpc_id: str
    port: PortState


def ports_where(s: Session, *conditions: ColumnElement[bool]) -> list[HostedPort]:
    """Every live port matching ``conditions`` (over :class:`NetworkInterface` and
    :class:`Instance` columns), by instance and device index."""
    eni = NetworkInterface
    columns = (
        eni.id,
        eni.instance_id,
        eni.device_index,
        eni.subnet_id,
        eni.vpc_id,
        eni.mac_address,
        eni.private_ip_address,
        eni.security_group_ids,
        eni.source_dest_check,
        Instance.host,
    )  # only these: converging a host reads every port of its VPCs, often
    rows = s.execute(
        select(*columns)
        .join(Instance, Instance.id == eni.instance_id)
        .where(eni.attach_status == "attached", Instance.state.not_in(GONE), *conditions)
        .order_by(eni.instance_id, eni.device_index)
    ).all()
    ids = [r.id for r in rows]
    secondary: dict[str, list[str]] = {}
    public: dict[str, list[tuple[str, str]]] = {}
    if ids:
        for iface, address in s.execute(
            select(InterfaceAddress.network_interface_id, InterfaceAddress.address)
            .where(InterfaceAddress.network_interface_id.in_(ids), InterfaceAddress.is_primary.is_(False))
            .order_by(InterfaceAddress.address)
        ):
            secondary.setdefault(iface, []).append(address)
        for mapped_iface, public_ip, private_ip in s.execute(
            select(
                ElasticAddress.network_interface_id,
                ElasticAddress.public_ip,
                ElasticAddress.private_ip_address,
            )
            .where(
                ElasticAddress.network_interface_id.in_(ids), ElasticAddress.private_ip_address.is_not(None)
            )
            .order_by(ElasticAddress.public_ip)
        ):
            if mapped_iface and private_ip:
                public.setdefault(mapped_iface, []).append((public_ip, private_ip))
    out = []
    for r in rows:
        if not (r.subnet_id and r.private_ip_address and r.mac_address and r.vpc_id and r.instance_id):
            continue
        port = PortState(
            interface_id=r.id,
            instance_id=r.instance_id,
            mac=r.mac_address.lower(),
            ip=r.private_ip_address,
            subnet_id=r.subnet_id,
            group_ids=tuple(r.security_group_ids or ()),
            hostname="ip-" + r.private_ip_address.replace(".", "-"),
            device_index=r.device_index or 0,
            secondary_ips=tuple(secondary.get(r.id, ())),
            public_ips=tuple(public.get(r.id, ())),
            source_dest_check=bool(r.source_dest_check),
        )
        out.append(HostedPort(r.host, r.vpc_id, port))
    return out


def ports_for_host(s: Session, host: str) -> list[HostedPort]:
    """The ports of the instances placed on ``host``."""
    return ports_where(s, Instance.host == host)


def ports_of_instance(s: Session, instance_id: str) -> list[HostedPort]:
    """The ports of one instance, its primary first."""
    return ports_where(s, NetworkInterface.instance_id == instance_id)


def ports_in_vpcs(s: Session, vpc_ids: Iterable[str]) -> list[HostedPort]:
    """Every port in these VPCs, wherever it is (group members, tunnel peers)."""
    wanted = sorted(set(vpc_ids))
    return ports_where(s, NetworkInterface.vpc_id.in_(wanted)) if wanted else []


def port_at(s: Session, subnet_id: str, ip: str) -> Instance | None:
    """The live instance one of whose interfaces in ``subnet_id`` holds address ``ip``
    (the metadata service's caller)."""
    return s.scalar(
        select(Instance)
        .join(NetworkInterface, NetworkInterface.instance_id == Instance.id)
        .join(InterfaceAddress, InterfaceAddress.network_interface_id == NetworkInterface.id)
        .where(
            InterfaceAddress.subnet_id == subnet_id,
            InterfaceAddress.address == ip,
            NetworkInterface.attach_status == "attached",
            Instance.state.not_in(GONE),
        )
        .limit(1)
    )
