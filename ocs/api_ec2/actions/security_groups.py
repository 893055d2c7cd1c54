"""Security groups and their rules (the records; enforcement is the network service's).

Behaviour, as EC2 documents or answers it (evidence in brackets; rule parsing and
its errors are in :mod:`ocs.network.sg_rules`):

* CreateSecurityGroup needs a name and a description (``MissingParameter``); the
  VPC defaults to the default VPC (``VPCIdNotSpecified`` "No default VPC for this
  user" without one). ``default`` is reserved (``InvalidGroup.Reserved``); names
  starting ``sg-``: ``InvalidParameterValue`` "Value (sg-x) for parameter
  GroupName is invalid. Group names may not be in the format sg-*." [pulumi/pulumi-awsx#328];
  a name used in the VPC: ``InvalidGroup.Duplicate`` "The security group 'x'
  already exists for VPC 'vpc-y'". A new group may send anything anywhere
  (one egress rule, all traffic to ``0.0.0.0/0``).
* DeleteSecurityGroup by id, or by name within the default VPC. The default
  group: ``CannotDelete`` 'the specified group: "sg-x" name: "default" cannot be
  deleted by a user'; a group another group's rule names: ``DependencyViolation``
  "resource sg-x has a dependent object". A name not in the default VPC:
  ``InvalidGroup.NotFound`` "The security group 'x' does not exist in default VPC
  'vpc-y'"; no default VPC: ``VPCIdNotSpecified`` "No default VPC for this user.
  GroupName is only supported for EC2-Classic and default VPC." [gruntwork-io/kubergrunt#106].
* DescribeSecurityGroups groups rules into permissions, one per (protocol, from
  port, to port), each with its IpRanges/Ipv6Ranges/PrefixListIds/UserIdGroupPairs.
* Authorize: ``InvalidPermission.Duplicate`` 'the specified rule "peer: 0.0.0.0/0,
  TCP, from port: 22, to port: 22, ALLOW" already exists' [rubber/rubber#483 and
  many more]; an unknown peer group: ``InvalidGroup.NotFound``; more than 60
  rules in one direction: ``RulesPerSecurityGroupLimitExceeded``. Answers
  ``Return`` true and the new rules with their ``sgr-`` ids.
* Revoke by rule ids or by permissions. A permission matching no rule: in a
  non-default VPC ``InvalidPermission.NotFound`` and nothing is revoked; in the
  default VPC the others are revoked and the unknown ones come back in
  ``UnknownIpPermissions`` [RevokeSecurityGroupIngress API reference].
* DescribeSecurityGroupRules: a malformed ``group-id`` filter value answers
  ``InvalidGroupId.Malformed`` "The security group ID 'x' is malformed"; an unknown
  rule id ``InvalidSecurityGroupRuleId.NotFound`` [moto, tests verified on AWS].
* Managed prefix lists do not exist here: a ``PrefixListId`` answers
  ``InvalidPrefixListID.NotFound``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from ocs import errors, ids
from ocs.api_ec2 import filters, network, pagination, resources, tagging
from ocs.api_ec2.context import RequestContext
from ocs.db import secgroups as repo
from ocs.db import tags as db_tags
from ocs.db import vpcs as db_vpcs
from ocs.db.models.network import SecurityGroup, SecurityGroupRule
from ocs.network import sg_rules
from ocs.network.sg_rules import RuleSpec

resources.register("security_group", "security-group", repo.group_exists)
resources.register("security_group_rule", "security-group-rule", repo.rule_exists)

# What EC2 accepts in a VPC group's name and description [EC2 user guide].
_ALLOWED_TEXT = re.compile(r"^[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]*$")


# --- output ---------------------------------------------------------------------------------


def _arn(ctx: RequestContext, kind: str, owner: str, resource_id: str) -> str:
    return f"arn:aws:ec2:{ctx.settings.region}:{owner}:{kind}/{resource_id}"


def group_items(ctx: RequestContext, groups: list[SecurityGroup]) -> list[dict[str, Any]]:
    """botocore ``SecurityGroup`` dicts for ``groups``."""
    rules = repo.rules_for(ctx.session, [g.id for g in groups])
    tags = db_tags.tags_for(ctx.session, ctx.account_id, [g.id for g in groups])
    items = []
    for group in groups:
        specs = [repo.spec_of(r) for r in rules[group.id]]
        items.append(
            {
                "GroupId": group.id,
                "GroupName": group.name,
                "Description": group.description,
                "VpcId": group.vpc_id,
                "OwnerId": group.account_id,
                "SecurityGroupArn": _arn(ctx, "security-group", group.account_id, group.id),
                "IpPermissions": sg_rules.group_permissions(s for s in specs if not s.is_egress),
                "IpPermissionsEgress": sg_rules.group_permissions(s for s in specs if s.is_egress),
                "Tags": tags[group.id] or None,
            }
        )
    return items


def rule_item(ctx: RequestContext, rule: SecurityGroupRule, tags: list[dict[str, str]]) -> dict[str, Any]:
    """A botocore ``SecurityGroupRule``."""
    return {
        "SecurityGroupRuleId": rule.id,
        "GroupId": rule.group_id,
        "GroupOwnerId": rule.account_id,
        **sg_rules.rule_fields(repo.spec_of(rule)),
        "Tags": tags,
        "SecurityGroupRuleArn": _arn(ctx, "security-group-rule", rule.account_id, rule.id),
    }


def _revoked_item(rule: SecurityGroupRule) -> dict[str, Any]:
    fields = sg_rules.rule_fields(repo.spec_of(rule))
    referenced = fields.pop("ReferencedGroupInfo", None)
    if referenced:
        fields["ReferencedGroupId"] = referenced["GroupId"]
    return {"SecurityGroupRuleId": rule.id, "GroupId": rule.group_id, **fields}


def _page(
    action: str, ctx: RequestContext, params: dict[str, Any], items: list[Any], key: str
) -> tuple[list[Any], str | None]:
    return pagination.paginate_action(
        action, items, params, key=key, scope=pagination.token_scope(action, ctx.account_id)
    )


# --- finding groups -------------------------------------------------------------------------


def _default_vpc_id(ctx: RequestContext, *, for_names: bool = False) -> str:
    vpc_id = db_vpcs.default_vpc_id(ctx.session, ctx.account_id)
    if vpc_id is None:
        extra = " GroupName is only supported for EC2-Classic and default VPC." if for_names else ""
        raise errors.InvalidParameterValue(f"No default VPC for this user.{extra}", code="VPCIdNotSpecified")
    return vpc_id


def _by_name_in_default_vpc(ctx: RequestContext, name: str) -> SecurityGroup:
    vpc_id = _default_vpc_id(ctx, for_names=True)
    group = repo.find_group(ctx.session, ctx.account_id, vpc_id, name)
    if group is None:
        raise errors.NotFound(
            f"The security group '{name}' does not exist in default VPC '{vpc_id}'",
            code="InvalidGroup.NotFound",
        )
    return group


def _target_group(ctx: RequestContext, params: dict[str, Any]) -> SecurityGroup:
    """The group an action works on: ``GroupId``, else ``GroupName`` in the default VPC."""
    if params.get("GroupId"):
        return repo.get_group(ctx.session, ctx.account_id, params["GroupId"])
    if params.get("GroupName"):
        return _by_name_in_default_vpc(ctx, params["GroupName"])
    raise errors.MissingParameter("The request must contain the parameter groupName or groupId")


def _resolve_peer(ctx: RequestContext, group: SecurityGroup, spec: RuleSpec) -> RuleSpec:
    """``spec`` with its referenced group checked and named by id (and prefix lists refused)."""
    if spec.prefix_list_id:
        raise errors.NotFound(
            f"The prefix list ID '{spec.prefix_list_id}' does not exist", code="InvalidPrefixListID.NotFound"
        )
    if spec.group_id is None and spec.group_name is None:
        return spec
    if spec.group_owner not in (None, ctx.account_id):
        raise ids.not_found("security_group", spec.group_id or spec.group_name)
    if spec.group_id is not None:
        peer = repo.get_group(ctx.session, ctx.account_id, spec.group_id)
    else:
        found = repo.find_group(ctx.session, ctx.account_id, group.vpc_id, spec.group_name or "")
        if found is None:
            where = (
                "default VPC"
                if db_vpcs.default_vpc_id(ctx.session, ctx.account_id) == group.vpc_id
                else "VPC"
            )
            raise errors.NotFound(
                f"The security group '{spec.group_name}' does not exist in {where} '{group.vpc_id}'",
                code="InvalidGroup.NotFound",
            )
        peer = found
    if peer.vpc_id != group.vpc_id:
        raise errors.InvalidParameterValue(
            "You have specified two resources that belong to different networks."
        )
    return replace(spec, group_id=peer.id, group_name=None, group_owner=peer.account_id)


def _request_specs(
    ctx: RequestContext, params: dict[str, Any], group: SecurityGroup, *, is_egress: bool
) -> list[RuleSpec]:
    specs = sg_rules.specs_from_request(params, is_egress=is_egress)
    return [_resolve_peer(ctx, group, spec) for spec in specs]


# --- groups ---------------------------------------------------------------------------------


def _check_text(name: str, value: Any) -> str:
    text = str(value)
    if len(text) > 255:
        raise errors.InvalidParameterValue(value=text, name=name, reason="It is longer than 255 characters.")
    if not _ALLOWED_TEXT.match(text):
        raise errors.InvalidParameterValue(
            value=text,
            name=name,
            reason="Valid characters are a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*",
        )
    return text


def create_security_group(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    if not params.get("GroupName"):
        raise errors.MissingParameter(name="groupName")
    if not params.get("Description"):
        raise errors.MissingParameter(name="groupDescription")
    name = _check_text("GroupName", params["GroupName"])
    description = _check_text("GroupDescription", params["Description"])
    if name.lower().startswith("sg-"):
        raise errors.InvalidParameterValue(
            value=name, name="GroupName", reason="Group names may not be in the format sg-*."
        )
    if name == repo.DEFAULT_GROUP_NAME:
        raise errors.InvalidParameterValue(
            f"The security group '{name}' is reserved.", code="InvalidGroup.Reserved"
        )
    if params.get("VpcId"):
        vpc_id = db_vpcs.get_vpc(ctx.session, ctx.account_id, params["VpcId"]).id
    else:
        vpc_id = _default_vpc_id(ctx)
    tags = tagging.tag_specifications_for(params, "security-group", action="CreateSecurityGroup")
    group = repo.create_group(ctx.session, ctx.account_id, vpc_id, name, description, now=ctx.now())
    if tags:
        db_tags.set_tags(ctx.session, ctx.account_id, [(group.id, "security-group")], tags)
    return {
        "GroupId": group.id,
        "SecurityGroupArn": _arn(ctx, "security-group", group.account_id, group.id),
        "Tags": tags or None,
    }


def delete_security_group(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    group = _target_group(ctx, params)
    repo.delete_group(ctx.session, ctx.account_id, group)
    return {"Return": True, "GroupId": group.id}


def describe_security_groups(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    group_ids = params.get("GroupIds") or []
    names = params.get("GroupNames") or []
    if group_ids or names:
        chosen = {g.id: g for g in (repo.get_group(ctx.session, ctx.account_id, i) for i in group_ids)}
        for name in names:
            group = _by_name_in_default_vpc(ctx, name)
            chosen.setdefault(group.id, group)
        groups = sorted(chosen.values(), key=lambda g: g.id)
    else:
        groups = repo.list_groups(ctx.session, ctx.account_id)
    items = filters.filter_action("DescribeSecurityGroups", group_items(ctx, groups), params.get("Filters"))
    page, token = _page("DescribeSecurityGroups", ctx, params, items, "GroupId")
    return {"SecurityGroups": page, "NextToken": token}


# --- rules ----------------------------------------------------------------------------------


def _authorize(
    ctx: RequestContext, params: dict[str, Any], *, is_egress: bool, action: str
) -> dict[str, Any]:
    group = _target_group(ctx, params)
    specs = _request_specs(ctx, params, group, is_egress=is_egress)
    tags = tagging.tag_specifications_for(params, "security-group-rule", action=action)
    rules = repo.add_rules(ctx.session, group, specs, now=ctx.now())
    network.security_groups_changed(ctx, [group.id])
    if tags:
        db_tags.set_tags(ctx.session, ctx.account_id, [(r.id, "security-group-rule") for r in rules], tags)
    return {"Return": True, "SecurityGroupRules": [rule_item(ctx, r, tags) for r in rules]}


def authorize_security_group_ingress(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _authorize(ctx, params, is_egress=False, action="AuthorizeSecurityGroupIngress")


def authorize_security_group_egress(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _authorize(ctx, params, is_egress=True, action="AuthorizeSecurityGroupEgress")


def _rules_by_id(
    ctx: RequestContext, group: SecurityGroup, rule_ids: list[str], *, is_egress: bool
) -> list[SecurityGroupRule]:
    rules = repo.get_rules(ctx.session, ctx.account_id, rule_ids)
    for rule in rules:
        if rule.group_id != group.id or rule.is_egress != is_egress:
            raise ids.not_found("security_group_rule", rule.id)
    return rules


def _revoke(ctx: RequestContext, params: dict[str, Any], *, is_egress: bool) -> dict[str, Any]:
    group = _target_group(ctx, params)
    rule_ids = params.get("SecurityGroupRuleIds") or []
    unknown: list[RuleSpec] = []
    if rule_ids:
        if params.get("IpPermissions"):
            raise errors.InvalidParameterCombination(
                reason="The parameter securityGroupRuleIds cannot be used with the parameter ipPermissions"
            )
        rules = _rules_by_id(ctx, group, rule_ids, is_egress=is_egress)
    else:
        specs = _request_specs(ctx, params, group, is_egress=is_egress)
        rules, unknown = repo.match_rules(ctx.session, group, specs)
        in_default_vpc = db_vpcs.default_vpc_id(ctx.session, ctx.account_id) == group.vpc_id
        if unknown and not in_default_vpc:
            raise errors.NotFound(
                "The specified rule does not exist in this security group.", code="InvalidPermission.NotFound"
            )
    revoked = [_revoked_item(r) for r in rules]
    repo.delete_rules(ctx.session, rules)
    network.security_groups_changed(ctx, [group.id])
    out: dict[str, Any] = {"Return": True, "RevokedSecurityGroupRules": revoked}
    if unknown:
        out["UnknownIpPermissions"] = sg_rules.group_permissions(unknown)
    return out


def revoke_security_group_ingress(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _revoke(ctx, params, is_egress=False)


def revoke_security_group_egress(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _revoke(ctx, params, is_egress=True)


def modify_security_group_rules(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    group = repo.get_group(ctx.session, ctx.account_id, params.get("GroupId") or "")
    changes = params.get("SecurityGroupRules") or []
    if not changes:
        raise errors.MissingParameter(name="securityGroupRule")
    rules = repo.get_rules(ctx.session, ctx.account_id, [c.get("SecurityGroupRuleId") or "" for c in changes])
    for rule, change in zip(rules, changes, strict=True):
        if rule.group_id != group.id:
            raise ids.not_found("security_group_rule", rule.id)
        spec = sg_rules.spec_from_rule_request(
            change.get("SecurityGroupRule") or {}, is_egress=rule.is_egress
        )
        repo.update_rule(ctx.session, group, rule, _resolve_peer(ctx, group, spec))
    network.security_groups_changed(ctx, [group.id])
    return {"Return": True}


def _update_descriptions(ctx: RequestContext, params: dict[str, Any], *, is_egress: bool) -> dict[str, Any]:
    group = _target_group(ctx, params)
    by_id = params.get("SecurityGroupRuleDescriptions") or []
    if by_id:
        rule_ids = [d.get("SecurityGroupRuleId") or "" for d in by_id]
        for rule, item in zip(_rules_by_id(ctx, group, rule_ids, is_egress=is_egress), by_id, strict=True):
            rule.description = item.get("Description")
    else:
        specs = _request_specs(ctx, params, group, is_egress=is_egress)
        rules, unknown = repo.match_rules(ctx.session, group, specs)
        if unknown:
            raise errors.NotFound(
                "The specified rule does not exist in this security group.", code="InvalidPermission.NotFound"
            )
        wanted = {spec.fingerprint(): spec.description for spec in specs}
        for rule in rules:
            rule.description = wanted[rule.fingerprint]
    ctx.session.flush()
    return {"Return": True}


def update_security_group_rule_descriptions_ingress(
    ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    return _update_descriptions(ctx, params, is_egress=False)


def update_security_group_rule_descriptions_egress(
    ctx: RequestContext, params: dict[str, Any]
) -> dict[str, Any]:
    return _update_descriptions(ctx, params, is_egress=True)


def _check_rule_filters(params: dict[str, Any]) -> None:
    for flt in params.get("Filters") or []:
        if flt.get("Name") != "group-id":
            continue
        for value in flt.get("Values") or []:
            if not ids.is_valid("security_group", value):
                raise errors.Malformed(
                    f"The security group ID '{value}' is malformed", code="InvalidGroupId.Malformed"
                )


def describe_security_group_rules(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _check_rule_filters(params)
    rule_ids = params.get("SecurityGroupRuleIds") or []
    if rule_ids:
        rules = repo.get_rules(ctx.session, ctx.account_id, rule_ids)
    else:
        rules = repo.list_rules(ctx.session, ctx.account_id)
    tags = db_tags.tags_for(ctx.session, ctx.account_id, [r.id for r in rules])
    items = [rule_item(ctx, r, tags[r.id]) for r in rules]
    items = filters.filter_action("DescribeSecurityGroupRules", items, params.get("Filters"))
    page, token = _page("DescribeSecurityGroupRules", ctx, params, items, "SecurityGroupRuleId")
    return {"SecurityGroupRules": page, "NextToken": token}


ACTIONS = {
    "CreateSecurityGroup": create_security_group,
    "DeleteSecurityGroup": delete_security_group,
    "DescribeSecurityGroups": describe_security_groups,
    "AuthorizeSecurityGroupIngress": authorize_security_group_ingress,
    "AuthorizeSecurityGroupEgress": authorize_security_group_egress,
    "RevokeSecurityGroupIngress": revoke_security_group_ingress,
    "RevokeSecurityGroupEgress": revoke_security_group_egress,
    "DescribeSecurityGroupRules": describe_security_group_rules,
    "ModifySecurityGroupRules": modify_security_group_rules,
    "UpdateSecurityGroupRuleDescriptionsIngress": update_security_group_rule_descriptions_ingress,
    "UpdateSecurityGroupRuleDescriptionsEgress": update_security_group_rule_descriptions_egress,
}
