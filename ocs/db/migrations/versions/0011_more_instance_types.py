"""more of EC2's common small instance types in the default set (data only)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04

Clients ask for t2.nano ... t2.2xlarge, the t3a family and the 4xlarge sizes of
m5, c5 and r5 by name; the default set of ``0002`` lacked them. The figures are
EC2's (vCPUs, threads per core, memory, network interfaces, IPv4 addresses per
interface, network performance, sustained clock speed); the root disk follows
``0002``'s rule, doubled again for 4xlarge (128 GiB). A type an operator has
already created under one of these names is left as it is. No schema change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name, vcpus, threads per core, memory MiB, root disk GiB, burstable, free tier,
# network interfaces, IPv4 addresses per interface, network performance, GHz
MORE_TYPES: tuple[tuple[str, int, int, int, int, bool, bool, int, int, str, float], ...] = (
    ("t2.nano", 1, 1, 512, 8, True, False, 2, 2, "Low to Moderate", 2.5),
    ("t2.small", 1, 1, 2048, 8, True, False, 3, 4, "Low to Moderate", 2.5),
    ("t2.medium", 2, 1, 4096, 16, True, False, 3, 6, "Low to Moderate", 2.5),
    ("t2.large", 2, 1, 8192, 16, True, False, 3, 12, "Low to Moderate", 2.5),
    ("t2.xlarge", 4, 1, 16384, 32, True, False, 3, 15, "Moderate", 2.5),
    ("t2.2xlarge", 8, 1, 32768, 64, True, False, 3, 15, "Moderate", 2.5),
    ("t3a.nano", 2, 2, 512, 8, True, False, 2, 2, "Up to 5 Gigabit", 2.2),
    ("t3a.micro", 2, 2, 1024, 8, True, False, 2, 2, "Up to 5 Gigabit", 2.2),
    ("t3a.small", 2, 2, 2048, 8, True, False, 2, 4, "Up to 5 Gigabit", 2.2),
    ("t3a.medium", 2, 2, 4096, 16, True, False, 3, 6, "Up to 5 Gigabit", 2.2),
    ("t3a.large", 2, 2, 8192, 16, True, False, 3, 12, "Up to 5 Gigabit", 2.2),
    ("t3a.xlarge", 4, 2, 16384, 32, True, False, 4, 15, "Up to 5 Gigabit", 2.2),
    ("t3a.2xlarge", 8, 2, 32768, 64, True, False, 4, 15, "Up to 5 Gigabit", 2.2),
    ("m5.4xlarge", 16, 2, 65536, 128, False, False, 8, 30, "Up to 10 Gigabit", 3.1),
    ("c5.4xlarge", 16, 2, 32768, 128, False, False, 8, 30, "Up to 10 Gigabit", 3.4),
    ("r5.2xlarge", 8, 2, 65536, 64, False, False, 4, 15, "Up to 10 Gigabit", 3.1),
    ("r5.4xlarge", 16, 2, 131072, 128, False, False, 8, 30, "Up to 10 Gigabit", 3.1),
)

_TABLE = sa.table(
    "instance_types",
    sa.column("name", sa.String),
    sa.column("vcpus", sa.Integer),
    sa.column("memory_mib", sa.Integer),
    sa.column("root_disk_gib", sa.Integer),
    sa.column("architecture", sa.String),
    sa.column("threads_per_core", sa.Integer),
    sa.column("current_generation", sa.Boolean),
    sa.column("burstable", sa.Boolean),
    sa.column("free_tier_eligible", sa.Boolean),
    sa.column("max_network_interfaces", sa.Integer),
    sa.column("ipv4_addresses_per_interface", sa.Integer),
    sa.column("network_performance", sa.String),
    sa.column("sustained_clock_speed_ghz", sa.Float),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    conn = op.get_bind()
    existing = set(conn.execute(sa.select(_TABLE.c.name)).scalars())
    now = dt.datetime.now(dt.UTC)
    rows = [
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
        ) in MORE_TYPES
        if name not in existing
    ]
    if rows:
        op.bulk_insert(_TABLE, rows)


def downgrade() -> None:
    # Types that instances still name stay (the instances would lose their size).
    used: sa.Select[str] = sa.select(sa.column("instance_type", sa.String)).select_from(sa.table("instances"))
    names = [row[0] for row in MORE_TYPES]
    op.execute(_TABLE.delete().where(_TABLE.c.name.in_(names), _TABLE.c.name.not_in(used)))
