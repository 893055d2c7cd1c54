"""EBS-backed instances and images through boto3, on the fake hypervisor and the ``file`` backend.

RunInstances' BlockDeviceMapping (root volume overrides, blank and snapshot-based
volumes made at launch, NoDevice, ephemeral names, and EC2's errors); EBS-backed
AMIs registered from snapshots (DescribeImages' mappings) and launched (the root
volume is made from the image's snapshot and is the guest's root disk: the fake
guest records it); Stop/Start keeps the root volume, TerminateInstances deletes
what DeleteOnTermination says; CreateImage (pending → available, its snapshots,
reboot or not, and its errors); DeleteSnapshot of an image's snapshot;
DeregisterImage leaves the snapshots; an instance-store instance cannot stop.
"""

from __future__ import annotations

import secrets
import subprocess
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.framework.cloud import Cloud
from tests.framework.errors import code_of, error_of
from tests.functional.test_images import Images
from tests.functional.test_instances import FAST, Tenant
from tests.functional.test_volume_attach import wait


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    c = Cloud(tmp_path_factory.mktemp("cloud"), {"volume": {"sweep_interval": 0.2}}).start()
    yield c
    c.stop()


@pytest.fixture
def tenant(cloud):
    t = Tenant(cloud, f"ebs-{secrets.token_hex(4)}")
    yield t
    t.cleanup()


def first_zone(ec2) -> str:
    return ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]


def snapshot(ec2, size: int = 1, **create: Any) -> str:
    """A completed snapshot of a new volume of ``size`` GiB (the volume is deleted)."""
    volume_id = ec2.create_volume(AvailabilityZone=first_zone(ec2), Size=size, **create)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    snap = ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snap], WaiterConfig=FAST)
    ec2.delete_volume(VolumeId=volume_id)
    return snap


def ebs_ami(ec2, root_snapshot: str, *, extra: list[dict] | None = None, root: str = "/dev/xvda") -> str:
    mappings = [{"DeviceName": root, "Ebs": {"SnapshotId": root_snapshot}}, *(extra or [])]
    return ec2.register_image(
        Name=f"ebs-{secrets.token_hex(4)}",
        RootDeviceName=root,
        Architecture="x86_64",
        VirtualizationType="hvm",
        BlockDeviceMappings=mappings,
    )["ImageId"]


def fake_guest(cloud, instance_id: str):
    for agent in cloud.aio.agents:
        found = agent.driver._guests.get(instance_id)
        if found is not None:
            return found
    return None


def backend(cloud):
    assert cloud.aio.volume is not None
    return cloud.aio.volume.endpoint.backend


def devices_of(item: dict) -> dict[str, dict]:
    return {m["DeviceName"]: m.get("Ebs", m) for m in item["BlockDeviceMappings"]}


def volume(ec2, volume_id: str) -> dict:
    [item] = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"]
    return item


def gone(ec2, volume_id: str) -> bool:
    try:
        return volume(ec2, volume_id)["State"] == "deleted"
    except ClientError as exc:
        return exc.response["Error"]["Code"] == "InvalidVolume.NotFound"


# --- EBS-backed AMIs -------------------------------------------------------------------------


def test_register_an_ebs_backed_image_and_describe_its_mappings(tenant):
    ec2 = tenant.ec2
    root, data = snapshot(ec2, 2), snapshot(ec2, 1)
    ami = ebs_ami(
        ec2,
        root,
        extra=[
            {
                "DeviceName": "/dev/sdf",
                "Ebs": {"SnapshotId": data, "VolumeSize": 3, "DeleteOnTermination": False},
            },
            {"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 8, "VolumeType": "gp3", "Iops": 4000}},
            {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
            {"DeviceName": "/dev/sdc", "NoDevice": ""},
        ],
    )
    [image] = ec2.describe_images(ImageIds=[ami])["Images"]
    assert image["RootDeviceType"] == "ebs" and image["RootDeviceName"] == "/dev/xvda"
    assert image["VirtualizationType"] == "hvm" and image["Architecture"] == "x86_64"
    assert image["State"] == "available"
    assert image["BlockDeviceMappings"] == [
        {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
        {"DeviceName": "/dev/sdc", "NoDevice": ""},
        {
            "DeviceName": "/dev/sdf",
            "Ebs": {
                "DeleteOnTermination": False,
                "SnapshotId": data,
                "VolumeSize": 3,
                "VolumeType": "gp2",
                "Encrypted": False,
            },
        },
        {
            "DeviceName": "/dev/sdg",
            "Ebs": {
                "DeleteOnTermination": True,
                "VolumeSize": 8,
                "VolumeType": "gp3",
                "Iops": 4000,
                "Throughput": 125,
                "Encrypted": False,
            },
        },
        {
            "DeviceName": "/dev/xvda",
            "Ebs": {
                "DeleteOnTermination": True,
                "SnapshotId": root,
                "VolumeSize": 2,
                "VolumeType": "gp2",
                "Encrypted": False,
            },
        },
    ]
    found = ec2.describe_images(Filters=[{"Name": "block-device-mapping.snapshot-id", "Values": [root]}])
    assert [i["ImageId"] for i in found["Images"]] == [ami]


@pytest.mark.parametrize(
    ("params", "code", "words"),
    [
        (
            {"BlockDeviceMappings": [{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1}}]},
            "InvalidBlockDeviceMapping",
            "root device",
        ),
        (
            {"BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 1}}]},
            "InvalidBlockDeviceMapping",
            "root device",
        ),
        (
            {
                "BlockDeviceMappings": [
                    {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-0123456789abcdef0"}}
                ]
            },
            "InvalidSnapshot.NotFound",
            "snap-0123456789abcdef0",
        ),
        (
            {"BlockDeviceMappings": [{"DeviceName": "/dev/sde1", "Ebs": {"VolumeSize": 1}}]},
            "InvalidBlockDeviceMapping",
            "Invalid device name /dev/sde1",
        ),
        ({"RootDeviceName": None}, "MissingParameter", "rootDeviceName"),
        ({"ImageLocation": "123456789012/x"}, "InvalidParameterCombination", "imageLocation"),
    ],
)
def test_register_image_mapping_errors(cloud, tenant, params, code, words):
    base = {
        "Name": f"bad-{secrets.token_hex(4)}",
        "RootDeviceName": "/dev/xvda",
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-0123456789abcdef0"}}],
    }
    request = {k: v for k, v in {**base, **params}.items() if v is not None}
    client = cloud.client(tenant.account, parameter_validation=False)
    with pytest.raises(ClientError) as exc:
        client.register_image(**request)
    assert code_of(exc) == code and words in error_of(exc)[1]


def test_register_image_refuses_a_snapshot_still_pending_or_too_large_a_claim(cloud, tenant):
    ec2 = tenant.ec2
    snap = snapshot(ec2, 2)
    with pytest.raises(ClientError) as exc:
        ebs_ami(ec2, snap, extra=[{"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": snap, "VolumeSize": 1}}])
    assert error_of(exc) == (
        "InvalidBlockDeviceMapping",
        f"Volume of size 1GB is smaller than  snapshot '{snap}', expect size >= 2GB",
    )


# --- launching an EBS-backed AMI ---------------------------------------------------------------


def test_an_ebs_backed_instance_boots_from_a_root_volume_made_from_the_image(cloud, tenant):
    ec2 = tenant.ec2
    snap = snapshot(ec2, 2)
    ami = ebs_ami(ec2, snap)
    reply = tenant.run(ami)["Instances"][0]
    iid = reply["InstanceId"]
    assert reply["State"]["Name"] == "pending" and reply["RootDeviceType"] == "ebs"
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=FAST)
    item = tenant.one(iid)
    assert item["RootDeviceType"] == "ebs" and item["RootDeviceName"] == "/dev/xvda"
    [root] = item["BlockDeviceMappings"]
    assert root["DeviceName"] == "/dev/xvda"
    assert root["Ebs"]["Status"] == "attached" and root["Ebs"]["DeleteOnTermination"] is True
    vol = volume(ec2, root["Ebs"]["VolumeId"])
    assert vol["State"] == "in-use" and vol["SnapshotId"] == snap and vol["Size"] == 2
    assert vol["VolumeType"] == "gp2"
    assert vol["Attachments"] == [
        {
            "VolumeId": vol["VolumeId"],
            "InstanceId": iid,
            "Device": "/dev/xvda",
            "State": "attached",
            "AttachTime": vol["Attachments"][0]["AttachTime"],
            "DeleteOnTermination": True,
        }
    ]
    guest = fake_guest(cloud, iid)
    path = backend(cloud).volume_path(vol["VolumeId"]).resolve()
    assert guest.spec.root_volume.volume_id == vol["VolumeId"]
    assert guest.spec.root_volume.target == str(path) and path.exists()
    assert guest.spec.volumes == () and guest.spec.disk_gib == 0
    assert guest.info().root_volume == vol["VolumeId"] and guest.info().volumes == ()
    console = ec2.get_console_output(InstanceId=iid)["Output"]
    assert f"EBS volume {vol['VolumeId']}" in console
    info = subprocess.run(["qemu-img", "info", "-U", str(path)], capture_output=True, text=True, check=True)
    base = backend(cloud).base_path(vol["VolumeId"])
    assert f"backing file: {base.name}" in info.stdout  # a clone: it reads the snapshot's bytes
    assert base.stat().st_ino == backend(cloud).snapshot_path(snap).stat().st_ino
    attr = ec2.describe_instance_attribute(InstanceId=iid, Attribute="blockDeviceMapping")
    assert attr["BlockDeviceMappings"] == item["BlockDeviceMappings"]
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="rootDeviceName")["RootDeviceName"] == {
        "Value": "/dev/xvda"
    }
    with pytest.raises(ClientError) as exc:
        ec2.detach_volume(VolumeId=vol["VolumeId"])
    assert code_of(exc) == "IncorrectState"

    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=FAST)
    wait(lambda: gone(ec2, vol["VolumeId"]))
    wait(lambda: not path.exists())
    assert ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]["State"] == "completed"


def test_block_device_mappings_at_launch(cloud, tenant):
    ec2 = tenant.ec2
    root_snap, data_snap = snapshot(ec2, 1), snapshot(ec2, 1)
    ami = ebs_ami(ec2, root_snap, extra=[{"DeviceName": "/dev/sdh", "Ebs": {"VolumeSize": 1}}])
    out = tenant.run(
        ami,
        MinCount=2,
        MaxCount=2,
        BlockDeviceMappings=[
            {
                "DeviceName": "/dev/xvda",
                "Ebs": {"VolumeSize": 8, "VolumeType": "gp3", "Iops": 3500, "Throughput": 200},
            },
            {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 2, "DeleteOnTermination": False}},
            {
                "DeviceName": "/dev/xvdg",
                "Ebs": {
                    "SnapshotId": data_snap,
                    "VolumeSize": 4,
                    "VolumeType": "io1",
                    "Iops": 100,
                    "Encrypted": True,
                },
            },
            {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
            {"DeviceName": "/dev/sdh", "NoDevice": ""},
        ],
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "made", "Value": "at-launch"}]}],
    )
    ids = [i["InstanceId"] for i in out["Instances"]]
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=FAST)
    seen: set[str] = set()
    for iid in ids:
        devices = devices_of(tenant.one(iid))
        assert sorted(devices) == ["/dev/sdf", "/dev/xvda", "/dev/xvdg"]  # no ephemeral, sdh suppressed
        assert all(d["Status"] == "attached" for d in devices.values())
        root = volume(ec2, devices["/dev/xvda"]["VolumeId"])
        assert (root["Size"], root["VolumeType"], root["Iops"], root["Throughput"]) == (8, "gp3", 3500, 200)
        assert root["SnapshotId"] == root_snap and root["Tags"] == [{"Key": "made", "Value": "at-launch"}]
        blank = volume(ec2, devices["/dev/sdf"]["VolumeId"])
        assert (blank["Size"], blank["SnapshotId"], blank["State"]) == (2, "", "in-use")
        assert devices["/dev/sdf"]["DeleteOnTermination"] is False
        restored = volume(ec2, devices["/dev/xvdg"]["VolumeId"])
        assert (restored["SnapshotId"], restored["VolumeType"], restored["Iops"]) == (data_snap, "io1", 100)
        assert restored["Encrypted"] is True and restored["Size"] == 4
        assert devices["/dev/xvdg"]["DeleteOnTermination"] is True  # made at launch: true by default
        guest = fake_guest(cloud, iid)
        assert guest.spec.root_volume.volume_id == root["VolumeId"]
        assert {v.device: v.volume_id for v in guest.spec.volumes} == {
            "/dev/sdf": blank["VolumeId"],
            "/dev/xvdg": restored["VolumeId"],
        }
        seen |= {root["VolumeId"], blank["VolumeId"], restored["VolumeId"]}
    assert len(seen) == 6  # each instance its own volumes
    filtered = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": ids}])["Volumes"]
    assert {v["VolumeId"] for v in filtered} == seen

    ec2.terminate_instances(InstanceIds=ids)
    ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig=FAST)
    wait(lambda: all(gone(ec2, v) or volume(ec2, v)["State"] == "available" for v in seen))
    left = [v for v in seen if not gone(ec2, v)]
    assert len(left) == 2 and all(volume(ec2, v)["Size"] == 2 for v in left)  # DeleteOnTermination false
    for v in left:
        ec2.delete_volume(VolumeId=v)


def test_volumes_at_launch_of_an_image_of_the_image_store(cloud, tenant, image_id):
    ec2 = tenant.ec2
    [iid] = tenant.running(
        image_id,
        BlockDeviceMappings=[
            {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 5}},
            {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1}},
        ],
    )
    item = tenant.one(iid)
    assert item["RootDeviceType"] == "ebs"
    assert list(devices_of(item)) == ["/dev/sdf"]  # its root disk is the host's, 5 GiB
    guest = fake_guest(cloud, iid)
    assert guest.spec.root_volume is None and guest.spec.disk_gib == 5
    assert [v.device for v in guest.spec.volumes] == ["/dev/sdf"]
    with pytest.raises(ClientError) as exc:
        ec2.create_image(InstanceId=iid, Name=f"no-root-{secrets.token_hex(3)}")
    assert error_of(exc) == (
        "InvalidParameterValue",
        f"Invalid value '{iid}' for instanceId. Instance does not have a volume attached at root (/dev/xvda)",
    )


def _launch_error(tenant, ami: str, mappings: list[dict], **extra: Any):
    client = tenant.ec2
    with pytest.raises(ClientError) as exc:
        client.run_instances(
            ImageId=ami,
            MinCount=1,
            MaxCount=1,
            InstanceType="t2.micro",
            BlockDeviceMappings=mappings,
            **extra,
        )
    return error_of(exc)


def test_launch_mapping_errors(cloud, tenant):
    ec2 = tenant.ec2
    snap = snapshot(ec2, 2)
    ami = ebs_ami(ec2, snap)
    before = {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}
    cases = [
        (
            [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 1}}],
            (
                "InvalidBlockDeviceMapping",
                f"Volume of size 1GB is smaller than  snapshot '{snap}', expect size >= 2GB",
            ),
        ),
        (
            [{"DeviceName": "/dev/sde1", "Ebs": {"VolumeSize": 1}}],
            ("InvalidBlockDeviceMapping", "Invalid device name /dev/sde1"),
        ),
        (
            [{"DeviceName": "xvdf", "Ebs": {"VolumeSize": 1}}],
            ("InvalidBlockDeviceMapping", "Invalid device name xvdf"),
        ),
        ([{"Ebs": {"VolumeSize": 1}}], ("InvalidBlockDeviceMapping", "Missing device name")),
        (
            [
                {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1}},
                {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 2}},
            ],
            ("InvalidBlockDeviceMapping", "/dev/sdf is being assigned to multiple times."),
        ),
        (
            [
                {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1}},
                {"DeviceName": "/dev/xvdf", "Ebs": {"VolumeSize": 2}},
            ],
            ("InvalidBlockDeviceMapping", "/dev/xvdf is being assigned to multiple times."),
        ),
        (
            [{"DeviceName": "/dev/sda", "Ebs": {"VolumeSize": 1}}],
            ("InvalidBlockDeviceMapping", "/dev/sda is being assigned to multiple times."),
        ),
        (
            [{"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}}],
            ("InvalidBlockDeviceMapping", "Either snapshot ID or volume size must be provided for: /dev/sdf"),
        ),
        (
            [{"DeviceName": "/dev/xvda", "NoDevice": ""}],
            ("InvalidBlockDeviceMapping", "The root device /dev/xvda cannot be suppressed with NoDevice"),
        ),
        ([{"DeviceName": "/dev/sdb", "VirtualName": "ephemeral24"}], ("InvalidBlockDeviceMapping", None)),
        (
            [{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 4, "VolumeType": "io1"}}],
            ("InvalidParameterCombination", "The parameter iops must be specified for io1 volumes."),
        ),
        (
            [{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 4, "Iops": 300}}],
            ("InvalidParameterCombination", "The parameter iops is not supported for gp2 volumes."),
        ),
        (
            [{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 4, "VolumeType": "io1", "Iops": 1000}}],
            ("InvalidParameterValue", "Iops to volume size ratio of 250.000000 is too high; maximum is 50"),
        ),
        (
            [{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1, "VolumeType": "gp2", "Throughput": 200}}],
            ("InvalidParameterCombination", "throughput can only be specified for volumeType gp3."),
        ),
        (
            [{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1, "VolumeType": "magnetic"}}],
            ("InvalidParameterValue", None),
        ),
        (
            [{"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": "snap-0123456789abcdef0"}}],
            ("InvalidSnapshot.NotFound", None),
        ),
        (
            [{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1, "KmsKeyId": "alias/x"}}],
            ("Unsupported", None),
        ),
        (
            [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot(ec2, 1)}}],
            ("InvalidBlockDeviceMapping", None),
        ),
    ]
    for mappings, (code, message) in cases:
        got = _launch_error(tenant, ami, mappings)
        assert got[0] == code, (mappings, got)
        if message is not None:
            assert got[1] == message, (mappings, got)
    assert {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]} == before  # nothing made


def test_a_snapshot_of_another_account_is_not_found_but_its_image_launches(cloud, tenant):
    owner = Tenant(cloud, f"ebs-owner-{secrets.token_hex(3)}")
    try:
        snap, other = snapshot(owner.ec2, 1), snapshot(owner.ec2, 1)
        ami = ebs_ami(owner.ec2, snap)
        owner.ec2.modify_image_attribute(
            ImageId=ami, LaunchPermission={"Add": [{"UserId": tenant.account.account_id}]}
        )
        code, _ = _launch_error(tenant, ami, [{"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": other}}])
        assert code == "InvalidSnapshot.NotFound"
        [iid] = tenant.running(ami)
        root = devices_of(tenant.one(iid))["/dev/xvda"]
        vol = volume(tenant.ec2, root["VolumeId"])
        assert vol["SnapshotId"] == snap  # the image's snapshot, the launcher's volume
    finally:
        owner.cleanup()


def test_a_volume_that_cannot_be_made_fails_the_launch(cloud, tenant):
    ec2 = tenant.ec2
    ami = ebs_ami(ec2, snapshot(ec2, 1))
    store = backend(cloud)
    real = store.clone

    def broken(*args: Any, **kwargs: Any) -> None:
        from ocs.volume.backend import BackendError

        raise BackendError("simulated: the backend is full")

    store.clone = broken
    try:
        iid = tenant.run(ami)["Instances"][0]["InstanceId"]
        ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=FAST)
    finally:
        store.clone = real
    item = tenant.one(iid)
    assert item["StateReason"]["Code"] == "Server.InternalError"
    assert "could not be created" in item["StateReason"]["Message"]
    assert fake_guest(cloud, iid) is None
    [image] = ec2.describe_images(ImageIds=[ami])["Images"]
    made_from = [{"Name": "snapshot-id", "Values": [image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]]}]
    wait(lambda: not ec2.describe_volumes(Filters=made_from)["Volumes"])  # the failed root volume went


def test_the_volume_quota_counts_launch_volumes(cloud, tenant):
    ec2 = tenant.ec2
    ami = ebs_ami(ec2, snapshot(ec2, 1))
    big = [{"DeviceName": f"/dev/sd{d}", "Ebs": {"VolumeSize": 16000}} for d in "fghi"]
    code, message = _launch_error(tenant, ami, big)
    assert code == "VolumeLimitExceeded" and "51200 GiB" in message


# --- stop, start, terminate --------------------------------------------------------------------------


def test_stop_and_start_keep_the_root_volume_and_dot_is_modifiable(cloud, tenant):
    ec2 = tenant.ec2
    ami = ebs_ami(ec2, snapshot(ec2, 1))
    [iid] = tenant.running(ami, BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1}}])
    devices = devices_of(tenant.one(iid))
    root_id = devices["/dev/xvda"]["VolumeId"]
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=FAST)
    assert volume(ec2, root_id)["State"] == "in-use"
    assert devices_of(tenant.one(iid)) == devices
    ec2.start_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=FAST)
    guest = fake_guest(cloud, iid)
    assert guest.boots == 2 and guest.info().root_volume == root_id
    assert list(guest.volumes) == [devices["/dev/sdf"]["VolumeId"]]  # the root is no hot-plugged volume

    ec2.modify_instance_attribute(
        InstanceId=iid,
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"DeleteOnTermination": False}}],
    )
    assert devices_of(tenant.one(iid))["/dev/xvda"]["DeleteOnTermination"] is False
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=FAST)
    ec2.get_waiter("volume_available").wait(VolumeIds=[root_id], WaiterConfig=FAST)
    assert volume(ec2, root_id)["Attachments"] == []
    wait(lambda: gone(ec2, devices["/dev/sdf"]["VolumeId"]))
    ec2.delete_volume(VolumeId=root_id)


def test_an_instance_store_instance_cannot_stop(cloud, tenant, tmp_path):
    images = Images(cloud, tmp_path)
    kernel = images.put(tenant.account, image_type="kernel", data=b"vmlinuz")
    ami = tenant.ec2.register_image(Name=f"kernel-{secrets.token_hex(3)}", KernelId=kernel)["ImageId"]
    [iid] = tenant.running(ami)
    assert tenant.one(iid)["RootDeviceType"] == "instance-store"
    with pytest.raises(ClientError) as exc:
        tenant.ec2.stop_instances(InstanceIds=[iid])
    assert error_of(exc) == (
        "UnsupportedOperation",
        f"The instance '{iid}' does not have an 'ebs' root device type and cannot be stopped.",
    )
    with pytest.raises(ClientError) as exc:
        tenant.ec2.create_image(InstanceId=iid, Name=f"store-{secrets.token_hex(3)}")
    assert (
        code_of(exc) == "InvalidParameterValue"
        and "does not have a volume attached at root (/dev/sda1)" in error_of(exc)[1]
    )


# --- CreateImage ---------------------------------------------------------------------------------


def test_create_image_of_a_running_instance_reboots_it_and_launches(cloud, tenant):
    ec2 = tenant.ec2
    ami = ebs_ami(ec2, snapshot(ec2, 1))
    [iid] = tenant.running(
        ami,
        BlockDeviceMappings=[
            {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 2, "DeleteOnTermination": False}}
        ],
    )
    devices = devices_of(tenant.one(iid))
    name = f"from-{iid}"
    new = ec2.create_image(
        InstanceId=iid,
        Name=name,
        Description="made by CreateImage",
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "kind", "Value": "image"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "kind", "Value": "snapshot"}]},
        ],
    )["ImageId"]
    [image] = ec2.describe_images(ImageIds=[new])["Images"]
    assert image["State"] in ("pending", "available") and image["Name"] == name
    ec2.get_waiter("image_available").wait(ImageIds=[new], WaiterConfig=FAST)
    [image] = ec2.describe_images(ImageIds=[new])["Images"]
    assert image["RootDeviceType"] == "ebs" and image["RootDeviceName"] == "/dev/xvda"
    assert image["Description"] == "made by CreateImage" and image["Tags"] == [
        {"Key": "kind", "Value": "image"}
    ]
    mapped = {m["DeviceName"]: m["Ebs"] for m in image["BlockDeviceMappings"]}
    assert sorted(mapped) == ["/dev/sdf", "/dev/xvda"]
    assert (
        mapped["/dev/xvda"]["DeleteOnTermination"] is True
        and mapped["/dev/sdf"]["DeleteOnTermination"] is False
    )
    assert mapped["/dev/sdf"]["VolumeSize"] == 2
    snaps = ec2.describe_snapshots(SnapshotIds=[m["SnapshotId"] for m in mapped.values()])["Snapshots"]
    assert all(s["State"] == "completed" for s in snaps)
    assert {s["VolumeId"] for s in snaps} == {d["VolumeId"] for d in devices.values()}
    assert all(s["Description"] == f"Created by CreateImage({iid}) for {new}" for s in snaps)
    assert all(s["Tags"] == [{"Key": "kind", "Value": "snapshot"}] for s in snaps)
    wait(lambda: tenant.one(iid)["State"]["Name"] == "running" and fake_guest(cloud, iid).boots == 2)
    console = ec2.get_console_output(InstanceId=iid)["Output"]
    assert "ACPI: power button pressed" in console  # it was shut down for the snapshots

    [second] = tenant.running(new)
    copied = devices_of(tenant.one(second))
    assert sorted(copied) == ["/dev/sdf", "/dev/xvda"]
    assert volume(ec2, copied["/dev/xvda"]["VolumeId"])["SnapshotId"] == mapped["/dev/xvda"]["SnapshotId"]
    assert copied["/dev/sdf"]["DeleteOnTermination"] is False
    tenant.cleanup()
    for v in (devices["/dev/sdf"]["VolumeId"], copied["/dev/sdf"]["VolumeId"]):
        ec2.get_waiter("volume_available").wait(VolumeIds=[v], WaiterConfig=FAST)
        ec2.delete_volume(VolumeId=v)


def test_create_image_with_no_reboot_and_of_a_stopped_instance(cloud, tenant):
    ec2 = tenant.ec2
    ami = ebs_ami(ec2, snapshot(ec2, 1))
    [iid] = tenant.running(ami, BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1}}])
    live = ec2.create_image(
        InstanceId=iid,
        Name=f"live-{iid}",
        NoReboot=True,
        BlockDeviceMappings=[
            {"DeviceName": "/dev/sdf", "NoDevice": ""},
            {"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 3}},
            {"DeviceName": "/dev/xvda", "Ebs": {"DeleteOnTermination": False}},
        ],
    )["ImageId"]
    ec2.get_waiter("image_available").wait(ImageIds=[live], WaiterConfig=FAST)
    mapped = {
        m["DeviceName"]: m["Ebs"]
        for m in ec2.describe_images(ImageIds=[live])["Images"][0]["BlockDeviceMappings"]
    }
    assert sorted(mapped) == ["/dev/sdg", "/dev/xvda"]
    assert mapped["/dev/xvda"]["DeleteOnTermination"] is False and "SnapshotId" not in mapped["/dev/sdg"]
    assert fake_guest(cloud, iid).boots == 1  # NoReboot: the guest ran on

    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=FAST)
    cold = ec2.create_image(InstanceId=iid, Name=f"cold-{iid}")["ImageId"]
    ec2.get_waiter("image_available").wait(ImageIds=[cold], WaiterConfig=FAST)
    assert tenant.one(iid)["State"]["Name"] == "stopped"


def test_create_image_errors(cloud, tenant):
    ec2 = tenant.ec2
    ami = ebs_ami(ec2, snapshot(ec2, 1))
    [iid] = tenant.running(ami)
    name = f"taken-{secrets.token_hex(3)}"
    ec2.create_image(InstanceId=iid, Name=name, NoReboot=True)
    cases = [
        ({"Name": name}, "InvalidAMIName.Duplicate"),
        ({"Name": "x"}, "InvalidAMIName.Malformed"),
        (
            {"BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 9}}]},
            "InvalidBlockDeviceMapping",
        ),
        ({"BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "NoDevice": ""}]}, "InvalidBlockDeviceMapping"),
        ({"InstanceId": "i-0123456789abcdef0"}, "InvalidInstanceID.NotFound"),
    ]
    client = cloud.client(tenant.account, parameter_validation=False)
    for params, code in cases:
        request = {"InstanceId": iid, "Name": f"err-{secrets.token_hex(3)}", **params}
        with pytest.raises(ClientError) as exc:
            client.create_image(**request)
        assert code_of(exc) == code, params
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=FAST)
    with pytest.raises(ClientError) as exc:
        ec2.create_image(InstanceId=iid, Name=f"late-{secrets.token_hex(3)}")
    assert error_of(exc) == (
        "InvalidParameterValue",
        f"Invalid value '{iid}' for instanceId. Instance is not in state 'running' or 'stopping' or 'stopped'",
    )


# --- snapshots images use --------------------------------------------------------------------------


def test_an_images_snapshot_is_in_use_until_it_is_deregistered(cloud, tenant):
    ec2 = tenant.ec2
    snap = snapshot(ec2, 1)
    ami = ebs_ami(ec2, snap)
    with pytest.raises(ClientError) as exc:
        ec2.delete_snapshot(SnapshotId=snap)
    assert error_of(exc) == ("InvalidSnapshot.InUse", f"The snapshot {snap} is currently in use by {ami}")
    ec2.deregister_image(ImageId=ami)
    assert ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]["State"] == "completed"
    ec2.delete_snapshot(SnapshotId=snap)
    with pytest.raises(ClientError) as exc:
        ec2.describe_snapshots(SnapshotIds=[snap])
    assert code_of(exc) == "InvalidSnapshot.NotFound"


def test_deregister_image_can_delete_its_snapshots(cloud, tenant):
    ec2 = tenant.ec2
    shared, own = snapshot(ec2, 1), snapshot(ec2, 1)
    keeper = ebs_ami(ec2, shared)
    doomed = ebs_ami(ec2, shared, extra=[{"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": own}}])
    out = ec2.deregister_image(ImageId=doomed, DeleteAssociatedSnapshots=True)
    assert sorted(out["DeleteSnapshotResults"], key=lambda r: r["SnapshotId"]) == sorted(
        [{"SnapshotId": shared, "ReturnCode": "skipped"}, {"SnapshotId": own, "ReturnCode": "success"}],
        key=lambda r: r["SnapshotId"],
    )
    assert [
        s["SnapshotId"]
        for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        if s["SnapshotId"] in (shared, own)
    ] == [shared]
    ec2.deregister_image(ImageId=keeper)
    ec2.delete_snapshot(SnapshotId=shared)


def test_a_launch_that_finds_no_room_leaves_no_volume(cloud, tenant):
    ec2 = tenant.ec2
    ami = ebs_ami(ec2, snapshot(ec2, 1))
    before = {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}
    made = backend(cloud).volumes()
    with pytest.raises(ClientError) as exc:
        tenant.run(
            ami,
            MaxCount=2,
            Placement={"AvailabilityZone": "us-east-1c"},  # no host there
            BlockDeviceMappings=[
                {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1, "DeleteOnTermination": False}}
            ],
        )
    assert code_of(exc) == "InsufficientInstanceCapacity"
    assert tenant.instances() == []
    wait(lambda: {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]} == before)
    wait(lambda: backend(cloud).volumes() <= made)  # their bytes too, if any were made


def test_modify_volume_grows_a_running_instances_root_through_its_hypervisor(cloud, tenant):
    ec2 = tenant.ec2
    ami = ebs_ami(ec2, snapshot(ec2, 1))
    [iid] = tenant.running(ami)
    root = devices_of(tenant.one(iid))["/dev/xvda"]["VolumeId"]
    ec2.modify_volume(VolumeId=root, Size=3)
    wait(lambda: fake_guest(cloud, iid).volume_bytes.get(root) == 3 * 1024**3)
    wait(lambda: volume(ec2, root)["Size"] == 3)
    assert backend(cloud).size_gib(root) == 3
