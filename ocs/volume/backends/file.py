"""The ``file`` backend: volumes and snapshots as image files in a directory, made with qemu-img.

Layout under ``state_dir``::

    volumes/vol-….qcow2          a volume (or ``.raw`` with ``volume_format = raw``)
    volumes/vol-….base.qcow2     a clone's backing file: a hard link to its snapshot
    snapshots/snap-….qcow2       a snapshot: a standalone, read-only qcow2 file
    */.tmp-…                     work in progress (removed by :meth:`cleanup`)

Why these choices:

* A snapshot is a full copy (``qemu-img convert``), not an internal qcow2
  snapshot nor a link in the volume's backing chain. ``convert`` skips unallocated
  and zero clusters, so the copy is as large as the data written, not as the
  volume; the snapshot is then independent of its volume (deleting the volume,
  growing it or writing to it never touches the snapshot: EC2's "a snapshot's data
  is immutable once completed") and a volume never grows a chain of snapshots
  behind it that every read would walk.
* A volume from a snapshot is a qcow2 overlay whose backing file is the snapshot
  (creating it is O(1), whatever the size), so clones share the snapshot's bytes.
  The backing file is a *hard link* to the snapshot file, named after the clone:
  DeleteSnapshot unlinks only the snapshot's own name, and the bytes stay as long
  as a clone still needs them. The filesystem counts the references; there is no
  garbage collector and nothing to rebase. (EC2 lets a snapshot be deleted while
  volumes made from it live.)
* Every result is made under a temporary name and renamed into place, so a crash
  leaves either the whole object or a ``.tmp-`` file that :meth:`cleanup` removes.

A volume is attached by path (:meth:`FileBackend.export`): the compute host must
see this directory at the same path (one machine, or a shared filesystem), and
every directory above ``volumes/`` must be traversable by the hypervisor's user.

With ``volume_format = raw`` volumes are plain raw files (what a hypervisor reads
fastest, what ``dd`` understands): a clone is then a full copy of the snapshot.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ocs.volume.backend import GIB, BackendError, Export, ObjectMissing, Stats, VolumeBackend

FORMATS = ("qcow2", "raw")
_TMP = ".tmp-"


class FileBackend(VolumeBackend):
    """Volumes and snapshots under ``state_dir``; ``qemu_img`` runs each step within ``timeout`` s."""

    name = "file"

    def __init__(
        self,
        state_dir: str | Path,
        *,
        volume_format: str = "qcow2",
        qemu_img: str = "qemu-img",
        timeout: float = 600.0,
    ) -> None:
        if volume_format not in FORMATS:
            raise ValueError(f"volume_format must be one of {', '.join(FORMATS)}, not {volume_format!r}")
        self.root = Path(state_dir)
        self.format = volume_format
        self.qemu_img = qemu_img
        self.timeout = timeout
        self.volume_dir = self.root / "volumes"
        self.snapshot_dir = self.root / "snapshots"
        # Hypervisors open volumes by path (as their own user: QEMU runs as libvirt-qemu),
        # so ``volumes/`` can be traversed but not listed; snapshots stay private.
        self.volume_dir.mkdir(parents=True, exist_ok=True, mode=0o711)
        self.volume_dir.chmod(0o711)
        self.snapshot_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    # --- paths -----------------------------------------------------------------------------

    def volume_path(self, volume_id: str) -> Path:
        return self.volume_dir / f"{_safe(volume_id)}.{self.format}"

    def base_path(self, volume_id: str) -> Path:
        return self.volume_dir / f"{_safe(volume_id)}.base.qcow2"

    def snapshot_path(self, snapshot_id: str) -> Path:
        return self.snapshot_dir / f"{_safe(snapshot_id)}.qcow2"

    @staticmethod
    def _tmp(final: Path) -> Path:
        return final.with_name(f"{_TMP}{secrets.token_hex(4)}-{final.name}")

    # --- qemu-img ----------------------------------------------------------------------------

    def _run(self, *args: str) -> str:
        cmd = [self.qemu_img, *args]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout, check=False)
        except FileNotFoundError:
            raise BackendError(f"{self.qemu_img} is not installed (package qemu-utils)") from None
        except subprocess.TimeoutExpired:
            raise BackendError(f"qemu-img {args[0]} took longer than {self.timeout:g} s") from None
        if done.returncode != 0:
            raise BackendError(f"qemu-img {args[0]} failed: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def _info(self, path: Path) -> dict[str, Any]:
        info: dict[str, Any] = json.loads(self._run("info", "-U", "--output=json", str(path)))
        return info

    def _place(self, tmp: Path, final: Path) -> None:
        """Make ``tmp`` durable and rename it to ``final``."""
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)

    @staticmethod
    def _unlink(path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass

    # --- the contract ------------------------------------------------------------------------

    def create(self, volume_id: str, size_gib: int) -> None:
        final = self.volume_path(volume_id)
        if final.exists():
            return
        tmp = self._tmp(final)
        try:
            self._run("create", "-q", "-f", self.format, str(tmp), f"{int(size_gib)}G")
            self._place(tmp, final)
        finally:
            self._unlink(tmp)

    def clone(self, snapshot_id: str, volume_id: str, size_gib: int) -> None:
        final = self.volume_path(volume_id)
        if final.exists():
            return
        source = self.snapshot_path(snapshot_id)
        if not source.exists():
            raise ObjectMissing(f"snapshot {snapshot_id} is not in the file backend")
        tmp = self._tmp(final)
        try:
            if self.format == "qcow2":
                base = self.base_path(volume_id)
                link = self._tmp(base)
                os.link(source, link)
                os.replace(link, base)
                # A relative backing name: the directory can move as a whole.
                self._run(
                    "create",
                    "-q",
                    "-f",
                    "qcow2",
                    "-b",
                    base.name,
                    "-F",
                    "qcow2",
                    str(tmp),
                    f"{int(size_gib)}G",
                )
            else:
                self._run("convert", "-q", "-O", "raw", str(source), str(tmp))
                self._run("resize", "-q", "-f", "raw", str(tmp), f"{int(size_gib)}G")
            self._place(tmp, final)
        except BaseException:
            self._unlink(self.base_path(volume_id))
            raise
        finally:
            self._unlink(tmp)

    def delete(self, volume_id: str) -> None:
        self._unlink(self.volume_path(volume_id))
        self._unlink(self.base_path(volume_id))

    def snapshot(self, volume_id: str, snapshot_id: str) -> int:
        final = self.snapshot_path(snapshot_id)
        if final.exists():
            return self._data_bytes(final)
        source = self.volume_path(volume_id)
        if not source.exists():
            raise ObjectMissing(f"volume {volume_id} is not in the file backend")
        tmp = self._tmp(final)
        try:
            # -U: read even while a hypervisor holds the image open.
            self._run("convert", "-q", "-U", "-f", self.format, "-O", "qcow2", str(source), str(tmp))
            tmp.chmod(0o444)
            self._place(tmp, final)
        finally:
            self._unlink(tmp)
        return self._data_bytes(final)

    def copy_snapshot(self, source_id: str, snapshot_id: str) -> int:
        final = self.snapshot_path(snapshot_id)
        if final.exists():
            return self._data_bytes(final)
        source = self.snapshot_path(source_id)
        if not source.exists():
            raise ObjectMissing(f"snapshot {source_id} is not in the file backend")
        tmp = self._tmp(final)
        try:
            # A copy of its own (not a hard link): the copy's bytes are independent.
            self._run("convert", "-q", "-U", "-f", "qcow2", "-O", "qcow2", str(source), str(tmp))
            tmp.chmod(0o444)
            self._place(tmp, final)
        finally:
            self._unlink(tmp)
        return self._data_bytes(final)

    def _data_bytes(self, path: Path) -> int:
        extents = json.loads(self._run("map", "-U", "--output=json", str(path)))
        return sum(int(e["length"]) for e in extents if e.get("data"))

    def delete_snapshot(self, snapshot_id: str) -> None:
        self._unlink(self.snapshot_path(snapshot_id))

    def grow(self, volume_id: str, size_gib: int) -> None:
        current = self.size_gib(volume_id)
        if size_gib < current:
            raise BackendError(f"volume {volume_id} is {current} GiB: it cannot shrink to {size_gib} GiB")
        if size_gib > current:
            self._run(
                "resize", "-q", "-f", self.format, str(self.volume_path(volume_id)), f"{int(size_gib)}G"
            )

    def size_gib(self, volume_id: str) -> int:
        path = self.volume_path(volume_id)
        if not path.exists():
            raise ObjectMissing(f"volume {volume_id} is not in the file backend")
        return -(-int(self._info(path)["virtual-size"]) // GIB)

    def export(self, volume_id: str) -> Export:
        path = self.volume_path(volume_id)
        if not path.exists():
            raise ObjectMissing(f"volume {volume_id} is not in the file backend")
        return Export(backend=self.name, target=str(path.resolve()), options={"format": self.format})

    def volumes(self) -> set[str]:
        suffix = f".{self.format}"
        return {
            p.name[: -len(suffix)]
            for p in self.volume_dir.iterdir()
            if p.name.endswith(suffix) and not p.name.startswith(_TMP) and not p.name.endswith(".base.qcow2")
        }

    def snapshots(self) -> set[str]:
        return {
            p.stem
            for p in self.snapshot_dir.iterdir()
            if p.suffix == ".qcow2" and not p.name.startswith(_TMP)
        }

    def cleanup(self) -> None:
        for d in (self.volume_dir, self.snapshot_dir):
            for p in d.iterdir():
                if p.name.startswith(_TMP):
                    self._unlink(p)
        for p in self.volume_dir.glob("*.base.qcow2"):
            if not self.volume_path(p.name[: -len(".base.qcow2")]).exists():
                self._unlink(p)  # a clone interrupted before its volume was placed

    def stats(self) -> Stats:
        vols = sorted(self.volumes())
        snaps = self.snapshots()
        provisioned = sum(self.size_gib(v) for v in vols) * GIB
        inodes = {}  # a clone's backing file is a hard link: count each file once
        for d in (self.volume_dir, self.snapshot_dir):
            for p in d.iterdir():
                st = p.stat()
                inodes[(st.st_dev, st.st_ino)] = st.st_blocks * 512
        allocated = sum(inodes.values())
        disk = shutil.disk_usage(self.root)
        return Stats(
            volumes=len(vols),
            snapshots=len(snaps),
            provisioned_bytes=provisioned,
            allocated_bytes=allocated,
            capacity_bytes=disk.total,
            free_bytes=disk.free,
        )


def _safe(object_id: str) -> str:
    """``object_id`` if it is a plain file name (IDs are ``vol-<hex>``), else ValueError."""
    if not object_id or "/" in object_id or object_id.startswith(".") or "\0" in object_id:
        raise ValueError(f"not a volume or snapshot id: {object_id!r}")
    return object_id
