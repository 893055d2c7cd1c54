"""Repository of instance types (shared by every account; managed by operators).

The default set is seeded by migrations ``0002`` and ``0011``; operators add and remove types
with ``ocs-manage instance-type create|delete``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ocs import errors
from ocs.db.models import utcnow
from ocs.db.models.instance_types import ARCHITECTURES, InstanceType

LOG = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*\.[a-z0-9][a-z0-9-]*$")
MAX_NAME = 64


class InstanceTypeExists(errors.Duplicate):
    code = "InvalidParameterValue.Duplicate"
    message = "An instance type named '{name}' already exists."


class InstanceTypeNotFound(errors.NotFound):
    code = "InvalidInstanceType"
    message = "No instance type is named '{id}'."


@dataclass(frozen=True)
class Spec:
    """What an operator gives to make an instance type; the rest has defaults."""

    name: str
    vcpus: int
    memory_mib: int
    root_disk_gib: int
    architecture: str = "x86_64"
    threads_per_core: int = 1
    burstable: bool = False
    free_tier_eligible: bool = False


def _invalid(name: str, value: object, reason: str) -> errors.InvalidParameterValue:
    return errors.InvalidParameterValue(name=name, value=value, reason=reason)


def validate(spec: Spec) -> Spec:
    """``spec`` if every figure is sensible, else InvalidParameterValue naming the bad one."""
    if len(spec.name) > MAX_NAME or not _NAME.match(spec.name):
        raise _invalid(
            "name",
            spec.name,
            f"An instance type name is a family and a size joined by a dot (like t3.micro): "
            f"lowercase letters, digits and dashes, at most {MAX_NAME} characters.",
        )
    for field, value, high in (
        ("--vcpus", spec.vcpus, 1024),
        ("--memory-mib", spec.memory_mib, 64 * 1024 * 1024),
        ("--root-disk-gib", spec.root_disk_gib, 64 * 1024),
        ("--threads-per-core", spec.threads_per_core, 8),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= high:
            raise _invalid(field, value, f"It must be a whole number from 1 to {high}.")
    if spec.vcpus % spec.threads_per_core:
        raise _invalid(
            "--threads-per-core", spec.threads_per_core, f"It must divide the number of vCPUs ({spec.vcpus})."
        )
    if spec.architecture not in ARCHITECTURES:
        raise _invalid("--arch", spec.architecture, "Valid values: " + ", ".join(ARCHITECTURES) + ".")
    return spec


def network_limits(vcpus: int, memory_mib: int) -> tuple[int, int, str]:
    """(network interfaces, IPv4 addresses per interface, performance) for a new type.

    EC2's figures grow with the size of the type; these follow the same steps.
    """
    if memory_mib <= 1024:
        return 2, 2, "Low to Moderate"
    if vcpus <= 2:
        return 3, 10, "Up to 10 Gigabit"
    if vcpus <= 8:
        return 4, 15, "Up to 10 Gigabit"
    if vcpus <= 32:
        return 8, 30, "10 Gigabit"
    return 15, 50, "25 Gigabit"


def create_instance_type(s: Session, spec: Spec) -> InstanceType:
    """A new instance type; InstanceTypeExists if the name is taken."""
    validate(spec)
    if s.get(InstanceType, spec.name) is not None:
        raise InstanceTypeExists(name=spec.name)
    enis, ips, performance = network_limits(spec.vcpus, spec.memory_mib)
    row = InstanceType(
        name=spec.name,
        vcpus=spec.vcpus,
        memory_mib=spec.memory_mib,
        root_disk_gib=spec.root_disk_gib,
        architecture=spec.architecture,
        threads_per_core=spec.threads_per_core,
        current_generation=True,
        burstable=spec.burstable,
        free_tier_eligible=spec.free_tier_eligible,
        max_network_interfaces=enis,
        ipv4_addresses_per_interface=ips,
        network_performance=performance,
        sustained_clock_speed_ghz=None,
        created_at=utcnow(),
    )
    try:
        with s.begin_nested():
            s.add(row)
    except IntegrityError:
        raise InstanceTypeExists(name=spec.name) from None
    LOG.info("Created instance type %s (%d vCPUs, %d MiB)", spec.name, spec.vcpus, spec.memory_mib)
    return row


def list_instance_types(s: Session) -> list[InstanceType]:
    """Every instance type, by name."""
    return list(s.scalars(select(InstanceType).order_by(InstanceType.name)))


def find_instance_type(s: Session, name: str) -> InstanceType | None:
    """The instance type called exactly ``name`` (MySQL would also match other cases)."""
    row = s.get(InstanceType, name) if isinstance(name, str) else None
    return row if row is not None and row.name == name else None


def get_instance_type(s: Session, name: str) -> InstanceType:
    """The instance type called ``name``, else EC2's RunInstances error for it.

    EC2 answers ``InvalidParameterValue`` "Invalid value 't9.huge' for
    InstanceType." (getmoto/moto#1695 quoting EC2).
    """
    row = find_instance_type(s, name)
    if row is None:
        raise errors.InvalidParameterValue(f"Invalid value '{name}' for InstanceType.")
    return row


def delete_instance_type(s: Session, name: str) -> None:
    """Remove an instance type; InstanceTypeNotFound if there is none by that name.

    Instances already running with it keep their size.
    """
    row = find_instance_type(s, name)
    if row is None:
        raise InstanceTypeNotFound(id=name)
    s.delete(row)
    s.flush()
    LOG.info("Deleted instance type %s", name)
