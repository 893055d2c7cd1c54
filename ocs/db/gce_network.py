"""Repository of the Compute Engine names of networks, subnetworks, addresses and firewalls
(:mod:`ocs.db.models.gce_network`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ocs.db.models.gce_network import GceAddress, GceFirewall, GceNetwork, GceSubnetwork


def network_names(s: Session, account_id: str) -> dict[str, GceNetwork]:
    """VPC ID → its Compute Engine row, for the account's networks made through Compute Engine."""
    return {g.vpc_id: g for g in s.scalars(select(GceNetwork).where(GceNetwork.account_id == account_id))}


def network_by_name(s: Session, account_id: str, name: str) -> GceNetwork | None:
    return s.scalars(
        select(GceNetwork).where(GceNetwork.account_id == account_id, GceNetwork.name == name)
    ).first()


def add_network(
    s: Session, vpc_id: str, account_id: str, name: str, *, description: str, auto: bool
) -> GceNetwork:
    row = GceNetwork(
        vpc_id=vpc_id, account_id=account_id, name=name, description=description, auto_create_subnetworks=auto
    )
    s.add(row)
    s.flush()
    return row


def subnetwork_names(s: Session, account_id: str) -> dict[str, GceSubnetwork]:
    """Subnet ID → its Compute Engine row."""
    query = select(GceSubnetwork).where(GceSubnetwork.account_id == account_id)
    return {g.subnet_id: g for g in s.scalars(query)}


def subnetwork_by_name(s: Session, account_id: str, region: str, name: str) -> GceSubnetwork | None:
    return s.scalars(
        select(GceSubnetwork).where(
            GceSubnetwork.account_id == account_id, GceSubnetwork.region == region, GceSubnetwork.name == name
        )
    ).first()


def add_subnetwork(
    s: Session, subnet_id: str, account_id: str, region: str, name: str, *, description: str
) -> GceSubnetwork:
    row = GceSubnetwork(
        subnet_id=subnet_id, account_id=account_id, region=region, name=name, description=description
    )
    s.add(row)
    s.flush()
    return row


def address_names(s: Session, account_id: str) -> dict[str, GceAddress]:
    """Allocation ID → its Compute Engine row."""
    return {
        g.allocation_id: g for g in s.scalars(select(GceAddress).where(GceAddress.account_id == account_id))
    }


def address_by_name(s: Session, account_id: str, region: str, name: str) -> GceAddress | None:
    return s.scalars(
        select(GceAddress).where(
            GceAddress.account_id == account_id, GceAddress.region == region, GceAddress.name == name
        )
    ).first()


def add_address(
    s: Session, allocation_id: str, account_id: str, region: str, name: str, *, description: str
) -> GceAddress:
    row = GceAddress(
        allocation_id=allocation_id, account_id=account_id, region=region, name=name, description=description
    )
    s.add(row)
    s.flush()
    return row


def firewalls(s: Session, account_id: str) -> list[GceFirewall]:
    return list(
        s.scalars(select(GceFirewall).where(GceFirewall.account_id == account_id).order_by(GceFirewall.name))
    )


def firewall_by_name(s: Session, account_id: str, name: str) -> GceFirewall | None:
    return s.scalars(
        select(GceFirewall).where(GceFirewall.account_id == account_id, GceFirewall.name == name)
    ).first()


def firewalls_of_vpcs(s: Session, vpc_ids: list[str]) -> list[GceFirewall]:
    """Every firewall of these VPCs (of any account: the data plane's view)."""
    if not vpc_ids:
        return []
    return list(s.scalars(select(GceFirewall).where(GceFirewall.vpc_id.in_(vpc_ids))))


def gce_vpcs(s: Session, vpc_ids: list[str]) -> set[str]:
    """Those of ``vpc_ids`` that are networks made through Compute Engine."""
    if not vpc_ids:
        return set()
    return set(s.scalars(select(GceNetwork.vpc_id).where(GceNetwork.vpc_id.in_(vpc_ids))))
