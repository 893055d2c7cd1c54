"""AttachVolume / DetachVolume through boto3 on the fake hypervisor.

The volume's bytes are real files of the ``file`` backend; the fake guest records
the volumes its host plugged in (with the backend's path), which the tests assert.
Also: DescribeVolumes' Attachments and their filters, DescribeInstances'
BlockDeviceMappings, the waiters, a stopped instance's volumes at its start,
DeleteOnTermination at termination (and through ModifyInstanceAttribute), and
EC2's errors.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.framework.cloud import Cloud
from tests.framework.errors import code_of, error_of
from tests.functional.test_instances import FAST, Tenant


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    c = Cloud(tmp_path_factory.mktemp("cloud"), {"volume": {"sweep_interval": 0.2}}).start()
    yield c
    c.stop()


@pytest.fixture
def tenant(cloud):
    t = Tenant(cloud, f"attach-{secrets.token_hex(4)}")
    yield t
    t.cleanup()


def wait(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return value


def guest_volumes(cloud, instance_id: str) -> dict[str, Any]:
    """The fake guest's volumes: volume id -> VolumeAttachment (as the driver got it)."""
    for agent in cloud.aio.agents:
        found = agent.driver._guests.get(instance_id)
        if found is not None:
            return dict(found.volumes)
    return {}


def backend(cloud):
    assert cloud.aio.volume is not None
    return cloud.aio.volume.endpoint.backend


def volume(ec2, zone: str, size: int = 1) -> str:
    volume_id = ec2.create_volume(AvailabilityZone=zone, Size=size)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    return volume_id


def zone_of(tenant, instance_id: str) -> str:
    return tenant.one(instance_id)["Placement"]["AvailabilityZone"]


def one_volume(ec2, volume_id: str) -> dict:
    [item] = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"]
    return item


def test_attach_and_detach_a_running_instance(cloud, tenant, image_id):
    ec2 = tenant.ec2
    [iid] = tenant.running(image_id)
    vol = volume(ec2, zone_of(tenant, iid), size=2)
    out = ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    assert (out["VolumeId"], out["InstanceId"], out["Device"], out["State"]) == (
        vol,
        iid,
        "/dev/sdf",
        "attaching",
    )
    assert "AttachTime" in out
    ec2.get_waiter("volume_in_use").wait(VolumeIds=[vol], WaiterConfig=FAST)
    wait(lambda: one_volume(ec2, vol)["Attachments"][0]["State"] == "attached")
    item = one_volume(ec2, vol)
    assert item["State"] == "in-use"
    [att] = item["Attachments"]
    assert (att["InstanceId"], att["Device"], att["DeleteOnTermination"]) == (iid, "/dev/sdf", False)
    plugged = guest_volumes(cloud, iid)[vol]  # the host plugged in the backend's file
    assert plugged.device == "/dev/sdf" and plugged.backend == "file"
    assert plugged.target == str(backend(cloud).volume_path(vol).resolve())
    [bdm] = tenant.one(iid)["BlockDeviceMappings"]
    assert bdm["DeviceName"] == "/dev/sdf"
    assert (bdm["Ebs"]["VolumeId"], bdm["Ebs"]["Status"], bdm["Ebs"]["DeleteOnTermination"]) == (
        vol,
        "attached",
        False,
    )
    attr = ec2.describe_instance_attribute(InstanceId=iid, Attribute="blockDeviceMapping")
    assert attr["BlockDeviceMappings"][0]["Ebs"]["VolumeId"] == vol
    with pytest.raises(ClientError) as busy:
        ec2.delete_volume(VolumeId=vol)
    assert error_of(busy) == ("VolumeInUse", f"Volume {vol} is currently attached to {iid}")

    out = ec2.detach_volume(VolumeId=vol)
    assert (out["State"], out["InstanceId"], out["Device"]) == ("detaching", iid, "/dev/sdf")
    ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig=FAST)
    assert one_volume(ec2, vol)["Attachments"] == []
    assert vol not in guest_volumes(cloud, iid)
    assert tenant.one(iid)["BlockDeviceMappings"] == []
    with pytest.raises(ClientError) as again:
        ec2.detach_volume(VolumeId=vol)
    assert error_of(again) == ("IncorrectState", f"Volume '{vol}' is in the 'available' state.")
    ec2.delete_volume(VolumeId=vol)


def test_attachment_filters(cloud, tenant, image_id):
    ec2 = tenant.ec2
    [iid] = tenant.running(image_id)
    zone = zone_of(tenant, iid)
    a, b, spare = volume(ec2, zone), volume(ec2, zone), volume(ec2, zone)
    ec2.attach_volume(VolumeId=a, InstanceId=iid, Device="/dev/sdf")
    ec2.attach_volume(VolumeId=b, InstanceId=iid, Device="/dev/xvdg")
    ec2.get_waiter("volume_in_use").wait(VolumeIds=[a, b], WaiterConfig=FAST)
    wait(lambda: all(one_volume(ec2, v)["Attachments"][0]["State"] == "attached" for v in (a, b)))
    ec2.modify_instance_attribute(
        InstanceId=iid,
        BlockDeviceMappings=[{"DeviceName": "/dev/xvdg", "Ebs": {"DeleteOnTermination": True}}],
    )

    def found(name: str, *values: str) -> list[str]:
        out = ec2.describe_volumes(Filters=[{"Name": name, "Values": list(values)}])["Volumes"]
        return sorted(v["VolumeId"] for v in out)

    assert found("attachment.instance-id", iid) == sorted([a, b])
    assert found("attachment.device", "/dev/xvdg") == [b]
    assert found("attachment.status", "attached") == sorted([a, b])
    assert found("attachment.delete-on-termination", "true") == [b]
    assert found("attachment.delete-on-termination", "false") == [a]
    stamp = one_volume(ec2, a)["Attachments"][0]["AttachTime"]
    assert a in found("attachment.attach-time", stamp.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S*"))
    assert found("status", "available") == [spare]
    devices = {m["DeviceName"]: m["Ebs"] for m in tenant.one(iid)["BlockDeviceMappings"]}
    assert devices["/dev/xvdg"]["DeleteOnTermination"] is True
    hits = tenant.instances(Filters=[{"Name": "block-device-mapping.volume-id", "Values": [b]}])
    assert [i["InstanceId"] for i in hits] == [iid]

    # TerminateInstances: the DeleteOnTermination volume is deleted, the other one detached.
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=FAST)
    ec2.get_waiter("volume_available").wait(VolumeIds=[a], WaiterConfig=FAST)
    ec2.get_waiter("volume_deleted").wait(VolumeIds=[b], WaiterConfig=FAST)
    wait(lambda: b not in backend(cloud).volumes())
    assert a in backend(cloud).volumes()
    for v in (a, spare):
        ec2.delete_volume(VolumeId=v)


def test_a_stopped_instance_gets_its_volumes_when_it_starts(cloud, tenant, image_id):
    ec2 = tenant.ec2
    [iid] = tenant.running(image_id)
    zone = zone_of(tenant, iid)
    kept, added = volume(ec2, zone), volume(ec2, zone)
    ec2.attach_volume(VolumeId=kept, InstanceId=iid, Device="/dev/sdh")
    wait(lambda: kept in guest_volumes(cloud, iid))
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=FAST)

    out = ec2.attach_volume(VolumeId=added, InstanceId=iid, Device="/dev/sdi")
    assert out["State"] == "attaching"
    assert one_volume(ec2, added)["Attachments"][0]["State"] == "attached"  # at once: stopped
    assert ec2.detach_volume(VolumeId=kept)["State"] == "detaching"
    assert one_volume(ec2, kept)["State"] == "available"
    assert kept in guest_volumes(cloud, iid) and added not in guest_volumes(cloud, iid)

    ec2.start_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=FAST)
    assert sorted(guest_volumes(cloud, iid)) == [added]
    assert guest_volumes(cloud, iid)[added].device == "/dev/sdi"
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("volume_available").wait(VolumeIds=[added], WaiterConfig=FAST)


def test_errors(cloud, tenant, image_id):
    ec2 = tenant.ec2
    [iid] = tenant.running(image_id)
    zone = zone_of(tenant, iid)
    vol, other = volume(ec2, zone), volume(ec2, zone)

    def error(**params: Any) -> tuple[str, str]:
        with pytest.raises(ClientError) as raised:
            ec2.attach_volume(**{"VolumeId": vol, "InstanceId": iid, "Device": "/dev/sdf", **params})
        return error_of(raised)

    for bad in ("/dev/sdf1", "xvdf", "/dev/sdba", "/dev/xvdeo", "/dev/vdb", "sdf"):
        assert error(Device=bad) == (
            "InvalidParameterValue",
            f"Value ({bad}) for parameter device is invalid. {bad} is not a valid EBS device name.",
        )
    for root in ("/dev/sda1", "/dev/xvda"):
        assert error(Device=root) == (
            "InvalidParameterValue",
            f"Invalid value '{root}' for unixDevice. Attachment point {root} is already in use",
        )
    assert (
        code_of_call(
            lambda: ec2.attach_volume(VolumeId="vol-0123456789abcdef0", InstanceId=iid, Device="/dev/sdf")
        )
        == "InvalidVolume.NotFound"
    )
    assert error(InstanceId="i-0123456789abcdef0")[0] == "InvalidInstanceID.NotFound"
    assert error(VolumeId="vol-xyz")[0] == "InvalidVolumeID.Malformed"

    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    assert error() == ("VolumeInUse", f"{vol} is already attached to an instance")
    assert error(VolumeId=other) == (
        "InvalidParameterValue",
        "Invalid value '/dev/sdf' for unixDevice. Attachment point /dev/sdf is already in use",
    )
    assert error(VolumeId=other, Device="/dev/xvdf")[0] == "InvalidParameterValue"  # the same disk
    with pytest.raises(ClientError) as wrong:
        ec2.detach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdg")
    assert code_of(wrong) == "InvalidAttachment.NotFound"

    far_zone = next(
        z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"] if z["ZoneName"] != zone
    )
    far = ec2.create_volume(AvailabilityZone=far_zone, Size=1)["VolumeId"]
    creating = error(VolumeId=far, Device="/dev/sdj")
    assert creating[0] in ("IncorrectState", "InvalidVolume.ZoneMismatch")
    ec2.get_waiter("volume_available").wait(VolumeIds=[far], WaiterConfig=FAST)
    assert error(VolumeId=far, Device="/dev/sdj") == (
        "InvalidVolume.ZoneMismatch",
        f"The volume '{far}' is not in the same availability zone as instance '{iid}'",
    )

    # Another account sees neither the volume nor the instance.
    stranger = cloud.client(cloud.create_account(f"stranger-{secrets.token_hex(4)}"))
    with pytest.raises(ClientError) as hidden:
        stranger.attach_volume(VolumeId=other, InstanceId=iid, Device="/dev/sdk")
    assert code_of(hidden) == "InvalidVolume.NotFound"
    with pytest.raises(ClientError) as hidden:
        stranger.detach_volume(VolumeId=vol)
    assert code_of(hidden) == "InvalidVolume.NotFound"

    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=FAST)
    assert error(VolumeId=other, Device="/dev/sdk") == (
        "IncorrectState",
        f"Instance '{iid}' is not 'running'.",
    )
    for v in (vol, other, far):
        ec2.get_waiter("volume_available").wait(VolumeIds=[v], WaiterConfig=FAST)
        ec2.delete_volume(VolumeId=v)


def code_of_call(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    return code_of(raised)


def test_a_failed_hot_plug_leaves_the_volume_available(cloud, tenant, image_id):
    ec2 = tenant.ec2
    [iid] = tenant.running(image_id)
    vol = volume(ec2, zone_of(tenant, iid))
    host = next(a for a in cloud.aio.agents if iid in a.driver._guests)
    host.driver.faults.operation_failures["attach_volume"] = 1
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig=FAST)
    assert one_volume(ec2, vol)["Attachments"] == [] and vol not in guest_volumes(cloud, iid)
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")  # works the second time
    wait(lambda: one_volume(ec2, vol)["Attachments"][0]["State"] == "attached")
    host.driver.faults.operation_failures["detach_volume"] = 1
    ec2.detach_volume(VolumeId=vol)
    wait(lambda: one_volume(ec2, vol)["Attachments"][0]["State"] == "attached")  # the guest kept it
    assert vol in guest_volumes(cloud, iid)
    host.driver.faults.operation_failures["detach_volume"] = 1
    ec2.detach_volume(VolumeId=vol, Force=True)
    ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig=FAST)
