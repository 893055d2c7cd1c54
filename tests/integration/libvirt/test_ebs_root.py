"""A real guest that boots from an EBS root volume, through the whole API path.

boto3 → ocs-api → volume service → scheduler → agent → libvirt → QEMU:

1. a volume holding the OCS test image's disk (the test writes the disk's bytes into
   the backend), a snapshot of it, and an EBS-backed AMI registered from the
   snapshot (RegisterImage with a BlockDeviceMapping, the test image's kernel and
   initramfs);
2. RunInstances of the AMI: its root volume is made from the snapshot and is the
   domain's root disk (the backend's export, not an overlay in the image cache);
   the guest finds its root disk (the test image's marker) and its user-data writes
   a marker of its own past the image's bytes;
3. StopInstances, StartInstances: the guest boots from the same volume and finds
   its marker (the data survived);
4. CreateImage (the guest is shut down, its volume copied, started again), then
   RunInstances of the new image: a second guest boots from a volume made from that
   copy and finds the first guest's marker;
5. TerminateInstances: the root volumes (DeleteOnTermination) are deleted.

Twice: on the ``file`` backend (the root disk is the volume's qcow2 file) and on the
``rbd`` backend (a network disk on the private Ceph test cluster of
:mod:`tests.framework.ceph`, a clone of the snapshot's RBD snapshot).
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
from tests.integration.libvirt.test_api_path import WAIT, console

pytestmark = pytest.mark.slow

# Each boot: read 19 bytes at 4 MiB into the root disk (past the image's 1 MiB);
# write the marker there if it is not there yet.
MARKS = r"""#!/bin/sh
m=$(dd if=/dev/vda bs=512 skip=8192 count=1 2>/dev/null | head -c 19)
if [ "$m" = "OCS-EBS-ROOT-MARKER" ]; then
    echo "ebs-test: marker found"
else
    printf 'OCS-EBS-ROOT-MARKER' | dd of=/dev/vda bs=512 seek=8192 conv=sync,notrunc 2>/dev/null
    sync
    echo "ebs-test: marker written"
fi
"""


class Backend:
    """Where the test reaches a volume's bytes: a file of the ``file`` backend, or an
    RBD image of the test cluster (``ceph``)."""

    def __init__(self, cloud: Cloud, ceph: Any = None) -> None:
        self.cloud, self.ceph = cloud, ceph

    def _files(self) -> Any:
        return self.cloud.aio.volume.endpoint.backend  # type: ignore[union-attr]

    def write_image(self, volume_id: str, image: GuestImage) -> None:
        """Put the test image's disk into the volume, straight into the backend."""
        if self.ceph is None:
            target, fmt = str(self._files().volume_path(volume_id)), "qcow2"
        else:
            c = self.ceph
            target, fmt = (
                f"rbd:{c.pool}/{volume_id}:conf={c.conf}:id={c.client}:keyring={c.client_keyring}",
                "raw",
            )
        cmd = ["qemu-img", "convert", "-n", "-f", "raw", "-O", fmt, str(image.disk), target]
        subprocess.run(cmd, check=True, timeout=120)

    def export(self, volume_id: str) -> str:
        """What the domain's root disk must be: the file, or ``rbd:pool/image``."""
        if self.ceph is None:
            return str(self._files().volume_path(volume_id).resolve())
        return f"rbd:{self.ceph.pool}/{volume_id}"

    def has(self, volume_id: str) -> bool:
        if self.ceph is None:
            return bool(self._files().volume_path(volume_id).exists())
        return volume_id in self.ceph.images()


@pytest.fixture(params=["file", "rbd"])
def cloud(request: Any, libvirt_uri: str, workdir: Path, tmp_path: Path) -> Iterator[tuple[Cloud, Backend]]:
    host = f"itest-ebs-{request.param}-{os.getpid()}"
    overrides: dict[str, dict[str, Any]] = {
        "DEFAULT": {"host": host},
        "compute": {"driver": "libvirt", "shutdown_timeout": 30.0},
        "libvirt": {
            "uri": libvirt_uri,
            "instances_path": str(workdir / "ebs-instances"),
            "image_cache_path": str(workdir / "ebs-cache"),
        },
        # QEMU opens root volumes of the file backend by path: a directory it can reach.
        "volume": {"state_dir": str(workdir / f"ebs-backend-{os.getpid()}"), "sweep_interval": 0.5},
    }
    ceph = None
    if request.param == "rbd":
        ceph = request.getfixturevalue("ceph_cluster")
        settings = ceph.backend_settings()
        overrides["libvirt"]["rbd_keyring"] = settings["keyring"]
        overrides["volume"].update(
            backend="rbd",
            rbd_pool=settings["pool"],
            rbd_ceph_conf=settings["ceph_conf"],
            rbd_user=settings["user"],
            rbd_keyring=settings["keyring"],
            rbd_timeout=settings["timeout"],
        )
    with host_network(host, required=False) as network:
        cloud = Cloud(tmp_path / "state", merged(overrides, network)).start()
        try:
            yield cloud, Backend(cloud, ceph)
        finally:
            cloud.stop()
            if ceph is not None:
                ceph.wipe_pool()


def boot_images(cloud: Cloud, image: GuestImage) -> tuple[str, str]:
    """The test image's kernel (AKI) and initramfs (ARI), imported as ``ocs-manage`` does."""
    from ocs.conf.images import store_path
    from ocs.images import importer
    from ocs.images.store import ImageStore

    store = ImageStore(store_path(cloud.conf))
    owner = cloud.admin.account_id
    with cloud.session() as s:
        aki = importer.import_image(
            s, store, importer.ImportRequest(image.kernel, owner, "ebs kernel", "kernel")
        )
        ari = importer.import_image(
            s, store, importer.ImportRequest(image.initrd, owner, "ebs initrd", "ramdisk")
        )
        return aki.id, ari.id


def root_disk_of(cloud: Cloud, instance_id: str) -> str:
    """The source of the domain's root disk (``vda``): a file, or ``rbd:pool/image``."""
    import xml.etree.ElementTree as ET

    import libvirt

    conn = libvirt.open(cloud.aio.agents[0].driver.uri)
    try:
        root = ET.fromstring(conn.lookupByName(f"ocs-{instance_id}").XMLDesc(0))
    finally:
        conn.close()
    disk = next(d for d in root.iterfind("devices/disk") if d.find("target").get("dev") == "vda")  # type: ignore[union-attr]
    source = disk.find("source")
    assert source is not None
    return str(source.get("file") or f"{source.get('protocol')}:{source.get('name')}")


def root_volume(ec2: Any, instance_id: str) -> str:
    item = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert item["RootDeviceType"] == "ebs"
    return str({m["DeviceName"]: m["Ebs"] for m in item["BlockDeviceMappings"]}["/dev/sda1"]["VolumeId"])


def launch(ec2: Any, ami: str) -> str:
    reply = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, UserData=MARKS)
    iid = str(reply["Instances"][0]["InstanceId"])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=WAIT)
    return iid


def test_a_guest_boots_from_an_ebs_root_keeps_its_data_and_is_imaged(
    cloud: tuple[Cloud, Backend], test_image: GuestImage
) -> None:
    cloud_, backend = cloud
    ec2 = cloud_.client()
    started = time.monotonic()
    aki, ari = boot_images(cloud_, test_image)
    zone = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    source = ec2.create_volume(AvailabilityZone=zone, Size=1)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[source], WaiterConfig=WAIT)
    backend.write_image(source, test_image)
    snap = ec2.create_snapshot(VolumeId=source, Description="the OCS test image")["SnapshotId"]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snap], WaiterConfig=WAIT)
    ec2.delete_volume(VolumeId=source)
    ami = ec2.register_image(
        Name="ocs test image on ebs",
        RootDeviceName="/dev/sda1",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": snap}}],
        KernelId=aki,
        RamdiskId=ari,
        Architecture="x86_64",
        VirtualizationType="hvm",
    )["ImageId"]

    first = launch(ec2, ami)
    root = root_volume(ec2, first)
    assert root_disk_of(cloud_, first) == backend.export(root)
    out = console(ec2, first, "ebs-test: marker written")
    assert "OCS-TEST-IMAGE: root disk /dev/vda 1024 MiB" in out
    print(f"RunInstances of an EBS-backed AMI to its user-data: {time.monotonic() - started:.1f} s")

    ec2.stop_instances(InstanceIds=[first])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[first], WaiterConfig=WAIT)
    assert ec2.describe_volumes(VolumeIds=[root])["Volumes"][0]["State"] == "in-use"
    ec2.start_instances(InstanceIds=[first])
    ec2.get_waiter("instance_running").wait(InstanceIds=[first], WaiterConfig=WAIT)
    console(ec2, first, "ebs-test: marker found")
    assert root_volume(ec2, first) == root

    imaged = time.monotonic()
    copy = ec2.create_image(InstanceId=first, Name="ocs test image with its marker")["ImageId"]
    ec2.get_waiter("image_available").wait(ImageIds=[copy], WaiterConfig=WAIT)
    out = console(ec2, first, "ebs-test: marker found", count=2)  # shut down, copied, booted again
    assert out.count("OCS-TEST-IMAGE: shutting down") == 2
    print(f"CreateImage (reboot) to available and the guest back: {time.monotonic() - imaged:.1f} s")
    second = launch(ec2, copy)
    out = console(ec2, second, "ebs-test: marker found")
    assert "ebs-test: marker written" not in out  # the image carried the first guest's data
    second_root = root_volume(ec2, second)
    [mapped] = ec2.describe_images(ImageIds=[copy])["Images"][0]["BlockDeviceMappings"]
    assert (
        ec2.describe_volumes(VolumeIds=[second_root])["Volumes"][0]["SnapshotId"]
        == mapped["Ebs"]["SnapshotId"]
    )

    ec2.terminate_instances(InstanceIds=[first, second])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[first, second], WaiterConfig=WAIT)
    deadline = time.monotonic() + 30
    while backend.has(root) or backend.has(second_root):
        assert time.monotonic() < deadline, "the root volumes were not deleted"
        time.sleep(0.2)
    print(f"whole test: {time.monotonic() - started:.1f} s")
