"""DHCP options sets: Create/Describe/Delete/AssociateDhcpOptions.

As EC2 documents them: the keys and their values are checked by
:mod:`ocs.network.dhcp_options`; every account has the set EC2 makes for it
(``domain-name`` of the region, ``domain-name-servers`` AmazonProvidedDNS), which
each new VPC is associated with; ``AssociateDhcpOptions`` with ``default`` leaves a
VPC without options (DescribeVpcs then shows ``default``); a set a VPC is associated
with cannot be deleted (``DependencyViolation``). The VPC's DHCP server hands out
the set's domain name, DNS, NTP and NetBIOS servers (:mod:`ocs.network.plan`).
"""

from __future__ import annotations

from typing import Any

from ocs import errors
from ocs.api_ec2 import filters, pagination, resources, tagging
from ocs.api_ec2.context import RequestContext
from ocs.api_ec2.network import routing_changed
from ocs.db import dhcp_options as repo
from ocs.db import tags as db_tags
from ocs.db import vpcs as db_vpcs
from ocs.db.models.network import DhcpOptions
from ocs.network import dhcp_options as core

resources.register("dhcp_options", "dhcp-options", repo.options_exist)


def configurations_of(row: DhcpOptions, region: str) -> list[core.Configuration]:
    if row.default_for == repo.ACCOUNT_DEFAULT:
        return core.region_default(region)
    return [(str(k), tuple(str(v) for v in values)) for k, values in row.configurations]


def options_item(ctx: RequestContext, row: DhcpOptions, tags: list[dict[str, str]]) -> dict[str, Any]:
    """A botocore ``DhcpOptions``."""
    return {
        "DhcpOptionsId": row.id,
        "OwnerId": row.account_id,
        "DhcpConfigurations": [
            {"Key": key, "Values": [{"Value": v} for v in values]}
            for key, values in configurations_of(row, ctx.settings.region)
        ],
        "Tags": tags or None,
    }


def create_dhcp_options(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    configurations = core.validate(params.get("DhcpConfigurations") or [])
    tags = tagging.tag_specifications_for(params, "dhcp-options", action="CreateDhcpOptions")
    row = repo.create_options(ctx.session, ctx.account_id, configurations, now=ctx.now())
    if tags:
        db_tags.set_tags(ctx.session, ctx.account_id, [(row.id, "dhcp-options")], tags)
    return {"DhcpOptions": options_item(ctx, row, tags)}


def describe_dhcp_options(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    s = ctx.session
    repo.account_default(s, ctx.account_id)  # EC2 shows it even before the account has a VPC
    rows = repo.list_options(s, ctx.account_id, params.get("DhcpOptionsIds") or [])
    tags = db_tags.tags_for(s, ctx.account_id, [r.id for r in rows])
    items = [options_item(ctx, r, tags[r.id]) for r in rows]
    action = "DescribeDhcpOptions"
    items = filters.filter_action(action, items, params.get("Filters"))
    page, token = pagination.paginate_action(
        action, items, params, key="DhcpOptionsId", scope=pagination.token_scope(action, ctx.account_id)
    )
    return {"DhcpOptions": page, "NextToken": token}


def delete_dhcp_options(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    repo.delete_options(ctx.session, ctx.account_id, params.get("DhcpOptionsId"))
    return {}


def associate_dhcp_options(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    if not params.get("VpcId"):
        raise errors.MissingParameter(name="vpcId")
    vpc = db_vpcs.get_vpc(ctx.session, ctx.account_id, str(params["VpcId"]))
    options_id = params.get("DhcpOptionsId")
    repo.associate(ctx.session, ctx.account_id, str(options_id) if options_id else None, vpc)
    routing_changed(ctx, [vpc.id])  # the VPC's DHCP servers hand out the new options
    return {}


ACTIONS = {
    "CreateDhcpOptions": create_dhcp_options,
    "DescribeDhcpOptions": describe_dhcp_options,
    "DeleteDhcpOptions": delete_dhcp_options,
    "AssociateDhcpOptions": associate_dhcp_options,
}
