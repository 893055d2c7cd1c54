"""Where the network service reads instance interfaces ("ports") from the database.

Every reader of ports goes through :func:`ports_where` (and the two helpers on top
of it), so that when interfaces move from the instance's own columns to
network-interface rows, this one module changes. Today a port is the instance's
primary interface: ``network_interface_id``, ``mac_address``,
``private_ip_address``, ``subnet_id``, ``vpc_id`` and ``security_group_ids``.

Instances going away (``shutting-down``, ``terminated``) have no ports, and
neither do instances with no subnet, address or MAC recorded yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from ocs.db.models.compute import Instance
from ocs.network.plan import PortState

GONE = ("shutting-down", "terminated")


@dataclass(frozen=True)
class HostedPort:
    """A port with where it is: the host carrying it (None: not placed) and its VPC."""

    host: str | None
    vpc_id: str
    port: PortState


def ports_where(s: Session, *conditions: ColumnElement[bool]) -> list[HostedPort]:
    """Every live port matching ``conditions`` (over the source's columns)."""
    columns = (
        Instance.id,
        Instance.host,
        Instance.vpc_id,
        Instance.subnet_id,
        Instance.private_ip_address,
        Instance.mac_address,
        Instance.network_interface_id,
        Instance.security_group_ids,
    )  # only these: converging a host reads every port of its VPCs, often
    rows = s.execute(select(*columns).where(Instance.state.not_in(GONE), *conditions).order_by(Instance.id))
    out = []
    for inst in rows:
        if not (inst.subnet_id and inst.private_ip_address and inst.mac_address and inst.vpc_id):
            continue
        port = PortState(
            interface_id=inst.network_interface_id or inst.id,
            instance_id=inst.id,
            mac=inst.mac_address.lower(),
            ip=inst.private_ip_address,
            subnet_id=inst.subnet_id,
            group_ids=tuple(inst.security_group_ids or ()),
            hostname="ip-" + inst.private_ip_address.replace(".", "-"),
        )
        out.append(HostedPort(inst.host, inst.vpc_id, port))
    return out


def ports_for_host(s: Session, host: str) -> list[HostedPort]:
    """The ports of the instances placed on ``host``."""
    return ports_where(s, Instance.host == host)


def ports_of_instance(s: Session, instance_id: str) -> list[HostedPort]:
    """The ports of one instance."""
    return ports_where(s, Instance.id == instance_id)


def ports_in_vpcs(s: Session, vpc_ids: Iterable[str]) -> list[HostedPort]:
    """Every port in these VPCs, wherever it is (group members, tunnel peers)."""
    wanted = sorted(set(vpc_ids))
    return ports_where(s, Instance.vpc_id.in_(wanted)) if wanted else []


def port_at(s: Session, subnet_id: str, ip: str) -> Instance | None:
    """The instance whose port in ``subnet_id`` has address ``ip`` (the metadata caller)."""
    return s.scalar(
        select(Instance)
        .where(
            Instance.subnet_id == subnet_id, Instance.private_ip_address == ip, Instance.state.not_in(GONE)
        )
        .limit(1)
    )
