"""VPCs and subnets: Create/Delete/Describe, their attributes, and CreateDefaultVpc.

Behaviour, as EC2 documents or answers it (evidence in brackets):

* Every account starts with a default VPC (``172.31.0.0/16`` unless configured)
  holding one default /20 subnet per availability zone, made before the
  account's first request runs (see :func:`ocs.db.vpcs.ensure_default_network`).
* A VPC or subnet block is a /16 to a /28, else ``InvalidVpc.Range`` /
  ``InvalidSubnet.Range`` "The CIDR 'x' is invalid." [EC2 error codes; moto;
  openstack/ec2-api]. Text that is no CIDR block (or has host bits set):
  ``InvalidParameterValue`` "Value (x) for parameter cidrBlock is invalid. This is
  not a valid CIDR block." [moto].
* A subnet outside its VPC's block: ``InvalidSubnet.Range``; overlapping another
  subnet: ``InvalidSubnet.Conflict`` "The CIDR 'x' conflicts with another subnet".
* A zone this cloud does not have: ``InvalidParameterValue`` "Value (x) for
  parameter availabilityZone is invalid. Subnets can currently only be created in
  the following availability zones: a, b, c." Without a zone, EC2 picks one: here
  the zone with the fewest subnets of the VPC.
* DeleteVpc while subnets or non-default groups remain: ``DependencyViolation``
  "The vpc 'vpc-x' has dependencies and cannot be deleted."; the default VPC can
  be deleted too, and is not made again (CreateDefaultVpc makes a new one).
* CreateVpc answers ``State`` ``pending`` (the documented example); Describe shows
  ``available``.
* IPv6 blocks, IPAM pools and Outposts are not offered: ``Unsupported``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ocs import errors
from ocs.api_ec2 import filters, pagination, resources, tagging
from ocs.api_ec2.actions import regions
from ocs.api_ec2.context import RequestContext
from ocs.db import tags as db_tags
from ocs.db import vpcs as repo
from ocs.db.models.network import Subnet, Vpc
from ocs.network import cidr

resources.register("vpc", "vpc", repo.vpc_exists)
resources.register("subnet", "subnet", repo.subnet_exists)

_UNSUPPORTED_VPC = (
    "Ipv6Pool",
    "Ipv6CidrBlock",
    "Ipv4IpamPoolId",
    "Ipv6IpamPoolId",
    "AmazonProvidedIpv6CidrBlock",
)
_UNSUPPORTED_SUBNET = ("Ipv6CidrBlock", "Ipv6Native", "OutpostArn", "Ipv4IpamPoolId", "Ipv6IpamPoolId")
_TENANCIES = ("default", "dedicated")


# --- output ---------------------------------------------------------------------------------


def vpc_item(vpc: Vpc, tags: list[dict[str, str]]) -> dict[str, Any]:
    """A botocore ``Vpc``."""
    return {
        "VpcId": vpc.id,
        "OwnerId": vpc.account_id,
        "State": vpc.state,
        "CidrBlock": vpc.cidr_block,
        "DhcpOptionsId": vpc.dhcp_options_id,
        "InstanceTenancy": vpc.instance_tenancy,
        "IsDefault": vpc.is_default,
        "CidrBlockAssociationSet": [
            {
                "AssociationId": vpc.cidr_association_id,
                "CidrBlock": vpc.cidr_block,
                "CidrBlockState": {"State": "associated"},
            }
        ],
        "Tags": tags or None,
    }


def _zone_ids(ctx: RequestContext) -> dict[str, str]:
    return {z["ZoneName"]: z["ZoneId"] for z in regions._zone_items(ctx)}


def subnet_item(
    ctx: RequestContext, subnet: Subnet, tags: list[dict[str, str]], used: int = 0
) -> dict[str, Any]:
    """A botocore ``Subnet``."""
    region = ctx.settings.region
    return {
        "SubnetId": subnet.id,
        "SubnetArn": f"arn:aws:ec2:{region}:{subnet.account_id}:subnet/{subnet.id}",
        "VpcId": subnet.vpc_id,
        "OwnerId": subnet.account_id,
        "State": subnet.state,
        "CidrBlock": subnet.cidr_block,
        "AvailableIpAddressCount": cidr.usable_addresses(subnet.cidr_block, used),
        "AvailabilityZone": subnet.availability_zone,
        "AvailabilityZoneId": _zone_ids(ctx).get(subnet.availability_zone),
        "DefaultForAz": subnet.default_for_az,
        "MapPublicIpOnLaunch": subnet.map_public_ip_on_launch,
        "MapCustomerOwnedIpOnLaunch": False,
        "AssignIpv6AddressOnCreation": False,
        "Ipv6CidrBlockAssociationSet": [],
        "EnableDns64": False,
        "Ipv6Native": False,
        "PrivateDnsNameOptionsOnLaunch": {
            "HostnameType": "ip-name",
            "EnableResourceNameDnsARecord": False,
            "EnableResourceNameDnsAAAARecord": False,
        },
        "Tags": tags or None,
    }


def _page(
    action: str, ctx: RequestContext, params: dict[str, Any], items: list[Any], key: str
) -> tuple[list[Any], str | None]:
    return pagination.paginate_action(
        action, items, params, key=key, scope=pagination.token_scope(action, ctx.account_id)
    )


def _unsupported(params: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if params.get(name) not in (None, False, ""):
            raise errors.Unsupported(reason=f"The parameter {name} is not supported by this cloud.")


def _ipv4_block(text: Any) -> Any:
    if text is None or text == "":
        raise errors.MissingParameter(name="cidrBlock")
    net = cidr.ipv4_network(text)
    if net is None:
        raise errors.InvalidParameterValue(
            value=text, name="cidrBlock", reason="This is not a valid CIDR block."
        )
    return net


# --- VPCs -----------------------------------------------------------------------------------


def describe_vpcs(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    rows = repo.list_vpcs(ctx.session, ctx.account_id, params.get("VpcIds") or [])
    tags = db_tags.tags_for(ctx.session, ctx.account_id, [v.id for v in rows])
    items = [vpc_item(v, tags[v.id]) for v in rows]
    items = filters.filter_action("DescribeVpcs", items, params.get("Filters"))
    page, token = _page("DescribeVpcs", ctx, params, items, "VpcId")
    return {"Vpcs": page, "NextToken": token}


def create_vpc(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _unsupported(params, _UNSUPPORTED_VPC)
    net = _ipv4_block(params.get("CidrBlock"))
    if not cidr.is_valid_vpc_size(net):
        raise errors.InvalidParameterValue(
            f"The CIDR '{params['CidrBlock']}' is invalid.", code="InvalidVpc.Range"
        )
    tenancy = params.get("InstanceTenancy") or "default"
    if tenancy not in _TENANCIES:
        raise errors.InvalidParameterValue(
            value=tenancy, name="instanceTenancy", reason=f"Valid values are: {', '.join(_TENANCIES)}."
        )
    tags = tagging.tag_specifications_for(params, "vpc", action="CreateVpc")
    vpc = repo.create_vpc(ctx.session, ctx.account_id, str(net), tenancy=tenancy, now=ctx.now())
    if tags:
        db_tags.set_tags(ctx.session, ctx.account_id, [(vpc.id, "vpc")], tags)
    item = vpc_item(vpc, tags)
    item["State"] = "pending"
    return {"Vpc": item}


def create_default_vpc(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    vpc = repo.create_default_vpc(
        ctx.session,
        ctx.account_id,
        vpc_cidr=ctx.settings.default_vpc_cidr,
        zones=ctx.settings.availability_zones,
        now=ctx.now(),
    )
    item = vpc_item(vpc, [])
    item["State"] = "pending"
    return {"Vpc": item}


def delete_vpc(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    vpc_id = params.get("VpcId")
    if not vpc_id:
        raise errors.MissingParameter(name="vpcId")
    repo.delete_vpc(ctx.session, ctx.account_id, vpc_id)
    return {}


_VPC_ATTRIBUTES = {
    "enableDnsSupport": ("EnableDnsSupport", "enable_dns_support"),
    "enableDnsHostnames": ("EnableDnsHostnames", "enable_dns_hostnames"),
    "enableNetworkAddressUsageMetrics": ("EnableNetworkAddressUsageMetrics", None),
}


def describe_vpc_attribute(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    attribute = params.get("Attribute")
    if not attribute:
        raise errors.MissingParameter(name="attribute")
    vpc = repo.get_vpc(ctx.session, ctx.account_id, params.get("VpcId") or "")
    member, column = _VPC_ATTRIBUTES[attribute]
    value = bool(getattr(vpc, column)) if column else False
    return {"VpcId": vpc.id, member: {"Value": value}}


def modify_vpc_attribute(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    vpc = repo.get_vpc(ctx.session, ctx.account_id, params.get("VpcId") or "")
    given = [(m, c) for m, c in _VPC_ATTRIBUTES.values() if params.get(m) is not None]
    if not given:
        raise errors.MissingParameter("The request must contain exactly one attribute to modify.")
    if len(given) > 1:
        raise errors.InvalidParameterCombination(reason="Only one attribute can be modified at a time.")
    member, column = given[0]
    value = (params[member] or {}).get("Value")
    if value is None:
        raise errors.MissingParameter(name=f"{member}.Value")
    if column is None:
        if value:
            raise errors.Unsupported(reason="Network address usage metrics are not supported by this cloud.")
        return {}
    if column == "enable_dns_hostnames" and value and not vpc.enable_dns_support:
        raise errors.InvalidParameterValue(
            "Cannot enable DNS hostnames when DNS support is disabled for the VPC."
        )
    setattr(vpc, column, bool(value))
    ctx.session.flush()
    return {}


# --- subnets --------------------------------------------------------------------------------


def describe_subnets(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    rows = repo.list_subnets(ctx.session, ctx.account_id, params.get("SubnetIds") or [])
    tags = db_tags.tags_for(ctx.session, ctx.account_id, [x.id for x in rows])
    used = repo.used_addresses(ctx.session, [x.id for x in rows])
    items = [subnet_item(ctx, x, tags[x.id], used.get(x.id, 0)) for x in rows]
    items = filters.filter_action("DescribeSubnets", items, params.get("Filters"))
    page, token = _page("DescribeSubnets", ctx, params, items, "SubnetId")
    return {"Subnets": page, "NextToken": token}


def _choose_zone(ctx: RequestContext, params: dict[str, Any], vpc: Vpc) -> str:
    zones = list(ctx.settings.availability_zones)
    name, zone_id = params.get("AvailabilityZone"), params.get("AvailabilityZoneId")
    if name and zone_id:
        raise errors.InvalidParameterCombination(
            reason="The parameters availabilityZone and availabilityZoneId cannot be used together."
        )
    if zone_id:
        by_id = {v: k for k, v in _zone_ids(ctx).items()}
        if zone_id not in by_id:
            raise _bad_zone("availabilityZoneId", zone_id, sorted(by_id))
        return by_id[zone_id]
    if name:
        if name not in zones:
            raise _bad_zone("availabilityZone", name, zones)
        return str(name)
    load = Counter(x.availability_zone for x in repo.list_subnets(ctx.session, ctx.account_id, vpc_id=vpc.id))
    return min(zones, key=lambda z: (load[z], zones.index(z)))


def _bad_zone(name: str, value: str, zones: list[str]) -> errors.OcsError:
    return errors.InvalidParameterValue(
        value=value,
        name=name,
        reason="Subnets can currently only be created in the following availability zones: "
        + ", ".join(zones)
        + ".",
    )


def create_subnet(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _unsupported(params, _UNSUPPORTED_SUBNET)
    vpc_id = params.get("VpcId")
    if not vpc_id:
        raise errors.MissingParameter(name="vpcId")
    net = _ipv4_block(params.get("CidrBlock"))
    vpc = repo.get_vpc(ctx.session, ctx.account_id, vpc_id)
    if not cidr.is_valid_subnet_size(net):
        raise errors.InvalidParameterValue(
            f"The CIDR '{params['CidrBlock']}' is invalid.", code="InvalidSubnet.Range"
        )
    zone = _choose_zone(ctx, params, vpc)
    tags = tagging.tag_specifications_for(params, "subnet", action="CreateSubnet")
    subnet = repo.create_subnet(ctx.session, ctx.account_id, vpc, str(net), zone, now=ctx.now())
    if tags:
        db_tags.set_tags(ctx.session, ctx.account_id, [(subnet.id, "subnet")], tags)
    return {"Subnet": subnet_item(ctx, subnet, tags)}


def delete_subnet(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    subnet_id = params.get("SubnetId")
    if not subnet_id:
        raise errors.MissingParameter(name="subnetId")
    repo.delete_subnet(ctx.session, ctx.account_id, subnet_id)
    return {}


_SUBNET_OTHER_ATTRIBUTES = (
    "AssignIpv6AddressOnCreation",
    "MapCustomerOwnedIpOnLaunch",
    "CustomerOwnedIpv4Pool",
    "EnableDns64",
    "PrivateDnsHostnameTypeOnLaunch",
    "EnableResourceNameDnsARecordOnLaunch",
    "EnableResourceNameDnsAAAARecordOnLaunch",
    "EnableLniAtDeviceIndex",
    "DisableLniAtDeviceIndex",
)


def modify_subnet_attribute(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    subnet = repo.get_subnet(ctx.session, ctx.account_id, params.get("SubnetId") or "")
    for name in _SUBNET_OTHER_ATTRIBUTES:
        if params.get(name) is not None:
            raise errors.Unsupported(reason=f"The attribute {name} is not supported by this cloud.")
    change = params.get("MapPublicIpOnLaunch")
    if change is None or change.get("Value") is None:
        raise errors.MissingParameter("The request must contain exactly one attribute to modify.")
    subnet.map_public_ip_on_launch = bool(change["Value"])
    ctx.session.flush()
    return {}


ACTIONS = {
    "DescribeVpcs": describe_vpcs,
    "CreateVpc": create_vpc,
    "CreateDefaultVpc": create_default_vpc,
    "DeleteVpc": delete_vpc,
    "DescribeVpcAttribute": describe_vpc_attribute,
    "ModifyVpcAttribute": modify_vpc_attribute,
    "DescribeSubnets": describe_subnets,
    "CreateSubnet": create_subnet,
    "DeleteSubnet": delete_subnet,
    "ModifySubnetAttribute": modify_subnet_attribute,
}
