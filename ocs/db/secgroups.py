"""Repository of security groups and their rules.

Plain functions taking the session and the caller's account id; the caller owns
the transaction. A group of another account is exactly as invisible as one that
does not exist. Errors are EC2's (see :mod:`ocs.network.sg_rules` for the rule
checks made before anything reaches this module).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ocs import errors, ids
from ocs.db import tags as db_tags
from ocs.db.models.base import utcnow
from ocs.db.models.network import SecurityGroup, SecurityGroupRule
from ocs.db.owned import get_owned, owned_exists
from ocs.network import sg_rules
from ocs.network.sg_rules import RuleSpec

DEFAULT_GROUP_NAME = "default"
DEFAULT_GROUP_DESCRIPTION = "default VPC security group"

InUseCheck = Callable[[Session, str], bool]
IN_USE_CHECKS: list[InUseCheck] = []
"""``(session, group_id) -> bool`` functions telling that something (an instance, a
network interface ...) still uses a group; DeleteSecurityGroup then answers
DependencyViolation. Families that attach groups append theirs at import."""


# --- groups -------------------------------------------------------------------------------


def duplicate_group(name: str, vpc_id: str) -> errors.OcsError:
    return errors.Duplicate(
        f"The security group '{name}' already exists for VPC '{vpc_id}'", code="InvalidGroup.Duplicate"
    )


def find_group(s: Session, account_id: str, vpc_id: str, name: str) -> SecurityGroup | None:
    """The group named ``name`` in the account's VPC ``vpc_id``, or None."""
    return s.scalar(
        select(SecurityGroup).where(
            SecurityGroup.account_id == account_id, SecurityGroup.vpc_id == vpc_id, SecurityGroup.name == name
        )
    )


def create_group(
    s: Session,
    account_id: str,
    vpc_id: str,
    name: str,
    description: str,
    *,
    is_default: bool = False,
    now: dt.datetime | None = None,
) -> SecurityGroup:
    """A new group in ``vpc_id`` with EC2's initial rules.

    Every group may send anything anywhere (egress all to ``0.0.0.0/0``); a VPC's
    default group also admits everything from its own members.
    """
    when = now or utcnow()
    if find_group(s, account_id, vpc_id, name) is not None:
        raise duplicate_group(name, vpc_id)
    group = SecurityGroup(
        id=ids.new_id("security_group"),
        account_id=account_id,
        vpc_id=vpc_id,
        name=name,
        description=description,
        is_default=is_default,
        created_at=when,
    )
    try:
        with s.begin_nested():
            s.add(group)
    except IntegrityError:
        raise duplicate_group(name, vpc_id) from None
    initial = [RuleSpec(is_egress=True, protocol=sg_rules.ALL, cidr_ipv4="0.0.0.0/0")]
    if is_default:
        initial.insert(
            0, RuleSpec(is_egress=False, protocol=sg_rules.ALL, group_id=group.id, group_owner=account_id)
        )
    add_rules(s, group, initial, now=when)
    return group


def get_group(s: Session, account_id: str, group_id: str) -> SecurityGroup:
    """The account's group ``group_id``; InvalidGroupId.Malformed or InvalidGroup.NotFound."""
    return get_owned(s, SecurityGroup, "security_group", account_id, group_id)


def group_exists(s: Session, account_id: str, group_id: str) -> bool:
    return owned_exists(s, SecurityGroup, account_id, group_id)


def list_groups(s: Session, account_id: str, vpc_id: str | None = None) -> list[SecurityGroup]:
    """The account's groups (of one VPC if given), by id."""
    q = select(SecurityGroup).where(SecurityGroup.account_id == account_id)
    if vpc_id is not None:
        q = q.where(SecurityGroup.vpc_id == vpc_id)
    return list(s.scalars(q.order_by(SecurityGroup.id)))


def groups_by_id(s: Session, group_ids: Iterable[str]) -> dict[str, SecurityGroup]:
    wanted = list(dict.fromkeys(group_ids))
    if not wanted:
        return {}
    return {g.id: g for g in s.scalars(select(SecurityGroup).where(SecurityGroup.id.in_(wanted)))}


def is_referenced(s: Session, group_id: str) -> bool:
    """Whether a rule of another group names ``group_id`` as its peer."""
    return (
        s.scalar(
            select(SecurityGroupRule.id)
            .where(SecurityGroupRule.referenced_group_id == group_id, SecurityGroupRule.group_id != group_id)
            .limit(1)
        )
        is not None
    )


def delete_group(s: Session, account_id: str, group: SecurityGroup, *, force_default: bool = False) -> None:
    """Delete a group and its rules; CannotDelete for a default group, DependencyViolation if in use."""
    if group.is_default and not force_default:
        raise errors.OperationNotPermitted(
            f'the specified group: "{group.id}" name: "{group.name}" cannot be deleted by a user',
            code="CannotDelete",
        )
    if is_referenced(s, group.id) or any(check(s, group.id) for check in IN_USE_CHECKS):
        raise errors.InUse(f"resource {group.id} has a dependent object")
    rule_ids = list(s.scalars(select(SecurityGroupRule.id).where(SecurityGroupRule.group_id == group.id)))
    s.execute(delete(SecurityGroupRule).where(SecurityGroupRule.group_id == group.id))
    for resource_id in [*rule_ids, group.id]:
        db_tags.delete_all_for(s, resource_id)
    s.delete(group)
    s.flush()


def resolve_security_groups(
    s: Session,
    account_id: str,
    vpc_id: str,
    group_ids: Sequence[str] = (),
    names: Sequence[str] = (),
    *,
    subnet_id: str | None = None,
) -> list[SecurityGroup]:
    """The groups an instance launched into ``vpc_id`` asks for, or the VPC's default group.

    Unknown ids and names answer InvalidGroup.NotFound; a group of another VPC
    answers InvalidParameter, as RunInstances does.
    """
    found: dict[str, SecurityGroup] = {}
    for group_id in group_ids:
        group = get_group(s, account_id, group_id)
        if group.vpc_id != vpc_id:
            where = f"subnet {subnet_id}" if subnet_id else f"VPC {vpc_id}"
            raise errors.InvalidParameter(
                f"Security group {group.id} and {where} belong to different networks."
            )
        found.setdefault(group.id, group)
    for name in names:
        named = find_group(s, account_id, vpc_id, name)
        if named is None:
            raise errors.NotFound(
                f"The security group '{name}' does not exist in VPC '{vpc_id}'", code="InvalidGroup.NotFound"
            )
        found.setdefault(named.id, named)
    if not found:
        default = find_group(s, account_id, vpc_id, DEFAULT_GROUP_NAME)
        if default is not None:
            found[default.id] = default
    return list(found.values())


# --- rules --------------------------------------------------------------------------------


def spec_of(rule: SecurityGroupRule) -> RuleSpec:
    """The stored rule as a :class:`RuleSpec`."""
    return RuleSpec(
        is_egress=rule.is_egress,
        protocol=rule.ip_protocol,
        from_port=rule.from_port,
        to_port=rule.to_port,
        cidr_ipv4=rule.cidr_ipv4,
        cidr_ipv6=rule.cidr_ipv6,
        prefix_list_id=rule.prefix_list_id,
        group_id=rule.referenced_group_id,
        group_owner=rule.referenced_group_owner,
        description=rule.description,
    )


def rules_for(s: Session, group_ids: Iterable[str]) -> dict[str, list[SecurityGroupRule]]:
    """``{group_id: [rules in the order they were added]}`` for each of ``group_ids``."""
    wanted = list(dict.fromkeys(group_ids))
    out: dict[str, list[SecurityGroupRule]] = defaultdict(list)
    for start in range(0, len(wanted), 500):
        rows = s.scalars(
            select(SecurityGroupRule)
            .where(SecurityGroupRule.group_id.in_(wanted[start : start + 500]))
            .order_by(SecurityGroupRule.group_id, SecurityGroupRule.position, SecurityGroupRule.id)
        )
        for row in rows:
            out[row.group_id].append(row)
    return {g: out.get(g, []) for g in wanted}


def list_rules(s: Session, account_id: str) -> list[SecurityGroupRule]:
    """Every rule of the account's groups."""
    return list(s.scalars(select(SecurityGroupRule).where(SecurityGroupRule.account_id == account_id)))


def get_rules(s: Session, account_id: str, rule_ids: Sequence[str]) -> list[SecurityGroupRule]:
    """The account's rules ``rule_ids`` (in that order); Malformed/NotFound for the first bad one."""
    for rule_id in rule_ids:
        ids.validate("security_group_rule", rule_id)
    wanted = list(dict.fromkeys(rule_ids))
    rows = (
        {
            r.id: r
            for r in s.scalars(
                select(SecurityGroupRule).where(
                    SecurityGroupRule.account_id == account_id, SecurityGroupRule.id.in_(wanted)
                )
            )
        }
        if wanted
        else {}
    )
    for rule_id in wanted:
        if rule_id not in rows:
            raise ids.not_found("security_group_rule", rule_id)
    return [rows[r] for r in wanted]


def rule_exists(s: Session, account_id: str, rule_id: str) -> bool:
    rule = s.get(SecurityGroupRule, rule_id)
    return rule is not None and rule.account_id == account_id


def _duplicate(spec: RuleSpec) -> errors.OcsError:
    return errors.Duplicate(
        f'the specified rule "{spec.summary()}" already exists', code="InvalidPermission.Duplicate"
    )


def _check_limits(existing: Sequence[SecurityGroupRule], specs: Sequence[RuleSpec]) -> None:
    inbound = sum(1 for r in existing if not r.is_egress) + sum(1 for x in specs if not x.is_egress)
    outbound = sum(1 for r in existing if r.is_egress) + sum(1 for x in specs if x.is_egress)
    if max(inbound, outbound) > sg_rules.MAX_RULES_PER_DIRECTION:
        raise errors.LimitExceeded(
            "The maximum number of rules per security group has been reached.",
            code="RulesPerSecurityGroupLimitExceeded",
        )


def add_rules(
    s: Session, group: SecurityGroup, specs: Sequence[RuleSpec], *, now: dt.datetime | None = None
) -> list[SecurityGroupRule]:
    """Store ``specs`` (their referenced groups resolved) as rules of ``group``.

    InvalidPermission.Duplicate if one exists already; RulesPerSecurityGroupLimitExceeded
    past 60 rules in one direction.
    """
    existing = rules_for(s, [group.id])[group.id]
    taken = {r.fingerprint: r for r in existing}
    for spec in specs:
        if spec.fingerprint() in taken:
            raise _duplicate(spec)
    _check_limits(existing, specs)
    position = max((r.position for r in existing), default=0)
    made = [
        SecurityGroupRule(
            id=ids.new_id("security_group_rule"),
            group_id=group.id,
            account_id=group.account_id,
            is_egress=spec.is_egress,
            ip_protocol=spec.protocol,
            from_port=spec.from_port,
            to_port=spec.to_port,
            cidr_ipv4=spec.cidr_ipv4,
            cidr_ipv6=spec.cidr_ipv6,
            prefix_list_id=spec.prefix_list_id,
            referenced_group_id=spec.group_id,
            referenced_group_owner=spec.group_owner,
            description=spec.description,
            fingerprint=spec.fingerprint(),
            position=position + i + 1,
            created_at=now or utcnow(),
        )
        for i, spec in enumerate(specs)
    ]
    try:
        with s.begin_nested():
            s.add_all(made)
    except IntegrityError:
        raise _duplicate(specs[0]) from None
    return made


def match_rules(
    s: Session, group: SecurityGroup, specs: Sequence[RuleSpec]
) -> tuple[list[SecurityGroupRule], list[RuleSpec]]:
    """The group's rules equal to ``specs`` (description aside), and the specs that match none."""
    taken = {r.fingerprint: r for r in rules_for(s, [group.id])[group.id]}
    found: list[SecurityGroupRule] = []
    unknown: list[RuleSpec] = []
    for spec in specs:
        rule = taken.get(spec.fingerprint())
        if rule is None:
            unknown.append(spec)
        elif rule not in found:
            found.append(rule)
    return found, unknown


def update_rule(s: Session, group: SecurityGroup, rule: SecurityGroupRule, spec: RuleSpec) -> None:
    """Make ``rule`` say ``spec`` (its direction kept); InvalidPermission.Duplicate if another rule does."""
    fingerprint = spec.fingerprint()
    for other in rules_for(s, [group.id])[group.id]:
        if other.id != rule.id and other.fingerprint == fingerprint:
            raise _duplicate(spec)
    rule.ip_protocol = spec.protocol
    rule.from_port = spec.from_port
    rule.to_port = spec.to_port
    rule.cidr_ipv4 = spec.cidr_ipv4
    rule.cidr_ipv6 = spec.cidr_ipv6
    rule.prefix_list_id = spec.prefix_list_id
    rule.referenced_group_id = spec.group_id
    rule.referenced_group_owner = spec.group_owner
    rule.description = spec.description
    rule.fingerprint = fingerprint
    try:
        with s.begin_nested():
            s.flush()
    except IntegrityError:
        raise _duplicate(spec) from None


def delete_rules(s: Session, rules: Sequence[SecurityGroupRule]) -> None:
    """Remove ``rules`` and their tags."""
    for rule in rules:
        db_tags.delete_all_for(s, rule.id)
        s.delete(rule)
    s.flush()
