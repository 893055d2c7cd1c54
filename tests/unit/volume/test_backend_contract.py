"""The volume backend contract, proven on every backend against the real tools.

The same tests run on the ``file`` backend (qcow2 and raw, with qemu-img) and on
the ``rbd`` backend (a private single-node Ceph cluster, :mod:`tests.framework.ceph`,
started once per session: the ``rbd`` cases skip without Ceph, or fail on CI).
The guest's view of a volume is read and written with ``qemu-io``, through the
file's path or QEMU's ``rbd:`` driver. What is particular to one backend
(file modes, Ceph's objects) is tested in test_file_backend.py and
tests/integration/volume/test_rbd_backend.py.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ocs.volume.backend import GIB, BackendError, ObjectMissing, VolumeBackend
from ocs.volume.backends import make_backend
from ocs.volume.backends.file import FileBackend
from ocs.volume.backends.rbd import RbdBackend

pytestmark = pytest.mark.skipif(shutil.which("qemu-io") is None, reason="qemu-utils is not installed")

MIB = 1 << 20


@dataclass
class Case:
    """One backend under test and how the test reaches into its storage."""

    backend: VolumeBackend
    target: Callable[[str], str]  # what qemu-io opens for a volume
    fmt: str  # the disk format qemu-io declares
    stored: Callable[[], set[str]]  # every name the backend's storage holds
    interrupt: Callable[[], None]  # leave work behind as a crash would
    object_bytes: int  # the unit of allocation a snapshot's size is counted in


def qemu_io(case: Case, volume_id: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["qemu-io", "-f", case.fmt, "-c", command, case.target(volume_id)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def write(case: Case, volume_id: str, pattern: int, offset: int, length: int) -> None:
    out = qemu_io(case, volume_id, f"write -P {pattern} {offset} {length}")
    assert out.returncode == 0 and "wrote" in out.stdout, out.stderr


def holds(case: Case, volume_id: str, pattern: int, offset: int, length: int) -> bool:
    out = qemu_io(case, volume_id, f"read -P {pattern} {offset} {length}")
    said = out.stdout + out.stderr
    if "Pattern verification failed" in said:
        return False
    assert out.returncode == 0, said  # a read that failed proves nothing either way
    return True


def file_case(tmp_path: Path, volume_format: str) -> Case:
    b = make_backend("file", state_dir=tmp_path, volume_format=volume_format)
    assert isinstance(b, FileBackend)

    def stored() -> set[str]:
        return {p.name for d in (b.volume_dir, b.snapshot_dir) for p in d.iterdir()}

    def interrupt() -> None:
        (b.volume_dir / ".tmp-dead-vol-z.qcow2").write_bytes(b"x")
        (b.snapshot_dir / ".tmp-dead-snap-z.qcow2").write_bytes(b"x")
        (b.volume_dir / "vol-orphan.base.qcow2").write_bytes(b"x")

    return Case(b, lambda v: str(b.volume_path(v)), volume_format, stored, interrupt, 64 * 1024)


def rbd_case(cluster) -> Case:
    b = make_backend("rbd", **cluster.backend_settings())
    assert isinstance(b, RbdBackend)
    auth = f"conf={cluster.conf}:id={cluster.client}:keyring={cluster.client_keyring}"

    def interrupt() -> None:
        # A volume made halfway, a snapshot copied halfway, and the point in time of a
        # snapshot whose copy never ended; a clone interrupted before its flatten.
        cluster.rbd("create", "--size", "1G", f"{cluster.pool}/tmp-dead0000-vol-z")
        cluster.rbd("create", "--size", "1G", f"{cluster.pool}/tmp-dead0001-snap-z")
        for volume in b.volumes():
            cluster.rbd("snap", "create", f"{cluster.pool}/{volume}@tmp-dead0002-snap-y")
        for snapshot in b.snapshots():
            cluster.rbd(
                "clone", f"{cluster.pool}/{snapshot}@ocs-snapshot", f"{cluster.pool}/tmp-dead0003-vol-c"
            )

    return Case(
        b, lambda v: f"rbd:{b.spec(v)}:{auth}", "raw", cluster.images_and_snapshots, interrupt, 4 * MIB
    )


@pytest.fixture(params=["file-qcow2", "file-raw", "rbd"])
def case(request, tmp_path: Path) -> Iterator[Case]:
    if request.param.startswith("file-"):
        yield file_case(tmp_path, request.param.removeprefix("file-"))
        return
    cluster = request.getfixturevalue("ceph_cluster")
    assert cluster.images() == set(), "a previous test left images in the pool"
    try:
        yield rbd_case(cluster)
    finally:
        cluster.wipe_pool()


def test_create_is_blank_sized_and_idempotent(case: Case) -> None:
    backend = case.backend
    backend.create("vol-1", 2)
    assert backend.size_gib("vol-1") == 2
    assert holds(case, "vol-1", 0, 0, 65536)
    write(case, "vol-1", 0x11, 0, 4096)
    backend.create("vol-1", 2)  # again: the existing volume (and its bytes) stay
    assert holds(case, "vol-1", 0x11, 0, 4096)
    assert backend.volumes() == {"vol-1"} and backend.snapshots() == set()
    export = backend.export("vol-1")
    assert export.backend == backend.name and export.options["format"] == (
        "raw" if case.fmt == "raw" else "qcow2"
    )


def test_bytes_survive_snapshot_then_clone(case: Case) -> None:
    backend = case.backend
    backend.create("vol-a", 1)
    write(case, "vol-a", 0xAB, 0, MIB)
    write(case, "vol-a", 0xCD, 512 * MIB, 4096)
    size = backend.snapshot("vol-a", "snap-1")
    # The data written (in the backend's units of allocation), not the 1 GiB volume.
    assert MIB <= size <= MIB + 2 * case.object_bytes, size
    assert backend.snapshot("vol-a", "snap-1") == size  # idempotent
    assert backend.snapshots() == {"snap-1"} and backend.volumes() == {"vol-a"}
    write(case, "vol-a", 0xEE, 0, 4096)  # the snapshot is a point in time
    backend.clone("snap-1", "vol-b", 3)
    assert backend.size_gib("vol-b") == 3
    assert holds(case, "vol-b", 0xAB, 0, MIB)
    assert holds(case, "vol-b", 0xCD, 512 * MIB, 4096)
    assert holds(case, "vol-b", 0, 2 * GIB, 4096)  # the grown part is blank
    # Writing to the clone changes neither the snapshot nor its source volume.
    write(case, "vol-b", 0x77, 0, 4096)
    backend.clone("snap-1", "vol-c", 1)
    assert holds(case, "vol-c", 0xAB, 0, 4096)
    assert not holds(case, "vol-c", 0xEE, 0, 4096)  # the check can fail
    assert holds(case, "vol-a", 0xEE, 0, 4096)


def test_deleting_the_snapshot_or_the_source_keeps_the_clone(case: Case) -> None:
    backend = case.backend
    backend.create("vol-a", 1)
    write(case, "vol-a", 0x5A, 4096, 8192)
    backend.snapshot("vol-a", "snap-1")
    backend.clone("snap-1", "vol-b", 1)
    backend.delete("vol-a")
    backend.delete_snapshot("snap-1")
    backend.delete_snapshot("snap-1")  # twice: a no-op
    assert backend.snapshots() == set() and backend.volumes() == {"vol-b"}
    assert holds(case, "vol-b", 0x5A, 4096, 8192)
    backend.delete("vol-b")
    backend.delete("vol-b")
    assert backend.volumes() == set()
    assert case.stored() == set()  # nothing of them is left (a clone's backing link neither)


def test_a_snapshot_outlives_its_volume(case: Case) -> None:
    backend = case.backend
    backend.create("vol-a", 1)
    write(case, "vol-a", 0x3C, 0, 65536)
    backend.snapshot("vol-a", "snap-1")
    backend.delete("vol-a")
    assert backend.volumes() == set() and backend.snapshots() == {"snap-1"}
    backend.clone("snap-1", "vol-b", 2)
    assert holds(case, "vol-b", 0x3C, 0, 65536)
    backend.snapshot("vol-b", "snap-2")  # a snapshot of a clone, then the clone's parent goes
    backend.delete_snapshot("snap-1")
    backend.clone("snap-2", "vol-c", 2)
    assert holds(case, "vol-c", 0x3C, 0, 65536)


def test_a_copied_snapshot_has_its_own_bytes(case: Case) -> None:
    backend = case.backend
    if not hasattr(backend, "copy_snapshot"):  # CopySnapshot's method joins the contract with it
        pytest.skip(f"the {backend.name} backend has no copy_snapshot yet")
    backend.create("vol-a", 1)
    write(case, "vol-a", 0x3C, 0, MIB)
    size = backend.snapshot("vol-a", "snap-1")
    assert backend.copy_snapshot("snap-1", "snap-2") == size
    assert backend.copy_snapshot("snap-1", "snap-2") == size  # idempotent
    backend.delete_snapshot("snap-1")
    backend.delete("vol-a")
    backend.clone("snap-2", "vol-b", 2)
    assert holds(case, "vol-b", 0x3C, 0, MIB)
    assert backend.snapshots() == {"snap-2"}
    with pytest.raises(ObjectMissing):
        backend.copy_snapshot("snap-1", "snap-3")
    assert backend.snapshots() == {"snap-2"}  # nothing half-made


def test_grow_never_shrinks(case: Case) -> None:
    backend = case.backend
    backend.create("vol-g", 1)
    write(case, "vol-g", 0x42, 0, 4096)
    backend.grow("vol-g", 4)
    backend.grow("vol-g", 4)
    assert backend.size_gib("vol-g") == 4
    assert holds(case, "vol-g", 0x42, 0, 4096)
    with pytest.raises(BackendError, match="cannot shrink"):
        backend.grow("vol-g", 2)
    assert backend.size_gib("vol-g") == 4


def test_missing_objects(case: Case) -> None:
    backend = case.backend
    with pytest.raises(ObjectMissing):
        backend.snapshot("vol-nope", "snap-x")
    with pytest.raises(ObjectMissing):
        backend.clone("snap-nope", "vol-x", 1)
    with pytest.raises(ObjectMissing):
        backend.grow("vol-nope", 2)
    with pytest.raises(ObjectMissing):
        backend.size_gib("vol-nope")
    with pytest.raises(ObjectMissing):
        backend.export("vol-nope")
    backend.delete("vol-nope")
    backend.delete_snapshot("snap-nope")
    assert backend.volumes() == set() and backend.snapshots() == set()
    assert case.stored() == set()


def test_cleanup_removes_interrupted_work(case: Case) -> None:
    backend = case.backend
    backend.create("vol-a", 1)
    backend.snapshot("vol-a", "snap-1")
    before = case.stored()
    case.interrupt()
    assert case.stored() != before
    backend.cleanup()
    assert case.stored() == before
    assert backend.volumes() == {"vol-a"} and backend.snapshots() == {"snap-1"}


def test_stats(case: Case) -> None:
    backend = case.backend
    backend.create("vol-a", 2)
    write(case, "vol-a", 0x21, 0, MIB)
    backend.snapshot("vol-a", "snap-1")
    backend.clone("snap-1", "vol-b", 2)
    st = backend.stats()
    assert (st.volumes, st.snapshots, st.provisioned_bytes) == (2, 1, 4 * GIB)
    assert MIB <= st.allocated_bytes < GIB and st.capacity_bytes >= st.free_bytes > 0


def test_bad_ids(case: Case) -> None:
    with pytest.raises(ValueError):
        case.backend.create("../escape", 1)
    with pytest.raises(ValueError):
        case.backend.create("vol-a/../b", 1)
