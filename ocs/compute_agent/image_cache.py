"""The per-host image cache: images fetched once, verified, and booted from overlays.

A guest never writes to an image. :meth:`ImageCache.fetch` copies an image from
the image store (or a path or an HTTP URL) into the cache directory once,
checking its checksum on the way, and every guest then gets its own qcow2
overlay on the cached base (:meth:`ImageCache.create_overlay`), sized to its
instance type: spawning the hundredth guest of an image costs one
``qemu-img create``.

Where an image comes from (:attr:`ImageRef.location`):

- a 64-hex-digit image store key (what ``ocs-manage image import`` records):
  the file of that name in ``store_dir`` (:class:`ocs.images.store.ImageStore`);
- an absolute path or a ``file://`` URL;
- an ``http://`` or ``https://`` URL.

Cached files are named by their checksum (``sha256-<hex>``), so images that
share bytes share a file; a file is published by an atomic rename after its
checksum matched, so a half-written or corrupt file is never used. Fetches of
one image by several threads or processes at once are serialised by a lock file
(``flock``): the image is fetched once. Cached files are world-readable
(libvirt runs QEMU as its own user). Nothing here knows the database or the
configuration; directories and the ``qemu-img`` command are constructor
arguments.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import struct
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ocs.compute_agent.driver import ImageRef
from ocs.images.store import QCOW2_MAGIC, detect_format, is_key

LOG = logging.getLogger(__name__)

CHUNK = 1024 * 1024
GIB = 1024**3
_CHECKSUM = re.compile(r"^(?P<algo>[a-z0-9_]+):(?P<hex>[0-9a-fA-F]+)$")

#: Opens a URL for reading: ``(url, timeout) -> binary stream`` (injected in tests).
UrlOpener = Callable[[str, float], BinaryIO]


class ImageUnavailable(Exception):
    """An image could not be fetched or used.

    ``reason`` is user-presentable; ``retryable`` is true when the failure
    belongs to this host (its disk, its network) rather than to the image.
    """

    def __init__(self, image_id: str, reason: str, *, retryable: bool = False) -> None:
        self.image_id = image_id
        self.reason = reason
        self.retryable = retryable
        super().__init__(f"image {image_id}: {reason}")


@dataclass(frozen=True)
class CachedImage:
    """An image in the cache: its file, its real format and the size a guest sees."""

    image_id: str
    path: Path
    disk_format: str  # "raw" or "qcow2", from the bytes
    virtual_size: int


def _open_url(url: str, timeout: float) -> BinaryIO:
    response: BinaryIO = urllib.request.urlopen(url, timeout=timeout)
    return response


def backing_file(path: str | os.PathLike[str]) -> str | None:
    """The backing file named in a qcow2 header (None for none, or not qcow2)."""
    with open(path, "rb") as f:
        header = f.read(20)
        if len(header) < 20 or header[:4] != QCOW2_MAGIC:
            return None
        offset, size = struct.unpack(">QI", header[8:20])
        if not offset or not size:
            return None
        f.seek(offset)
        return f.read(size).decode("utf-8", "replace")


class ImageCache:
    """Images of one host, cached in ``cache_dir``.

    ``store_dir`` is the image store's directory (for store keys; None when
    this host cannot read the store); ``qemu_img`` the command that makes
    overlays; ``timeout`` bounds an HTTP fetch and each ``qemu-img`` run.
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike[str],
        store_dir: str | os.PathLike[str] | None = None,
        *,
        qemu_img: str = "qemu-img",
        timeout: float = 600.0,
        open_url: UrlOpener = _open_url,
    ) -> None:
        self.cache_dir = Path(cache_dir).expanduser()
        self.store_dir = Path(store_dir).expanduser() if store_dir else None
        self.qemu_img = qemu_img
        self.timeout = timeout
        self._open_url = open_url

    # --- fetching --------------------------------------------------------------------------

    def fetch(self, image: ImageRef) -> CachedImage:
        """The cached copy of ``image``, fetched and verified first if need be.

        The checksum (``"sha256:<hex>"``, any hashlib algorithm works) is
        checked; without one, a store key is its own SHA-256. Raises
        :class:`ImageUnavailable`.
        """
        if not image.location:
            raise ImageUnavailable(image.image_id, "the image has no data to boot from")
        algo, expected = self._expected_checksum(image)
        name = (
            f"{algo}-{expected}"
            if expected
            else "location-" + hashlib.sha256(image.location.encode()).hexdigest()
        )
        target = self.cache_dir / name
        if not target.is_file():
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            with self._locked(name):
                if not target.is_file():
                    self._download(image, target, algo, expected)
        with contextlib.suppress(OSError):
            os.utime(target)  # the cache's LRU clock
        return self._describe(image.image_id, target)

    def _expected_checksum(self, image: ImageRef) -> tuple[str, str]:
        if image.checksum:
            match = _CHECKSUM.match(image.checksum.strip())
            if not match or match.group("algo") not in hashlib.algorithms_available:
                raise ImageUnavailable(image.image_id, f"unsupported checksum {image.checksum!r}")
            return match.group("algo"), match.group("hex").lower()
        if is_key(image.location):
            return "sha256", image.location
        return "sha256", ""

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        with open(self.cache_dir / f".lock-{name}", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _source(self, image: ImageRef) -> BinaryIO:
        location = image.location
        try:
            if is_key(location):
                if self.store_dir is None:
                    raise ImageUnavailable(image.image_id, "this host has no image store to read it from")
                return open(self.store_dir / location, "rb")
            parsed = urllib.parse.urlparse(location)
            if parsed.scheme in ("http", "https"):
                return self._open_url(location, self.timeout)
            if parsed.scheme == "file":
                return open(urllib.parse.unquote(parsed.path), "rb")
            if os.path.isabs(location):
                return open(location, "rb")
        except FileNotFoundError:
            raise ImageUnavailable(image.image_id, "the image's data is missing") from None
        except OSError as exc:
            raise ImageUnavailable(image.image_id, f"cannot read the image: {exc}", retryable=True) from exc
        raise ImageUnavailable(image.image_id, f"unsupported image location {location!r}")

    def _download(self, image: ImageRef, target: Path, algo: str, expected: str) -> None:
        started = time.monotonic()
        digest = hashlib.new(algo)
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=self.cache_dir)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, self._source(image) as source:
                size = 0
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            if expected and digest.hexdigest() != expected:
                raise ImageUnavailable(image.image_id, f"checksum mismatch: expected {algo}:{expected}")
            if image.size and size != image.size:
                raise ImageUnavailable(
                    image.image_id, f"size mismatch: expected {image.size} bytes, got {size}"
                )
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except OSError as exc:
            raise ImageUnavailable(image.image_id, f"cannot cache the image: {exc}", retryable=True) from exc
        finally:
            tmp.unlink(missing_ok=True)
        LOG.info("cached image %s (%d bytes) in %.1f s", image.image_id, size, time.monotonic() - started)

    @staticmethod
    def _describe(image_id: str, path: Path) -> CachedImage:
        with path.open("rb") as f:
            info = detect_format(f.read(512))
        size = info.virtual_size if info.virtual_size else path.stat().st_size
        return CachedImage(image_id, path, info.disk_format, size)

    # --- overlays ------------------------------------------------------------------------------

    def create_overlay(self, base: CachedImage | None, path: str | os.PathLike[str], size_gib: int) -> Path:
        """A qcow2 file at ``path`` of ``size_gib`` GiB on ``base`` (blank if None).

        Raises :class:`ImageUnavailable` (not retryable) if the image is larger
        than the disk, and (retryable) if ``qemu-img`` fails.
        """
        target = Path(path)
        size = size_gib * GIB
        cmd = [self.qemu_img, "create", "-q", "-f", "qcow2"]
        if base is not None:
            if base.virtual_size > size:
                raise ImageUnavailable(
                    base.image_id,
                    f"the image needs {-(-base.virtual_size // GIB)} GiB, more than the instance's {size_gib} GiB disk",
                )
            cmd += ["-F", base.disk_format, "-b", str(base.path)]
        cmd += [str(target), str(size)]
        image_id = base.image_id if base else "blank"
        try:
            subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=self.timeout)
        except (OSError, subprocess.SubprocessError) as exc:
            stderr = getattr(exc, "stderr", "") or ""
            raise ImageUnavailable(
                image_id, f"cannot create the instance disk: {stderr.strip() or exc}", retryable=True
            ) from exc
        return target

    # --- housekeeping -----------------------------------------------------------------------------

    def remove_unused(self, overlays: list[Path], older_than: float = 24 * 3600.0) -> list[Path]:
        """Remove cached images no overlay in ``overlays`` is based on and
        unused for ``older_than`` seconds; return what was removed."""
        in_use = set()
        for overlay in overlays:
            with contextlib.suppress(OSError):
                backing = backing_file(overlay)
                if backing:
                    in_use.add(Path(backing).resolve())
        removed: list[Path] = []
        if not self.cache_dir.is_dir():
            return removed
        cutoff = time.time() - older_than
        for entry in self.cache_dir.iterdir():
            if entry.name.startswith(".") or not entry.is_file() or entry.resolve() in in_use:
                continue
            if entry.stat().st_mtime < cutoff:
                entry.unlink(missing_ok=True)
                (self.cache_dir / f".lock-{entry.name}").unlink(missing_ok=True)
                removed.append(entry)
        return removed
