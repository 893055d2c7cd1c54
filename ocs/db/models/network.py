"""VPCs, subnets, security groups and their rules (the records; enforcement is elsewhere).

Every row carries the ``account_id`` of its owner, and every query filters by it.
Deleting an account deletes its network (foreign keys cascade); the API itself
refuses to delete a VPC that still has subnets or groups (DependencyViolation).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
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


class DhcpOptions(Base):
    """A DHCP options set: ``configurations`` is ``[[key, [value, ...]], ...]`` as created.

    The set EC2 makes for every account (and gives each new VPC) has ``default_for``
    ``"account"`` and no stored configurations: its domain name depends on the region,
    so the API writes them. The unique (account, default_for) makes that set once even
    for concurrent requests (NULLs never collide)."""

    __tablename__ = "dhcp_options"
    __table_args__ = (UniqueConstraint("account_id", "default_for"),)

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    account_id: Mapped[str] = _account_fk()
    configurations: Mapped[list[Any]] = mapped_column(JSON, default=list)
    default_for: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CustomerGateway(Base):
    """A customer gateway: the record of a VPN peer (EC2 keeps it as a record too)."""

    __tablename__ = "customer_gateways"

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    account_id: Mapped[str] = _account_fk()
    bgp_asn: Mapped[str] = mapped_column(String(16))
    ip_address: Mapped[str | None] = mapped_column(String(45))
    gateway_type: Mapped[str] = mapped_column(String(16), default="ipsec.1")
    device_name: Mapped[str | None] = mapped_column(String(255))
    certificate_arn: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default="available")
    deleted_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
