"""images

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TYPES = "image_type IN ('machine', 'kernel', 'ramdisk')"
_STATES = (
    "state IN ('pending', 'available', 'invalid', 'deregistered', 'transient', 'failed', 'error', 'disabled')"
)
_ROOT = "root_device_type IN ('ebs', 'instance-store')"
_VIRT = "virtualization_type IN ('hvm', 'paravirtual')"


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.String(length=21), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("image_type", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("architecture", sa.String(length=16), nullable=False),
        sa.Column("kernel_id", sa.String(length=21), nullable=True),
        sa.Column("ramdisk_id", sa.String(length=21), nullable=True),
        sa.Column("root_device_name", sa.String(length=32), nullable=True),
        sa.Column("root_device_type", sa.String(length=16), nullable=False),
        sa.Column("virtualization_type", sa.String(length=16), nullable=False),
        sa.Column("is_public", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("ena_support", sa.Boolean(), nullable=True),
        sa.Column("sriov_net_support", sa.String(length=16), nullable=True),
        sa.Column("boot_mode", sa.String(length=16), nullable=True),
        sa.Column("tpm_support", sa.String(length=8), nullable=True),
        sa.Column("imds_support", sa.String(length=8), nullable=True),
        sa.Column("location", sa.String(length=255), nullable=True),
        sa.Column("disk_format", sa.String(length=8), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("virtual_size", sa.BigInteger(), nullable=True),
        sa.Column("checksum", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deregistered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_launched_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(_TYPES, name=op.f("ck_images_image_type")),
        sa.CheckConstraint(_STATES, name=op.f("ck_images_state")),
        sa.CheckConstraint(_ROOT, name=op.f("ck_images_root_device_type")),
        sa.CheckConstraint(_VIRT, name=op.f("ck_images_virtualization_type")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_images_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
    )
    op.create_index(op.f("ix_images_account_id"), "images", ["account_id"], unique=False)
    op.create_index("ix_images_account_name", "images", ["account_id", "name"], unique=False)
    op.create_index(op.f("ix_images_is_public"), "images", ["is_public"], unique=False)
    op.create_table(
        "image_launch_permissions",
        sa.Column("image_id", sa.String(length=21), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_image_launch_permissions_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", "account_id", name=op.f("pk_image_launch_permissions")),
    )
    op.create_index(
        op.f("ix_image_launch_permissions_account_id"),
        "image_launch_permissions",
        ["account_id"],
        unique=False,
    )


def downgrade() -> None:
    # Dropping a table drops its indexes (MariaDB refuses to drop an index a
    # foreign key still needs).
    op.drop_table("image_launch_permissions")
    op.drop_table("images")
