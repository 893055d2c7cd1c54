"""NAT gateways: Create/Describe/Delete.

Behaviour, as EC2 documents or answers it (evidence in brackets):

* CreateNatGateway answers ``State`` ``pending`` (the documented example). A public
  gateway is placed on a compute host (its zone's first, the least loaded:
  :func:`ocs.db.routing.nat_hosts`) and stays ``pending`` until that host's
  ``ocs-network`` has built it (a namespace with its interface and elastic IP, see
  :mod:`ocs.network.plan`), then ``available``. DeleteNatGateway makes it
  ``deleting`` until the host has torn it down, then ``deleted``; it stays visible
  for an hour, as EC2 keeps deleted gateways "for a short while". A private gateway,
  or one with no network service or live host to carry it, is a record only:
  ``available`` and ``deleted`` at once.
* A public gateway whose VPC has no internet gateway is made but ``failed``,
  with ``FailureCode`` ``Gateway.NotAttached`` "Network vpc-x has no Internet
  gateway attached"; one whose allocation ID another live gateway holds fails with
  ``Resource.AlreadyAssociated`` "Elastic IP address eipalloc-x is already
  associated" [the FailureCode/FailureMessage list of the model's NatGateway].
* An unknown ID on Describe/Delete: ``NatGatewayNotFound`` "The Nat Gateway nat-x
  was not found" [terraform-provider-aws, crossplane; the code EC2 uses].
* ``ConnectivityType`` is ``public`` (needs ``AllocationId``) or ``private`` (takes
  none).

``AllocationId`` must be one of the account's elastic IPs
(``InvalidAllocationID.NotFound`` otherwise); its address is the gateway's
``PublicIp``. The gateway has a requester-managed network interface (type
``nat_gateway``) holding an address of its subnet (``PrivateIp``), to which the
elastic IP is associated (``AssociationId``), as on EC2; both go with the gateway.
Regional NAT gateways (``VpcId``, ``AvailabilityMode``) and secondary addresses are
``Unsupported``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ocs import errors, ids
from ocs.api_ec2 import filters, pagination, resources, tagging
from ocs.api_ec2.context import RequestContext
from ocs.api_ec2.network import routing_changed, sync_host
from ocs.db import addresses as db_addresses
from ocs.db import routing as repo
from ocs.db import tags as db_tags
from ocs.db import vpcs
from ocs.db.models.interfaces import ElasticAddress
from ocs.db.models.routing import NatGateway

resources.register("nat_gateway", "natgateway", repo.nat_gateway_exists)

_CONNECTIVITY = ("public", "private")
_UNSUPPORTED = (
    "VpcId",
    "AvailabilityMode",
    "AvailabilityZoneAddresses",
    "PrivateIpAddress",
    "SecondaryAllocationIds",
    "SecondaryPrivateIpAddresses",
    "SecondaryPrivateIpAddressCount",
)


def _public_ips(ctx: RequestContext, nats: list[NatGateway]) -> dict[str, str]:
    """Allocation ID → public address, for the gateways' elastic IPs."""
    wanted = [n.allocation_id for n in nats if n.allocation_id]
    if not wanted:
        return {}
    rows = ctx.session.scalars(
        select(ElasticAddress).where(
            ElasticAddress.account_id == ctx.account_id, ElasticAddress.id.in_(wanted)
        )
    )
    return {row.id: row.public_ip for row in rows}  # a released address is simply not shown


def _addresses(ctx: RequestContext, nats: list[NatGateway]) -> dict[str, tuple[str, str | None]]:
    """Interface ID → (private address, association ID of its elastic IP), for the
    gateways' interfaces that still exist."""
    enis = repo.nat_interfaces(ctx.session, nats)
    if not enis:
        return {}
    associations = dict(
        ctx.session.execute(
            select(ElasticAddress.network_interface_id, ElasticAddress.association_id).where(
                ElasticAddress.network_interface_id.in_(sorted(enis))
            )
        ).all()
    )
    return {i: (e.private_ip_address, associations.get(i)) for i, e in enis.items()}


_ADDRESS_STATUS = {"failed": "failed", "deleting": "disassociating", "deleted": "succeeded"}


def nat_gateway_item(
    nat: NatGateway,
    tags: list[dict[str, str]],
    public_ip: str | None = None,
    private: tuple[str, str | None] | None = None,
) -> dict[str, Any]:
    """A botocore ``NatGateway``."""
    address: dict[str, Any] = {
        "NetworkInterfaceId": nat.network_interface_id,
        "IsPrimary": True,
        "Status": _ADDRESS_STATUS.get(nat.state, "succeeded"),
    }
    if nat.allocation_id:
        address["AllocationId"] = nat.allocation_id
    if public_ip:
        address["PublicIp"] = public_ip
    if private is not None:
        address["PrivateIp"] = private[0]
        if private[1]:
            address["AssociationId"] = private[1]
    return {
        "NatGatewayId": nat.id,
        "VpcId": nat.vpc_id,
        "SubnetId": nat.subnet_id,
        "State": nat.state,
        "ConnectivityType": nat.connectivity_type,
        "CreateTime": nat.created_at,
        "DeleteTime": nat.deleted_at,
        "FailureCode": nat.failure_code,
        "FailureMessage": nat.failure_message,
        "NatGatewayAddresses": [address],
        "Tags": tags or None,
    }


def describe_nat_gateways(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    now = ctx.now()
    rows = repo.list_nat_gateways(ctx.session, ctx.account_id, params.get("NatGatewayIds") or [], now=now)
    tags = db_tags.tags_for(ctx.session, ctx.account_id, [n.id for n in rows])
    public, private = _public_ips(ctx, rows), _addresses(ctx, rows)
    items = [
        nat_gateway_item(
            n, tags[n.id], public.get(n.allocation_id or ""), private.get(n.network_interface_id)
        )
        for n in rows
    ]
    items = filters.filter_action("DescribeNatGateways", items, params.get("Filter"))
    action = "DescribeNatGateways"
    page, token = pagination.paginate_action(
        action,
        items,
        params,
        key="NatGatewayId",
        scope=pagination.token_scope(action, ctx.account_id),
    )
    return {"NatGateways": page, "NextToken": token}


def _allocation(params: dict[str, Any], connectivity: str) -> str | None:
    allocation_id = params.get("AllocationId") or None
    if connectivity == "private":
        if allocation_id is not None:
            raise errors.InvalidParameterCombination(
                reason="AllocationId cannot be specified for a NAT gateway with private connectivity."
            )
        return None
    if allocation_id is None:
        raise errors.MissingParameter(name="allocationId")
    return ids.validate("allocation", str(allocation_id))


def create_nat_gateway(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    for name in _UNSUPPORTED:
        if params.get(name) not in (None, [], ""):
            raise errors.Unsupported(reason=f"The parameter {name} is not supported by this cloud.")
    subnet_id = params.get("SubnetId")
    if not subnet_id:
        raise errors.MissingParameter(name="subnetId")
    connectivity = params.get("ConnectivityType") or "public"
    if connectivity not in _CONNECTIVITY:
        raise errors.InvalidParameterValue(
            value=connectivity,
            name="connectivityType",
            reason=f"Valid values are: {', '.join(_CONNECTIVITY)}.",
        )
    allocation_id = _allocation(params, connectivity)
    if allocation_id is not None:
        db_addresses.get_allocation(ctx.session, ctx.account_id, allocation_id)  # NotFound if not its own
    tags = tagging.tag_specifications_for(params, "natgateway", action="CreateNatGateway")
    subnet = vpcs.get_subnet(ctx.session, ctx.account_id, subnet_id)
    hosts = (
        repo.nat_hosts(ctx.session, subnet.availability_zone, now=ctx.now())
        if connectivity == "public" and ctx.services.get("network") is not None
        else []
    )
    nat = repo.create_nat_gateway(
        ctx.session,
        ctx.account_id,
        subnet_id,
        connectivity_type=connectivity,
        allocation_id=allocation_id,
        hosts=hosts,
        now=ctx.now(),
    )
    if tags:
        db_tags.set_tags(ctx.session, ctx.account_id, [(nat.id, "natgateway")], tags)
    _tell_network(ctx, nat)
    item = nat_gateway_item(
        nat,
        tags,
        _public_ips(ctx, [nat]).get(nat.allocation_id or ""),
        _addresses(ctx, [nat]).get(nat.network_interface_id),
    )
    if nat.state == "available":
        item["State"] = "pending"
    return {"NatGateway": item, "ClientToken": params.get("ClientToken")}


def _tell_network(ctx: RequestContext, nat: NatGateway) -> None:
    """Once committed: the gateway's host builds or tears it down, and the hosts carrying
    its VPC re-resolve the routes to it."""
    if nat.host:
        sync_host(ctx, nat.host)
    routing_changed(ctx, [nat.vpc_id])


def delete_nat_gateway(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    nat_id = params.get("NatGatewayId")
    if not nat_id:
        raise errors.MissingParameter(name="natGatewayId")
    nat = repo.delete_nat_gateway(ctx.session, ctx.account_id, nat_id, now=ctx.now())
    _tell_network(ctx, nat)
    return {"NatGatewayId": nat.id}


ACTIONS = {
    "DescribeNatGateways": describe_nat_gateways,
    "CreateNatGateway": create_nat_gateway,
    "DeleteNatGateway": delete_nat_gateway,
}
