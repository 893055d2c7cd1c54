"""The Compute Engine names of networks and subnetworks made through Compute Engine.

* ``gce_networks``: a network is a VPC; its ``name`` is unique per project (a unique
  constraint, so two concurrent inserts cannot both take it). A VPC without a row
  shows as ``default`` (the default VPC) or under its VPC ID.
* ``gce_subnetworks``: a subnetwork is a subnet; its ``name`` is unique per project
  and region. A subnet without a row shows under its subnet ID.
* ``gce_addresses``: a static external address is an Elastic IP; its ``name`` is
  unique per project and region. An Elastic IP without a row shows under its
  allocation ID.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ocs.db.models.base import Base, utcnow


class GceNetwork(Base):
    __tablename__ = "gce_networks"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    vpc_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("vpcs.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(String(12), ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(Text, default="")
    auto_create_subnetworks: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class GceSubnetwork(Base):
    __tablename__ = "gce_subnetworks"
    __table_args__ = (UniqueConstraint("account_id", "region", "name"),)

    subnet_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("subnets.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(String(12), ForeignKey("accounts.id", ondelete="CASCADE"))
    region: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class GceAddress(Base):
    __tablename__ = "gce_addresses"
    __table_args__ = (UniqueConstraint("account_id", "region", "name"),)

    allocation_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("elastic_addresses.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(String(12), ForeignKey("accounts.id", ondelete="CASCADE"))
    region: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
