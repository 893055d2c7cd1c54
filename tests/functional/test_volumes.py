"""EBS volumes through boto3: create (blank or from a snapshot), describe, delete, EC2's errors.

The all-in-one runs the volume service with the ``file`` backend; the bytes of
every volume are real files under ``<state_dir>/volumes``.
"""

from __future__ import annotations

import re
import secrets
import subprocess

import pytest
from botocore.exceptions import ClientError

from ocs.volume.service import VolumeService
from tests.framework.errors import code_of, error_of

VOL = re.compile(r"^vol-[0-9a-f]{17}$")
FAST = {"Delay": 0.1, "MaxAttempts": 100}
ZONE = "us-east-1a"


@pytest.fixture
def ec2(cloud):
    return cloud.client(cloud.create_account(f"vol-{secrets.token_hex(4)}"))


def backend(cloud):
    assert cloud.aio.volume is not None
    return cloud.aio.volume.endpoint.backend


def available(ec2, **params) -> dict:
    out = ec2.create_volume(AvailabilityZone=ZONE, **params)
    ec2.get_waiter("volume_available").wait(VolumeIds=[out["VolumeId"]], WaiterConfig=FAST)
    [item] = ec2.describe_volumes(VolumeIds=[out["VolumeId"]])["Volumes"]
    return item


def test_create_describe_delete(cloud, ec2):
    out = ec2.create_volume(
        AvailabilityZone=ZONE,
        Size=2,
        VolumeType="gp3",
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": "data"}]}],
    )
    assert VOL.match(out["VolumeId"]) and out["State"] == "creating"
    assert (out["Size"], out["VolumeType"], out["Iops"], out["Throughput"]) == (2, "gp3", 3000, 125)
    assert out["AvailabilityZone"] == ZONE and out["Encrypted"] is False and "Attachments" not in out
    ec2.get_waiter("volume_available").wait(VolumeIds=[out["VolumeId"]], WaiterConfig=FAST)
    [item] = ec2.describe_volumes(VolumeIds=[out["VolumeId"]])["Volumes"]
    assert item["State"] == "available" and item["Attachments"] == [] and item["MultiAttachEnabled"] is False
    assert item["Tags"] == [{"Key": "Name", "Value": "data"}]
    assert backend(cloud).size_gib(out["VolumeId"]) == 2  # real bytes behind it
    ec2.delete_volume(VolumeId=out["VolumeId"])
    ec2.get_waiter("volume_deleted").wait(VolumeIds=[out["VolumeId"]], WaiterConfig=FAST)
    assert out["VolumeId"] not in backend(cloud).volumes()
    gone_message = ("InvalidVolume.NotFound", f"The volume '{out['VolumeId']}' does not exist")
    with pytest.raises(ClientError) as gone:
        ec2.describe_volumes(VolumeIds=[out["VolumeId"]])
    assert error_of(gone) == gone_message
    with pytest.raises(ClientError) as gone:
        ec2.delete_volume(VolumeId=out["VolumeId"])
    assert error_of(gone) == gone_message


def test_types_report_their_performance(ec2):
    gp2 = ec2.create_volume(AvailabilityZone=ZONE, Size=100)
    assert (gp2["VolumeType"], gp2["Iops"]) == ("gp2", 300) and "Throughput" not in gp2
    io1 = ec2.create_volume(AvailabilityZone=ZONE, Size=10, VolumeType="io1", Iops=500)
    assert (io1["VolumeType"], io1["Iops"]) == ("io1", 500)
    gp3 = ec2.create_volume(AvailabilityZone=ZONE, Size=20, VolumeType="gp3", Iops=8000, Throughput=1000)
    assert (gp3["Iops"], gp3["Throughput"]) == (8000, 1000)
    st1 = ec2.create_volume(AvailabilityZone=ZONE, Size=125, VolumeType="st1", Encrypted=True)
    assert st1["VolumeType"] == "st1" and "Iops" not in st1 and st1["Encrypted"] is True


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        (
            {"Size": 10, "Iops": 100},
            "InvalidParameterCombination",
            "The parameter iops is not supported for gp2 volumes.",
        ),
        (
            {"Size": 10, "VolumeType": "io2"},
            "InvalidParameterCombination",
            "The parameter iops must be specified for io2 volumes.",
        ),
        (
            {"Size": 10, "VolumeType": "gp2", "Throughput": 200},
            "InvalidParameterCombination",
            "throughput can only be specified for volumeType gp3.",
        ),
        (
            {"Size": 10, "VolumeType": "io1", "Iops": 1000},
            "InvalidParameterValue",
            "Iops to volume size ratio of 100.000000 is too high; maximum is 50",
        ),
        (
            {"Size": 20, "VolumeType": "gp3", "Iops": 15000},
            "InvalidParameterValue",
            "Iops to volume size ratio of 750.000000 is too high; maximum is 500",
        ),
        (
            {"Size": 100, "VolumeType": "gp3", "Iops": 3000, "Throughput": 1000},
            "InvalidParameterValue",
            "Throughput (MiBps) to iops ratio of 0.333333 is too high; maximum is 0.250000 MiBps per iops",
        ),
        ({"Size": 10, "VolumeType": "io1", "Iops": 50}, "InvalidParameterValue", None),
        ({"Size": 100, "VolumeType": "gp3", "Throughput": 100}, "InvalidParameterValue", None),
        ({"Size": 0}, "InvalidParameterValue", None),
        ({"Size": 16385}, "InvalidParameterValue", None),
        ({"Size": 3, "VolumeType": "io1", "Iops": 100}, "InvalidParameterValue", None),
        ({"Size": 100, "VolumeType": "sc1"}, "InvalidParameterValue", None),
        ({"Size": 1025, "VolumeType": "standard"}, "InvalidParameterValue", None),
        ({"Size": 1, "VolumeType": "gp9"}, "InvalidParameterValue", None),
        ({}, "MissingParameter", None),
        ({"Size": 1, "SnapshotId": "snap-0123456789abcdef0"}, "InvalidSnapshot.NotFound", None),
        ({"SnapshotId": "snapshot-1"}, "InvalidSnapshotID.Malformed", None),
        ({"Size": 1, "KmsKeyId": "alias/x", "Encrypted": True}, "Unsupported", None),
        ({"Size": 1, "MultiAttachEnabled": True, "VolumeType": "io2", "Iops": 100}, "Unsupported", None),
    ],
)
def test_create_errors(ec2, params, code, message):
    with pytest.raises(ClientError) as exc:
        ec2.create_volume(AvailabilityZone=ZONE, **params)
    assert code_of(exc) == code
    if message is not None:
        assert error_of(exc)[1] == message
    assert ec2.describe_volumes()["Volumes"] == []  # nothing half-made


def test_zones(ec2):
    with pytest.raises(ClientError) as exc:
        ec2.create_volume(AvailabilityZone="us-east-1z", Size=1)
    assert error_of(exc) == ("InvalidZone.NotFound", "The zone 'us-east-1z' does not exist.")
    with pytest.raises(ClientError) as exc:
        ec2.create_volume(AvailabilityZone=ZONE, AvailabilityZoneId="use1-az1", Size=1)
    assert code_of(exc) == "InvalidParameterCombination"
    by_id = ec2.create_volume(AvailabilityZoneId="use1-az2", Size=1)
    assert by_id["AvailabilityZone"] == "us-east-1b"
    with pytest.raises(ClientError) as exc:
        ec2.create_volume(Size=1)
    assert code_of(exc) == "MissingParameter"


def test_describe_filters_pagination_and_ids(ec2):
    a = available(
        ec2, Size=1, TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "tier", "Value": "db"}]}]
    )
    b = available(ec2, Size=3, VolumeType="gp3", Encrypted=True)
    c = ec2.create_volume(AvailabilityZone="us-east-1b", Size=5)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[c], WaiterConfig=FAST)

    def ids(*filters):
        return sorted(v["VolumeId"] for v in ec2.describe_volumes(Filters=list(filters))["Volumes"])

    assert ids({"Name": "volume-id", "Values": [a["VolumeId"]]}) == [a["VolumeId"]]
    assert ids({"Name": "size", "Values": ["3", "5"]}) == sorted([b["VolumeId"], c])
    assert ids({"Name": "availability-zone", "Values": ["us-east-1b"]}) == [c]
    assert ids({"Name": "volume-type", "Values": ["gp3"]}) == [b["VolumeId"]]
    assert ids({"Name": "encrypted", "Values": ["true"]}) == [b["VolumeId"]]
    assert ids({"Name": "status", "Values": ["available"]}) == sorted([a["VolumeId"], b["VolumeId"], c])
    assert ids({"Name": "tag:tier", "Values": ["db"]}) == [a["VolumeId"]]
    assert ids({"Name": "tag-key", "Values": ["tier"]}) == [a["VolumeId"]]
    day = a["CreateTime"].strftime("%Y-%m-%d")
    assert len(ids({"Name": "create-time", "Values": [f"{day}T*"]})) == 3
    assert ids({"Name": "attachment.instance-id", "Values": ["i-*"]}) == []
    assert ids({"Name": "snapshot-id", "Values": ["snap-*"]}) == []
    with pytest.raises(ClientError) as bad:
        ec2.describe_volumes(Filters=[{"Name": "colour", "Values": ["x"]}])
    assert code_of(bad) == "InvalidParameterValue"
    seen, token = [], None
    while True:
        page = ec2.describe_volumes(MaxResults=5, **({"NextToken": token} if token else {}))
        seen += [v["VolumeId"] for v in page["Volumes"]]
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(seen) == sorted([a["VolumeId"], b["VolumeId"], c])
    paged = [
        v["VolumeId"]
        for p in ec2.get_paginator("describe_volumes").paginate(PaginationConfig={"PageSize": 5})
        for v in p["Volumes"]
    ]
    assert sorted(paged) == sorted(seen)
    for bad_id, code in (
        ("vol-nothex", "InvalidVolumeID.Malformed"),
        ("vol-0123456789abcdef0", "InvalidVolume.NotFound"),
    ):
        with pytest.raises(ClientError) as exc:
            ec2.describe_volumes(VolumeIds=[a["VolumeId"], bad_id])
        assert code_of(exc) == code


def test_accounts_do_not_see_each_other(cloud, ec2):
    mine = ec2.create_volume(AvailabilityZone=ZONE, Size=1)["VolumeId"]
    other = cloud.client(cloud.create_account(f"vol-other-{secrets.token_hex(3)}"))
    assert other.describe_volumes()["Volumes"] == []
    for call in (
        lambda: other.describe_volumes(VolumeIds=[mine]),
        lambda: other.delete_volume(VolumeId=mine),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert code_of(exc) == "InvalidVolume.NotFound"
    with pytest.raises(ClientError) as exc:
        other.create_snapshot(VolumeId=mine)
    assert code_of(exc) == "InvalidVolume.NotFound"


def test_delete_states_dry_run_and_client_token(cloud, ec2):
    with pytest.raises(ClientError) as dry:
        ec2.create_volume(AvailabilityZone=ZONE, Size=1, DryRun=True)
    assert code_of(dry) == "DryRunOperation"
    assert ec2.describe_volumes()["Volumes"] == []
    first = ec2.create_volume(AvailabilityZone=ZONE, Size=1, ClientToken="tok-1")
    again = ec2.create_volume(AvailabilityZone=ZONE, Size=1, ClientToken="tok-1")
    assert again["VolumeId"] == first["VolumeId"] and len(ec2.describe_volumes()["Volumes"]) == 1
    with pytest.raises(ClientError) as mismatch:
        ec2.create_volume(AvailabilityZone=ZONE, Size=2, ClientToken="tok-1")
    assert code_of(mismatch) == "IdempotentParameterMismatch"
    ec2.get_waiter("volume_available").wait(VolumeIds=[first["VolumeId"]], WaiterConfig=FAST)
    with pytest.raises(ClientError) as dry:
        ec2.delete_volume(VolumeId=first["VolumeId"], DryRun=True)
    assert code_of(dry) == "DryRunOperation"
    # A volume still being made cannot be deleted; a restarted service finishes it.
    aio = cloud.aio
    aio.volume.stop()
    try:
        held = ec2.create_volume(AvailabilityZone=ZONE, Size=1)["VolumeId"]
        with pytest.raises(ClientError) as busy:
            ec2.delete_volume(VolumeId=held)
        assert error_of(busy) == ("IncorrectState", f"Volume '{held}' is in the 'creating' state.")
    finally:
        aio.volume = VolumeService(aio.bus, aio.volume.endpoint)
        aio.volume.start()
    ec2.get_waiter("volume_available").wait(VolumeIds=[held], WaiterConfig=FAST)
    ec2.delete_volume(VolumeId=held)
    ec2.get_waiter("volume_deleted").wait(VolumeIds=[held], WaiterConfig=FAST)


def test_bytes_survive_snapshot_and_restore(cloud, ec2):
    source = available(ec2, Size=1)["VolumeId"]
    path = str(backend(cloud).volume_path(source))
    fmt = backend(cloud).format
    wrote = subprocess.run(
        ["qemu-io", "-f", fmt, "-c", "write -P 0x5c 1048576 65536", path],
        capture_output=True,
        text=True,
        check=False,
    )
    assert wrote.returncode == 0, wrote.stderr
    snap = ec2.create_snapshot(VolumeId=source, Description="before")
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snap["SnapshotId"]], WaiterConfig=FAST)
    ec2.delete_volume(VolumeId=source)  # the snapshot does not need its volume
    restored = available(ec2, SnapshotId=snap["SnapshotId"], Size=2, VolumeType="gp3")
    assert restored["SnapshotId"] == snap["SnapshotId"] and restored["Size"] == 2
    ec2.delete_snapshot(SnapshotId=snap["SnapshotId"])  # nor does the restored volume need the snapshot
    new_path = str(backend(cloud).volume_path(restored["VolumeId"]))
    read = subprocess.run(
        ["qemu-io", "-f", fmt, "-c", "read -P 0x5c 1048576 65536", new_path],
        capture_output=True,
        text=True,
        check=False,
    )
    assert read.returncode == 0 and "verification failed" not in read.stdout, read.stdout + read.stderr
    assert backend(cloud).size_gib(restored["VolumeId"]) == 2


def test_volume_from_snapshot_size_rules(ec2):
    vol = available(ec2, Size=4, Encrypted=True)["VolumeId"]
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snap], WaiterConfig=FAST)
    same = ec2.create_volume(AvailabilityZone=ZONE, SnapshotId=snap)
    assert same["Size"] == 4 and same["Encrypted"] is True  # from an encrypted snapshot: encrypted
    with pytest.raises(ClientError) as small:
        ec2.create_volume(AvailabilityZone=ZONE, SnapshotId=snap, Size=2)
    assert error_of(small) == (
        "InvalidParameterValue",
        f"Volume of size 2GB is smaller than snapshot '{snap}', expect size >= 4GB",
    )
