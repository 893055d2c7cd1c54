"""CopySnapshot, CreateSnapshots and createVolumePermission through boto3 (file backend).

Proves: a copy is a snapshot with bytes of its own (the backend holds both files;
deleting the source keeps the copy usable), ``pending`` → ``completed``; the
region and encryption rules; CreateSnapshots of an instance's volumes with its
exclusions and tag copying; a snapshot shared with another account (or public) is
seen by it in DescribeSnapshots (owners, restorable-by) and a volume and a copy can
be made from it, while an unshared one answers exactly as a missing one; only the
owner reads and changes the permission; EC2's errors and DryRun.
"""

from __future__ import annotations

import secrets

import pytest
from botocore.exceptions import ClientError

from ocs import ids
from ocs.db import compute as db_compute
from tests.framework.cloud import Cloud
from tests.framework.errors import code_of, error_of
from tests.functional.test_instances import FAST, Tenant
from tests.functional.test_volume_attach import backend, one_volume, volume, wait, zone_of

ZONE = "us-east-1a"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    c = Cloud(tmp_path_factory.mktemp("cloud"), {"volume": {"sweep_interval": 0.2}}).start()
    yield c
    c.stop()


@pytest.fixture
def tenant(cloud):
    t = Tenant(cloud, f"share-{secrets.token_hex(4)}")
    yield t
    t.cleanup()


@pytest.fixture
def other(cloud):
    return Tenant(cloud, f"share-other-{secrets.token_hex(4)}")


def snapshot(ec2, vol: str, **params) -> str:
    snap = ec2.create_snapshot(VolumeId=vol, **params)["SnapshotId"]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snap], WaiterConfig=FAST)
    return snap


def one(ec2, snap: str) -> dict:
    [item] = ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"]
    return item


def image_id_of(ec2) -> str:
    [image] = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"]
    return image["ImageId"]


def test_copy_snapshot_has_its_own_bytes(cloud, tenant):
    ec2 = tenant.ec2
    source = snapshot(ec2, volume(ec2, ZONE, 2), Description="orig")
    out = ec2.copy_snapshot(
        SourceSnapshotId=source,
        SourceRegion="us-east-1",
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "v"}]}],
    )
    copy = out["SnapshotId"]
    assert ids.is_valid("snapshot", copy) and copy != source and out["Tags"] == [{"Key": "k", "Value": "v"}]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[copy], WaiterConfig=FAST)
    item = one(ec2, copy)
    assert item["Description"] == f"[Copied {source} from us-east-1]"
    assert (item["VolumeId"], item["VolumeSize"], item["Progress"]) == ("vol-ffffffff", 2, "100%")
    assert item["Tags"] == [{"Key": "k", "Value": "v"}] and item["Encrypted"] is False
    files = backend(cloud)
    assert {source, copy} <= files.snapshots()
    assert files.snapshot_path(copy).stat().st_ino != files.snapshot_path(source).stat().st_ino
    ec2.delete_snapshot(SnapshotId=source)
    wait(lambda: source not in files.snapshots())
    restored = ec2.create_volume(AvailabilityZone=ZONE, SnapshotId=copy)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[restored], WaiterConfig=FAST)
    assert one_volume(ec2, restored)["Size"] == 2 and one_volume(ec2, restored)["SnapshotId"] == copy


def test_copy_snapshot_rules(cloud, tenant):
    ec2 = tenant.ec2
    source = snapshot(ec2, volume(ec2, ZONE, 1))
    with pytest.raises(ClientError) as region:
        ec2.copy_snapshot(SourceSnapshotId=source, SourceRegion="eu-west-1")
    assert code_of(region) == "InvalidParameterValue" and "eu-west-1" in error_of(region)[1]
    # (boto3 sets DestinationRegion to its own region itself, and signs a PresignedUrl.)
    with pytest.raises(ClientError) as kms:
        ec2.copy_snapshot(SourceSnapshotId=source, SourceRegion="us-east-1", KmsKeyId="alias/mine")
    assert code_of(kms) == "InvalidParameterDependency"
    with pytest.raises(ClientError) as dry:
        ec2.copy_snapshot(SourceSnapshotId=source, SourceRegion="us-east-1", DryRun=True)
    assert code_of(dry) == "DryRunOperation"
    missing = ids.new_id("snapshot")
    with pytest.raises(ClientError) as unknown:
        ec2.copy_snapshot(SourceSnapshotId=missing, SourceRegion="us-east-1")
    assert error_of(unknown) == ("InvalidSnapshot.NotFound", f"The snapshot '{missing}' does not exist")
    encrypted = ec2.copy_snapshot(
        SourceSnapshotId=source,
        SourceRegion="us-east-1",
        Encrypted=True,
        KmsKeyId="alias/mine",
        Description="secret",
    )["SnapshotId"]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[encrypted], WaiterConfig=FAST)
    item = one(ec2, encrypted)
    assert (item["Encrypted"], item["KmsKeyId"], item["Description"]) == (True, "alias/mine", "secret")
    # A pending source cannot be copied yet.
    cloud.aio.volume.server.stop()
    try:
        pending = ec2.create_snapshot(VolumeId=one(ec2, source)["VolumeId"])["SnapshotId"]
        with pytest.raises(ClientError) as state:
            ec2.copy_snapshot(SourceSnapshotId=pending, SourceRegion="us-east-1")
        assert error_of(state) == ("IncorrectState", f"Snapshot '{pending}' is in the 'pending' state.")
    finally:
        cloud.aio.volume.server.start()
    with cloud.session() as s:
        db_compute.set_quota(s, tenant.account.account_id, "snapshots", 3)
    with pytest.raises(ClientError) as limit:
        ec2.copy_snapshot(SourceSnapshotId=source, SourceRegion="us-east-1")
    assert code_of(limit) == "SnapshotLimitExceeded"


def test_create_snapshots_of_an_instance(cloud, tenant):
    ec2 = tenant.ec2
    [iid] = tenant.running(image_id_of(ec2))
    zone = zone_of(tenant, iid)
    data = []
    for device, name in (("/dev/sdf", "f"), ("/dev/sdg", "g"), ("/dev/sdh", "h")):
        vol = ec2.create_volume(
            AvailabilityZone=zone,
            Size=1,
            TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": name}]}],
        )["VolumeId"]
        ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig=FAST)
        ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device=device)
        data.append(vol)
    ec2.get_waiter("volume_in_use").wait(VolumeIds=data, WaiterConfig=FAST)
    out = ec2.create_snapshots(
        InstanceSpecification={"InstanceId": iid, "ExcludeDataVolumeIds": [data[2]]},
        Description="all of it",
        CopyTagsFromSource="volume",
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "batch", "Value": "1"}]}],
    )["Snapshots"]
    assert sorted(s["VolumeId"] for s in out) == sorted(data[:2])
    for info in out:
        assert info["State"] == "pending" and info["Description"] == "all of it" and info["VolumeSize"] == 1
        name = "f" if info["VolumeId"] == data[0] else "g"
        assert sorted((t["Key"], t["Value"]) for t in info["Tags"]) == [("Name", name), ("batch", "1")]
    snaps = [s["SnapshotId"] for s in out]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=snaps, WaiterConfig=FAST)
    assert set(snaps) <= backend(cloud).snapshots()
    with pytest.raises(ClientError) as unknown:
        ec2.create_snapshots(InstanceSpecification={"InstanceId": ids.new_id("instance")})
    assert code_of(unknown) == "InvalidInstanceID.NotFound"
    with pytest.raises(ClientError) as dry:
        ec2.create_snapshots(InstanceSpecification={"InstanceId": iid}, DryRun=True)
    assert code_of(dry) == "DryRunOperation"
    with pytest.raises(ClientError) as bad_copy:
        ec2.create_snapshots(InstanceSpecification={"InstanceId": iid}, CopyTagsFromSource="instance")
    assert code_of(bad_copy) == "InvalidParameterValue"


def test_sharing_with_another_account(cloud, tenant, other):
    a, b = tenant.ec2, other.ec2
    a_id, b_id = tenant.account.account_id, other.account.account_id
    shared = snapshot(a, volume(a, ZONE, 2))
    private = snapshot(a, volume(a, ZONE, 1))
    # Unshared: B cannot tell it from one that does not exist.
    for snap in (shared, private):
        with pytest.raises(ClientError) as hidden:
            b.describe_snapshots(SnapshotIds=[snap])
        assert error_of(hidden) == ("InvalidSnapshot.NotFound", f"The snapshot '{snap}' does not exist")
        with pytest.raises(ClientError) as no_volume:
            b.create_volume(AvailabilityZone=ZONE, SnapshotId=snap)
        assert code_of(no_volume) == "InvalidSnapshot.NotFound"
    a.modify_snapshot_attribute(
        SnapshotId=shared, Attribute="createVolumePermission", OperationType="add", UserIds=[b_id]
    )
    attr = a.describe_snapshot_attribute(SnapshotId=shared, Attribute="createVolumePermission")
    assert attr["CreateVolumePermissions"] == [{"UserId": b_id}]
    item = one(b, shared)
    assert item["OwnerId"] == a_id and item["State"] == "completed"
    assert [s["SnapshotId"] for s in b.describe_snapshots()["Snapshots"]] == [shared]
    assert [s["SnapshotId"] for s in b.describe_snapshots(OwnerIds=[a_id])["Snapshots"]] == [shared]
    assert b.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
    assert [s["SnapshotId"] for s in b.describe_snapshots(RestorableByUserIds=["self"])["Snapshots"]] == [
        shared
    ]
    flt = [{"Name": "owner-id", "Values": [a_id]}]
    assert [s["SnapshotId"] for s in b.describe_snapshots(Filters=flt)["Snapshots"]] == [shared]
    mine = {s["SnapshotId"] for s in a.describe_snapshots(RestorableByUserIds=[b_id])["Snapshots"]}
    assert mine == {shared}
    # B makes a volume and a copy of it.
    vol = b.create_volume(AvailabilityZone=ZONE, SnapshotId=shared)["VolumeId"]
    b.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig=FAST)
    assert one_volume(b, vol)["Size"] == 2
    copy = b.copy_snapshot(SourceSnapshotId=shared, SourceRegion="us-east-1")["SnapshotId"]
    b.get_waiter("snapshot_completed").wait(SnapshotIds=[copy], WaiterConfig=FAST)
    assert one(b, copy)["OwnerId"] == b_id
    # Only the owner reads or changes the permission; B's own changes nothing.
    for call in (
        lambda: b.describe_snapshot_attribute(SnapshotId=shared, Attribute="createVolumePermission"),
        lambda: b.modify_snapshot_attribute(
            SnapshotId=shared, CreateVolumePermission={"Add": [{"Group": "all"}]}
        ),
        lambda: b.reset_snapshot_attribute(SnapshotId=shared, Attribute="createVolumePermission"),
    ):
        with pytest.raises(ClientError) as denied:
            call()
        assert code_of(denied) == "AuthFailure"
    with pytest.raises(ClientError) as not_hers:
        b.delete_snapshot(SnapshotId=shared)
    assert code_of(not_hers) == "InvalidSnapshot.NotFound"
    # Revoked: hidden again.
    a.modify_snapshot_attribute(SnapshotId=shared, CreateVolumePermission={"Remove": [{"UserId": b_id}]})
    with pytest.raises(ClientError) as gone:
        b.describe_snapshots(SnapshotIds=[shared])
    assert code_of(gone) == "InvalidSnapshot.NotFound"
    assert b.describe_snapshots(OwnerIds=[a_id])["Snapshots"] == []


def test_public_snapshots_and_reset(cloud, tenant, other):
    a, b = tenant.ec2, other.ec2
    snap = snapshot(a, volume(a, ZONE, 1))
    a.modify_snapshot_attribute(SnapshotId=snap, CreateVolumePermission={"Add": [{"Group": "all"}]})
    assert a.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")[
        "CreateVolumePermissions"
    ] == [{"Group": "all"}]
    assert one(b, snap)["SnapshotId"] == snap
    public = {s["SnapshotId"] for s in b.describe_snapshots(RestorableByUserIds=["all"])["Snapshots"]}
    assert snap in public
    a.reset_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    assert (
        a.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")[
            "CreateVolumePermissions"
        ]
        == []
    )
    with pytest.raises(ClientError) as hidden:
        b.describe_snapshots(SnapshotIds=[snap])
    assert code_of(hidden) == "InvalidSnapshot.NotFound"


def test_permission_errors(cloud, tenant):
    a = tenant.ec2
    snap = snapshot(a, volume(a, ZONE, 1))
    with pytest.raises(ClientError) as user:
        a.modify_snapshot_attribute(SnapshotId=snap, CreateVolumePermission={"Add": [{"UserId": "12"}]})
    assert code_of(user) == "InvalidParameterValue"
    with pytest.raises(ClientError) as group:
        a.modify_snapshot_attribute(SnapshotId=snap, CreateVolumePermission={"Add": [{"Group": "friends"}]})
    assert code_of(group) == "InvalidParameterValue"
    with pytest.raises(ClientError) as nothing:
        a.modify_snapshot_attribute(SnapshotId=snap)
    assert code_of(nothing) == "MissingParameter"
    with pytest.raises(ClientError) as codes:
        a.modify_snapshot_attribute(SnapshotId=snap, Attribute="productCodes")
    assert code_of(codes) == "InvalidParameterValue"
    with pytest.raises(ClientError) as attribute:
        a.describe_snapshot_attribute(SnapshotId=snap, Attribute="volumeSize")
    assert code_of(attribute) == "InvalidParameterValue"
    assert (
        a.describe_snapshot_attribute(SnapshotId=snap, Attribute="productCodes").get("ProductCodes", []) == []
    )
    with pytest.raises(ClientError) as dry:
        a.modify_snapshot_attribute(
            SnapshotId=snap, CreateVolumePermission={"Add": [{"Group": "all"}]}, DryRun=True
        )
    assert code_of(dry) == "DryRunOperation"
    with pytest.raises(ClientError) as owner:
        a.describe_snapshots(OwnerIds=["not-an-owner"])
    assert code_of(owner) == "InvalidUserID.Malformed"
    missing = ids.new_id("snapshot")
    with pytest.raises(ClientError) as unknown:
        a.describe_snapshot_attribute(SnapshotId=missing, Attribute="createVolumePermission")
    assert code_of(unknown) == "InvalidSnapshot.NotFound"
    # An encrypted snapshot is never public.
    secret = a.create_volume(AvailabilityZone=ZONE, Size=1, Encrypted=True)["VolumeId"]
    a.get_waiter("volume_available").wait(VolumeIds=[secret], WaiterConfig=FAST)
    enc = snapshot(a, secret)
    with pytest.raises(ClientError) as public:
        a.modify_snapshot_attribute(SnapshotId=enc, CreateVolumePermission={"Add": [{"Group": "all"}]})
    assert code_of(public) == "OperationNotPermitted"
