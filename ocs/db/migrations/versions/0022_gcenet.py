"""Compute Engine networks, subnetworks, addresses and firewalls

Four new tables: ``gce_networks`` (a VPC's Compute Engine name, unique per project),
``gce_subnetworks`` (a subnet's name, unique per project and region) and
``gce_addresses`` (an Elastic IP's name, unique per project and region) and
``gce_firewalls`` (Compute Engine firewall rules of a network).

Revision ID: 0022
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "gce_networks",
        sa.Column("vpc_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("auto_create_subnetworks", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("gce_networks", "vpc_id", "vpcs"),
        _fk("gce_networks", "account_id", "accounts"),
        sa.PrimaryKeyConstraint("vpc_id", name=op.f("pk_gce_networks")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_gce_networks_account_id_name")),
    )
    op.create_table(
        "gce_subnetworks",
        sa.Column("subnet_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("gce_subnetworks", "subnet_id", "subnets"),
        _fk("gce_subnetworks", "account_id", "accounts"),
        sa.PrimaryKeyConstraint("subnet_id", name=op.f("pk_gce_subnetworks")),
        sa.UniqueConstraint(
            "account_id", "region", "name", name=op.f("uq_gce_subnetworks_account_id_region_name")
        ),
    )
    op.create_table(
        "gce_addresses",
        sa.Column("allocation_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("gce_addresses", "allocation_id", "elastic_addresses"),
        _fk("gce_addresses", "account_id", "accounts"),
        sa.PrimaryKeyConstraint("allocation_id", name=op.f("pk_gce_addresses")),
        sa.UniqueConstraint(
            "account_id", "region", "name", name=op.f("uq_gce_addresses_account_id_region_name")
        ),
    )
    op.create_table(
        "gce_firewalls",
        sa.Column("id", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("vpc_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("allowed", sa.JSON(), nullable=False),
        sa.Column("denied", sa.JSON(), nullable=False),
        sa.Column("source_ranges", sa.JSON(), nullable=False),
        sa.Column("destination_ranges", sa.JSON(), nullable=False),
        sa.Column("source_tags", sa.JSON(), nullable=False),
        sa.Column("target_tags", sa.JSON(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("gce_firewalls", "vpc_id", "vpcs"),
        _fk("gce_firewalls", "account_id", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gce_firewalls")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_gce_firewalls_account_id_name")),
    )
    op.create_index(op.f("ix_gce_firewalls_vpc_id"), "gce_firewalls", ["vpc_id"], unique=False)


def downgrade() -> None:
    op.drop_table("gce_firewalls")
    op.drop_table("gce_addresses")
    op.drop_table("gce_subnetworks")
    op.drop_table("gce_networks")
