"""Elastic IP addresses: Allocate, Associate, Disassociate, Release, Describe.

The rules and EC2's errors are in :mod:`ocs.db.addresses`. Addresses come from
``[network] public_address_pool``; an account holds at most
``[network] elastic_ips_per_account`` of them. Only VPC addresses exist
(EC2-Classic is retired): ``Domain=standard`` is answered with a VPC address, as
EC2 does for accounts without EC2-Classic. BYOIP, customer-owned and carrier
addresses are ``Unsupported``.

The public addresses EC2 gives instances by itself (MapPublicIpOnLaunch) share
the pool and the table but are not elastic: these actions never show nor touch
them (:mod:`ocs.db.public_addresses`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select

from ocs import errors
from ocs.api_ec2 import filters, resources, tagging
from ocs.api_ec2.context import RequestContext
from ocs.api_ec2.network import routing_changed
from ocs.db import addresses as repo
from ocs.db import tags as db_tags
from ocs.db.models.interfaces import ElasticAddress, NetworkInterface

resources.register("allocation", "elastic-ip", repo.allocation_exists)

_DOMAINS = ("vpc", "standard")


def address_item(
    ctx: RequestContext, row: ElasticAddress, tags: list[dict[str, str]], instances: dict[str, str]
) -> dict[str, Any]:
    """A botocore ``Address``."""
    eni = row.network_interface_id
    item = {
        "AllocationId": row.id,
        "AssociationId": row.association_id,
        "Domain": row.domain,
        "NetworkInterfaceId": eni,
        "NetworkInterfaceOwnerId": row.account_id if eni else None,
        "PrivateIpAddress": row.private_ip_address,
        "InstanceId": instances.get(eni) if eni else None,
        "PublicIp": row.public_ip,
        "PublicIpv4Pool": "amazon",
        "NetworkBorderGroup": ctx.settings.region,
        "Tags": tags or None,
    }
    return {k: v for k, v in item.items() if v is not None}


def allocate_address(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    domain = params.get("Domain") or "vpc"
    if domain not in _DOMAINS:
        raise errors.InvalidParameterValue(value=domain, name="domain", reason="Valid values: vpc, standard.")
    for name in ("Address", "CustomerOwnedIpv4Pool", "IpamPoolId"):
        if params.get(name):
            raise errors.Unsupported(reason=f"The parameter {name} is not supported by this cloud.")
    if params.get("PublicIpv4Pool") not in (None, "", "amazon"):
        raise errors.Unsupported(reason="Only the pool 'amazon' (the cloud's own addresses) is offered.")
    border = params.get("NetworkBorderGroup")
    if border and border != ctx.settings.region:
        raise errors.InvalidParameterValue(
            value=border,
            name="networkBorderGroup",
            reason=f"The only network border group is {ctx.settings.region}.",
        )
    tags = tagging.tag_specifications_for(params, "elastic-ip", action="AllocateAddress")
    row = repo.allocate(
        ctx.session,
        ctx.account_id,
        ctx.settings.public_address_pool,
        ctx.settings.elastic_ips_per_account,
        now=ctx.now(),
    )
    if tags:
        db_tags.set_tags(ctx.session, ctx.account_id, [(row.id, "elastic-ip")], tags)
    return {
        "AllocationId": row.id,
        "PublicIp": row.public_ip,
        "Domain": "vpc",
        "PublicIpv4Pool": "amazon",
        "NetworkBorderGroup": ctx.settings.region,
    }


def _vpcs_mapped(ctx: RequestContext, where: ColumnElement[bool]) -> set[str]:
    """The VPCs of the interfaces the account's addresses matching ``where`` map to now."""
    return set(
        ctx.session.scalars(
            select(NetworkInterface.vpc_id)
            .join(ElasticAddress, ElasticAddress.network_interface_id == NetworkInterface.id)
            .where(ElasticAddress.account_id == ctx.account_id, where)
        )
    )


def _named(params: dict[str, Any], *, by_association: bool = False) -> ColumnElement[bool]:
    """The address a request names (by AllocationId/AssociationId, else PublicIp)."""
    key = params.get("AssociationId" if by_association else "AllocationId")
    if key:
        column = ElasticAddress.association_id if by_association else ElasticAddress.id
        return column == str(key)
    return ElasticAddress.public_ip == str(params.get("PublicIp") or "")


def associate_address(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    before = _vpcs_mapped(ctx, _named(params))
    row = repo.associate(
        ctx.session,
        ctx.account_id,
        allocation_id=params.get("AllocationId") or None,
        public_ip=params.get("PublicIp") or None,
        instance_id=params.get("InstanceId") or None,
        interface_id=params.get("NetworkInterfaceId") or None,
        private_ip=params.get("PrivateIpAddress") or None,
        allow_reassociation=bool(params.get("AllowReassociation")),
        pool=ctx.settings.public_address_pool,
    )
    routing_changed(ctx, before | _vpcs_mapped(ctx, ElasticAddress.id == row.id))
    return {"AssociationId": row.association_id}


def disassociate_address(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    before = _vpcs_mapped(ctx, _named(params, by_association=True))
    repo.disassociate(
        ctx.session,
        ctx.account_id,
        params.get("AssociationId") or None,
        params.get("PublicIp") or None,
        pool=ctx.settings.public_address_pool,
    )
    routing_changed(ctx, before)
    return {}


def release_address(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    border = params.get("NetworkBorderGroup")
    if border and border != ctx.settings.region:
        raise errors.InvalidParameterValue(
            value=border,
            name="networkBorderGroup",
            reason=f"The only network border group is {ctx.settings.region}.",
        )
    repo.release(
        ctx.session, ctx.account_id, params.get("AllocationId") or None, params.get("PublicIp") or None
    )
    return {}


def describe_addresses(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    s = ctx.session
    rows = repo.list_addresses(
        s, ctx.account_id, params.get("AllocationIds") or [], params.get("PublicIps") or []
    )
    tags = db_tags.tags_for(s, ctx.account_id, [r.id for r in rows])
    instances = repo.instances_of(s, [r.network_interface_id for r in rows if r.network_interface_id])
    items = [address_item(ctx, r, tags[r.id], instances) for r in rows]
    return {"Addresses": filters.filter_action("DescribeAddresses", items, params.get("Filters"))}


ACTIONS = {
    "AllocateAddress": allocate_address,
    "AssociateAddress": associate_address,
    "DisassociateAddress": disassociate_address,
    "ReleaseAddress": release_address,
    "DescribeAddresses": describe_addresses,
}
