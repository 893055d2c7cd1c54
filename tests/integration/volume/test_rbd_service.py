"""EBS volumes and snapshots through boto3 with ``[volume] backend = rbd``: the bytes live in Ceph.

A whole cloud in this process whose volume service keeps volumes and snapshots
as RBD images in the private test cluster (:mod:`tests.framework.ceph`), as the
cephx user ``client.ocs``. Each step is checked in Ceph itself (``rbd ls``,
``rbd du``, ``rbd info``, the pool's RADOS objects), and the bytes are read
and written through QEMU's own rbd driver (``qemu-io``), as a guest would.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocs.db.models.volumes import Volume
from tests.framework.ceph import CephCluster
from tests.framework.cloud import Cloud

FAST = {"Delay": 0.2, "MaxAttempts": 150}
ZONE = "us-east-1a"


@pytest.fixture(scope="module")
def cluster(ceph_cluster: CephCluster) -> Iterator[CephCluster]:
    yield ceph_cluster
    ceph_cluster.wipe_pool()


@pytest.fixture(scope="module")
def cloud(cluster: CephCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    settings = cluster.backend_settings()
    overrides = {
        "volume": {
            "backend": "rbd",
            "rbd_pool": settings["pool"],
            "rbd_ceph_conf": settings["ceph_conf"],
            "rbd_user": settings["user"],
            "rbd_keyring": settings["keyring"],
            "rbd_timeout": settings["timeout"],
            "sweep_interval": 0.5,
        }
    }
    c = Cloud(tmp_path_factory.mktemp("rbd-cloud"), overrides).start()
    yield c
    c.stop()


def qemu_io(cluster: CephCluster, image: str, command: str) -> str:
    target = (
        f"rbd:{cluster.pool}/{image}:conf={cluster.conf}:id={cluster.client}:keyring={cluster.client_keyring}"
    )
    done = subprocess.run(
        ["qemu-io", "-f", "raw", "-c", command, target],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and "verification failed" not in done.stdout, done.stdout + done.stderr
    return done.stdout


def rbd_json(cluster: CephCluster, *args: str) -> dict:
    import json

    return json.loads(cluster.rbd(*args, "--format", "json"))


def until(what: str, done, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def data_objects(cluster: CephCluster) -> list[str]:
    return [o for o in cluster.objects() if o.startswith("rbd_data.")]


def test_volume_snapshot_restore_delete_on_ceph(cloud: Cloud, cluster: CephCluster, tmp_path: Path) -> None:
    ec2 = cloud.client()
    pool = cluster.pool

    # CreateVolume: an RBD image of the volume's size, and the export hosts attach it by.
    started = time.monotonic()
    source = ec2.create_volume(AvailabilityZone=ZONE, Size=1)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[source], WaiterConfig=FAST)
    print(f"CreateVolume to available (rbd): {time.monotonic() - started:.2f} s")
    assert source in cluster.images()
    assert rbd_json(cluster, "info", f"{pool}/{source}")["size"] == 1 << 30
    with cloud.session() as s:
        export = s.get(Volume, source).export
    assert export["backend"] == "rbd" and export["target"] == f"{pool}/{source}"
    assert export["options"]["monitors"] == cluster.monitors
    assert export["options"]["auth_username"] == cluster.client and export["options"]["secret_uuid"]

    # The guest's bytes, then CreateSnapshot: an image of its own, frozen in a protected snapshot.
    qemu_io(cluster, source, "write -P 0x5c 1048576 65536")
    snap = ec2.create_snapshot(VolumeId=source, Description="before")["SnapshotId"]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snap], WaiterConfig=FAST)
    [item] = ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"]
    assert 65536 <= item["FullSnapshotSizeInBytes"] <= 4 << 20  # one 4 MiB RADOS object written
    [frozen] = rbd_json(cluster, "snap", "ls", f"{pool}/{snap}")
    assert frozen["protected"] == "true"
    assert rbd_json(cluster, "snap", "ls", f"{pool}/{source}") == []  # nothing left on the volume

    # The snapshot outlives its volume, whose bytes are gone from Ceph.
    prefix = rbd_json(cluster, "info", f"{pool}/{source}")["block_name_prefix"]
    ec2.delete_volume(VolumeId=source)
    ec2.get_waiter("volume_deleted").wait(VolumeIds=[source], WaiterConfig=FAST)
    assert source not in cluster.images()
    assert not [o for o in cluster.objects() if prefix.split(".", 1)[1] in o]

    # A volume from the snapshot holds its bytes, owns them (no parent), and is larger.
    restored = ec2.create_volume(AvailabilityZone=ZONE, SnapshotId=snap, Size=2)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[restored], WaiterConfig=FAST)
    info = rbd_json(cluster, "info", f"{pool}/{restored}")
    assert info["size"] == 2 << 30 and "parent" not in info
    [usage] = rbd_json(cluster, "du", f"{pool}/{restored}")["images"]
    assert usage["used_size"] >= 65536
    qemu_io(cluster, restored, "read -P 0x5c 1048576 65536")

    # DeleteSnapshot: its image and objects go; the restored volume lives on.
    snap_prefix = rbd_json(cluster, "info", f"{pool}/{snap}")["block_name_prefix"]
    ec2.delete_snapshot(SnapshotId=snap)
    until("the snapshot's image was not removed", lambda: snap not in cluster.images())
    assert not [o for o in cluster.objects() if snap_prefix.split(".", 1)[1] in o]
    qemu_io(cluster, restored, "read -P 0x5c 1048576 65536")

    ec2.delete_volume(VolumeId=restored)
    ec2.get_waiter("volume_deleted").wait(VolumeIds=[restored], WaiterConfig=FAST)
    assert cluster.images() == set() and data_objects(cluster) == []
