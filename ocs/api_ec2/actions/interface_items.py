"""The network-interface shapes EC2 answers with, built from the interface rows.

Two shapes show an interface: ``NetworkInterface`` (DescribeNetworkInterfaces,
CreateNetworkInterface) and ``InstanceNetworkInterface`` (an instance's
``NetworkInterfaces`` in DescribeInstances and RunInstances). Both come from the
same rows (:class:`ocs.db.models.interfaces.NetworkInterface`, its addresses and
the elastic IPs associated with them), loaded for a whole page in a few queries
by :func:`load`. Not an action module: it has no ``ACTIONS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from ocs.api_ec2.context import RequestContext
from ocs.db import addresses as db_addresses
from ocs.db import interfaces as db_interfaces
from ocs.db import secgroups as db_secgroups
from ocs.db.models.interfaces import AUTO, ElasticAddress, InterfaceAddress, NetworkInterface
from ocs.db.models.network import SecurityGroup, Vpc


def private_dns_name(region: str, address: str | None) -> str:
    """EC2's private host name: ``ip-172-31-0-4.ec2.internal`` (us-east-1) or ``....<region>.compute.internal``."""
    if not address:
        return ""
    host = "ip-" + address.replace(".", "-")
    return f"{host}.ec2.internal" if region == "us-east-1" else f"{host}.{region}.compute.internal"


def public_dns_name(region: str, address: str | None) -> str:
    """EC2's public host name: ``ec2-198-51-100-1.compute-1.amazonaws.com`` (us-east-1) or
    ``ec2-....<region>.compute.amazonaws.com``."""
    if not address:
        return ""
    host = "ec2-" + address.replace(".", "-")
    return (
        f"{host}.compute-1.amazonaws.com"
        if region == "us-east-1"
        else f"{host}.{region}.compute.amazonaws.com"
    )


@dataclass
class InterfaceRelated:
    """What the items of a set of interfaces need besides the rows."""

    addresses: dict[str, list[InterfaceAddress]] = field(default_factory=dict)
    elastic: dict[tuple[str, str], ElasticAddress] = field(default_factory=dict)
    groups: dict[str, SecurityGroup] = field(default_factory=dict)
    dns_hostnames: dict[str, bool] = field(default_factory=dict)


def load(ctx: RequestContext, rows: list[NetworkInterface]) -> InterfaceRelated:
    s = ctx.session
    eni_ids = [r.id for r in rows]
    vpc_ids = {r.vpc_id for r in rows}
    return InterfaceRelated(
        addresses=db_interfaces.addresses_of(s, eni_ids),
        elastic=db_addresses.by_interfaces(s, eni_ids),
        groups=db_secgroups.groups_by_id(s, {g for r in rows for g in (r.security_group_ids or [])}),
        dns_hostnames={
            vpc_id: bool(flag)
            for vpc_id, flag in s.execute(select(Vpc.id, Vpc.enable_dns_hostnames).where(Vpc.id.in_(vpc_ids)))
        }
        if vpc_ids
        else {},
    )


def group_items(group_ids: list[str], groups: dict[str, SecurityGroup]) -> list[dict[str, str]]:
    out = []
    for group_id in group_ids:
        group = groups.get(group_id)
        out.append({"GroupId": group_id, "GroupName": group.name if group else ""})
    return out


def public_of(
    ctx: RequestContext, eni: NetworkInterface, rel: InterfaceRelated, private: str
) -> tuple[str, str]:
    """(public IP, public DNS name) mapped to a private address of the interface ("" if none)."""
    eip = rel.elastic.get((eni.id, private))
    if eip is None:
        return "", ""
    dns = (
        public_dns_name(ctx.settings.region, eip.public_ip) if rel.dns_hostnames.get(eni.vpc_id, True) else ""
    )
    return eip.public_ip, dns


def _association(
    ctx: RequestContext, eni: NetworkInterface, rel: InterfaceRelated, private: str, *, full: bool
) -> dict[str, Any] | None:
    eip = rel.elastic.get((eni.id, private))
    if eip is None:
        return None
    public_ip, dns = public_of(ctx, eni, rel, private)
    if eip.kind == AUTO:  # EC2's own address: owned by "amazon", no allocation nor association
        return {"IpOwnerId": "amazon", "PublicDnsName": dns, "PublicIp": public_ip}
    item: dict[str, Any] = {"IpOwnerId": eip.account_id, "PublicDnsName": dns, "PublicIp": public_ip}
    if full:
        item.update(AllocationId=eip.id, AssociationId=eip.association_id)
    return item


def _private_ips(
    ctx: RequestContext, eni: NetworkInterface, rel: InterfaceRelated, *, full: bool
) -> list[Any]:
    region = ctx.settings.region
    out = []
    for row in rel.addresses.get(eni.id, []):
        item = {
            "Primary": row.is_primary,
            "PrivateDnsName": private_dns_name(region, row.address),
            "PrivateIpAddress": row.address,
            "Association": _association(ctx, eni, rel, row.address, full=full),
        }
        out.append({k: v for k, v in item.items() if v is not None})
    return out


def _attachment(eni: NetworkInterface, *, full: bool) -> dict[str, Any] | None:
    if not eni.attachment_id:
        return None
    item: dict[str, Any] = {
        "AttachTime": eni.attach_time,
        "AttachmentId": eni.attachment_id,
        "DeleteOnTermination": bool(eni.delete_on_termination),
        "DeviceIndex": eni.device_index,
        "NetworkCardIndex": 0,
        "Status": eni.attach_status or "attached",
    }
    if full:
        item.update(InstanceId=eni.instance_id, InstanceOwnerId=eni.account_id)
    return item


def _common(
    ctx: RequestContext, eni: NetworkInterface, rel: InterfaceRelated, *, full: bool
) -> dict[str, Any]:
    return {
        "Association": _association(ctx, eni, rel, eni.private_ip_address, full=full),
        "Attachment": _attachment(eni, full=full),
        "Description": eni.description or "",
        "Groups": group_items(list(eni.security_group_ids or []), rel.groups),
        "Ipv6Addresses": [],
        "MacAddress": eni.mac_address,
        "NetworkInterfaceId": eni.id,
        "OwnerId": eni.account_id,
        "PrivateDnsName": private_dns_name(ctx.settings.region, eni.private_ip_address),
        "PrivateIpAddress": eni.private_ip_address,
        "PrivateIpAddresses": _private_ips(ctx, eni, rel, full=full),
        "SourceDestCheck": bool(eni.source_dest_check),
        "Status": eni.status,
        "SubnetId": eni.subnet_id,
        "VpcId": eni.vpc_id,
        "InterfaceType": eni.interface_type or "interface",
    }


def interface_item(
    ctx: RequestContext,
    eni: NetworkInterface,
    rel: InterfaceRelated,
    tags: list[dict[str, str]],
    zone_ids: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A botocore ``NetworkInterface``."""
    item = _common(ctx, eni, rel, full=True)
    item.update(
        AvailabilityZone=eni.availability_zone,
        AvailabilityZoneId=(zone_ids or {}).get(eni.availability_zone),
        RequesterManaged=bool(eni.requester_managed),
        TagSet=tags,
    )
    return {k: v for k, v in item.items() if v is not None}


def instance_interface_item(
    ctx: RequestContext, eni: NetworkInterface, rel: InterfaceRelated
) -> dict[str, Any]:
    """A botocore ``InstanceNetworkInterface``."""
    item = _common(ctx, eni, rel, full=False)
    return {k: v for k, v in item.items() if v is not None}
