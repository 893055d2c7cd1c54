"""Customer gateways: Create/Describe/DeleteCustomerGateway, as records (EC2 keeps them so:
a customer gateway is only what a VPN connection would be told about its peer).

As EC2 documents them: ``Type`` is ``ipsec.1``; ``BgpAsn`` 1 to 2147483647 (or
``BgpAsnExtended`` 2147483648 to 4294967295, not both), 65000 when neither is given;
``IpAddress`` (or the older ``PublicIp``) an IPv4 address, required unless a
``CertificateArn`` is given; ``DeviceName`` at most 255 characters. Creating one with
the type, address and ASN of an existing one returns that one. A deleted gateway is
shown ``deleted`` for a while and found by no other action.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ocs import errors
from ocs.api_ec2 import filters, resources, tagging
from ocs.api_ec2.context import RequestContext
from ocs.db import customer_gateways as repo
from ocs.db import tags as db_tags
from ocs.db.models.network import CustomerGateway

resources.register("customer_gateway", "customer-gateway", repo.gateway_exists)

DEFAULT_ASN = 65000
_TYPES = ("ipsec.1",)


def gateway_item(row: CustomerGateway, tags: list[dict[str, str]]) -> dict[str, Any]:
    """A botocore ``CustomerGateway``."""
    extended = int(row.bgp_asn) > 2147483647
    return {
        "CustomerGatewayId": row.id,
        "BgpAsn": row.bgp_asn,
        "BgpAsnExtended": row.bgp_asn if extended else None,
        "IpAddress": row.ip_address,
        "CertificateArn": row.certificate_arn,
        "State": row.state,
        "Type": row.gateway_type,
        "DeviceName": row.device_name,
        "Tags": tags or None,
    }


def _asn(params: dict[str, Any]) -> str:
    asn, extended = params.get("BgpAsn"), params.get("BgpAsnExtended")
    if asn is not None and extended is not None:
        raise errors.InvalidParameterCombination(reason="You may specify BgpAsn or BgpAsnExtended, not both.")
    if extended is not None:
        if not 2147483648 <= int(extended) <= 4294967295:
            raise errors.InvalidParameterValue(
                value=extended, name="bgpAsnExtended", reason="It must be from 2147483648 to 4294967295."
            )
        return str(int(extended))
    value = DEFAULT_ASN if asn is None else int(asn)
    if not 1 <= value <= 2147483647:
        raise errors.InvalidParameterValue(
            value=asn, name="bgpAsn", reason="It must be from 1 to 2147483647."
        )
    return str(value)


def _address(params: dict[str, Any]) -> str | None:
    ip = params.get("IpAddress") or params.get("PublicIp")
    if not ip:
        if params.get("CertificateArn"):
            return None
        raise errors.MissingParameter(name="ipAddress")
    try:
        return str(ipaddress.IPv4Address(str(ip)))
    except ValueError:
        raise errors.InvalidParameterValue(
            value=ip, name="ipAddress", reason="It is not a valid IPv4 address."
        ) from None


def create_customer_gateway(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    gateway_type = params.get("Type")
    if not gateway_type:
        raise errors.MissingParameter(name="type")
    if gateway_type not in _TYPES:
        raise errors.InvalidParameterValue(value=gateway_type, name="type", reason="Valid values: ipsec.1.")
    device = params.get("DeviceName")
    if device is not None and len(str(device)) > 255:
        raise errors.InvalidParameterValue(
            value=device, name="deviceName", reason="It is longer than 255 characters."
        )
    asn, ip = _asn(params), _address(params)
    tags = tagging.tag_specifications_for(params, "customer-gateway", action="CreateCustomerGateway")
    row, new = repo.create_gateway(
        ctx.session,
        ctx.account_id,
        bgp_asn=asn,
        ip_address=ip,
        gateway_type=str(gateway_type),
        device_name=str(device) if device is not None else None,
        certificate_arn=params.get("CertificateArn") or None,
        now=ctx.now(),
    )
    if tags and new:
        db_tags.set_tags(ctx.session, ctx.account_id, [(row.id, "customer-gateway")], tags)
    return {
        "CustomerGateway": gateway_item(row, db_tags.tags_for(ctx.session, ctx.account_id, [row.id])[row.id])
    }


def describe_customer_gateways(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    s = ctx.session
    rows = repo.list_gateways(s, ctx.account_id, params.get("CustomerGatewayIds") or [], now=ctx.now())
    tags = db_tags.tags_for(s, ctx.account_id, [r.id for r in rows])
    items = [gateway_item(r, tags[r.id]) for r in rows]
    return {
        "CustomerGateways": filters.filter_action("DescribeCustomerGateways", items, params.get("Filters"))
    }


def delete_customer_gateway(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    gateway_id = params.get("CustomerGatewayId")
    if not gateway_id:
        raise errors.MissingParameter(name="customerGatewayId")
    repo.delete_gateway(ctx.session, ctx.account_id, str(gateway_id), now=ctx.now())
    return {}


ACTIONS = {
    "CreateCustomerGateway": create_customer_gateway,
    "DescribeCustomerGateways": describe_customer_gateways,
    "DeleteCustomerGateway": delete_customer_gateway,
}
