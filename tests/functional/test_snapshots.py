"""EBS snapshots through boto3: create, describe (owners, filters, pagination), delete, EC2's errors."""

from __future__ import annotations

import re
import secrets
import time

import pytest
from botocore.exceptions import ClientError

from ocs.volume.service import VolumeService
from tests.framework.errors import code_of, error_of

SNAP = re.compile(r"^snap-[0-9a-f]{17}$")
FAST = {"Delay": 0.1, "MaxAttempts": 100}
ZONE = "us-east-1a"


@pytest.fixture
def ec2(cloud):
    return cloud.client(cloud.create_account(f"snap-{secrets.token_hex(4)}"))


def volume(ec2, size: int = 1) -> str:
    vol = ec2.create_volume(AvailabilityZone=ZONE, Size=size)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig=FAST)
    return vol


def completed(ec2, vol: str, **params) -> dict:
    snap = ec2.create_snapshot(VolumeId=vol, **params)
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snap["SnapshotId"]], WaiterConfig=FAST)
    [item] = ec2.describe_snapshots(SnapshotIds=[snap["SnapshotId"]])["Snapshots"]
    return item


def test_create_describe_delete(cloud, ec2):
    vol = volume(ec2, 3)
    out = ec2.create_snapshot(
        VolumeId=vol,
        Description="nightly",
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "Name", "Value": "n1"}]}],
    )
    assert SNAP.match(out["SnapshotId"]) and out["State"] == "pending" and out["Progress"] == "0%"
    assert (out["VolumeId"], out["VolumeSize"], out["Description"]) == (vol, 3, "nightly")
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[out["SnapshotId"]], WaiterConfig=FAST)
    [item] = ec2.describe_snapshots(SnapshotIds=[out["SnapshotId"]])["Snapshots"]
    assert item["State"] == "completed" and item["Progress"] == "100%"
    assert item["OwnerId"] == out["OwnerId"] and item["Tags"] == [{"Key": "Name", "Value": "n1"}]
    assert item["CompletionTime"] >= item["StartTime"] and item["FullSnapshotSizeInBytes"] == 0
    assert out["SnapshotId"] in cloud.aio.volume.endpoint.backend.snapshots()
    ec2.delete_snapshot(SnapshotId=out["SnapshotId"])
    with pytest.raises(ClientError) as gone:
        ec2.describe_snapshots(SnapshotIds=[out["SnapshotId"]])
    assert error_of(gone) == (
        "InvalidSnapshot.NotFound",
        f"The snapshot '{out['SnapshotId']}' does not exist",
    )
    with pytest.raises(ClientError) as again:
        ec2.delete_snapshot(SnapshotId=out["SnapshotId"])
    assert code_of(again) == "InvalidSnapshot.NotFound"
    ec2.create_tags(Resources=[vol], Tags=[{"Key": "k", "Value": "v"}])  # the volume lives on


def test_owners_filters_and_pagination(cloud, ec2):
    vol = volume(ec2)
    a = completed(ec2, vol, Description="alpha")
    b = completed(ec2, vol, Description="beta")
    owner = a["OwnerId"]
    mine = sorted([a["SnapshotId"], b["SnapshotId"]])

    def ids(**params):
        return sorted(s["SnapshotId"] for s in ec2.describe_snapshots(**params)["Snapshots"])

    assert ids() == mine
    assert ids(OwnerIds=["self"]) == mine and ids(OwnerIds=[owner]) == mine
    assert ids(OwnerIds=["amazon"]) == [] and ids(OwnerIds=["123456789012"]) == []
    assert ids(Filters=[{"Name": "description", "Values": ["al*"]}]) == [a["SnapshotId"]]
    assert ids(Filters=[{"Name": "volume-id", "Values": [vol]}]) == mine
    assert ids(Filters=[{"Name": "status", "Values": ["completed"]}]) == mine
    assert ids(Filters=[{"Name": "progress", "Values": ["100%"]}]) == mine
    assert ids(Filters=[{"Name": "owner-id", "Values": [owner]}]) == mine
    assert ids(Filters=[{"Name": "volume-size", "Values": ["1"]}]) == mine
    assert ids(Filters=[{"Name": "encrypted", "Values": ["true"]}]) == []
    pages = list(
        ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], PaginationConfig={"PageSize": 5})
    )
    assert sorted(s["SnapshotId"] for p in pages for s in p["Snapshots"]) == mine
    other = cloud.client(cloud.create_account(f"snap-other-{secrets.token_hex(3)}"))
    assert other.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
    for call in (
        lambda: other.describe_snapshots(SnapshotIds=[a["SnapshotId"]]),
        lambda: other.delete_snapshot(SnapshotId=a["SnapshotId"]),
        lambda: other.create_volume(AvailabilityZone=ZONE, SnapshotId=a["SnapshotId"]),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert code_of(exc) == "InvalidSnapshot.NotFound"


def test_errors(ec2):
    for params, code in (
        ({"VolumeId": "vol-0123456789abcdef0"}, "InvalidVolume.NotFound"),
        ({"VolumeId": "volume-1"}, "InvalidVolumeID.Malformed"),
        ({"VolumeId": volume(ec2), "OutpostArn": "arn:aws:outposts:x"}, "Unsupported"),
        ({"VolumeId": volume(ec2), "Description": "x" * 256}, "InvalidParameterValue"),
    ):
        with pytest.raises(ClientError) as exc:
            ec2.create_snapshot(**params)
        assert code_of(exc) == code
    with pytest.raises(ClientError) as exc:
        ec2.describe_snapshots(SnapshotIds=["snap-zz"])
    assert code_of(exc) == "InvalidSnapshotID.Malformed"
    with pytest.raises(ClientError) as exc:
        ec2.delete_snapshot(SnapshotId="snap-0123456789abcdef0")
    assert code_of(exc) == "InvalidSnapshot.NotFound"
    with pytest.raises(ClientError) as exc:
        ec2.describe_snapshots(Filters=[{"Name": "colour", "Values": ["x"]}])
    assert code_of(exc) == "InvalidParameterValue"
    with pytest.raises(ClientError) as dry:
        ec2.create_snapshot(VolumeId=volume(ec2), DryRun=True)
    assert code_of(dry) == "DryRunOperation"
    assert ec2.describe_snapshots()["Snapshots"] == []


def test_pending_snapshot_rules(cloud, ec2):
    """With the service held: a snapshot of a creating volume, a volume from a pending snapshot,
    and deleting a volume whose snapshot is pending (the snapshot still completes)."""
    vol = volume(ec2)
    aio = cloud.aio
    aio.volume.stop()
    try:
        creating = ec2.create_volume(AvailabilityZone=ZONE, Size=1)["VolumeId"]
        with pytest.raises(ClientError) as exc:
            ec2.create_snapshot(VolumeId=creating)
        assert error_of(exc) == ("IncorrectState", f"Volume '{creating}' is in the 'creating' state.")
        pending = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
        with pytest.raises(ClientError) as exc:
            ec2.create_volume(AvailabilityZone=ZONE, SnapshotId=pending)
        assert error_of(exc) == ("IncorrectState", f"Snapshot '{pending}' is in the 'pending' state.")
        ec2.delete_volume(VolumeId=vol)
        [shown] = ec2.describe_volumes(VolumeIds=[vol])["Volumes"]
        assert shown["State"] == "deleting"
    finally:
        aio.volume = VolumeService(aio.bus, aio.volume.endpoint)
        aio.volume.start()
    ec2.get_waiter("volume_deleted").wait(VolumeIds=[vol], WaiterConfig=FAST)
    [snap] = ec2.describe_snapshots(SnapshotIds=[pending])["Snapshots"]
    assert snap["State"] == "completed"
    restored = ec2.create_volume(AvailabilityZone=ZONE, SnapshotId=pending)["VolumeId"]
    ec2.delete_snapshot(SnapshotId=pending)  # at once, while the volume may still be being made
    ec2.get_waiter("volume_available").wait(VolumeIds=[restored, creating], WaiterConfig=FAST)
    # The service removes the bytes after the volumes being made from them (asynchronously).
    deadline = time.monotonic() + 10
    while pending in aio.volume.endpoint.backend.snapshots():
        assert time.monotonic() < deadline, "the deleted snapshot's bytes are still there"
        time.sleep(0.05)
