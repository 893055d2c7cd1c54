"""What is particular to the rbd backend, on the private test cluster (the contract, CopySnapshot's
copy_snapshot included, is in tests/unit/volume/test_backend_contract.py): immutable
snapshots, bytes really gone, races between removals, the export, and calls bounded in time."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocs.volume.backend import BackendError
from ocs.volume.backends.rbd import SNAPSHOT_NAME, RbdBackend, secret_uuid_of
from tests.framework.ceph import CephCluster, free_port


@pytest.fixture
def backend(ceph_cluster: CephCluster) -> Iterator[RbdBackend]:
    assert ceph_cluster.images() == set(), "a previous test left images in the pool"
    try:
        yield RbdBackend(**ceph_cluster.backend_settings())
    finally:
        ceph_cluster.wipe_pool()


def qemu_io(cluster: CephCluster, spec: str, command: str, *options: str) -> subprocess.CompletedProcess[str]:
    target = f"rbd:{spec}:conf={cluster.conf}:id={cluster.client}:keyring={cluster.client_keyring}"
    return subprocess.run(
        ["qemu-io", *options, "-f", "raw", "-c", command, target],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def prefix(cluster: CephCluster, image: str) -> str:
    """The id part of the image's RADOS object names (``rbd_data.<id>.…``)."""
    info = json.loads(cluster.rbd("info", f"{cluster.pool}/{image}", "--format", "json"))
    return str(info["block_name_prefix"]).split(".", 1)[1]


def objects_of(cluster: CephCluster, image_id: str) -> list[str]:
    return [o for o in cluster.objects() if image_id in o]


def test_snapshots_are_frozen_and_deleted_bytes_are_gone(
    backend: RbdBackend, ceph_cluster: CephCluster
) -> None:
    backend.create("vol-a", 1)
    assert qemu_io(ceph_cluster, backend.spec("vol-a"), "write -P 0x61 0 65536").returncode == 0
    backend.snapshot("vol-a", "snap-1")
    frozen = backend.spec("snap-1", SNAPSHOT_NAME)
    refused = qemu_io(ceph_cluster, frozen, "write -P 0x62 0 4096")
    assert refused.returncode != 0 and "read-only" in refused.stderr  # Ceph's snapshots are read-only
    read = qemu_io(ceph_cluster, frozen, "read -P 0x61 0 65536", "-r")
    assert read.returncode == 0 and "verification failed" not in read.stdout, read.stdout + read.stderr
    with pytest.raises(subprocess.SubprocessError):  # protected: Ceph refuses to remove it
        subprocess.run(
            ["rbd", *backend.client_args(), "snap", "rm", frozen], capture_output=True, check=True, timeout=60
        )

    volume_objects, snapshot_objects = prefix(ceph_cluster, "vol-a"), prefix(ceph_cluster, "snap-1")
    assert objects_of(ceph_cluster, volume_objects) and objects_of(ceph_cluster, snapshot_objects)
    backend.delete("vol-a")
    backend.delete_snapshot("snap-1")
    assert objects_of(ceph_cluster, volume_objects) == [] and objects_of(ceph_cluster, snapshot_objects) == []
    assert ceph_cluster.images() == set()


def test_racing_removals_both_succeed(backend: RbdBackend) -> None:
    backend.create("vol-a", 1)
    backend.snapshot("vol-a", "snap-1")
    errors: list[BaseException] = []

    def run(call, arg) -> None:  # type: ignore[no-untyped-def]
        try:
            call(arg)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(backend.delete, "vol-a")) for _ in range(2)]
    threads += [threading.Thread(target=run, args=(backend.delete_snapshot, "snap-1")) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and backend.volumes() == set() and backend.snapshots() == set()


def test_export_names_the_cluster(backend: RbdBackend, ceph_cluster: CephCluster) -> None:
    backend.create("vol-a", 1)
    export = backend.export("vol-a")
    assert (export.backend, export.target) == ("rbd", f"{ceph_cluster.pool}/vol-a")
    assert export.options == {
        "format": "raw",
        "monitors": ceph_cluster.monitors,
        "auth_username": ceph_cluster.client,
        "secret_uuid": secret_uuid_of(ceph_cluster.fsid, ceph_cluster.client),
    }
    pinned = RbdBackend(**ceph_cluster.backend_settings(), monitors="10.0.0.1:6789", secret_uuid="u-1")
    assert pinned.export("vol-a").options["monitors"] == "10.0.0.1:6789"
    assert pinned.export("vol-a").options["secret_uuid"] == "u-1"


def test_an_unreachable_cluster_fails_in_bounded_time(ceph_cluster: CephCluster, tmp_path: Path) -> None:
    conf = tmp_path / "ceph.conf"
    conf.write_text(f"[global]\nmon host = 127.0.0.1:{free_port()}\n")  # nothing listens there
    backend = RbdBackend(**{**ceph_cluster.backend_settings(), "ceph_conf": str(conf), "timeout": 1.0})
    started = time.monotonic()
    with pytest.raises(BackendError):
        backend.create("vol-unreachable", 1)
    with pytest.raises(BackendError):
        backend.volumes()
    assert time.monotonic() - started < 30


def test_bad_settings() -> None:
    with pytest.raises(ValueError):
        RbdBackend("pool/with/slash")
    with pytest.raises(ValueError):
        RbdBackend("rbd", timeout=0)
