"""What is particular to the file backend (the contract is in test_backend_contract.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ocs.volume.backend import BackendError
from ocs.volume.backends import make_backend
from ocs.volume.backends.file import FileBackend
from tests.unit.volume.test_backend_contract import file_case, pytestmark, write  # noqa: F401


def test_export_is_the_path_and_snapshots_are_read_only(tmp_path: Path) -> None:
    case = file_case(tmp_path, "qcow2")
    b = case.backend
    assert isinstance(b, FileBackend)
    b.create("vol-a", 1)
    write(case, "vol-a", 0x11, 0, 4096)
    export = b.export("vol-a")
    assert export.options == {"format": "qcow2"}
    assert os.path.isabs(export.target) and Path(export.target) == b.volume_path("vol-a").resolve()
    b.snapshot("vol-a", "snap-1")
    assert b.snapshot_path("snap-1").stat().st_mode & 0o222 == 0
    assert [p.name for p in b.snapshot_dir.iterdir()] == ["snap-1.qcow2"]


def test_a_failing_qemu_img_leaves_nothing(tmp_path: Path) -> None:
    b = FileBackend(tmp_path, qemu_img=str(tmp_path / "no-such-qemu-img"))
    with pytest.raises(BackendError, match="not installed"):
        b.create("vol-a", 1)
    real = FileBackend(tmp_path)
    with pytest.raises(BackendError, match="qemu-img create failed"):
        real.create("vol-huge", 1 << 40)  # beyond what qcow2 can address
    assert real.volumes() == set() and list(real.volume_dir.iterdir()) == []


def test_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        FileBackend(tmp_path, volume_format="vmdk")
    with pytest.raises(ValueError):
        make_backend("nfs", state_dir=tmp_path)
