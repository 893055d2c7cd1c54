"""Repository of VPCs and subnets, and every account's default network.

Plain functions taking the session and the caller's account id; the caller owns
the transaction. :func:`ensure_default_network` gives an account, once, what EC2
gives every account: a default VPC with a default subnet per availability zone
and a ``default`` security group.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ocs import errors, ids
from ocs.db import dhcp_options, routing, secgroups
from ocs.db import tags as db_tags
from ocs.db.models.base import utcnow
from ocs.db.models.network import AccountNetwork, Subnet, Vpc
from ocs.db.owned import get_owned, owned_exists
from ocs.network import cidr

LOG = logging.getLogger(__name__)

InUseCheck = Callable[[Session, str], bool]
SUBNET_IN_USE_CHECKS: list[InUseCheck] = []
"""``(session, subnet_id) -> bool`` functions telling that something (an instance, a
network interface ...) still lives in a subnet; DeleteSubnet then answers
DependencyViolation. Families that place things in subnets append theirs at import."""

SUBNET_USAGE: list[Callable[[Session, Sequence[str]], dict[str, int]]] = []
"""``(session, subnet_ids) -> {subnet_id: addresses in use}`` functions, summed into
each subnet's AvailableIpAddressCount. The IPAM appends its own."""


# --- default network ------------------------------------------------------------------------


def ensure_default_network(
    s: Session, account_id: str, *, vpc_cidr: str, zones: Sequence[str], now: dt.datetime | None = None
) -> Vpc | None:
    """Make the account's default network unless it was made before; return the default VPC.

    Idempotent and safe against concurrent callers (threads or processes): the
    first to insert the account's :class:`AccountNetwork` row builds the network in
    the same transaction; the others find the row and do nothing. A default VPC
    the account deleted is not made again (EC2 neither).
    """
    if s.get(AccountNetwork, account_id) is None:
        try:
            with s.begin_nested():
                s.add(AccountNetwork(account_id=account_id, created_at=now or utcnow()))
        except IntegrityError:
            # Another request made it and committed. A locking read sees its rows even
            # where this transaction reads from an older snapshot (MySQL's REPEATABLE READ).
            LOG.debug("default network of account %s was made by another request", account_id)
            return s.scalar(_default_vpc_query(account_id).with_for_update(read=True))
        else:
            return create_default_vpc(s, account_id, vpc_cidr=vpc_cidr, zones=zones, now=now)
    return default_vpc(s, account_id)


def create_default_vpc(
    s: Session, account_id: str, *, vpc_cidr: str, zones: Sequence[str], now: dt.datetime | None = None
) -> Vpc:
    """A default VPC with its default subnets (one per zone); DefaultVpcAlreadyExists if it has one."""
    if default_vpc(s, account_id) is not None:
        raise errors.Duplicate(
            "A Default VPC already exists for this account in this region.", code="DefaultVpcAlreadyExists"
        )
    vpc = create_vpc(s, account_id, vpc_cidr, is_default=True, now=now)
    routing.create_default_gateway(s, account_id, vpc, now=now)
    subnet_blocks = cidr.default_subnet_cidrs(vpc_cidr, len(zones))
    for zone, block in zip(zones, subnet_blocks, strict=True):
        create_subnet(s, account_id, vpc, block, zone, default_for_az=True, now=now)
    LOG.info("Made default VPC %s for account %s", vpc.id, account_id)
    return vpc


def _default_vpc_query(account_id: str) -> Select[Vpc]:
    return select(Vpc).where(Vpc.account_id == account_id, Vpc.is_default.is_(True)).order_by(Vpc.created_at)


def default_vpc(s: Session, account_id: str) -> Vpc | None:
    """The account's default VPC, or None (never made, or deleted)."""
    return s.scalar(_default_vpc_query(account_id))


def default_vpc_id(s: Session, account_id: str) -> str | None:
    vpc = default_vpc(s, account_id)
    return vpc.id if vpc else None


# --- VPCs -----------------------------------------------------------------------------------


def _association_id() -> str:
    return f"vpc-cidr-assoc-{secrets.token_hex(9)[:17]}"


def create_vpc(
    s: Session,
    account_id: str,
    cidr_block: str,
    *,
    is_default: bool = False,
    tenancy: str = "default",
    now: dt.datetime | None = None,
) -> Vpc:
    """A new VPC (``cidr_block`` already checked), its ``default`` security group and main route table."""
    vpc = Vpc(
        id=ids.new_id("vpc"),
        account_id=account_id,
        cidr_block=cidr_block,
        cidr_association_id=_association_id(),
        is_default=is_default,
        state="available",
        dhcp_options_id=dhcp_options.account_default(s, account_id, now=now).id,
        instance_tenancy=tenancy,
        enable_dns_support=True,
        enable_dns_hostnames=is_default,
        created_at=now or utcnow(),
    )
    s.add(vpc)
    s.flush()
    secgroups.create_group(
        s,
        account_id,
        vpc.id,
        secgroups.DEFAULT_GROUP_NAME,
        secgroups.DEFAULT_GROUP_DESCRIPTION,
        is_default=True,
        now=now,
    )
    routing.create_main_route_table(s, account_id, vpc, now=now)
    return vpc


def get_vpc(s: Session, account_id: str, vpc_id: str) -> Vpc:
    """The account's VPC ``vpc_id``; InvalidVpcID.Malformed or InvalidVpcID.NotFound."""
    return get_owned(s, Vpc, "vpc", account_id, vpc_id)


def vpc_exists(s: Session, account_id: str, vpc_id: str) -> bool:
    return owned_exists(s, Vpc, account_id, vpc_id)


def list_vpcs(s: Session, account_id: str, vpc_ids: Sequence[str] = ()) -> list[Vpc]:
    """The account's VPCs (those of ``vpc_ids`` if given, each must exist), by id."""
    if vpc_ids:
        return sorted({v.id: v for v in (get_vpc(s, account_id, i) for i in vpc_ids)}.values(), key=_id)
    return list(s.scalars(select(Vpc).where(Vpc.account_id == account_id).order_by(Vpc.id)))


def _id(row: Vpc | Subnet) -> str:
    return row.id


def delete_vpc(s: Session, account_id: str, vpc_id: str) -> None:
    """Delete a VPC with its default group and main route table; DependencyViolation while
    it has anything else (subnets, other groups or route tables, an internet gateway)."""
    vpc = get_vpc(s, account_id, vpc_id)
    has_subnet = s.scalar(select(Subnet.id).where(Subnet.vpc_id == vpc.id).limit(1)) is not None
    groups = secgroups.list_groups(s, account_id, vpc.id)
    if has_subnet or any(not g.is_default for g in groups) or routing.vpc_has_dependencies(s, vpc.id):
        raise errors.InUse(f"The vpc '{vpc.id}' has dependencies and cannot be deleted.")
    for group in groups:
        secgroups.delete_group(s, account_id, group, force_default=True)
    routing.delete_vpc_routing(s, vpc.id)
    db_tags.delete_all_for(s, vpc.id)
    s.delete(vpc)
    s.flush()


# --- subnets --------------------------------------------------------------------------------


def create_subnet(
    s: Session,
    account_id: str,
    vpc: Vpc,
    cidr_block: str,
    zone: str,
    *,
    default_for_az: bool = False,
    now: dt.datetime | None = None,
) -> Subnet:
    """A new subnet of ``vpc``; InvalidSubnet.Range outside the VPC, .Conflict on overlap.

    ``cidr_block`` is a valid block of an accepted size (the caller checked).
    """
    if not cidr.contains(vpc.cidr_block, cidr_block):
        raise errors.InvalidParameterValue(f"The CIDR '{cidr_block}' is invalid.", code="InvalidSubnet.Range")
    siblings = s.scalars(select(Subnet.cidr_block).where(Subnet.vpc_id == vpc.id))
    if cidr.first_conflict(cidr_block, siblings) is not None:
        raise errors.InvalidParameterValue(
            f"The CIDR '{cidr_block}' conflicts with another subnet", code="InvalidSubnet.Conflict"
        )
    subnet = Subnet(
        id=ids.new_id("subnet"),
        account_id=account_id,
        vpc_id=vpc.id,
        cidr_block=cidr_block,
        availability_zone=zone,
        default_for_az=default_for_az,
        map_public_ip_on_launch=default_for_az,
        state="available",
        created_at=now or utcnow(),
    )
    s.add(subnet)
    s.flush()
    return subnet


def get_subnet(s: Session, account_id: str, subnet_id: str) -> Subnet:
    """The account's subnet ``subnet_id``; InvalidSubnetID.Malformed or InvalidSubnetID.NotFound."""
    return get_owned(s, Subnet, "subnet", account_id, subnet_id)


def subnet_exists(s: Session, account_id: str, subnet_id: str) -> bool:
    return owned_exists(s, Subnet, account_id, subnet_id)


def list_subnets(
    s: Session, account_id: str, subnet_ids: Sequence[str] = (), *, vpc_id: str | None = None
) -> list[Subnet]:
    """The account's subnets (those of ``subnet_ids`` if given, each must exist), by id."""
    if subnet_ids:
        found = {x.id: x for x in (get_subnet(s, account_id, i) for i in subnet_ids)}
        return sorted(found.values(), key=_id)
    q = select(Subnet).where(Subnet.account_id == account_id)
    if vpc_id is not None:
        q = q.where(Subnet.vpc_id == vpc_id)
    return list(s.scalars(q.order_by(Subnet.id)))


def default_subnet_for_az(s: Session, account_id: str, zone: str) -> Subnet | None:
    """The default subnet of the account's default VPC in ``zone``, or None."""
    return s.scalar(
        select(Subnet)
        .join(Vpc, Vpc.id == Subnet.vpc_id)
        .where(
            Subnet.account_id == account_id,
            Subnet.availability_zone == zone,
            Subnet.default_for_az.is_(True),
            Vpc.is_default.is_(True),
        )
        .order_by(Subnet.created_at)
    )


def used_addresses(s: Session, subnet_ids: Iterable[str]) -> dict[str, int]:
    """Addresses in use per subnet (0 until something registers in :data:`SUBNET_USAGE`)."""
    wanted = list(subnet_ids)
    used = dict.fromkeys(wanted, 0)
    for usage in SUBNET_USAGE:
        for subnet_id, count in usage(s, wanted).items():
            used[subnet_id] = used.get(subnet_id, 0) + count
    return used


def delete_subnet(s: Session, account_id: str, subnet_id: str) -> None:
    """Delete a subnet and its route table association; DependencyViolation while something
    (an instance, a NAT gateway ...) lives in it."""
    subnet = get_subnet(s, account_id, subnet_id)
    in_use = any(check(s, subnet.id) for check in SUBNET_IN_USE_CHECKS)
    if in_use or routing.subnet_has_nat_gateway(s, subnet.id):
        raise errors.InUse(f"The subnet '{subnet.id}' has dependencies and cannot be deleted.")
    routing.forget_subnet(s, subnet.id)
    db_tags.delete_all_for(s, subnet.id)
    s.delete(subnet)
    s.flush()
