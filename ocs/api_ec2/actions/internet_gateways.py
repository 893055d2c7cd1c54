"""Internet gateways: Create/Attach/Detach/Delete/Describe.

Behaviour, as EC2 documents or answers it (evidence in brackets):

* A gateway is attached to at most one VPC and a VPC has at most one. Attaching
  an attached gateway: ``Resource.AlreadyAssociated`` "resource igw-x is already
  attached to network vpc-y" [berlioz-the/berlioz#1]; attaching to a VPC that has
  one: ``InvalidParameterValue`` "Network vpc-x already has an internet gateway
  attached" [binlab/terraform-aws-vault-ha-raft#54; openstack/ec2-api].
* Detaching from a VPC it is not attached to: ``Gateway.NotAttached`` "resource
  igw-x is not attached to network vpc-y" [openstack/ec2-api].
* Deleting an attached gateway: ``DependencyViolation`` "The internetGateway
  'igw-x' has dependencies and cannot be deleted." [openstack/ec2-api].
* An attachment shows ``State`` ``available``, not the ``attached`` the model's
  enum suggests: EC2 answers so [k1LoW/awspec#253; openstack/ec2-api].
* Every account's default VPC has one attached (see :mod:`ocs.db.vpcs`).
"""

from __future__ import annotations

from typing import Any

from ocs import errors
from ocs.api_ec2 import filters, pagination, resources, tagging
from ocs.api_ec2.context import RequestContext
from ocs.api_ec2.network import routing_changed
from ocs.db import routing as repo
from ocs.db import tags as db_tags
from ocs.db.models.routing import InternetGateway

resources.register("internet_gateway", "internet-gateway", repo.internet_gateway_exists)

ATTACHED_STATE = "available"


def internet_gateway_item(igw: InternetGateway, tags: list[dict[str, str]]) -> dict[str, Any]:
    """A botocore ``InternetGateway``."""
    attachments = [{"State": ATTACHED_STATE, "VpcId": igw.vpc_id}] if igw.vpc_id else []
    return {
        "InternetGatewayId": igw.id,
        "OwnerId": igw.account_id,
        "Attachments": attachments,
        "Tags": tags or None,
    }


def _required(params: dict[str, Any], member: str, wire: str) -> str:
    value = params.get(member)
    if not value:
        raise errors.MissingParameter(name=wire)
    return str(value)


def describe_internet_gateways(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    rows = repo.list_internet_gateways(ctx.session, ctx.account_id, params.get("InternetGatewayIds") or [])
    tags = db_tags.tags_for(ctx.session, ctx.account_id, [g.id for g in rows])
    items = [internet_gateway_item(g, tags[g.id]) for g in rows]
    items = filters.filter_action("DescribeInternetGateways", items, params.get("Filters"))
    action = "DescribeInternetGateways"
    page, token = pagination.paginate_action(
        action,
        items,
        params,
        key="InternetGatewayId",
        scope=pagination.token_scope(action, ctx.account_id),
    )
    return {"InternetGateways": page, "NextToken": token}


def create_internet_gateway(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    tags = tagging.tag_specifications_for(params, "internet-gateway", action="CreateInternetGateway")
    igw = repo.create_internet_gateway(ctx.session, ctx.account_id, now=ctx.now())
    if tags:
        db_tags.set_tags(ctx.session, ctx.account_id, [(igw.id, "internet-gateway")], tags)
    return {"InternetGateway": internet_gateway_item(igw, tags)}


def attach_internet_gateway(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    igw_id = _required(params, "InternetGatewayId", "internetGatewayId")
    vpc_id = _required(params, "VpcId", "vpcId")
    repo.attach_internet_gateway(ctx.session, ctx.account_id, igw_id, vpc_id)
    routing_changed(ctx, [vpc_id])
    return {}


def detach_internet_gateway(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    igw_id = _required(params, "InternetGatewayId", "internetGatewayId")
    vpc_id = _required(params, "VpcId", "vpcId")
    repo.detach_internet_gateway(ctx.session, ctx.account_id, igw_id, vpc_id)
    routing_changed(ctx, [vpc_id])
    return {}


def delete_internet_gateway(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    repo.delete_internet_gateway(
        ctx.session, ctx.account_id, _required(params, "InternetGatewayId", "internetGatewayId")
    )
    return {}


ACTIONS = {
    "DescribeInternetGateways": describe_internet_gateways,
    "CreateInternetGateway": create_internet_gateway,
    "AttachInternetGateway": attach_internet_gateway,
    "DetachInternetGateway": detach_internet_gateway,
    "DeleteInternetGateway": delete_internet_gateway,
}
