"""DHCP options sets and customer gateways

Two new tables: ``dhcp_options`` (an account's sets; the one EC2 makes for every
account is marked ``default_for = 'account'``, made when the account next creates a
VPC) and ``customer_gateways`` (records of VPN peers). ``vpcs.dhcp_options_id`` exists
since 0005 and held ``default``: each account with VPCs gets its default set here and its
VPCs are associated with it (their DHCP servers keep handing out the cloud's own options;
``default`` now means no options at all). Downgrading puts ``default`` back.

Revision ID: 0020
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0018"
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
    _default_sets()


def _default_sets() -> None:
    """The default set of every account that has VPCs, and its VPCs associated with it."""
    conn = op.get_bind()
    vpcs = sa.table("vpcs", sa.column("account_id", sa.String), sa.column("dhcp_options_id", sa.String))
    sets = sa.table(
        "dhcp_options",
        sa.column("id", sa.String),
        sa.column("account_id", sa.String),
        sa.column("configurations", sa.JSON),
        sa.column("default_for", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    now = dt.datetime.now(dt.UTC)
    accounts = conn.execute(sa.select(vpcs.c.account_id).distinct()).scalars().all()
    for account_id in accounts:
        dopt = f"dopt-{secrets.token_hex(9)[:17]}"
        conn.execute(
            sets.insert().values(
                id=dopt, account_id=account_id, configurations=[], default_for="account", created_at=now
            )
        )
        conn.execute(
            vpcs.update()
            .where(vpcs.c.account_id == account_id, vpcs.c.dhcp_options_id == "default")
            .values(dhcp_options_id=dopt)
        )


def downgrade() -> None:
    vpcs = sa.table("vpcs", sa.column("dhcp_options_id", sa.String))
    op.get_bind().execute(vpcs.update().values(dhcp_options_id="default"))
    # Dropping a table drops its indexes; MariaDB refuses to drop an index a foreign key
    # needs first.
    op.drop_table("customer_gateways")
    op.drop_table("dhcp_options")
