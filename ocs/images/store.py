"""The image store: image bytes in a directory, named by their SHA-256.

Content-addressed: a file is stored once under ``<root>/<sha256 hex>`` however
many images name it, so sharing a disk between images (RegisterImage with an
ImageLocation, the same file imported twice) costs nothing, and a file can be
removed once no live image names its key. Writes stream through a hidden
temporary file in the same directory and are published with an atomic rename:
a reader never sees a half-written image, and a crash leaves at most a
``.tmp-*`` file behind (removed by :meth:`ImageStore.clean_temporary`).

This module does file I/O only; it knows nothing of the database or of the
configuration (the process edge passes the directory in).
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK = 1024 * 1024
QCOW2_MAGIC = b"QFI\xfb"
_KEY = re.compile(r"^[0-9a-f]{64}$")
_TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class DiskInfo:
    """What the first bytes of an image tell: its format and the size the guest sees."""

    disk_format: str  # "qcow2" or "raw"
    virtual_size: int | None  # from the qcow2 header; None for raw (the file size)


@dataclass(frozen=True)
class StoredImage:
    """An image's bytes, stored: its key in the store, size, checksum and format."""

    key: str
    size: int
    sha256: str
    disk_format: str
    virtual_size: int  # bytes the guest sees (qcow2 header, else the file size)


def detect_format(header: bytes) -> DiskInfo:
    """The disk format of an image from its first bytes (at least 32 for qcow2's size).

    qcow2 starts with ``QFI\\xfb``, a big-endian version and, at offset 24, the
    big-endian 64-bit virtual size; anything else is taken as a raw disk.
    """
    if header[:4] == QCOW2_MAGIC:
        size = struct.unpack(">Q", header[24:32])[0] if len(header) >= 32 else None
        return DiskInfo("qcow2", size)
    return DiskInfo("raw", None)


def is_key(key: str) -> bool:
    return bool(_KEY.match(key or ""))


class ImageStore:
    """A directory of image files named by their SHA-256 (hex)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser()

    def ensure(self) -> ImageStore:
        """Create the directory (owner-only) if it is missing; return self."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self

    def path(self, key: str) -> Path:
        """Where the bytes of ``key`` are; ValueError for something that is not a key."""
        if not is_key(key):
            raise ValueError(f"not an image store key: {key!r}")
        return self.root / key

    def exists(self, key: str) -> bool:
        return is_key(key) and self.path(key).is_file()

    def put(self, source: BinaryIO) -> StoredImage:
        """Copy ``source`` (read to its end) into the store; the checksum is its key.

        Bytes already in the store are not written twice. The temporary file is
        removed if anything fails.
        """
        self.ensure()
        digest = hashlib.sha256()
        size = 0
        header = b""
        fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=self.root)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(CHUNK):
                    if len(header) < 512:
                        header += chunk[: 512 - len(header)]
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            key = digest.hexdigest()
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.root / key)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        info = detect_format(header)
        return StoredImage(key, size, key, info.disk_format, info.virtual_size or size)

    def put_file(self, path: str | os.PathLike[str]) -> StoredImage:
        """:meth:`put` with the content of the file at ``path``."""
        with open(path, "rb") as source:
            return self.put(source)

    def open(self, key: str) -> BinaryIO:
        """The stored bytes of ``key``, for reading (FileNotFoundError if absent)."""
        return open(self.path(key), "rb")

    def delete(self, key: str) -> bool:
        """Remove the bytes of ``key``; False if they were not there."""
        try:
            self.path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def keys(self) -> Iterator[str]:
        """Every key in the store (temporary files aside)."""
        if not self.root.is_dir():
            return
        for entry in sorted(self.root.iterdir()):
            if entry.is_file() and is_key(entry.name):
                yield entry.name

    def verify(self, key: str) -> bool:
        """Whether the stored bytes still hash to their key."""
        digest = hashlib.sha256()
        with self.open(key) as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
        return digest.hexdigest() == key

    def clean_temporary(self) -> int:
        """Remove leftovers of interrupted writes; how many were removed."""
        if not self.root.is_dir():
            return 0
        removed = 0
        for entry in self.root.glob(_TMP_PREFIX + "*"):
            entry.unlink(missing_ok=True)
            removed += 1
        return removed
