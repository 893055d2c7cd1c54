"""EBS volumes hot-plugged into a real guest through the whole API path.

boto3 → ocs-api → agent → libvirt → QEMU, the bytes in the ``file`` backend
(qcow2): CreateVolume → AttachVolume to a running guest → the attachment becomes
``attached``, the domain has the disk (the backend's file) and the guest's kernel
reports the new virtio disk on the console; the guest's user-data finds the disk
and writes a marker into it → DetachVolume → ``available``, the disk is gone from
the domain, and the marker is in the backend's file.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.framework.cloud import Cloud
from tests.framework.guest_image import GuestImage
from tests.framework.hostnet import host_network, merged
from tests.integration.libvirt.test_api_path import WAIT, console, register

pytestmark = pytest.mark.slow

# The guest's user-data: wait for a 1 GiB disk to appear, write a marker at its start.
FINDS_AND_WRITES = r"""#!/bin/sh
i=0
while [ $i -lt 300 ]; do
    for dev in /sys/block/vd*; do
        if [ "$(cat $dev/size)" = "2097152" ]; then
            name=${dev##*/}
            echo "OCS-VOLUME-DATA written by the guest" | dd of=/dev/$name bs=512 conv=sync 2>/dev/null
            sync
            echo "volume-test: wrote /dev/$name"
            exit 0
        fi
    done
    i=$((i + 1))
    sleep 0.2
done
echo "volume-test: no volume appeared"
"""


@pytest.fixture
def cloud(libvirt_uri: str, workdir: Path, tmp_path: Path) -> Iterator[Cloud]:
    host = f"itest-vol-{os.getpid()}"
    overrides = {
        "DEFAULT": {"host": host},
        "compute": {"driver": "libvirt", "shutdown_timeout": 30.0},
        "libvirt": {
            "uri": libvirt_uri,
            "instances_path": str(workdir / "vol-instances"),
            "image_cache_path": str(workdir / "vol-cache"),
        },
        # QEMU (user libvirt-qemu) opens the volume by path: a directory it can reach.
        "volume": {"state_dir": str(workdir / f"vol-backend-{os.getpid()}")},
    }
    with host_network(host, required=False) as network:
        cloud = Cloud(tmp_path / "state", merged(overrides, network)).start()
        try:
            yield cloud
        finally:
            cloud.stop()


def domain_xml(cloud: Cloud, instance_id: str) -> str:
    import libvirt

    conn = libvirt.open(cloud.aio.agents[0].driver.uri)
    try:
        return str(conn.lookupByName(f"ocs-{instance_id}").XMLDesc(0))
    finally:
        conn.close()


def attachment_state(ec2: Any, volume_id: str) -> str:
    attachments = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["Attachments"]
    return str(attachments[0]["State"]) if attachments else "none"


def test_hot_plug_write_detach(cloud: Cloud, test_image: GuestImage, workdir: Path, tmp_path: Path) -> None:
    ec2 = cloud.client()
    ami = register(cloud, test_image)
    iid = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, UserData=FINDS_AND_WRITES)["Instances"][0][
        "InstanceId"
    ]
    zone = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["Placement"][
        "AvailabilityZone"
    ]
    vol = ec2.create_volume(AvailabilityZone=zone, Size=1)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig=WAIT)
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=WAIT)
    console(ec2, iid, "OCS-TEST-IMAGE: userspace ready")
    try:
        started = time.monotonic()
        ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
        deadline = time.monotonic() + 60
        while attachment_state(ec2, vol) != "attached":
            assert time.monotonic() < deadline, "the attachment never became attached"
            time.sleep(0.2)
        print(f"AttachVolume to attached: {time.monotonic() - started:.2f} s")
        path = cloud.aio.volume.endpoint.backend.volume_path(vol).resolve()  # type: ignore[union-attr]
        xml = domain_xml(cloud, iid)
        assert f"<source file='{path}'" in xml and "<target dev='vdf'" in xml
        out = console(ec2, iid, "volume-test: wrote /dev/vd")
        assert "2097152 512-byte logical blocks" in out  # the kernel saw the disk arrive

        ec2.detach_volume(VolumeId=vol)
        ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig=WAIT)
        assert str(path) not in domain_xml(cloud, iid)
        raw = tmp_path / "volume.raw"
        subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", str(path), str(raw)], check=True)
        with raw.open("rb") as f:
            assert f.read(64).startswith(b"OCS-VOLUME-DATA written by the guest\n")
    finally:
        ec2.terminate_instances(InstanceIds=[iid])
        ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=WAIT)
        ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig=WAIT)
        ec2.delete_volume(VolumeId=vol)


# The guest's user-data: wait for a 1 GiB disk, then report when it has grown to 2 GiB.
WATCHES_GROWTH = r"""#!/bin/sh
i=0
name=""
while [ $i -lt 600 ] && [ -z "$name" ]; do
    for dev in /sys/block/vd*; do
        if [ "$(cat $dev/size)" = "2097152" ]; then name=${dev##*/}; fi
    done
    i=$((i + 1))
    sleep 0.2
done
echo "volume-test: found /dev/$name"
i=0
while [ $i -lt 600 ]; do
    if [ "$(cat /sys/block/$name/size)" = "4194304" ]; then
        echo "volume-test: /dev/$name grew to 4194304 sectors"
        exit 0
    fi
    i=$((i + 1))
    sleep 0.2
done
echo "volume-test: /dev/$name never grew"
"""


def test_modify_volume_grows_a_plugged_volume_in_the_guest(cloud: Cloud, test_image: GuestImage) -> None:
    """ModifyVolume of a volume attached to a running guest: QEMU grows the image it holds
    open (virDomainBlockResize through the agent) and the guest's kernel sees 2 GiB."""
    ec2 = cloud.client()
    ami = register(cloud, test_image)
    iid = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, UserData=WATCHES_GROWTH)["Instances"][0][
        "InstanceId"
    ]
    zone = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["Placement"][
        "AvailabilityZone"
    ]
    vol = ec2.create_volume(AvailabilityZone=zone, Size=1)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig=WAIT)
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=WAIT)
    try:
        ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
        console(ec2, iid, "volume-test: found /dev/vd")
        started = time.monotonic()
        ec2.modify_volume(VolumeId=vol, Size=2)
        deadline = time.monotonic() + 60
        while True:
            [mod] = ec2.describe_volumes_modifications(VolumeIds=[vol])["VolumesModifications"]
            if mod["ModificationState"] in ("optimizing", "completed", "failed"):
                break
            assert time.monotonic() < deadline, "the modification never left 'modifying'"
            time.sleep(0.2)
        assert mod["ModificationState"] != "failed", mod
        print(f"ModifyVolume to optimizing: {time.monotonic() - started:.2f} s")
        out = console(ec2, iid, "grew to 4194304 sectors")
        print(f"ModifyVolume to the guest's new size: {time.monotonic() - started:.2f} s")
        assert "never grew" not in out
        backend = cloud.aio.volume.endpoint.backend  # type: ignore[union-attr]
        assert backend.size_gib(vol) == 2
        assert ec2.describe_volumes(VolumeIds=[vol])["Volumes"][0]["Size"] == 2
    finally:
        ec2.terminate_instances(InstanceIds=[iid])
        ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=WAIT)
        ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig=WAIT)
        ec2.delete_volume(VolumeId=vol)
