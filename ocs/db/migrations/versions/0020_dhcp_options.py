"""DHCP options sets and customer gateways

Two new tables: ``dhcp_options`` (an account's sets; the one EC2 makes for every
account is marked ``default_for = 'account'``, made when the account next creates a
VPC) and ``customer_gateways`` (records of VPN peers). ``vpcs.dhcp_options_id`` exists
since 0005: existing VPCs keep ``default`` (no options) until associated with a set.

Revision ID: 0020
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _account_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["account_id"], ["accounts.id"], name=op.f(f"fk_{table}_account_id_accounts"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "dhcp_options",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("configurations", sa.JSON(), nullable=False),
        sa.Column("default_for", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _account_fk("dhcp_options"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dhcp_options")),
        sa.UniqueConstraint("account_id", "default_for", name=op.f("uq_dhcp_options_account_id_default_for")),
    )
    op.create_index(op.f("ix_dhcp_options_account_id"), "dhcp_options", ["account_id"], unique=False)
    op.create_table(
        "customer_gateways",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("bgp_asn", sa.String(length=16), nullable=False),
        sa.Column("ip_address", sa.String(length=45), nullable=True),
        sa.Column("gateway_type", sa.String(length=16), nullable=False),
        sa.Column("device_name", sa.String(length=255), nullable=True),
        sa.Column("certificate_arn", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _account_fk("customer_gateways"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_gateways")),
    )
    op.create_index(
        op.f("ix_customer_gateways_account_id"), "customer_gateways", ["account_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_customer_gateways_account_id"), table_name="customer_gateways")
    op.drop_table("customer_gateways")
    op.drop_index(op.f("ix_dhcp_options_account_id"), table_name="dhcp_options")
    op.drop_table("dhcp_options")
