"""Compute Engine front end: service-account keys, operations, instance names

Three new tables: ``gce_service_keys`` (the public key of each service-account
key, by ``private_key_id``), ``gce_operations`` (Operation resources) and
``gce_instances`` (an instance's Compute Engine name, unique per project and
zone, its labels, metadata and network tags).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _account_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["account_id"], ["accounts.id"], name=op.f(f"fk_{table}_account_id_accounts"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "gce_service_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("client_email", sa.String(length=255), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _account_fk("gce_service_keys"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gce_service_keys")),
    )
    op.create_index(op.f("ix_gce_service_keys_account_id"), "gce_service_keys", ["account_id"])
    op.create_index(op.f("ix_gce_service_keys_client_email"), "gce_service_keys", ["client_email"])
    op.create_table(
        "gce_operations",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("location", sa.String(length=64), nullable=False),
        sa.Column("operation_type", sa.String(length=32), nullable=False),
        sa.Column("target_link", sa.Text(), nullable=False),
        sa.Column("target_id", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(length=255), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("http_error_status_code", sa.Integer(), nullable=True),
        sa.Column("http_error_message", sa.String(length=64), nullable=True),
        sa.Column("insert_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        _account_fk("gce_operations"),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_gce_operations")),
        sa.UniqueConstraint("account_id", "request_id", name=op.f("uq_gce_operations_account_id_request_id")),
    )
    op.create_index(op.f("ix_gce_operations_account_id"), "gce_operations", ["account_id"])
    op.create_index(op.f("ix_gce_operations_id"), "gce_operations", ["id"])
    op.create_table(
        "gce_instances",
        sa.Column("instance_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("metadata_items", sa.JSON(), nullable=False),
        sa.Column("network_tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _account_fk("gce_instances"),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_gce_instances_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_gce_instances")),
        sa.UniqueConstraint("account_id", "zone", "name", name=op.f("uq_gce_instances_account_id_zone_name")),
    )


def downgrade() -> None:
    # Dropping a table drops its indexes (MariaDB refuses to drop an index a foreign key needs).
    op.drop_table("gce_instances")
    op.drop_table("gce_operations")
    op.drop_table("gce_service_keys")
