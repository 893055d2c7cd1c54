"""Network interfaces (ENIs), the private addresses they hold, and elastic IP addresses.

An instance's network identity lives here, not on the instance: every instance
has a primary interface (device index 0) made with it, and may have others
attached. The private addresses of every interface of a subnet are rows of
:class:`InterfaceAddress`, whose primary key (subnet, address) is the one
place that makes two interfaces never hold one address (the IPAM of
``ocs.db.ipam`` relies on it under concurrency).

An :class:`ElasticAddress` is a public address of the cloud's pool allocated to
an account; while associated it maps to one private address of one interface.
Its ``kind`` is ``elastic`` (AllocateAddress) or ``auto``: the public address
EC2 gives an instance's primary interface while it runs (MapPublicIpOnLaunch,
AssociatePublicIpAddress), always mapped, never seen by the address API.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from ocs.db.models.base import Base, utcnow

_ID = 32
ELASTIC = "elastic"
AUTO = "auto"


def _account_fk() -> Any:
    return mapped_column(String(12), ForeignKey("accounts.id", ondelete="CASCADE"), index=True)


class NetworkInterface(Base):
    """One ENI: where it lives, what it looks like, and what it is attached to.

    ``status`` is ``available`` or ``in-use``; the attachment columns are set
    while it is attached (``attach_status`` ``attached``), NULL otherwise. The
    unique (instance, device index) refuses two interfaces on one slot, even
    from two concurrent requests.
    """

    __tablename__ = "network_interfaces"
    __table_args__ = (
        UniqueConstraint("instance_id", "device_index"),
        Index("ix_network_interfaces_subnet_id", "subnet_id"),
    )

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    account_id: Mapped[str] = _account_fk()
    subnet_id: Mapped[str] = mapped_column(String(_ID))
    vpc_id: Mapped[str] = mapped_column(String(_ID))
    availability_zone: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(255), default="")
    mac_address: Mapped[str] = mapped_column(String(17))
    private_ip_address: Mapped[str] = mapped_column(String(45))
    security_group_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    source_dest_check: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="available")
    interface_type: Mapped[str] = mapped_column(String(32), default="interface")
    requester_managed: Mapped[bool] = mapped_column(Boolean, default=False)
    client_token: Mapped[str | None] = mapped_column(String(64))
    attachment_id: Mapped[str | None] = mapped_column(String(_ID), unique=True)
    instance_id: Mapped[str | None] = mapped_column(String(_ID), index=True)
    device_index: Mapped[int | None] = mapped_column(Integer)
    attach_status: Mapped[str | None] = mapped_column(String(16))
    attach_time: Mapped[dt.datetime | None] = mapped_column()
    delete_on_termination: Mapped[bool] = mapped_column(Boolean, default=False)
    associate_public_ip: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class InterfaceAddress(Base):
    """A private IPv4 address of a subnet held by one interface (its primary or a secondary)."""

    __tablename__ = "interface_addresses"

    subnet_id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    address: Mapped[str] = mapped_column(String(45), primary_key=True)
    network_interface_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("network_interfaces.id", ondelete="CASCADE"), index=True
    )
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ElasticAddress(Base):
    """An elastic IP: a public address of the pool, allocated to an account.

    The association columns are set while it maps to a private address of an
    interface; the unique ``public_ip`` makes two allocations never hand out one
    address, and the unique (interface, private address) maps at most one
    elastic IP to a private address. An ``auto`` row (see the module) is the
    same mapping with no association ID: sharing the table, both kinds share the
    guarantees, and the data plane reads one table for "public IP of (interface,
    private address)".
    """

    __tablename__ = "elastic_addresses"
    __table_args__ = (UniqueConstraint("network_interface_id", "private_ip_address"),)

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)  # eipalloc-...
    account_id: Mapped[str] = _account_fk()
    public_ip: Mapped[str] = mapped_column(String(45), unique=True)
    domain: Mapped[str] = mapped_column(String(16), default="vpc")
    kind: Mapped[str] = mapped_column(String(16), default=ELASTIC, server_default=ELASTIC)
    association_id: Mapped[str | None] = mapped_column(String(_ID), unique=True)
    network_interface_id: Mapped[str | None] = mapped_column(String(_ID), index=True)
    private_ip_address: Mapped[str | None] = mapped_column(String(45))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
