"""Compute Engine firewalls on the wire: a port of an instance in a network made through
Compute Engine is filtered by the network's firewalls, in priority order, with tags."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from ocs.db.engine import transaction
from ocs.db.models.gce import GceInstance
from ocs.db.models.gce_network import GceFirewall, GceNetwork
from tests.framework.dataplane import DataPlaneLab
from tests.framework.netcloud import NetCloud
from tests.integration.network.test_dataplane import ALLOWED, DENIED, lab, serve  # noqa: F401

pytestmark = pytest.mark.slow


def _firewall(account_id: str, vpc_id: str, name: str, priority: int, **fields: object) -> GceFirewall:
    base: dict[str, object] = {
        "description": "",
        "direction": "INGRESS",
        "allowed": [],
        "denied": [],
        "source_ranges": [],
        "destination_ranges": [],
        "source_tags": [],
        "target_tags": [],
        "disabled": False,
    }
    base.update(fields)
    return GceFirewall(
        id=str(10**18 + priority), account_id=account_id, vpc_id=vpc_id, name=name, priority=priority, **base
    )


def test_higher_priority_deny_beats_lower_priority_allow(
    lab: DataPlaneLab,  # noqa: F811
    cloud: NetCloud,
    sessions: sessionmaker[Session],
) -> None:
    vpc = cloud.vpc("10.64.0.0/16")
    sub = cloud.subnet(vpc, "10.64.1.0/24")
    group = cloud.group(vpc, "nothing-allowed")  # as a security group: no ingress at all
    pa = cloud.instance("h1", sub, "10.64.1.10", [group])
    pb = cloud.instance("h1", sub, "10.64.1.11", [group])
    tcp_both = [{"IPProtocol": "tcp", "ports": [str(ALLOWED), str(DENIED)]}]
    with transaction(sessions) as s:
        s.add(
            GceNetwork(
                vpc_id=vpc,
                account_id=cloud.account_id,
                name="gnet",
                description="",
                auto_create_subnetworks=False,
            )
        )
        for port, name, tags in ((pa, "web", ["web"]), (pb, "client", ["client"])):
            s.add(GceInstance(instance_id=port.instance_id, account_id=cloud.account_id, zone="zone-a", name=name,
                              description="", labels={}, metadata_items=[], network_tags=tags))  # fmt: skip
        s.add(_firewall(cloud.account_id, vpc, "allow-web", 1000, allowed=tcp_both, source_tags=["client"],
                        target_tags=["web"]))  # fmt: skip
        s.add(_firewall(cloud.account_id, vpc, "deny-denied", 900, denied=[{"IPProtocol": "tcp", "ports": [str(DENIED)]}],
                        source_ranges=["10.64.0.0/16"]))  # fmt: skip
    host = lab.add_host("h1")
    a, b = lab.plug(host, pa.instance_id, "a"), lab.plug(host, pb.instance_id, "b")
    lab.dhcp(a)
    lab.dhcp(b)
    serve(a, ALLOWED, DENIED)
    serve(b, ALLOWED)
    assert b.connect(pa.ip, ALLOWED)  # the allow rule, by source and target tags
    assert not b.connect(pa.ip, DENIED)  # the deny at 900 beats the allow at 1000
    assert not a.connect(pb.ip, ALLOWED)  # b is not tagged web: the implied deny

    with transaction(sessions) as s:  # the deny drops below the allow: the allow wins
        row = s.query(GceFirewall).filter_by(name="deny-denied").one()
        row.priority = 1001
    host.endpoint.converge()
    assert b.connect(pa.ip, DENIED)
