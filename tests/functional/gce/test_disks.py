"""Disks and snapshots through Compute Engine, with Google's own clients, are the cloud's EBS
volumes and snapshots: the same ones boto3's DescribeVolumes and DescribeSnapshots show."""

from __future__ import annotations

import json

import pytest
from googleapiclient.errors import HttpError

from tests.framework import gce
from tests.functional.gce.conftest import make_project


def wait(api, project: str, zone: str | None, op: dict) -> dict:
    for _ in range(5):
        if zone is None:
            op = api.globalOperations().wait(project=project, operation=op["name"]).execute()
        else:
            op = api.zoneOperations().wait(project=project, zone=zone, operation=op["name"]).execute()
        if op["status"] == "DONE":
            return op
    raise AssertionError(f"operation {op['name']} not DONE: {op}")


def error_of(exc: HttpError) -> dict:
    return json.loads(exc.content)["error"]["errors"][0]


@pytest.fixture()
def fresh(cloud):
    """A project of its own (its disks, snapshots and instances start empty)."""
    project = make_project(cloud, "gce-disk")
    return project, gce.discovery_client(cloud, project.info), cloud.client(project.account)


def _volume(ec2, name: str) -> dict:
    [vol] = ec2.describe_volumes(Filters=[{"Name": "tag:Name", "Values": [name]}])["Volumes"]
    return vol


def test_disk_lifecycle(fresh, zone):
    project, api, ec2 = fresh
    p = project.name
    op = (
        api.disks()
        .insert(
            project=p,
            zone=zone,
            body={
                "name": "data-1",
                "sizeGb": "5",
                "type": f"zones/{zone}/diskTypes/pd-balanced",
                "labels": {"env": "prod"},
                "description": "scratch",
            },
        )
        .execute()
    )
    assert op["operationType"] == "insert" and op["targetLink"].endswith(f"/zones/{zone}/disks/data-1")
    done = wait(api, p, zone, op)
    assert "error" not in done and done["progress"] == 100
    disk = api.disks().get(project=p, zone=zone, disk="data-1").execute()
    assert disk["status"] == "READY" and disk["sizeGb"] == "5" and disk.get("users", []) == []
    assert disk["type"].endswith(f"/zones/{zone}/diskTypes/pd-balanced")
    assert disk["labels"] == {"env": "prod"} and disk["description"] == "scratch"
    assert disk["id"] == op["targetId"]
    vol = _volume(ec2, "data-1")
    assert (vol["VolumeType"], vol["Size"], vol["State"]) == ("gp3", 5, "available")
    assert vol["AvailabilityZone"] == zone

    # Defaults: pd-standard (gp2) of 10 GiB; pd-ssd is io1 with 30 IOPS per GiB.
    wait(api, p, zone, api.disks().insert(project=p, zone=zone, body={"name": "plain"}).execute())
    plain = api.disks().get(project=p, zone=zone, disk="plain").execute()
    assert plain["sizeGb"] == "10" and plain["type"].endswith("/diskTypes/pd-standard")
    assert (_volume(ec2, "plain")["VolumeType"], _volume(ec2, "plain")["Size"]) == ("gp2", 10)
    ssd = {"name": "fast", "sizeGb": "20", "type": f"zones/{zone}/diskTypes/pd-ssd"}
    wait(api, p, zone, api.disks().insert(project=p, zone=zone, body=ssd).execute())
    assert (_volume(ec2, "fast")["VolumeType"], _volume(ec2, "fast")["Iops"]) == ("io1", 600)

    with pytest.raises(HttpError) as taken:
        api.disks().insert(project=p, zone=zone, body={"name": "data-1"}).execute()
    assert taken.value.status_code == 409 and error_of(taken.value)["reason"] == "alreadyExists"
    with pytest.raises(HttpError) as bad_type:
        api.disks().insert(project=p, zone=zone, body={"name": "x", "type": "pd-nope"}).execute()
    assert bad_type.value.status_code == 400 and error_of(bad_type.value)["reason"] == "invalid"

    listed = api.disks().list(project=p, zone=zone).execute()
    assert [d["name"] for d in listed["items"]] == ["data-1", "fast", "plain"]
    agg = api.disks().aggregatedList(project=p).execute()
    assert [d["name"] for d in agg["items"][f"zones/{zone}"]["disks"]] == ["data-1", "fast", "plain"]
    assert (
        api.disks().list(project=p, zone=zone, filter="name = plain").execute()["items"][0]["sizeGb"] == "10"
    )

    # resize: grow only, onto ModifyVolume.
    done = wait(
        api, p, zone, api.disks().resize(project=p, zone=zone, disk="data-1", body={"sizeGb": "8"}).execute()
    )
    assert done["operationType"] == "resize" and "error" not in done
    assert api.disks().get(project=p, zone=zone, disk="data-1").execute()["sizeGb"] == "8"
    assert _volume(ec2, "data-1")["Size"] == 8
    with pytest.raises(HttpError) as shrink:
        api.disks().resize(project=p, zone=zone, disk="data-1", body={"sizeGb": "4"}).execute()
    assert shrink.value.status_code == 400 and error_of(shrink.value)["reason"] == "invalid"

    # setLabels with the label fingerprint.
    before = api.disks().get(project=p, zone=zone, disk="data-1").execute()
    body = {"labels": {"env": "dev"}, "labelFingerprint": before["labelFingerprint"]}
    wait(api, p, zone, api.disks().setLabels(project=p, zone=zone, resource="data-1", body=body).execute())
    after = api.disks().get(project=p, zone=zone, disk="data-1").execute()
    assert after["labels"] == {"env": "dev"} and after["labelFingerprint"] != before["labelFingerprint"]
    with pytest.raises(HttpError) as stale:
        api.disks().setLabels(project=p, zone=zone, resource="data-1", body=body).execute()
    assert stale.value.status_code == 412

    # delete: DELETING, then gone from both APIs; the name is free again.
    vol_id = _volume(ec2, "data-1")["VolumeId"]
    done = wait(api, p, zone, api.disks().delete(project=p, zone=zone, disk="data-1").execute())
    assert done["operationType"] == "delete" and "error" not in done
    with pytest.raises(HttpError) as gone:
        api.disks().get(project=p, zone=zone, disk="data-1").execute()
    assert gone.value.status_code == 404 and error_of(gone.value)["reason"] == "notFound"
    assert vol_id not in [v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]]
    assert "error" not in wait(
        api,
        p,
        zone,
        api.disks().insert(project=p, zone=zone, body={"name": "data-1", "sizeGb": "1"}).execute(),
    )


def test_volume_made_through_ec2_is_a_disk(fresh, zone):
    project, api, ec2 = fresh
    vol = ec2.create_volume(AvailabilityZone=zone, Size=3, VolumeType="gp3")
    ec2.get_waiter("volume_available").wait(VolumeIds=[vol["VolumeId"]])
    disk = api.disks().get(project=project.name, zone=zone, disk=vol["VolumeId"]).execute()
    assert disk["name"] == vol["VolumeId"] and disk["sizeGb"] == "3"
    assert disk["type"].endswith("/pd-balanced") and disk["status"] == "READY"


def test_snapshots(fresh, zone):
    project, api, ec2 = fresh
    p = project.name
    wait(
        api, p, zone, api.disks().insert(project=p, zone=zone, body={"name": "src", "sizeGb": "2"}).execute()
    )
    op = (
        api.disks()
        .createSnapshot(project=p, zone=zone, disk="src", body={"name": "snap-1", "labels": {"k": "v"}})
        .execute()
    )
    assert op["operationType"] == "createSnapshot" and op["zone"].endswith(f"/zones/{zone}")
    assert "error" not in wait(api, p, zone, op)
    snap = api.snapshots().get(project=p, snapshot="snap-1").execute()
    assert snap["status"] == "READY" and snap["diskSizeGb"] == "2"
    assert snap["sourceDisk"].endswith(f"/zones/{zone}/disks/src") and int(snap["storageBytes"]) >= 0
    assert snap["labels"] == {"k": "v"} and snap["selfLink"].endswith(
        f"/projects/{p}/global/snapshots/snap-1"
    )
    [ec2_snap] = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert ec2_snap["State"] == "completed" and ec2_snap["VolumeId"] == _volume(ec2, "src")["VolumeId"]
    assert {"Key": "Name", "Value": "snap-1"} in ec2_snap["Tags"]

    with pytest.raises(HttpError) as taken:
        api.disks().createSnapshot(project=p, zone=zone, disk="src", body={"name": "snap-1"}).execute()
    assert taken.value.status_code == 409

    # A disk from the snapshot: its size by default, the snapshot's volume on the EC2 side.
    body = {"name": "restored", "sourceSnapshot": "global/snapshots/snap-1"}
    assert "error" not in wait(api, p, zone, api.disks().insert(project=p, zone=zone, body=body).execute())
    restored = api.disks().get(project=p, zone=zone, disk="restored").execute()
    assert restored["sizeGb"] == "2" and restored["sourceSnapshot"].endswith("/global/snapshots/snap-1")
    assert _volume(ec2, "restored")["SnapshotId"] == ec2_snap["SnapshotId"]
    with pytest.raises(HttpError) as missing:
        api.disks().insert(
            project=p, zone=zone, body={"name": "r2", "sourceSnapshot": "global/snapshots/nope"}
        ).execute()
    assert missing.value.status_code == 404

    label_op = (
        api.snapshots()
        .setLabels(
            project=p, resource="snap-1", body={"labels": {}, "labelFingerprint": snap["labelFingerprint"]}
        )
        .execute()
    )
    assert wait(api, p, None, label_op)["operationType"] == "setLabels"
    assert api.snapshots().get(project=p, snapshot="snap-1").execute()["labels"] == {}
    assert [s["name"] for s in api.snapshots().list(project=p).execute()["items"]] == ["snap-1"]

    done = wait(api, p, None, api.snapshots().delete(project=p, snapshot="snap-1").execute())
    assert done["operationType"] == "delete" and "error" not in done
    with pytest.raises(HttpError) as gone:
        api.snapshots().get(project=p, snapshot="snap-1").execute()
    assert gone.value.status_code == 404
    assert ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []


def _instance(api, p: str, zone: str, name: str, image: str) -> dict:
    body = {
        "name": name,
        "machineType": f"zones/{zone}/machineTypes/t3.micro",
        "disks": [{"boot": True, "initializeParams": {"sourceImage": image}}],
    }
    assert "error" not in wait(
        api, p, zone, api.instances().insert(project=p, zone=zone, body=body).execute()
    )
    return api.instances().get(project=p, zone=zone, instance=name).execute()


def test_attach_and_detach(fresh, zone, demo_image):
    project, api, ec2 = fresh
    p = project.name
    vm = _instance(api, p, zone, "vm-1", demo_image)
    wait(
        api,
        p,
        zone,
        api.disks().insert(project=p, zone=zone, body={"name": "extra", "sizeGb": "1"}).execute(),
    )
    source = f"projects/{p}/zones/{zone}/disks/extra"
    op = (
        api.instances()
        .attachDisk(project=p, zone=zone, instance="vm-1", body={"source": source, "deviceName": "data"})
        .execute()
    )
    done = wait(api, p, zone, op)
    assert done["operationType"] == "attachDisk" and "error" not in done
    disks = api.instances().get(project=p, zone=zone, instance="vm-1").execute()["disks"]
    assert [(d["boot"], d["index"]) for d in disks] == [(True, 0), (False, 1)]
    assert disks[1]["deviceName"] == "data" and disks[1]["source"].endswith(f"/zones/{zone}/disks/extra")
    disk = api.disks().get(project=p, zone=zone, disk="extra").execute()
    assert disk["users"] == [vm["selfLink"]]
    vol = _volume(ec2, "extra")
    assert (
        vol["State"] == "in-use"
        and vol["Attachments"][0]["InstanceId"]
        == ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["vm-1"]}])["Reservations"][0][
            "Instances"
        ][0]["InstanceId"]
    )
    assert vol["Attachments"][0]["State"] == "attached"

    with pytest.raises(HttpError) as used:
        api.disks().delete(project=p, zone=zone, disk="extra").execute()
    assert (
        used.value.status_code == 400 and error_of(used.value)["reason"] == "resourceInUseByAnotherResource"
    )
    _instance(api, p, zone, "vm-2", demo_image)
    with pytest.raises(HttpError) as twice:
        api.instances().attachDisk(project=p, zone=zone, instance="vm-2", body={"source": source}).execute()
    assert (
        twice.value.status_code == 400 and error_of(twice.value)["reason"] == "resourceInUseByAnotherResource"
    )
    with pytest.raises(HttpError) as no_device:
        api.instances().detachDisk(project=p, zone=zone, instance="vm-1", deviceName="nope").execute()
    assert no_device.value.status_code == 400

    op = api.instances().detachDisk(project=p, zone=zone, instance="vm-1", deviceName="data").execute()
    assert "error" not in wait(api, p, zone, op)
    assert len(api.instances().get(project=p, zone=zone, instance="vm-1").execute()["disks"]) == 1
    assert api.disks().get(project=p, zone=zone, disk="extra").execute().get("users", []) == []
    assert _volume(ec2, "extra")["State"] == "available"
    assert "error" not in wait(api, p, zone, api.disks().delete(project=p, zone=zone, disk="extra").execute())


def test_set_machine_type(fresh, zone, demo_image):
    project, api, ec2 = fresh
    p = project.name
    _instance(api, p, zone, "vm-t", demo_image)
    body = {"machineType": f"zones/{zone}/machineTypes/t3.small"}
    with pytest.raises(HttpError) as running:
        api.instances().setMachineType(project=p, zone=zone, instance="vm-t", body=body).execute()
    assert running.value.status_code == 400 and error_of(running.value)["reason"] == "resourceNotReady"
    wait(api, p, zone, api.instances().stop(project=p, zone=zone, instance="vm-t").execute())
    op = api.instances().setMachineType(project=p, zone=zone, instance="vm-t", body=body).execute()
    assert wait(api, p, zone, op)["operationType"] == "setMachineType"
    inst = api.instances().get(project=p, zone=zone, instance="vm-t").execute()
    assert inst["machineType"].endswith("/machineTypes/t3.small")
    [ec2_inst] = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["vm-t"]}])["Reservations"][
        0
    ]["Instances"]
    assert ec2_inst["InstanceType"] == "t3.small"
    with pytest.raises(HttpError) as unknown:
        api.instances().setMachineType(
            project=p, zone=zone, instance="vm-t", body={"machineType": f"zones/{zone}/machineTypes/nope"}
        ).execute()
    assert unknown.value.status_code == 404


def test_disks_with_google_cloud_compute(cloud, fresh, zone):
    from google.cloud import compute_v1

    project, _, ec2 = fresh
    client = gce.compute_client(cloud, project.info, "DisksClient")
    op = client.insert(
        project=project.name, zone=zone, disk_resource=compute_v1.Disk(name="gcc-disk", size_gb=4)
    )
    op.result(timeout=60)
    disk = client.get(project=project.name, zone=zone, disk="gcc-disk")
    assert disk.size_gb == 4 and disk.status == "READY"
    assert _volume(ec2, "gcc-disk")["Size"] == 4
    snap = compute_v1.Snapshot(name="gcc-snap")
    client.create_snapshot(project=project.name, zone=zone, disk="gcc-disk", snapshot_resource=snap).result(
        timeout=60
    )
    snapshots = gce.compute_client(cloud, project.info, "SnapshotsClient")
    got = snapshots.get(project=project.name, snapshot="gcc-snap")
    assert got.status == "READY" and got.disk_size_gb == 4 and got.source_disk.endswith("/disks/gcc-disk")
    client.resize(
        project=project.name,
        zone=zone,
        disk="gcc-disk",
        disks_resize_request_resource=compute_v1.DisksResizeRequest(size_gb=6),
    ).result(timeout=60)
    assert client.get(project=project.name, zone=zone, disk="gcc-disk").size_gb == 6
    client.delete(project=project.name, zone=zone, disk="gcc-disk").result(timeout=60)
    assert [v["Size"] for v in ec2.describe_volumes()["Volumes"]] == []


@pytest.fixture(scope="module")
def mistakes(cloud, zone, demo_image):
    """A project with a disk ``d0`` and an instance ``vm-b`` that client mistakes must not change."""
    project = make_project(cloud, "gce-bad")
    api = gce.discovery_client(cloud, project.info)
    p = project.name
    wait(api, p, zone, api.disks().insert(project=p, zone=zone, body={"name": "d0", "sizeGb": "1"}).execute())
    _instance(api, p, zone, "vm-b", demo_image)
    return api, p


@pytest.mark.parametrize(
    "call",
    [
        lambda api, p, z: api.disks().insert(project=p, zone=z, body={"name": "Bad_Name"}),
        lambda api, p, z: api.disks().insert(project=p, zone=z, body={"name": "z", "sizeGb": "0"}),
        lambda api, p, z: api.disks().insert(project=p, zone=z, body={"name": "z", "sizeGb": "lots"}),
        lambda api, p, z: api.disks().insert(project=p, zone=z, body={"name": "z", "sizeGb": "99999999"}),
        lambda api, p, z: api.disks().insert(
            project=p, zone=z, body={"name": "z", "sourceSnapshot": "x/y/z"}
        ),
        lambda api, p, z: api.disks().resize(project=p, zone=z, disk="d0", body={"sizeGb": "lots"}),
        lambda api, p, z: api.disks().resize(project=p, zone=z, disk="d0", body={}),
        lambda api, p, z: api.disks().setLabels(
            project=p, zone=z, resource="d0", body={"labels": {"A": "b"}}
        ),
        lambda api, p, z: api.disks().createSnapshot(project=p, zone=z, disk="d0", body={"name": "-x"}),
        lambda api, p, z: api.instances().attachDisk(project=p, zone=z, instance="vm-b", body={}),
        lambda api, p, z: api.instances().attachDisk(
            project=p, zone=z, instance="vm-b", body={"source": "zones/us-east-1b/disks/d0"}
        ),
        lambda api, p, z: api.instances().attachDisk(
            project=p,
            zone=z,
            instance="vm-b",
            body={"source": "zones/" + z + "/disks/d0", "mode": "READ_ONLY"},
        ),
        lambda api, p, z: api.instances().detachDisk(project=p, zone=z, instance="vm-b", deviceName="d0"),
        lambda api, p, z: api.instances().setMachineType(project=p, zone=z, instance="vm-b", body={}),
        lambda api, p, z: api.snapshots().setLabels(project=p, resource="nope", body={"labels": {}}),
    ],
)
def test_client_mistakes_are_4xx(mistakes, zone, call):
    api, p = mistakes
    with pytest.raises(HttpError) as bad:
        call(api, p, zone).execute()
    assert 400 <= bad.value.status_code < 500, bad.value.content
    assert error_of(bad.value)["reason"] in ("invalid", "notFound", "quotaExceeded", "resourceNotReady")
    disk = api.disks().get(project=p, zone=zone, disk="d0").execute()
    assert (disk["sizeGb"], disk["labels"], disk.get("users", [])) == ("1", {}, [])
