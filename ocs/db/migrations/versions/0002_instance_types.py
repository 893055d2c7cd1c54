"""instance types, and the default set every cloud starts with

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

The default set resembles EC2's small general-purpose families, with EC2's own
vCPU, thread and memory figures, network limits and sustained clock speeds. EC2
types have no root disk size (it comes from the image); OCS gives each type one,
used when neither the image nor the block device mappings say otherwise: 8 GiB
(the usual size of an EC2 Linux image's root volume) for nano, micro and small,
16 GiB for medium and large, 32 GiB for xlarge and 64 GiB for 2xlarge.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ARCH = "architecture IN ('x86_64', 'arm64', 'i386')"

# name, vcpus, threads per core, memory MiB, root disk GiB, burstable, free tier,
# network interfaces, IPv4 addresses per interface, network performance, GHz
DEFAULT_TYPES: tuple[tuple[str, int, int, int, int, bool, bool, int, int, str, float], ...] = (
    ("t2.micro", 1, 1, 1024, 8, True, True, 2, 2, "Low to Moderate", 2.5),
    ("t3.nano", 2, 2, 512, 8, True, False, 2, 2, "Up to 5 Gigabit", 2.5),
    ("t3.micro", 2, 2, 1024, 8, True, True, 2, 2, "Up to 5 Gigabit", 2.5),
    ("t3.small", 2, 2, 2048, 8, True, False, 3, 4, "Up to 5 Gigabit", 2.5),
    ("t3.medium", 2, 2, 4096, 16, True, False, 3, 6, "Up to 5 Gigabit", 2.5),
    ("t3.large", 2, 2, 8192, 16, True, False, 3, 12, "Up to 5 Gigabit", 2.5),
    ("t3.xlarge", 4, 2, 16384, 32, True, False, 4, 15, "Up to 5 Gigabit", 2.5),
    ("t3.2xlarge", 8, 2, 32768, 64, True, False, 4, 15, "Up to 5 Gigabit", 2.5),
    ("m5.large", 2, 2, 8192, 16, False, False, 3, 10, "Up to 10 Gigabit", 3.1),
    ("m5.xlarge", 4, 2, 16384, 32, False, False, 4, 15, "Up to 10 Gigabit", 3.1),
    ("m5.2xlarge", 8, 2, 32768, 64, False, False, 4, 15, "Up to 10 Gigabit", 3.1),
    ("c5.large", 2, 2, 4096, 16, False, False, 3, 10, "Up to 10 Gigabit", 3.4),
    ("c5.xlarge", 4, 2, 8192, 32, False, False, 4, 15, "Up to 10 Gigabit", 3.4),
    ("c5.2xlarge", 8, 2, 16384, 64, False, False, 4, 15, "Up to 10 Gigabit", 3.4),
    ("r5.large", 2, 2, 16384, 16, False, False, 3, 10, "Up to 10 Gigabit", 3.1),
    ("r5.xlarge", 4, 2, 32768, 32, False, False, 4, 15, "Up to 10 Gigabit", 3.1),
)


def upgrade() -> None:
    table = op.create_table(
        "instance_types",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("memory_mib", sa.Integer(), nullable=False),
        sa.Column("root_disk_gib", sa.Integer(), nullable=False),
        sa.Column("architecture", sa.String(length=16), nullable=False),
        sa.Column("threads_per_core", sa.Integer(), nullable=False),
        sa.Column("current_generation", sa.Boolean(), nullable=False),
        sa.Column("burstable", sa.Boolean(), nullable=False),
        sa.Column("free_tier_eligible", sa.Boolean(), nullable=False),
        sa.Column("max_network_interfaces", sa.Integer(), nullable=False),
        sa.Column("ipv4_addresses_per_interface", sa.Integer(), nullable=False),
        sa.Column("network_performance", sa.String(length=64), nullable=False),
        sa.Column("sustained_clock_speed_ghz", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("vcpus > 0", name=op.f("ck_instance_types_vcpus")),
        sa.CheckConstraint("memory_mib > 0", name=op.f("ck_instance_types_memory_mib")),
        sa.CheckConstraint("root_disk_gib > 0", name=op.f("ck_instance_types_root_disk_gib")),
        sa.CheckConstraint("threads_per_core > 0", name=op.f("ck_instance_types_threads_per_core")),
        sa.CheckConstraint(_ARCH, name=op.f("ck_instance_types_architecture")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_instance_types")),
    )
    now = dt.datetime.now(dt.UTC)
    op.bulk_insert(
        table,
        [
            {
                "name": name,
                "vcpus": vcpus,
                "memory_mib": memory,
                "root_disk_gib": disk,
                "architecture": "x86_64",
                "threads_per_core": threads,
                "current_generation": True,
                "burstable": burstable,
                "free_tier_eligible": free_tier,
                "max_network_interfaces": enis,
                "ipv4_addresses_per_interface": ips,
                "network_performance": performance,
                "sustained_clock_speed_ghz": ghz,
                "created_at": now,
            }
            for (
                name,
                vcpus,
                threads,
                memory,
                disk,
                burstable,
                free_tier,
                enis,
                ips,
                performance,
                ghz,
            ) in DEFAULT_TYPES
        ],
    )


def downgrade() -> None:
    op.drop_table("instance_types")
