"""VPCs, subnets, security groups and their rules (the records; enforcement is elsewhere).

Every row carries the ``account_id`` of its owner, and every query filters by it.
Deleting an account deletes its network (foreign keys cascade); the API itself
refuses to delete a VPC that still has subnets or groups (DependencyViolation).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ocs.db.models.base import Base, utcnow

_ID = 32
_CIDR = 43  # the longest IPv6 CIDR text: 39 characters, '/', 3 digits


def _account_fk() -> Any:
    return mapped_column(String(12), ForeignKey("accounts.id", ondelete="CASCADE"), index=True)


class AccountNetwork(Base):
    """Marks an account whose default network was made (once, even if deleted later).

    Its primary key is what makes provisioning race-safe: of several requests that
    provision a new account at once, exactly one inserts this row.
    """

    __tablename__ = "account_networks"

    account_id: Mapped[str] = mapped_column(
        String(12), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Vpc(Base):
    """A VPC: one IPv4 block; the account's default VPC has ``is_default``."""

    __tablename__ = "vpcs"

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    account_id: Mapped[str] = _account_fk()
    cidr_block: Mapped[str] = mapped_column(String(_CIDR))
    cidr_association_id: Mapped[str] = mapped_column(String(_ID))
    is_default: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(16), default="available")
    dhcp_options_id: Mapped[str] = mapped_column(String(_ID), default="default")
    instance_tenancy: Mapped[str] = mapped_column(String(16), default="default")
    enable_dns_support: Mapped[bool] = mapped_column(default=True)
    enable_dns_hostnames: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Subnet(Base):
    """A subnet of a VPC in one availability zone."""

    __tablename__ = "subnets"

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    account_id: Mapped[str] = _account_fk()
    vpc_id: Mapped[str] = mapped_column(String(_ID), ForeignKey("vpcs.id", ondelete="CASCADE"), index=True)
    cidr_block: Mapped[str] = mapped_column(String(_CIDR))
    availability_zone: Mapped[str] = mapped_column(String(64))
    default_for_az: Mapped[bool] = mapped_column(default=False)
    map_public_ip_on_launch: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(16), default="available")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SecurityGroup(Base):
    """A security group of a VPC; its name is unique within the VPC."""

    __tablename__ = "security_groups"
    __table_args__ = (UniqueConstraint("vpc_id", "name"),)

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    account_id: Mapped[str] = _account_fk()
    vpc_id: Mapped[str] = mapped_column(String(_ID), ForeignKey("vpcs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(String(255))
    is_default: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SecurityGroupRule(Base):
    """One rule of a group: a protocol and port range to or from one peer.

    The peer is exactly one of ``cidr_ipv4``, ``cidr_ipv6``, ``prefix_list_id`` and
    ``referenced_group_id``. ``fingerprint`` is the rule without its description,
    so that the unique constraint refuses the same rule twice, even from two
    requests at once. ``position`` keeps the order rules were added in.
    """

    __tablename__ = "security_group_rules"
    __table_args__ = (UniqueConstraint("group_id", "fingerprint"),)

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    group_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("security_groups.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[str] = _account_fk()
    is_egress: Mapped[bool] = mapped_column(default=False)
    ip_protocol: Mapped[str] = mapped_column(String(8))
    from_port: Mapped[int | None] = mapped_column(Integer)
    to_port: Mapped[int | None] = mapped_column(Integer)
    cidr_ipv4: Mapped[str | None] = mapped_column(String(_CIDR))
    cidr_ipv6: Mapped[str | None] = mapped_column(String(_CIDR))
    prefix_list_id: Mapped[str | None] = mapped_column(String(_ID))
    referenced_group_id: Mapped[str | None] = mapped_column(
        String(_ID), ForeignKey("security_groups.id", ondelete="CASCADE"), index=True
    )
    referenced_group_owner: Mapped[str | None] = mapped_column(String(12))
    description: Mapped[str | None] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(160))
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
