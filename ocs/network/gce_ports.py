"""The Compute Engine firewalls of the ports a host carries, read from the database.

Ports of instances in networks made through Compute Engine (``gce_networks``) are
filtered by their network's firewalls (:mod:`ocs.network.gce_firewall`) instead of
their security groups: the rules whose ``targetTags`` match the instance's network
tags (``gce_instances.network_tags``) or that have none, with ``sourceTags``
resolved to the addresses of the network's instances carrying them. Ports of other
networks are left to their security groups.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from ocs.db import gce_network as db_gce_network
from ocs.db.models.gce import GceInstance
from ocs.network import gce_firewall, ports

Ordered = Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]


def _tags(s: Session, instance_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
    wanted = sorted(set(instance_ids))
    if not wanted:
        return {}
    rows = s.execute(
        select(GceInstance.instance_id, GceInstance.network_tags).where(GceInstance.instance_id.in_(wanted))
    ).all()
    return {i: tuple(t or ()) for i, t in rows}


def ordered_rules(s: Session, local: Sequence[ports.HostedPort], skip: Iterable[str] = ()) -> Ordered:
    """Interface id → (ingress, egress) statements, for the ``local`` ports
    that are in networks made through Compute Engine."""
    gce_vpcs = db_gce_network.gce_vpcs(s, sorted({hp.vpc_id for hp in local}))
    if not gce_vpcs:
        return {}
    skipped = set(skip)
    rules: dict[str, list[gce_firewall.FirewallRule]] = {v: [] for v in gce_vpcs}
    for row in db_gce_network.firewalls_of_vpcs(s, sorted(gce_vpcs)):
        rules[row.vpc_id].append(
            gce_firewall.from_resource(
                row.name,
                direction=row.direction,
                priority=row.priority,
                allowed=row.allowed,
                denied=row.denied,
                source_ranges=row.source_ranges,
                destination_ranges=row.destination_ranges,
                source_tags=row.source_tags,
                target_tags=row.target_tags,
                disabled=row.disabled,
            )
        )
    everyone = [hp for hp in ports.ports_in_vpcs(s, gce_vpcs) if hp.port.interface_id not in skipped]
    tags = _tags(s, [hp.port.instance_id for hp in [*everyone, *local]])
    members: dict[str, dict[str, list[str]]] = {v: {} for v in gce_vpcs}
    for hp in everyone:
        for tag in tags.get(hp.port.instance_id, ()):
            members[hp.vpc_id].setdefault(tag, []).extend([hp.port.ip, *hp.port.secondary_ips])
    out = {}
    for hp in local:
        if hp.vpc_id not in gce_vpcs:
            continue
        given = gce_firewall.PortInput(
            tags=tags.get(hp.port.instance_id, ()),
            tag_members={t: tuple(sorted(set(ips))) for t, ips in members[hp.vpc_id].items()},
        )
        compiled = gce_firewall.compile_port(rules[hp.vpc_id], given)
        out[hp.port.interface_id] = (compiled.ingress, compiled.egress)
    return out
