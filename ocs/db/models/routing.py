"""Internet gateways, route tables (their routes and associations) and NAT gateways.

The records only; what they mean on the wire is ``ocs-network``'s business.
Uniqueness EC2 promises is kept by the database, so that two requests at once
cannot break it: an internet gateway is attached to at most one VPC and a VPC
has at most one (``internet_gateways.vpc_id`` unique); a subnet has at most one
route table association (``subnet_id`` unique) and a VPC exactly one main one
(``main_vpc_id`` unique, set only on the main association); a route table has
one route per destination (the primary key).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ocs.db.models.base import Base, utcnow
from ocs.db.models.network import _CIDR, _ID, _account_fk


class InternetGateway(Base):
    """An internet gateway; ``vpc_id`` is the VPC it is attached to, or None."""

    __tablename__ = "internet_gateways"
    __table_args__ = (UniqueConstraint("vpc_id"),)

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    account_id: Mapped[str] = _account_fk()
    vpc_id: Mapped[str | None] = mapped_column(String(_ID), ForeignKey("vpcs.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RouteTable(Base):
    """A route table of a VPC; which one is the VPC's main table is its association's business."""

    __tablename__ = "route_tables"

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    account_id: Mapped[str] = _account_fk()
    vpc_id: Mapped[str] = mapped_column(String(_ID), ForeignKey("vpcs.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RouteTableAssociation(Base):
    """A route table's association with a subnet, or the VPC's main association.

    Exactly one of ``subnet_id`` and ``main_vpc_id`` is set.
    """

    __tablename__ = "route_table_associations"
    __table_args__ = (UniqueConstraint("subnet_id"), UniqueConstraint("main_vpc_id"))

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    account_id: Mapped[str] = _account_fk()
    route_table_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("route_tables.id", ondelete="CASCADE"), index=True
    )
    subnet_id: Mapped[str | None] = mapped_column(String(_ID), ForeignKey("subnets.id", ondelete="CASCADE"))
    main_vpc_id: Mapped[str | None] = mapped_column(String(_ID), ForeignKey("vpcs.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Route(Base):
    """One IPv4 route of a table: a destination block and exactly one target.

    The ``local`` route (``gateway_id == 'local'``, origin ``CreateRouteTable``) is
    made with the table. Targets are plain IDs, not foreign keys: a route whose
    target went away stays and shows ``blackhole``, as on EC2.
    """

    __tablename__ = "routes"

    route_table_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("route_tables.id", ondelete="CASCADE"), primary_key=True
    )
    destination_cidr_block: Mapped[str] = mapped_column(String(_CIDR), primary_key=True)
    gateway_id: Mapped[str | None] = mapped_column(String(_ID))
    nat_gateway_id: Mapped[str | None] = mapped_column(String(_ID))
    instance_id: Mapped[str | None] = mapped_column(String(_ID))
    network_interface_id: Mapped[str | None] = mapped_column(String(_ID))
    origin: Mapped[str] = mapped_column(String(32), default="CreateRoute")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class NatGateway(Base):
    """A NAT gateway in a subnet; kept a while after deletion (``state == 'deleted'``).

    ``subnet_id``/``vpc_id`` are plain IDs so that a deleted gateway stays visible
    after its subnet is gone. ``network_interface_id`` is its requester-managed
    interface (deleted with it); ``host`` the host whose network service carries
    it (None: nobody does, a record only). States: ``pending`` until that host
    built it, ``available``, ``deleting`` until it tore it down, ``deleted``
    (or ``failed``).
    """

    __tablename__ = "nat_gateways"

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    account_id: Mapped[str] = _account_fk()
    vpc_id: Mapped[str] = mapped_column(String(_ID), index=True)
    subnet_id: Mapped[str] = mapped_column(String(_ID), index=True)
    connectivity_type: Mapped[str] = mapped_column(String(16), default="public")
    allocation_id: Mapped[str | None] = mapped_column(String(_ID))
    network_interface_id: Mapped[str] = mapped_column(String(_ID))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    host: Mapped[str | None] = mapped_column(String(255), index=True)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[dt.datetime | None] = mapped_column()
