"""A Ceph RBD volume hot-plugged into a real guest through the whole API path.

boto3 → ocs-api → ocs-volume (``[volume] backend = rbd``, the private test
cluster of :mod:`tests.framework.ceph`) and the agent → libvirt → QEMU's librbd:
CreateVolume → AttachVolume to a running guest → the domain has a network disk
``protocol='rbd'`` on the test cluster's monitor, authenticated through a libvirt
secret the agent defined from its keyring; the guest's kernel sees the disk and
the guest writes a marker into it → DetachVolume → the marker is in Ceph (read
back through QEMU's rbd driver) → AttachVolume again → the guest finds the disk
once more and reads the marker back from it.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.framework.ceph import CephCluster
from tests.framework.cloud import Cloud
from tests.framework.guest_image import GuestImage
from tests.framework.hostnet import host_network, merged
from tests.integration.libvirt.test_api_path import WAIT, console, register
from tests.integration.libvirt.test_volume_hotplug import attachment_state, domain_xml

pytestmark = pytest.mark.slow

MARKER = "OCS-RBD-DATA written by the guest"

# The guest's user-data: wait for the 1 GiB disk, write the marker, wait for the disk to
# go and come back, and print what its first bytes hold then. Every wait is bounded.
WRITES_THEN_READS_BACK = rf"""#!/bin/sh
disk() {{
    for dev in /sys/block/vd*; do
        [ "$(cat $dev/size 2>/dev/null)" = "2097152" ] && {{ echo ${{dev##*/}}; return 0; }}
    done
    return 1
}}
i=0; while ! name=$(disk) && [ $i -lt 600 ]; do i=$((i + 1)); sleep 0.2; done
[ -n "$name" ] || {{ echo "volume-test: no volume appeared"; exit 0; }}
echo "{MARKER}" | dd of=/dev/$name bs=512 conv=sync,fsync 2>/dev/null
sync
echo "volume-test: wrote /dev/$name"
i=0; while disk >/dev/null && [ $i -lt 600 ]; do i=$((i + 1)); sleep 0.2; done
echo "volume-test: volume gone"
i=0; while ! name=$(disk) && [ $i -lt 600 ]; do i=$((i + 1)); sleep 0.2; done
echo "volume-test: back as /dev/$name holding <$(dd if=/dev/$name bs=512 count=1 2>/dev/null | head -c {len(MARKER)})>"
"""


@pytest.fixture
def cloud(libvirt_uri: str, workdir: Path, tmp_path: Path, ceph_cluster: CephCluster) -> Iterator[Cloud]:
    host = f"itest-rbd-{os.getpid()}"
    settings = ceph_cluster.backend_settings()
    overrides = {
        "DEFAULT": {"host": host},
        "compute": {"driver": "libvirt", "shutdown_timeout": 30.0},
        "libvirt": {
            "uri": libvirt_uri,
            "instances_path": str(workdir / "rbd-instances"),
            "image_cache_path": str(workdir / "rbd-cache"),
            "rbd_keyring": settings["keyring"],
        },
        "volume": {
            "backend": "rbd",
            "rbd_pool": settings["pool"],
            "rbd_ceph_conf": settings["ceph_conf"],
            "rbd_user": settings["user"],
            "rbd_keyring": settings["keyring"],
            "rbd_timeout": settings["timeout"],
        },
    }
    with host_network(host, required=False) as network:
        cloud = Cloud(tmp_path / "state", merged(overrides, network)).start()
        try:
            yield cloud
        finally:
            cloud.stop()
            ceph_cluster.wipe_pool()


def wait_attached(ec2, volume_id: str) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while attachment_state(ec2, volume_id) != "attached":
        assert time.monotonic() - started < 60, "the attachment never became attached"
        time.sleep(0.2)
    return time.monotonic() - started


def test_rbd_volume_hot_plug_write_detach_reattach(
    cloud: Cloud, ceph_cluster: CephCluster, test_image: GuestImage, tmp_path: Path
) -> None:
    import libvirt

    ec2 = cloud.client()
    ami = register(cloud, test_image)
    iid = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, UserData=WRITES_THEN_READS_BACK)[
        "Instances"
    ][0]["InstanceId"]
    zone = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["Placement"][
        "AvailabilityZone"
    ]
    vol = ec2.create_volume(AvailabilityZone=zone, Size=1)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig=WAIT)
    assert vol in ceph_cluster.images()
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=WAIT)
    console(ec2, iid, "OCS-TEST-IMAGE: userspace ready")
    secret_uuid = ""
    try:
        ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
        print(f"AttachVolume to attached (rbd): {wait_attached(ec2, vol):.2f} s")
        xml = domain_xml(cloud, iid)
        assert "<disk type='network' device='disk'>" in xml
        assert f"<source protocol='rbd' name='{ceph_cluster.pool}/{vol}'" in xml
        assert f"<host name='127.0.0.1' port='{ceph_cluster.mon_v1}'/>" in xml
        assert f"<auth username='{ceph_cluster.client}'>" in xml
        secret_uuid = xml.split("<secret type='ceph' uuid='", 1)[1].split("'", 1)[0]
        out = console(ec2, iid, "volume-test: wrote /dev/vd")
        assert "2097152 512-byte logical blocks" in out  # the kernel saw the disk arrive

        ec2.detach_volume(VolumeId=vol)
        ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig=WAIT)
        assert "protocol='rbd'" not in domain_xml(cloud, iid)
        console(ec2, iid, "volume-test: volume gone")
        target = (
            f"rbd:{ceph_cluster.pool}/{vol}:conf={ceph_cluster.conf}:id={ceph_cluster.client}"
            f":keyring={ceph_cluster.client_keyring}"
        )
        raw = tmp_path / "volume.raw"
        subprocess.run(
            ["qemu-img", "convert", "-f", "raw", "-O", "raw", target, str(raw)], check=True, timeout=120
        )
        with raw.open("rb") as f:
            assert f.read(64).startswith(MARKER.encode() + b"\n")  # the bytes are in Ceph

        ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdg")
        wait_attached(ec2, vol)
        out = console(ec2, iid, "volume-test: back as /dev/vd")
        assert f"holding <{MARKER}>" in out  # the guest reads its data back after reattaching
    finally:
        ec2.terminate_instances(InstanceIds=[iid])
        ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=WAIT)
        ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig=WAIT)
        ec2.delete_volume(VolumeId=vol)
        ec2.get_waiter("volume_deleted").wait(VolumeIds=[vol], WaiterConfig=WAIT)
        if secret_uuid:  # the agent's secret for this cluster's key (unique to this run)
            conn = libvirt.open(cloud.aio.agents[0].driver.uri)
            try:
                conn.secretLookupByUUIDString(secret_uuid).undefine()
            finally:
                conn.close()
    assert vol not in ceph_cluster.images()
