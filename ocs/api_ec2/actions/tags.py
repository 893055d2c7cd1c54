"""CreateTags, DeleteTags and DescribeTags over every taggable resource."""

from __future__ import annotations

from typing import Any

from ocs import errors
from ocs.api_ec2 import filters, pagination, resources, tagging
from ocs.api_ec2.context import RequestContext
from ocs.db import tags as db_tags


def _resources(ctx: RequestContext, params: dict[str, Any]) -> list[tuple[str, str]]:
    ids = params.get("Resources") or []
    if not ids:
        raise errors.MissingParameter(name="ResourceId")
    return [(rid, resources.resolve(ctx.session, ctx.account_id, rid).resource_type) for rid in ids]


def create_tags(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    tags = tagging.validate_tags(params.get("Tags"))
    targets = _resources(ctx, params)
    current = db_tags.tags_for(ctx.session, ctx.account_id, [rid for rid, _ in targets])
    for rid, _ in targets:
        tagging.apply_create_tags(current[rid], tags)  # raises TagLimitExceeded
    db_tags.set_tags(ctx.session, ctx.account_id, targets, tags)
    return {}


def delete_tags(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    to_delete = tagging.validate_delete_tags(params.get("Tags"))
    targets = _resources(ctx, params)
    db_tags.delete_tags(ctx.session, ctx.account_id, [rid for rid, _ in targets], to_delete)
    return {}


def describe_tags(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    items = [
        {"Key": t.key, "Value": t.value, "ResourceId": t.resource_id, "ResourceType": t.resource_type}
        for t in db_tags.list_tags(ctx.session, ctx.account_id)
    ]
    items = filters.filter_action("DescribeTags", items, params.get("Filters"))
    page, token = pagination.paginate_action(
        "DescribeTags",
        items,
        params,
        key=lambda t: f"{t['ResourceId']}\x00{t['Key']}",
        scope=pagination.token_scope("DescribeTags", ctx.account_id),
    )
    out: dict[str, Any] = {"Tags": page}
    if token:
        out["NextToken"] = token
    return out


ACTIONS = {
    "CreateTags": create_tags,
    "DeleteTags": delete_tags,
    "DescribeTags": describe_tags,
}
