"""The file backend against the real qemu-img: bytes survive snapshot → clone, grow, delete."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ocs.volume.backend import GIB, BackendError, ObjectMissing
from ocs.volume.backends import make_backend
from ocs.volume.backends.file import FileBackend

pytestmark = pytest.mark.skipif(shutil.which("qemu-io") is None, reason="qemu-utils is not installed")


def qemu_io(path: str, command: str, fmt: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["qemu-io", "-f", fmt, "-c", command, path], capture_output=True, text=True, check=False, timeout=60
    )


def write(backend: FileBackend, volume_id: str, pattern: int, offset: int, length: int) -> None:
    out = qemu_io(
        str(backend.volume_path(volume_id)), f"write -P {pattern} {offset} {length}", backend.format
    )
    assert out.returncode == 0 and "wrote" in out.stdout, out.stderr


def holds(backend: FileBackend, volume_id: str, pattern: int, offset: int, length: int) -> bool:
    out = qemu_io(str(backend.volume_path(volume_id)), f"read -P {pattern} {offset} {length}", backend.format)
    return out.returncode == 0 and "Pattern verification failed" not in out.stdout + out.stderr


@pytest.fixture(params=["qcow2", "raw"])
def backend(request, tmp_path: Path) -> FileBackend:
    b = make_backend("file", state_dir=tmp_path, volume_format=request.param)
    assert isinstance(b, FileBackend)
    return b


def test_create_is_blank_sized_and_idempotent(backend: FileBackend) -> None:
    backend.create("vol-1", 2)
    assert backend.size_gib("vol-1") == 2
    assert holds(backend, "vol-1", 0, 0, 65536)
    write(backend, "vol-1", 0x11, 0, 4096)
    backend.create("vol-1", 2)  # again: the existing volume (and its bytes) stay
    assert holds(backend, "vol-1", 0x11, 0, 4096)
    assert backend.volumes() == {"vol-1"}
    export = backend.export("vol-1")
    assert export.backend == "file" and export.options == {"format": backend.format}
    assert os.path.isabs(export.target) and Path(export.target).exists()


def test_bytes_survive_snapshot_then_clone(backend: FileBackend) -> None:
    backend.create("vol-a", 1)
    write(backend, "vol-a", 0xAB, 0, 1 << 20)
    write(backend, "vol-a", 0xCD, 512 << 20, 4096)
    size = backend.snapshot("vol-a", "snap-1")
    assert (1 << 20) <= size < (4 << 20)  # the data written, not the 1 GiB volume
    assert backend.snapshot("vol-a", "snap-1") == size  # idempotent
    write(backend, "vol-a", 0xEE, 0, 4096)  # the snapshot is a point in time
    backend.clone("snap-1", "vol-b", 3)
    assert backend.size_gib("vol-b") == 3
    assert holds(backend, "vol-b", 0xAB, 0, 1 << 20)
    assert holds(backend, "vol-b", 0xCD, 512 << 20, 4096)
    assert holds(backend, "vol-b", 0, 2 * GIB, 4096)  # the grown part is blank
    # Writing to the clone changes neither the snapshot nor its source volume.
    write(backend, "vol-b", 0x77, 0, 4096)
    backend.clone("snap-1", "vol-c", 1)
    assert holds(backend, "vol-c", 0xAB, 0, 4096)
    assert not holds(backend, "vol-c", 0xEE, 0, 4096)  # the check can fail
    assert holds(backend, "vol-a", 0xEE, 0, 4096)
    assert not os.access(backend.snapshot_path("snap-1"), os.W_OK) or os.geteuid() == 0
    assert backend.snapshot_path("snap-1").stat().st_mode & 0o222 == 0


def test_deleting_the_snapshot_or_the_source_keeps_the_clone(backend: FileBackend) -> None:
    backend.create("vol-a", 1)
    write(backend, "vol-a", 0x5A, 4096, 8192)
    backend.snapshot("vol-a", "snap-1")
    backend.clone("snap-1", "vol-b", 1)
    backend.delete("vol-a")
    backend.delete_snapshot("snap-1")
    backend.delete_snapshot("snap-1")  # twice: a no-op
    assert backend.snapshots() == set() and backend.volumes() == {"vol-b"}
    assert holds(backend, "vol-b", 0x5A, 4096, 8192)
    backend.delete("vol-b")
    backend.delete("vol-b")
    assert backend.volumes() == set()
    assert list(backend.volume_dir.iterdir()) == []  # the clone's backing link went with it


def test_grow_never_shrinks(backend: FileBackend) -> None:
    backend.create("vol-g", 1)
    write(backend, "vol-g", 0x42, 0, 4096)
    backend.grow("vol-g", 4)
    backend.grow("vol-g", 4)
    assert backend.size_gib("vol-g") == 4
    assert holds(backend, "vol-g", 0x42, 0, 4096)
    with pytest.raises(BackendError, match="cannot shrink"):
        backend.grow("vol-g", 2)
    assert backend.size_gib("vol-g") == 4


def test_missing_objects(backend: FileBackend) -> None:
    with pytest.raises(ObjectMissing):
        backend.snapshot("vol-nope", "snap-x")
    with pytest.raises(ObjectMissing):
        backend.clone("snap-nope", "vol-x", 1)
    with pytest.raises(ObjectMissing):
        backend.grow("vol-nope", 2)
    with pytest.raises(ObjectMissing):
        backend.export("vol-nope")
    assert backend.volumes() == set() and backend.snapshots() == set()
    assert [p.name for p in backend.volume_dir.iterdir()] == []


def test_cleanup_removes_interrupted_work(backend: FileBackend) -> None:
    backend.create("vol-a", 1)
    backend.snapshot("vol-a", "snap-1")
    (backend.volume_dir / ".tmp-dead-vol-z.qcow2").write_bytes(b"x")
    (backend.snapshot_dir / ".tmp-dead-snap-z.qcow2").write_bytes(b"x")
    (backend.volume_dir / "vol-orphan.base.qcow2").write_bytes(b"x")
    backend.cleanup()
    assert sorted(p.name for p in backend.volume_dir.iterdir()) == [backend.volume_path("vol-a").name]
    assert [p.name for p in backend.snapshot_dir.iterdir()] == ["snap-1.qcow2"]


def test_a_failing_qemu_img_leaves_nothing(tmp_path: Path) -> None:
    b = FileBackend(tmp_path, qemu_img=str(tmp_path / "no-such-qemu-img"))
    with pytest.raises(BackendError, match="not installed"):
        b.create("vol-a", 1)
    real = FileBackend(tmp_path)
    with pytest.raises(BackendError, match="qemu-img create failed"):
        real.create("vol-huge", 1 << 40)  # beyond what qcow2 can address
    assert real.volumes() == set() and list(real.volume_dir.iterdir()) == []


def test_stats_and_bad_settings(tmp_path: Path) -> None:
    b = FileBackend(tmp_path)
    b.create("vol-a", 2)
    b.snapshot("vol-a", "snap-1")
    b.clone("snap-1", "vol-b", 2)
    st = b.stats()
    assert (st.volumes, st.snapshots, st.provisioned_bytes) == (2, 1, 4 * GIB)
    assert 0 < st.allocated_bytes < GIB and st.capacity_bytes >= st.free_bytes > 0
    with pytest.raises(ValueError):
        FileBackend(tmp_path, volume_format="vmdk")
    with pytest.raises(ValueError):
        make_backend("nfs", state_dir=tmp_path)
    with pytest.raises(ValueError):
        b.create("../escape", 1)


def test_a_copied_snapshot_has_its_own_bytes(backend: FileBackend) -> None:
    backend.create("vol-a", 1)
    write(backend, "vol-a", 0x3C, 0, 1 << 20)
    size = backend.snapshot("vol-a", "snap-1")
    assert backend.copy_snapshot("snap-1", "snap-2") == size
    assert backend.copy_snapshot("snap-1", "snap-2") == size  # idempotent
    first, second = backend.snapshot_path("snap-1").stat(), backend.snapshot_path("snap-2").stat()
    assert first.st_ino != second.st_ino and second.st_mode & 0o222 == 0
    backend.delete_snapshot("snap-1")
    backend.delete("vol-a")
    backend.clone("snap-2", "vol-b", 2)
    assert holds(backend, "vol-b", 0x3C, 0, 1 << 20)
    assert backend.snapshots() == {"snap-2"}
    with pytest.raises(ObjectMissing):
        backend.copy_snapshot("snap-1", "snap-3")
    assert backend.snapshots() == {"snap-2"}  # nothing half-made
