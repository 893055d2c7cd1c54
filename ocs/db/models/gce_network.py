"""The Compute Engine names of networks and subnetworks made through Compute Engine.

* ``gce_networks``: a network is a VPC; its ``name`` is unique per project (a unique
  constraint, so two concurrent inserts cannot both take it). A VPC without a row
  shows as ``default`` (the default VPC) or under its VPC ID.
* ``gce_subnetworks``: a subnetwork is a subnet; its ``name`` is unique per project
  and region. A subnet without a row shows under its subnet ID.
* ``gce_addresses``: a static external address is an Elastic IP; its ``name`` is
  unique per project and region. An Elastic IP without a row shows under its
  allocation ID.
* ``gce_firewalls``: Compute Engine firewall rules of a network (a VPC), name unique
  per project; enforced by :mod:`ocs.network.gce_firewall` on the ports of
  instances in networks made through Compute Engine.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
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


class GceFirewall(Base):
    __tablename__ = "gce_firewalls"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[str] = mapped_column(String(20), primary_key=True)  # decimal uint64
    account_id: Mapped[str] = mapped_column(String(12), ForeignKey("accounts.id", ondelete="CASCADE"))
    vpc_id: Mapped[str] = mapped_column(String(32), ForeignKey("vpcs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(Text, default="")
    direction: Mapped[str] = mapped_column(String(8), default="INGRESS")
    priority: Mapped[int] = mapped_column(Integer, default=1000)
    allowed: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    denied: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    source_ranges: Mapped[list[str]] = mapped_column(JSON, default=list)
    destination_ranges: Mapped[list[str]] = mapped_column(JSON, default=list)
    source_tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    target_tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
