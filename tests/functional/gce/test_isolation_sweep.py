"""Isolation sweep of the Compute Engine API: every route, called by another project.

Project A (the owner) makes an instance, an operation and a private image. Project B
(the stranger) then calls EVERY route of the dispatch table (:func:`all_routes`, so a
new route is swept without being listed here):

* with A's project in the path: 403 ``forbidden``, whether or not the resource
  exists, except the image routes, which other projects may read where the image is
  public or shared (Compute Engine's ``debian-cloud`` pattern): there A's private image
  is 404 and A's list holds none of A's private images;
* with B's own project and A's resource names and numeric ids: 404 ``notFound`` for
  a resource route, a list without any of A's resources for a collection route.

No answer may contain any of A's names or IDs, and nothing of A's changes.
"""

from __future__ import annotations

import json
import re

import pytest
import requests

from ocs.api_gce.app import all_routes
from tests.framework import gce
from tests.functional.gce.conftest import make_project


@pytest.fixture(scope="module")
def world(cloud, zone, demo_image, image_id):
    owner = make_project(cloud, "iso-gce-a")
    stranger = make_project(cloud, "iso-gce-b")
    a = gce.discovery_client(cloud, owner.info)
    op = (
        a.instances()
        .insert(
            project=owner.name,
            zone=zone,
            body={
                "name": "owned-vm-7f3a",
                "machineType": f"zones/{zone}/machineTypes/t3.micro",
                "disks": [{"boot": True, "initializeParams": {"sourceImage": demo_image}}],
                "labels": {"secret": "a-label-7f3a"},
            },
        )
        .execute()
    )
    op = a.zoneOperations().wait(project=owner.name, zone=zone, operation=op["name"]).execute()
    assert op["status"] == "DONE" and "error" not in op
    instance = a.instances().get(project=owner.name, zone=zone, instance="owned-vm-7f3a").execute()
    disk, snapshot = _owned_disk_and_snapshot(a, owner.name, zone)
    ec2 = cloud.client(owner.account)
    [demo] = cloud.client().describe_images(ImageIds=[image_id])["Images"]
    private = ec2.register_image(Name="private-img-7f3a", ImageLocation=demo["ImageLocation"])["ImageId"]
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24", AvailabilityZone=zone)["Subnet"][
        "SubnetId"
    ]
    a.networks().insert(
        project=owner.name, body={"name": "owned-net-7f3a", "autoCreateSubnetworks": False}
    ).execute()
    a.subnetworks().insert(
        project=owner.name,
        region=cloud.region,
        body={
            "name": "owned-sub-7f3a",
            "network": "global/networks/owned-net-7f3a",
            "ipCidrRange": "10.78.0.0/24",
        },
    ).execute()
    a.firewalls().insert(
        project=owner.name,
        body={
            "name": "owned-fw-7f3a",
            "network": "global/networks/owned-net-7f3a",
            "allowed": [{"IPProtocol": "all"}],
        },
    ).execute()
    a.addresses().insert(project=owner.name, region=cloud.region, body={"name": "owned-addr-7f3a"}).execute()
    creds = gce.credentials(stranger.info)
    from google.auth.transport.requests import Request

    creds.refresh(Request())
    return {
        "owner": owner,
        "stranger": stranger,
        "token": creds.token,
        "instance": instance,
        "operation": op["name"],
        "image": "private-img-7f3a",
        "image_id": private,
        "vpc": vpc,
        "subnet": subnet,
        "a": a,
        "disk": disk,
        "snapshot": snapshot,
    }


def _owned_disk_and_snapshot(a, project: str, zone: str) -> tuple[dict, dict]:
    """A's disk ``owned-disk-7f3a`` and its snapshot ``owned-snap-7f3a`` (both labelled),
    with the names of the operations that made them (``_operations``)."""
    ops = []
    body = {"name": "owned-disk-7f3a", "sizeGb": "1", "labels": {"secret": "a-label-7f3a"}}
    ops.append(a.disks().insert(project=project, zone=zone, body=body).execute()["name"])
    assert (
        a.zoneOperations().wait(project=project, zone=zone, operation=ops[-1]).execute()["status"] == "DONE"
    )
    body = {"name": "owned-snap-7f3a", "labels": {"secret": "a-label-7f3a"}}
    disks = a.disks()
    ops.append(
        disks.createSnapshot(project=project, zone=zone, disk="owned-disk-7f3a", body=body).execute()["name"]
    )
    assert (
        a.zoneOperations().wait(project=project, zone=zone, operation=ops[-1]).execute()["status"] == "DONE"
    )
    disk = a.disks().get(project=project, zone=zone, disk="owned-disk-7f3a").execute()
    disk["_operations"] = ops
    return disk, a.snapshots().get(project=project, snapshot="owned-snap-7f3a").execute()


def _secrets(world, values: dict[str, str]) -> list[str]:
    """What of A's no answer may show (what the request itself named aside)."""
    inst = world["instance"]
    known = [
        "owned-vm-7f3a",
        inst["id"],
        world["operation"],
        "private-img-7f3a",
        world["image_id"],
        "a-label-7f3a",
        world["owner"].info["client_email"],
        world["vpc"],
        world["subnet"],
        "owned-disk-7f3a",
        world["disk"]["id"],
        "owned-snap-7f3a",
        world["snapshot"]["id"],
        *world["disk"]["_operations"],
        "owned-net-7f3a",
        "owned-sub-7f3a",
        "owned-addr-7f3a",
        "owned-fw-7f3a",
    ]
    return [k for k in known if k not in values.values()]


def _fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)


FRESH = {
    "owned-vm-7f3a": "fresh-vm-0000",
    "private-img-7f3a": "fresh-img-0000",
    "owned-disk-7f3a": "fresh-disk-0000",
    "owned-snap-7f3a": "fresh-snap-0000",
    "owned-addr-7f3a": "fresh-addr-0000",
    "owned-fw-7f3a": "fresh-fw-0000",
}


def _same_as_for_a_fresh_name(cloud, world, route, values: dict[str, str], answer: requests.Response) -> None:
    """The answer for A's names is the answer for names that never existed (but for the name)."""
    fresh = {k: FRESH.get(v, v) for k, v in values.items()}
    fresh["network"] = "vpc-00000000000000000" if values["network"] == world["vpc"] else values["network"]
    fresh["subnetwork"] = "subnet-00000000000000000"
    if values.get("operation") == world["operation"]:
        fresh["operation"] = "operation-1-000000000000"
    if values.get("instance") == world["instance"]["id"]:
        fresh["instance"] = "1234567890123"
    other = _call(cloud, world, route, _fill(route.template, fresh))
    text = answer.text
    for key in values:
        text = text.replace(values[key], fresh[key])
    assert (answer.status_code, text) == (other.status_code, other.text)


BODIES = {
    "Instance": {"name": "owned-vm-7f3a"},
    "InstancesSetLabelsRequest": {"labels": {}},
    "Metadata": {"items": []},
    "ZoneSetLabelsRequest": {"labels": {}},
    "GlobalSetLabelsRequest": {"labels": {}},
    "DisksResizeRequest": {"sizeGb": "50"},
    "Snapshot": {"name": "stranger-snap-0000"},
    "AttachedDisk": {"source": "zones/us-east-1a/disks/owned-disk-7f3a"},
    "InstancesSetMachineTypeRequest": {"machineType": "zones/us-east-1a/machineTypes/t3.small"},
}


def _resource(template: str) -> str:
    """A's resource a ``{resource}`` of ``template`` names (setLabels of disks and snapshots)."""
    return "owned-disk-7f3a" if "/disks/" in template else "owned-snap-7f3a"


def _call(cloud, world, route, path: str) -> requests.Response:
    """``route`` at ``path`` as the stranger, with a body its request schema takes."""
    body = BODIES.get(route.request or "", {}) if route.method == "POST" else None
    return requests.request(
        route.method,
        f"{cloud.endpoint}/compute/v1/{path}",
        headers={"Authorization": f"Bearer {world['token']}"},
        json=body,
        timeout=30,
    )


def _is_collection(template: str) -> bool:
    return template.rsplit("/", 1)[-1] in (
        "instances",
        "operations",
        "zones",
        "regions",
        "machineTypes",
        "images",
        "disks",
        "snapshots",
        "networks",
        "subnetworks",
        "addresses",
        "firewalls",
    )


@pytest.mark.parametrize("route", all_routes(), ids=lambda r: f"{r.method} {r.template}")
def test_another_projects_path(cloud, world, zone, route):
    owner = world["owner"].name
    values = {
        "project": owner,
        "zone": zone,
        "region": cloud.region,
        "instance": "owned-vm-7f3a",
        "operation": world["operation"],
        "machineType": "t3.micro",
        "image": world["image"],
        "family": world["image"],
        "network": world["vpc"],
        "subnetwork": world["subnet"],
        "disk": "owned-disk-7f3a",
        "snapshot": "owned-snap-7f3a",
        "resource": _resource(route.template),
        "address": "owned-addr-7f3a",
        "firewall": "owned-fw-7f3a",
    }
    answer = _call(cloud, world, route, _fill(route.template, values))
    assert answer.status_code < 500, answer.text
    for secret in _secrets(world, values):
        assert secret not in answer.text, f"{route.template} shows {secret}: {answer.text[:300]}"
    _same_as_for_a_fresh_name(cloud, world, route, values, answer)
    if route.other_projects:
        if _is_collection(route.template):
            assert answer.status_code == 200
        else:
            assert answer.status_code == 404
            assert answer.json()["error"]["errors"][0]["reason"] == "notFound"
    else:
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"]["errors"][0]["reason"] == "forbidden"


@pytest.mark.parametrize("route", all_routes(), ids=lambda r: f"{r.method} {r.template}")
def test_own_project_with_another_projects_names(cloud, world, zone, route):
    if route.method == "POST" and _is_collection(route.template):
        pytest.skip("insert makes the stranger's own instance: not a lookup of A's")
    stranger = world["stranger"].name
    for instance in ("owned-vm-7f3a", world["instance"]["id"]):
        values = {
            "project": stranger,
            "zone": zone,
            "region": cloud.region,
            "instance": instance,
            "operation": world["operation"],
            "machineType": "t3.micro",
            "image": world["image"],
            "family": world["image"],
            "network": world["vpc"],
            "subnetwork": world["subnet"],
            "disk": "owned-disk-7f3a",
            "snapshot": "owned-snap-7f3a",
            "resource": _resource(route.template),
            "address": "owned-addr-7f3a",
            "firewall": "owned-fw-7f3a",
        }
        answer = _call(cloud, world, route, _fill(route.template, values))
        assert answer.status_code < 500, answer.text
        for secret in _secrets(world, values):
            assert secret not in answer.text, f"{route.template} shows {secret}: {answer.text[:300]}"
        _same_as_for_a_fresh_name(cloud, world, route, values, answer)
        needs_resource = any(
            p in route.template
            for p in (
                "{instance}",
                "{operation}",
                "{image}",
                "{family}",
                "{network}",
                "{subnetwork}",
                "{disk}",
                "{snapshot}",
                "{resource}",
                "{address}",
                "{firewall}",
            )
        )
        if needs_resource:
            assert answer.status_code == 404, answer.text
            assert answer.json()["error"]["errors"][0]["reason"] == "notFound"
        else:
            assert answer.status_code == 200, answer.text


def test_nothing_of_the_owner_changed(world, zone):
    owner, a = world["owner"], world["a"]
    now = a.instances().get(project=owner.name, zone=zone, instance="owned-vm-7f3a").execute()
    assert now["status"] == "RUNNING" and now["labels"] == world["instance"]["labels"]
    ops = a.zoneOperations().list(project=owner.name, zone=zone).execute()["items"]
    assert [o["name"] for o in ops] == [world["operation"], *world["disk"]["_operations"]]
    assert json.dumps(now["metadata"]) == json.dumps(world["instance"]["metadata"])
    disk = a.disks().get(project=owner.name, zone=zone, disk="owned-disk-7f3a").execute()
    assert (disk["labels"], disk["sizeGb"], disk.get("users", [])) == (world["disk"]["labels"], "1", [])
    snapshot = a.snapshots().get(project=owner.name, snapshot="owned-snap-7f3a").execute()
    assert snapshot["labels"] == world["snapshot"]["labels"]
