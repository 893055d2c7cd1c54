"""internet gateways, route tables and NAT gateways

Existing VPCs get their main route table (with the ``local`` route) here, and
existing default VPCs their attached internet gateway and ``0.0.0.0/0`` route to
it, as new ones get them from ``ocs.db.vpcs``. The migration is self-contained:
it makes its IDs itself instead of importing the application's code.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _account_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["account_id"], ["accounts.id"], name=op.f(f"fk_{table}_account_id_accounts"), ondelete="CASCADE"
    )


def _account_index(table: str) -> None:
    op.create_index(op.f(f"ix_{table}_account_id"), table, ["account_id"], unique=False)


def _id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(9)[:17]}"


def _create_tables() -> None:
    op.create_table(
        "internet_gateways",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("vpc_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _account_fk("internet_gateways"),
        sa.ForeignKeyConstraint(
            ["vpc_id"], ["vpcs.id"], name=op.f("fk_internet_gateways_vpc_id_vpcs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_internet_gateways")),
        sa.UniqueConstraint("vpc_id", name=op.f("uq_internet_gateways_vpc_id")),
    )
    _account_index("internet_gateways")
    op.create_table(
        "route_tables",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("vpc_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _account_fk("route_tables"),
        sa.ForeignKeyConstraint(
            ["vpc_id"], ["vpcs.id"], name=op.f("fk_route_tables_vpc_id_vpcs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_route_tables")),
    )
    _account_index("route_tables")
    op.create_index(op.f("ix_route_tables_vpc_id"), "route_tables", ["vpc_id"], unique=False)
    op.create_table(
        "route_table_associations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("route_table_id", sa.String(length=32), nullable=False),
        sa.Column("subnet_id", sa.String(length=32), nullable=True),
        sa.Column("main_vpc_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _account_fk("route_table_associations"),
        sa.ForeignKeyConstraint(
            ["route_table_id"],
            ["route_tables.id"],
            name=op.f("fk_route_table_associations_route_table_id_route_tables"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subnet_id"],
            ["subnets.id"],
            name=op.f("fk_route_table_associations_subnet_id_subnets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["main_vpc_id"],
            ["vpcs.id"],
            name=op.f("fk_route_table_associations_main_vpc_id_vpcs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_route_table_associations")),
        sa.UniqueConstraint("subnet_id", name=op.f("uq_route_table_associations_subnet_id")),
        sa.UniqueConstraint("main_vpc_id", name=op.f("uq_route_table_associations_main_vpc_id")),
    )
    _account_index("route_table_associations")
    op.create_index(
        op.f("ix_route_table_associations_route_table_id"),
        "route_table_associations",
        ["route_table_id"],
        unique=False,
    )
    op.create_table(
        "routes",
        sa.Column("route_table_id", sa.String(length=32), nullable=False),
        sa.Column("destination_cidr_block", sa.String(length=43), nullable=False),
        sa.Column("gateway_id", sa.String(length=32), nullable=True),
        sa.Column("nat_gateway_id", sa.String(length=32), nullable=True),
        sa.Column("instance_id", sa.String(length=32), nullable=True),
        sa.Column("network_interface_id", sa.String(length=32), nullable=True),
        sa.Column("origin", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["route_table_id"],
            ["route_tables.id"],
            name=op.f("fk_routes_route_table_id_route_tables"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("route_table_id", "destination_cidr_block", name=op.f("pk_routes")),
    )
    op.create_table(
        "nat_gateways",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("vpc_id", sa.String(length=32), nullable=False),
        sa.Column("subnet_id", sa.String(length=32), nullable=False),
        sa.Column("connectivity_type", sa.String(length=16), nullable=False),
        sa.Column("allocation_id", sa.String(length=32), nullable=True),
        sa.Column("network_interface_id", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        _account_fk("nat_gateways"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nat_gateways")),
    )
    _account_index("nat_gateways")
    op.create_index(op.f("ix_nat_gateways_vpc_id"), "nat_gateways", ["vpc_id"], unique=False)
    op.create_index(op.f("ix_nat_gateways_subnet_id"), "nat_gateways", ["subnet_id"], unique=False)


def _route_existing_vpcs() -> None:
    """Give every VPC made before this revision what new VPCs get."""
    conn = op.get_bind()
    meta = sa.MetaData()
    vpcs = sa.Table("vpcs", meta, autoload_with=conn)
    igws = sa.Table("internet_gateways", meta, autoload_with=conn)
    tables = sa.Table("route_tables", meta, autoload_with=conn)
    assocs = sa.Table("route_table_associations", meta, autoload_with=conn)
    routes = sa.Table("routes", meta, autoload_with=conn)
    now = dt.datetime.now(dt.UTC)
    if conn.dialect.name != "postgresql":  # as ocs.db.models.base.UtcDateTime stores it
        now = now.replace(tzinfo=None)
    rows = conn.execute(sa.select(vpcs.c.id, vpcs.c.account_id, vpcs.c.cidr_block, vpcs.c.is_default)).all()
    for vpc_id, account_id, block, is_default in rows:
        table_id = _id("rtb")
        owner = {"account_id": account_id, "created_at": now}
        conn.execute(tables.insert().values(id=table_id, vpc_id=vpc_id, **owner))
        conn.execute(
            assocs.insert().values(id=_id("rtbassoc"), route_table_id=table_id, main_vpc_id=vpc_id, **owner)
        )
        local = {"route_table_id": table_id, "created_at": now}
        conn.execute(
            routes.insert().values(
                destination_cidr_block=block, gateway_id="local", origin="CreateRouteTable", **local
            )
        )
        if is_default:
            igw_id = _id("igw")
            conn.execute(igws.insert().values(id=igw_id, vpc_id=vpc_id, **owner))
            conn.execute(
                routes.insert().values(
                    destination_cidr_block="0.0.0.0/0", gateway_id=igw_id, origin="CreateRoute", **local
                )
            )


def upgrade() -> None:
    _create_tables()
    _route_existing_vpcs()


def downgrade() -> None:
    # Dropping a table drops its indexes (MariaDB refuses to drop one a foreign key needs).
    op.drop_table("nat_gateways")
    op.drop_table("routes")
    op.drop_table("route_table_associations")
    op.drop_table("route_tables")
    op.drop_table("internet_gateways")
