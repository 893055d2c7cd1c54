"""The image store: content-addressed files, atomic writes, format detection."""

from __future__ import annotations

import hashlib
import io
import struct

import pytest

from ocs.images import store as image_store
from ocs.images.importer import volume_size_gib
from ocs.images.store import ImageStore, detect_format


def qcow2_header(virtual_size: int) -> bytes:
    # magic, version 3, backing file offset/size, cluster bits, virtual size
    return b"QFI\xfb" + struct.pack(">IQIIQ", 3, 0, 0, 16, virtual_size) + bytes(480)


def test_detects_qcow2_and_its_virtual_size():
    info = detect_format(qcow2_header(10 * 1024**3))
    assert info.disk_format == "qcow2"
    assert info.virtual_size == 10 * 1024**3


@pytest.mark.parametrize("header", [b"", b"\0" * 512, b"QFI", b"\xebc\x90" + bytes(509)])
def test_anything_else_is_raw(header):
    assert detect_format(header).disk_format == "raw"
    assert detect_format(header).virtual_size is None


def test_put_streams_with_checksum_and_size(tmp_path):
    store = ImageStore(tmp_path / "images")
    data = bytes(range(256)) * 9000
    stored = store.put(io.BytesIO(data))
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.key == stored.sha256
    assert stored.size == len(data) == stored.virtual_size
    assert stored.disk_format == "raw"
    assert store.path(stored.key).read_bytes() == data
    assert list(store.keys()) == [stored.key]
    assert store.verify(stored.key)


def test_put_crosses_chunk_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr(image_store, "CHUNK", 7)
    store = ImageStore(tmp_path)
    data = qcow2_header(5 * 1024**3) + b"payload" * 13
    stored = store.put(io.BytesIO(data))
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.size == len(data)
    assert stored.disk_format == "qcow2"
    assert stored.virtual_size == 5 * 1024**3


def test_same_bytes_are_stored_once(tmp_path):
    store = ImageStore(tmp_path)
    a = store.put(io.BytesIO(b"same bytes"))
    b = store.put(io.BytesIO(b"same bytes"))
    assert a.key == b.key
    assert list(store.keys()) == [a.key]
    assert not list(tmp_path.glob(".tmp-*"))


def test_store_is_private_and_files_read_only_for_others(tmp_path):
    store = ImageStore(tmp_path / "images")
    stored = store.put(io.BytesIO(b"x"))
    assert (tmp_path / "images").stat().st_mode & 0o077 == 0
    assert store.path(stored.key).stat().st_mode & 0o077 == 0


class Exploding(io.RawIOBase):
    def __init__(self) -> None:
        self.calls = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.calls += 1
        if self.calls > 2:
            raise OSError("disk on fire")
        return b"chunk"


def test_failed_copy_leaves_nothing_behind(tmp_path):
    store = ImageStore(tmp_path)
    with pytest.raises(OSError, match="disk on fire"):
        store.put(Exploding())  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_delete_and_clean_temporary(tmp_path):
    store = ImageStore(tmp_path)
    stored = store.put(io.BytesIO(b"bytes"))
    (tmp_path / ".tmp-leftover").write_bytes(b"half")
    assert store.clean_temporary() == 1
    assert store.delete(stored.key) is True
    assert store.delete(stored.key) is False
    assert not store.exists(stored.key)


def test_keys_of_a_missing_directory(tmp_path):
    store = ImageStore(tmp_path / "nope")
    assert list(store.keys()) == []
    assert store.clean_temporary() == 0


@pytest.mark.parametrize("key", ["../etc/passwd", "", "abc", "A" * 64])
def test_path_refuses_what_is_not_a_key(tmp_path, key):
    with pytest.raises(ValueError):
        ImageStore(tmp_path).path(key)
    assert not ImageStore(tmp_path).exists(key)


def test_verify_notices_corruption(tmp_path):
    store = ImageStore(tmp_path)
    stored = store.put(io.BytesIO(b"good"))
    store.path(stored.key).chmod(0o600)
    store.path(stored.key).write_bytes(b"evil")
    assert not store.verify(stored.key)


@pytest.mark.parametrize(
    ("size", "gib"), [(None, 1), (0, 1), (1, 1), (1024**3, 1), (1024**3 + 1, 2), (8 * 1024**3, 8)]
)
def test_volume_size_rounds_up_to_gib(size, gib):
    assert volume_size_gib(size) == gib
