"""Launching instances straight through the repository (no API), for scheduler tests."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ocs.db import compute, vpcs


def default_subnet_spec(
    s: Session,
    account_id: str,
    zone: str,
    *,
    image_id: str = "ami-00000000000000001",
    root_device_name: str = "/dev/xvda",
) -> compute.LaunchSpec:
    """A t3.micro-sized launch (2 vCPUs, 1 GiB, 8 GiB) into the account's default subnet of ``zone``."""
    subnet = vpcs.default_subnet_for_az(s, account_id, zone)
    assert subnet is not None, f"no default subnet in {zone}"
    return compute.LaunchSpec(
        image_id=image_id,
        instance_type="t3.micro",
        vcpus=2,
        memory_mib=1024,
        disk_gib=8,
        architecture="x86_64",
        availability_zone=zone,
        subnet_id=subnet.id,
        subnet_cidr=subnet.cidr_block,
        vpc_id=subnet.vpc_id,
        security_group_ids=(),
        root_device_name=root_device_name,
    )
