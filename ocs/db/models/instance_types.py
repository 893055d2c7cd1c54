"""Instance types: the sizes an operator offers (``ocs-manage instance-type ...``).

Instance types are not per account: every account sees the same set. The default
set (see migration ``0002``) resembles EC2's small general-purpose families.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from sqlalchemy import CheckConstraint, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from ocs.db.models.base import Base, utcnow

ARCHITECTURES: Final = ("x86_64", "arm64", "i386")


class InstanceType(Base):
    """One size of instance: CPUs, memory, root disk and the figures EC2 reports.

    ``root_disk_gib`` is the size of the root disk an instance of this type gets when
    neither its image nor its block device mappings say otherwise.
    ``threads_per_core`` only shapes how the vCPUs are presented (cores x threads).
    ``sustained_clock_speed_ghz`` is informational (None: not reported).
    """

    __tablename__ = "instance_types"
    __table_args__ = (
        CheckConstraint("vcpus > 0", name="vcpus"),
        CheckConstraint("memory_mib > 0", name="memory_mib"),
        CheckConstraint("root_disk_gib > 0", name="root_disk_gib"),
        CheckConstraint("threads_per_core > 0", name="threads_per_core"),
        CheckConstraint(
            "architecture IN ('" + "', '".join(ARCHITECTURES) + "')",
            name="architecture",
        ),
    )

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    vcpus: Mapped[int] = mapped_column()
    memory_mib: Mapped[int] = mapped_column()
    root_disk_gib: Mapped[int] = mapped_column()
    architecture: Mapped[str] = mapped_column(String(16), default="x86_64")
    threads_per_core: Mapped[int] = mapped_column(default=1)
    current_generation: Mapped[bool] = mapped_column(default=True)
    burstable: Mapped[bool] = mapped_column(default=False)
    free_tier_eligible: Mapped[bool] = mapped_column(default=False)
    max_network_interfaces: Mapped[int] = mapped_column()
    ipv4_addresses_per_interface: Mapped[int] = mapped_column()
    network_performance: Mapped[str] = mapped_column(String(64))
    sustained_clock_speed_ghz: Mapped[float | None] = mapped_column(Float())
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return (
            f"InstanceType(name={self.name!r}, vcpus={self.vcpus!r}, memory_mib={self.memory_mib!r}, "
            f"root_disk_gib={self.root_disk_gib!r})"
        )
