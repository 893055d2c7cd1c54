"""vpcs subnets and security groups

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _account_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["account_id"], ["accounts.id"], name=op.f(f"fk_{table}_account_id_accounts"), ondelete="CASCADE"
    )


def _account_index(table: str) -> None:
    op.create_index(op.f(f"ix_{table}_account_id"), table, ["account_id"], unique=False)


def upgrade() -> None:
    op.create_table(
        "account_networks",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _account_fk("account_networks"),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_networks")),
    )
    op.create_table(
        "vpcs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("cidr_block", sa.String(length=43), nullable=False),
        sa.Column("cidr_association_id", sa.String(length=32), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("dhcp_options_id", sa.String(length=32), nullable=False),
        sa.Column("instance_tenancy", sa.String(length=16), nullable=False),
        sa.Column("enable_dns_support", sa.Boolean(), nullable=False),
        sa.Column("enable_dns_hostnames", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _account_fk("vpcs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vpcs")),
    )
    _account_index("vpcs")
    op.create_table(
        "subnets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("vpc_id", sa.String(length=32), nullable=False),
        sa.Column("cidr_block", sa.String(length=43), nullable=False),
        sa.Column("availability_zone", sa.String(length=64), nullable=False),
        sa.Column("default_for_az", sa.Boolean(), nullable=False),
        sa.Column("map_public_ip_on_launch", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _account_fk("subnets"),
        sa.ForeignKeyConstraint(
            ["vpc_id"], ["vpcs.id"], name=op.f("fk_subnets_vpc_id_vpcs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subnets")),
    )
    _account_index("subnets")
    op.create_index(op.f("ix_subnets_vpc_id"), "subnets", ["vpc_id"], unique=False)
    op.create_table(
        "security_groups",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("vpc_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _account_fk("security_groups"),
        sa.ForeignKeyConstraint(
            ["vpc_id"], ["vpcs.id"], name=op.f("fk_security_groups_vpc_id_vpcs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_groups")),
        sa.UniqueConstraint("vpc_id", "name", name=op.f("uq_security_groups_vpc_id_name")),
    )
    _account_index("security_groups")
    op.create_index(op.f("ix_security_groups_vpc_id"), "security_groups", ["vpc_id"], unique=False)
    op.create_table(
        "security_group_rules",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("group_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("is_egress", sa.Boolean(), nullable=False),
        sa.Column("ip_protocol", sa.String(length=8), nullable=False),
        sa.Column("from_port", sa.Integer(), nullable=True),
        sa.Column("to_port", sa.Integer(), nullable=True),
        sa.Column("cidr_ipv4", sa.String(length=43), nullable=True),
        sa.Column("cidr_ipv6", sa.String(length=43), nullable=True),
        sa.Column("prefix_list_id", sa.String(length=32), nullable=True),
        sa.Column("referenced_group_id", sa.String(length=32), nullable=True),
        sa.Column("referenced_group_owner", sa.String(length=12), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("fingerprint", sa.String(length=160), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _account_fk("security_group_rules"),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["security_groups.id"],
            name=op.f("fk_security_group_rules_group_id_security_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["referenced_group_id"],
            ["security_groups.id"],
            name=op.f("fk_security_group_rules_referenced_group_id_security_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_group_rules")),
        sa.UniqueConstraint(
            "group_id", "fingerprint", name=op.f("uq_security_group_rules_group_id_fingerprint")
        ),
    )
    _account_index("security_group_rules")
    op.create_index(
        op.f("ix_security_group_rules_group_id"), "security_group_rules", ["group_id"], unique=False
    )
    op.create_index(
        op.f("ix_security_group_rules_referenced_group_id"),
        "security_group_rules",
        ["referenced_group_id"],
        unique=False,
    )


def downgrade() -> None:
    # Dropping a table drops its indexes (MariaDB refuses to drop one a foreign key needs).
    op.drop_table("security_group_rules")
    op.drop_table("security_groups")
    op.drop_table("subnets")
    op.drop_table("vpcs")
    op.drop_table("account_networks")
