"""firewalls: insert/get/list/patch/delete with Compute Engine's fields and defaults; bad
rules are 400; a network with firewalls cannot be deleted."""

from __future__ import annotations

import pytest
from googleapiclient.errors import HttpError

from tests.functional.gce.test_instances import error_of


def _done(op: dict) -> dict:
    assert op["status"] == "DONE" and "error" not in op, op
    return op


def test_firewall_lifecycle(api, project):
    p = project.name
    _done(api.networks().insert(project=p, body={"name": "fw-net", "autoCreateSubnetworks": False}).execute())
    body = {
        "name": "allow-ssh",
        "network": "global/networks/fw-net",
        "allowed": [{"IPProtocol": "tcp", "ports": ["22", "8000-8080"]}],
        "targetTags": ["ssh"],
    }
    _done(api.firewalls().insert(project=p, body=body).execute())
    fw = api.firewalls().get(project=p, firewall="allow-ssh").execute()
    assert fw["direction"] == "INGRESS" and fw["priority"] == 1000 and fw["sourceRanges"] == ["0.0.0.0/0"]
    assert fw["allowed"] == [{"IPProtocol": "tcp", "ports": ["22", "8000-8080"]}] and "denied" not in fw
    assert fw["network"].endswith("/global/networks/fw-net") and fw["targetTags"] == ["ssh"]
    assert fw["disabled"] is False
    egress = {"name": "no-smtp", "network": "global/networks/fw-net", "direction": "EGRESS", "priority": 10}
    egress["denied"] = [{"IPProtocol": "tcp", "ports": ["25"]}]
    _done(api.firewalls().insert(project=p, body=egress).execute())
    got = api.firewalls().get(project=p, firewall="no-smtp").execute()
    assert got["destinationRanges"] == ["0.0.0.0/0"] and got["denied"][0]["ports"] == ["25"]
    names = {f["name"] for f in api.firewalls().list(project=p).execute()["items"]}
    assert {"allow-ssh", "no-smtp"} <= names

    with pytest.raises(HttpError) as dup:
        api.firewalls().insert(project=p, body=body).execute()
    assert dup.value.status_code == 409
    bad_bodies = [
        {**body, "name": "b1", "priority": 70000},
        {**body, "name": "b2", "allowed": [{"IPProtocol": "bogus"}]},
        {**body, "name": "b3", "allowed": [{"IPProtocol": "icmp", "ports": ["1"]}]},
        {**body, "name": "b4", "denied": [{"IPProtocol": "udp"}]},
        {**body, "name": "b5", "allowed": []},
        {**body, "name": "b6", "sourceRanges": ["10.0.0.0/40"]},
        {**body, "name": "b7", "direction": "SIDEWAYS"},
        {**body, "name": "b8", "allowed": [{"IPProtocol": "tcp", "ports": ["99999"]}]},
        {**body, "name": "b10", "allowed": [{"ports": ["22"]}]},
        {**body, "name": "b11", "sourceTags": [7]},
    ]
    for bad in bad_bodies:
        with pytest.raises(HttpError) as wrong:
            api.firewalls().insert(project=p, body=bad).execute()
        assert wrong.value.status_code == 400, bad
    with pytest.raises(HttpError) as missing_net:
        api.firewalls().insert(
            project=p, body={**body, "name": "b9", "network": "global/networks/nope"}
        ).execute()
    assert missing_net.value.status_code == 404

    _done(
        api.firewalls()
        .patch(project=p, firewall="allow-ssh", body={"priority": 5, "disabled": True})
        .execute()
    )
    fw = api.firewalls().get(project=p, firewall="allow-ssh").execute()
    assert fw["priority"] == 5 and fw["disabled"] is True and fw["allowed"][0]["ports"] == ["22", "8000-8080"]
    with pytest.raises(HttpError) as bad_patch:
        api.firewalls().patch(project=p, firewall="allow-ssh", body={"priority": -1}).execute()
    assert bad_patch.value.status_code == 400
    assert api.firewalls().get(project=p, firewall="allow-ssh").execute()["priority"] == 5

    with pytest.raises(HttpError) as busy:
        api.networks().delete(project=p, network="fw-net").execute()
    assert error_of(busy.value)["errors"][0]["reason"] == "resourceInUseByAnotherResource"
    for name in ("allow-ssh", "no-smtp"):
        _done(api.firewalls().delete(project=p, firewall=name).execute())
    with pytest.raises(HttpError) as gone:
        api.firewalls().get(project=p, firewall="allow-ssh").execute()
    assert gone.value.status_code == 404
    _done(api.networks().delete(project=p, network="fw-net").execute())
