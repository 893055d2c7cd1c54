"""ModifyVolume, DescribeVolumesModifications, DescribeVolumeStatus and the volume
attributes, through boto3 on the file backend (real image files) and the fake hypervisor.

Proves: a modification goes ``modifying`` → ``optimizing`` → ``completed``, the
volume takes its new size and type, and the backend's image file really grows; a
volume attached to a running guest is grown through its hypervisor (the fake guest
records the new size); EC2's errors (shrink, one modification at a time, type
limits, magnetic volumes, Multi-Attach, unknown volumes, DryRun); the storage
quota; the latest modification of each volume, filtered and paginated; the volume
status and the autoEnableIO attribute.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from ocs import ids
from ocs.db import compute as db_compute
from tests.framework.cloud import Cloud
from tests.framework.errors import code_of, error_of
from tests.functional.test_instances import FAST, Tenant
from tests.functional.test_volume_attach import backend, guest_volumes, one_volume, volume, wait, zone_of

MANAGE = str(Path(sys.executable).with_name("ocs-manage"))
ZONE = "us-east-1a"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    c = Cloud(tmp_path_factory.mktemp("cloud"), {"volume": {"sweep_interval": 0.2}}).start()
    yield c
    c.stop()


@pytest.fixture
def tenant(cloud):
    t = Tenant(cloud, f"modify-{secrets.token_hex(4)}")
    yield t
    t.cleanup()


def modification(ec2, volume_id: str) -> dict:
    [item] = ec2.describe_volumes_modifications(VolumeIds=[volume_id])["VolumesModifications"]
    return item


def completed(ec2, volume_id: str) -> dict:
    return wait(lambda: (m := modification(ec2, volume_id))["ModificationState"] == "completed" and m)


def test_grow_a_volume_and_its_bytes(cloud, tenant):
    ec2 = tenant.ec2
    vol = volume(ec2, ZONE, 1)
    out = ec2.modify_volume(VolumeId=vol, Size=3)["VolumeModification"]
    assert out["VolumeId"] == vol and out["ModificationState"] == "modifying"
    assert (out["OriginalSize"], out["TargetSize"]) == (1, 3)
    assert (out["OriginalVolumeType"], out["TargetVolumeType"]) == ("gp2", "gp2")
    assert (out["OriginalIops"], out["TargetIops"]) == (100, 100)
    assert out["Progress"] == 0 and "StartTime" in out and "EndTime" not in out
    done = completed(ec2, vol)
    assert done["Progress"] == 100 and done["EndTime"] >= done["StartTime"]
    assert one_volume(ec2, vol)["Size"] == 3
    assert backend(cloud).size_gib(vol) == 3  # the image file really grew
    # A second modification once the first is done: the type and its performance.
    with pytest.raises(ClientError) as gp3_ratio:  # above 3,000, gp3 takes 500 IOPS per GiB
        ec2.modify_volume(VolumeId=vol, VolumeType="gp3", Iops=4000)
    assert code_of(gp3_ratio) == "InvalidParameterValue"
    out = ec2.modify_volume(VolumeId=vol, Size=8, VolumeType="gp3", Iops=4000, Throughput=250)[
        "VolumeModification"
    ]
    assert (out["TargetVolumeType"], out["TargetIops"], out["TargetThroughput"]) == ("gp3", 4000, 250)
    completed(ec2, vol)
    item = one_volume(ec2, vol)
    assert (item["VolumeType"], item["Iops"], item["Throughput"], item["Size"]) == ("gp3", 4000, 250, 8)
    assert backend(cloud).size_gib(vol) == 8
    # gp3 → io1 keeps its provisioned IOPS (8 GiB allow 400 io1 IOPS: too many here).
    with pytest.raises(ClientError) as ratio:
        ec2.modify_volume(VolumeId=vol, VolumeType="io1")
    assert error_of(ratio) == (
        "InvalidParameterValue",
        "Iops to volume size ratio of 500.000000 is too high; maximum is 50",
    )
    ec2.modify_volume(VolumeId=vol, VolumeType="io1", Iops=400)
    completed(ec2, vol)
    item = one_volume(ec2, vol)
    assert (item["VolumeType"], item["Iops"], item.get("Throughput")) == ("io1", 400, None)


def test_the_states_on_the_way(cloud, tenant):
    """``optimizing`` is seen between ``modifying`` and ``completed``."""
    ec2 = tenant.ec2
    vol = volume(ec2, ZONE, 1)
    ec2.modify_volume(VolumeId=vol, Size=2)
    seen = set()

    def state() -> bool:
        seen.add(modification(ec2, vol)["ModificationState"])
        return "completed" in seen

    wait(state)
    assert "optimizing" in seen or "modifying" in seen
    assert seen <= {"modifying", "optimizing", "completed"}


def test_ec2s_errors(cloud, tenant):
    ec2 = tenant.ec2
    vol = volume(ec2, ZONE, 2)
    with pytest.raises(ClientError) as shrink:
        ec2.modify_volume(VolumeId=vol, Size=1)
    assert error_of(shrink) == ("InvalidParameterValue", "New size cannot be smaller than existing size")
    with pytest.raises(ClientError) as same:
        ec2.modify_volume(VolumeId=vol, Size=2)
    assert code_of(same) == "InvalidParameterCombination"
    with pytest.raises(ClientError) as nothing:
        ec2.modify_volume(VolumeId=vol)
    assert code_of(nothing) == "MissingParameter"
    with pytest.raises(ClientError) as too_big:
        ec2.modify_volume(VolumeId=vol, Size=16385)  # gp2's maximum is 16,384 GiB
    assert code_of(too_big) == "InvalidParameterValue"
    with pytest.raises(ClientError) as iops:
        ec2.modify_volume(VolumeId=vol, Iops=3000)
    assert error_of(iops) == (
        "InvalidParameterCombination",
        "The parameter iops is not supported for gp2 volumes.",
    )
    with pytest.raises(ClientError) as kind:
        ec2.modify_volume(VolumeId=vol, VolumeType="gp9")
    assert code_of(kind) == "InvalidParameterValue"
    with pytest.raises(ClientError) as multi:
        ec2.modify_volume(VolumeId=vol, MultiAttachEnabled=True)
    assert code_of(multi) == "Unsupported"
    with pytest.raises(ClientError) as magnetic:
        ec2.modify_volume(VolumeId=vol, VolumeType="standard")
    assert code_of(magnetic) == "UnsupportedOperation"
    with pytest.raises(ClientError) as dry:
        ec2.modify_volume(VolumeId=vol, Size=5, DryRun=True)
    assert code_of(dry) == "DryRunOperation"
    missing = ids.new_id("volume")
    with pytest.raises(ClientError) as unknown:
        ec2.modify_volume(VolumeId=missing, Size=5)
    assert error_of(unknown) == ("InvalidVolume.NotFound", f"The volume '{missing}' does not exist")
    with pytest.raises(ClientError) as malformed:
        ec2.modify_volume(VolumeId="vol-nope", Size=5)
    assert code_of(malformed) == "InvalidVolumeID.Malformed"
    # Nothing above started a modification.
    with pytest.raises(ClientError) as never:
        ec2.describe_volumes_modifications(VolumeIds=[vol])
    assert error_of(never) == (
        "InvalidVolumeModification.NotFound",
        f"Modification for volume '{vol}' does not exist.",
    )
    assert one_volume(ec2, vol)["Size"] == 2


def test_one_modification_at_a_time(cloud, tenant):
    ec2 = tenant.ec2
    vol = volume(ec2, ZONE, 1)
    service = cloud.aio.volume
    service.server.stop()  # the service takes no message: the modification stays "modifying"
    try:
        ec2.modify_volume(VolumeId=vol, Size=2)
        with pytest.raises(ClientError) as busy:
            ec2.modify_volume(VolumeId=vol, Size=3)
        assert error_of(busy) == (
            "IncorrectModificationState",
            f"Volume {vol} cannot be modified in modification state MODIFYING",
        )
        [iid] = tenant.running(image_id_of(ec2))
        with pytest.raises(ClientError) as attach:
            ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
        assert error_of(attach) == (
            "OperationNotPermitted",
            f"Cannot attach volume {vol} when it is in modification state: MODIFYING",
        )
    finally:
        service.server.start()
    done = completed(ec2, vol)
    assert done["TargetSize"] == 2 and backend(cloud).size_gib(vol) == 2


def test_a_creating_volume_cannot_be_modified(cloud, tenant):
    ec2 = tenant.ec2
    service = cloud.aio.volume
    service.server.stop()
    try:
        vol = ec2.create_volume(AvailabilityZone=ZONE, Size=1)["VolumeId"]
        with pytest.raises(ClientError) as exc:
            ec2.modify_volume(VolumeId=vol, Size=2)
        assert error_of(exc) == (
            "IncorrectState",
            f"Volume {vol} must be in the available or in-use state to be modified.",
        )
    finally:
        service.server.start()


def image_id_of(ec2) -> str:
    [image] = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"]
    return image["ImageId"]


def test_an_attached_volume_grows_in_its_running_guest(cloud, tenant):
    ec2 = tenant.ec2
    [iid] = tenant.running(image_id_of(ec2))
    vol = volume(ec2, zone_of(tenant, iid), 1)
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    ec2.get_waiter("volume_in_use").wait(VolumeIds=[vol], WaiterConfig=FAST)
    wait(lambda: one_volume(ec2, vol)["Attachments"][0]["State"] == "attached")
    ec2.modify_volume(VolumeId=vol, Size=4)
    completed(ec2, vol)
    agent_guest = next(a.driver._guests[iid] for a in cloud.aio.agents if iid in a.driver._guests)
    assert agent_guest.volume_bytes[vol] == 4 * 1024**3  # the hypervisor was told
    assert vol in guest_volumes(cloud, iid)
    assert backend(cloud).size_gib(vol) == 4
    item = one_volume(ec2, vol)
    assert item["Size"] == 4 and item["State"] == "in-use"


def test_the_storage_quota_binds_a_growth(cloud, tenant):
    ec2 = tenant.ec2
    vol = volume(ec2, ZONE, 2)
    with cloud.session() as s:
        db_compute.set_quota(s, tenant.account.account_id, "volume_gib", 5)
    with pytest.raises(ClientError) as exc:
        ec2.modify_volume(VolumeId=vol, Size=6)
    assert error_of(exc) == (
        "VolumeLimitExceeded",
        "You have exceeded your maximum volume storage limit of 5 GiB.",
    )
    ec2.modify_volume(VolumeId=vol, Size=5)
    completed(ec2, vol)
    with pytest.raises(ClientError) as more:
        ec2.create_volume(AvailabilityZone=ZONE, Size=1)
    assert code_of(more) == "VolumeLimitExceeded"


def test_describe_modifications_filters_and_pages(cloud, tenant):
    ec2 = tenant.ec2
    vols = [volume(ec2, ZONE, 1) for _ in range(6)]
    for i, vol in enumerate(vols):
        ec2.modify_volume(VolumeId=vol, Size=2 + i % 2)
    for vol in vols:
        completed(ec2, vol)
    every = ec2.describe_volumes_modifications()["VolumesModifications"]
    assert sorted(m["VolumeId"] for m in every) == sorted(vols)

    def matching(name: str, *values: str) -> set[str]:
        out = ec2.describe_volumes_modifications(Filters=[{"Name": name, "Values": list(values)}])
        return {m["VolumeId"] for m in out["VolumesModifications"]}

    assert matching("target-size", "3") == set(vols[1::2])
    assert matching("original-size", "1") == set(vols)
    assert matching("modification-state", "completed") == set(vols)
    assert matching("modification-state", "modifying", "optimizing") == set()
    assert matching("volume-id", vols[0]) == {vols[0]}
    assert matching("target-volume-type", "gp2") == set(vols)
    assert matching("start-time", "20*") == set(vols)
    with pytest.raises(ClientError) as bad:
        matching("tag:Name", "x")
    assert code_of(bad) == "InvalidParameterValue"
    paged, token = [], None
    while True:
        kwargs = {"MaxResults": 5, **({"NextToken": token} if token else {})}
        out = ec2.describe_volumes_modifications(**kwargs)
        paged += [m["VolumeId"] for m in out["VolumesModifications"]]
        token = out.get("NextToken")
        if not token:
            break
    assert sorted(paged) == sorted(vols)
    # Another account sees none of them, and a named one is NotFound.
    other = cloud.client(cloud.create_account(f"modify-other-{secrets.token_hex(3)}"))
    assert other.describe_volumes_modifications()["VolumesModifications"] == []
    with pytest.raises(ClientError) as stranger:
        other.describe_volumes_modifications(VolumeIds=[vols[0]])
    assert code_of(stranger) == "InvalidVolume.NotFound"


def test_volume_status(cloud, tenant):
    ec2 = tenant.ec2
    vols = [volume(ec2, ZONE, 1) for _ in range(6)]
    io1 = ec2.create_volume(AvailabilityZone=ZONE, Size=4, VolumeType="io1", Iops=100)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[io1], WaiterConfig=FAST)
    [item] = ec2.describe_volume_status(VolumeIds=[vols[0]])["VolumeStatuses"]
    assert item["VolumeId"] == vols[0] and item["AvailabilityZone"] == ZONE
    assert item["VolumeStatus"] == {
        "Status": "ok",
        "Details": [
            {"Name": "io-enabled", "Status": "passed"},
            {"Name": "io-performance", "Status": "not-applicable"},
        ],
    }
    assert item["Actions"] == [] and item["Events"] == []
    [provisioned] = ec2.describe_volume_status(VolumeIds=[io1])["VolumeStatuses"]
    assert provisioned["VolumeStatus"]["Details"][1] == {"Name": "io-performance", "Status": "normal"}
    everything = {s["VolumeId"] for s in ec2.describe_volume_status()["VolumeStatuses"]}
    assert everything == set(vols) | {io1}
    flt = [{"Name": "volume-status.details-status", "Values": ["normal"]}]
    assert {s["VolumeId"] for s in ec2.describe_volume_status(Filters=flt)["VolumeStatuses"]} == {io1}
    flt = [{"Name": "volume-status.status", "Values": ["impaired"]}]
    assert ec2.describe_volume_status(Filters=flt)["VolumeStatuses"] == []
    paged = []
    for page in ec2.get_paginator("describe_volume_status").paginate(PaginationConfig={"PageSize": 5}):
        paged += [s["VolumeId"] for s in page["VolumeStatuses"]]
    assert sorted(paged) == sorted(everything)
    missing = ids.new_id("volume")
    with pytest.raises(ClientError) as exc:
        ec2.describe_volume_status(VolumeIds=[missing])
    assert code_of(exc) == "InvalidVolume.NotFound"
    with pytest.raises(ClientError) as dry:
        ec2.describe_volume_status(DryRun=True)
    assert code_of(dry) == "DryRunOperation"


def test_volume_attributes(cloud, tenant):
    ec2 = tenant.ec2
    vol = volume(ec2, ZONE, 1)
    out = ec2.describe_volume_attribute(VolumeId=vol, Attribute="autoEnableIO")
    assert out["VolumeId"] == vol and out["AutoEnableIO"] == {"Value": False}
    ec2.modify_volume_attribute(VolumeId=vol, AutoEnableIO={"Value": True})
    assert ec2.describe_volume_attribute(VolumeId=vol, Attribute="autoEnableIO")["AutoEnableIO"] == {
        "Value": True
    }
    assert ec2.describe_volume_attribute(VolumeId=vol, Attribute="productCodes").get("ProductCodes", []) == []
    with pytest.raises(ClientError) as bad:
        ec2.describe_volume_attribute(VolumeId=vol, Attribute="size")
    assert code_of(bad) == "InvalidParameterValue"
    with pytest.raises(ClientError) as none:
        ec2.modify_volume_attribute(VolumeId=vol)
    assert code_of(none) == "MissingParameter"
    with pytest.raises(ClientError) as dry:
        ec2.modify_volume_attribute(VolumeId=vol, AutoEnableIO={"Value": False}, DryRun=True)
    assert code_of(dry) == "DryRunOperation"
    assert ec2.describe_volume_attribute(VolumeId=vol, Attribute="autoEnableIO")["AutoEnableIO"]["Value"]


def test_manage_quota_volume_gib_and_snapshots(cloud, tenant):
    conf = str(cloud.aio.conf_file)
    name = tenant.account.name
    vol = volume(tenant.ec2, ZONE, 2)
    result = subprocess.run(
        [
            MANAGE,
            "--config-file",
            conf,
            "quota",
            "set",
            name,
            "--volume-gib",
            "3",
            "--snapshots",
            "0",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    quotas = json.loads(result.stdout)["quotas"]
    assert quotas["volume_gib"] == {"limit": 3, "used": 2, "default": 51200}
    assert quotas["snapshots"] == {"limit": 0, "used": 0, "default": 100000}
    with pytest.raises(ClientError) as gib:
        tenant.ec2.create_volume(AvailabilityZone=ZONE, Size=2)
    assert error_of(gib) == (
        "VolumeLimitExceeded",
        "You have exceeded your maximum volume storage limit of 3 GiB.",
    )
    with pytest.raises(ClientError) as snaps:
        tenant.ec2.create_snapshot(VolumeId=vol)
    assert code_of(snaps) == "SnapshotLimitExceeded"
    shown = subprocess.run(
        [MANAGE, "--config-file", conf, "quota", "show", name], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0 and "volume_gib" in shown.stdout and "snapshots" in shown.stdout
    back = subprocess.run(
        [MANAGE, "--config-file", conf, "quota", "set", name, "--default"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert back.returncode == 0, back.stderr
    tenant.ec2.create_volume(AvailabilityZone=ZONE, Size=2)
    bad = subprocess.run(
        [MANAGE, "--config-file", conf, "quota", "set", name, "--volume-gib", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        bad.returncode == 1 and bad.stderr.startswith("ocs-manage: error:") and "Traceback" not in bad.stderr
    )


def test_a_modification_the_hypervisor_refuses_fails(cloud, tenant):
    """The guest's hypervisor cannot grow the plugged volume: ``failed``, the volume as it
    was (size, bytes), and the next modification may start."""
    ec2 = tenant.ec2
    [iid] = tenant.running(image_id_of(ec2))
    vol = volume(ec2, zone_of(tenant, iid), 1)
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    wait(lambda: one_volume(ec2, vol)["Attachments"][0]["State"] == "attached")
    driver = next(a.driver for a in cloud.aio.agents if iid in a.driver._guests)
    driver.faults.operation_failures["resize_volume"] = 1
    ec2.modify_volume(VolumeId=vol, Size=3)
    failed = wait(lambda: (m := modification(ec2, vol))["ModificationState"] == "failed" and m)
    assert "simulated failure of resize_volume" in failed["StatusMessage"] and "EndTime" in failed
    assert one_volume(ec2, vol)["Size"] == 1 and backend(cloud).size_gib(vol) == 1
    ec2.modify_volume(VolumeId=vol, Size=3)
    assert completed(ec2, vol)["TargetSize"] == 3
    assert one_volume(ec2, vol)["Size"] == 3 and backend(cloud).size_gib(vol) == 3


def test_the_provisioned_iops_quota(cloud, tenant):
    ec2 = tenant.ec2
    with cloud.session() as s:
        db_compute.set_quota(s, tenant.account.account_id, "provisioned_iops", 1000)
    io1 = ec2.create_volume(AvailabilityZone=ZONE, Size=30, VolumeType="io1", Iops=500)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[io1], WaiterConfig=FAST)
    with pytest.raises(ClientError) as create:
        ec2.create_volume(AvailabilityZone=ZONE, Size=10, VolumeType="io2", Iops=501)
    assert error_of(create) == (
        "MaxIOPSLimitExceeded",
        "You've reached the limit on your IOPS usage for that region.",
    )
    with pytest.raises(ClientError) as modify:
        ec2.modify_volume(VolumeId=io1, Iops=501 + 500)
    assert code_of(modify) == "MaxIOPSLimitExceeded"
    ec2.modify_volume(VolumeId=io1, Iops=400)  # fewer IOPS always fit
    completed(ec2, io1)
    gp3 = volume(ec2, ZONE, 10)  # gp3 and gp2 IOPS are not provisioned IOPS
    ec2.modify_volume(VolumeId=gp3, VolumeType="gp3", Iops=5000)
    completed(ec2, gp3)
    result = subprocess.run(
        [MANAGE, "--config-file", str(cloud.aio.conf_file), "quota", "show", tenant.account.name, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(result.stdout)["quotas"]["provisioned_iops"] == {
        "limit": 1000,
        "used": 400,
        "default": 300000,
    }
