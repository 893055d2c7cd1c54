"""OCS's bootable test image, built once and reused across test runs.

:func:`guest_image` runs ``tools/build-test-image`` into a cache directory
(``$OCS_TEST_IMAGE_CACHE``, else ``~/.cache/ocs-test-image``) under a name
derived from the script's own content, so a changed script builds a new image
and an unchanged one is reused: the first run downloads two Debian packages
and takes a few seconds, later runs none. Concurrent builds (pytest-xdist,
two checkouts) are serialised by a lock file.

:class:`GuestImage` hands out what a test needs to boot it: ``ImageRef`` s
with checksums (kernel, ramdisk, machine image) and ready-made ``GuestSpec`` s.
The markers its init prints are constants here, so tests wait for them by name.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ocs import ids
from ocs.compute_agent.driver import GuestSpec, ImageRef

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools" / "build-test-image"
BUILDER = REPO / "ocs" / "images" / "test_image.py"  # what the script runs; the cache is keyed on it
KEEP_OLD_IMAGES = 86400.0  # seconds an image of another version of the builder is kept unused

#: Console markers of the test image's init.
MARK_INIT = b"OCS-TEST-IMAGE: init"
MARK_READY = b"OCS-TEST-IMAGE: userspace ready"
MARK_SHUTDOWN = b"OCS-TEST-IMAGE: shutting down"
MARK_CONFIG_DRIVE = b"OCS-TEST-IMAGE: config-drive instance-id="


class GuestImageUnavailable(RuntimeError):
    """The test image could not be built here (no apt-get, no package lists ...)."""


@dataclass(frozen=True)
class GuestImage:
    """The built image: a kernel (AKI), an initramfs (ARI) and a small disk (AMI)."""

    directory: Path
    manifest: dict[str, Any]

    @property
    def kernel(self) -> Path:
        return self.directory / "ocs-test-kernel"

    @property
    def initrd(self) -> Path:
        return self.directory / "ocs-test-initrd"

    @property
    def disk(self) -> Path:
        return self.directory / "ocs-test-disk.img"

    def _ref(self, image_id: str, path: Path, disk_format: str) -> ImageRef:
        checksum = self.manifest["files"][path.name]
        return ImageRef(image_id, str(path), disk_format, f"sha256:{checksum}", path.stat().st_size)

    def refs(self) -> tuple[ImageRef, ImageRef, ImageRef]:
        """The machine image, kernel and ramdisk as the scheduler would send them."""
        return (
            self._ref("ami-0000000000000000e", self.disk, "raw"),
            self._ref("aki-0000000000000000e", self.kernel, "aki"),
            self._ref("ari-0000000000000000e", self.initrd, "ari"),
        )

    def spec(
        self, instance_id: str | None = None, *, user_data: str | bytes = b"", **changes: Any
    ) -> GuestSpec:
        """A guest of this image: 1 vCPU, 128 MiB, 1 GiB disk, direct kernel boot."""
        ami, aki, ari = self.refs()
        data = user_data.encode() if isinstance(user_data, str) else user_data
        base = GuestSpec(
            instance_id=instance_id or ids.new_id("instance"),
            vcpus=1,
            memory_mib=128,
            disk_gib=1,
            image=ami,
            kernel=aki,
            ramdisk=ari,
            hostname="ocs-test",
            user_data=base64.b64encode(data).decode(),
        )
        return replace(base, **changes)


def cache_root() -> Path:
    return Path(os.environ.get("OCS_TEST_IMAGE_CACHE") or Path.home() / ".cache" / "ocs-test-image")


def _script_digest() -> str:
    return hashlib.sha256(BUILDER.read_bytes()).hexdigest()[:16]


def _load(directory: Path) -> GuestImage | None:
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    image = GuestImage(directory, manifest)
    if all(p.is_file() for p in (image.kernel, image.initrd, image.disk)):
        return image
    return None


def guest_image(root: Path | None = None) -> GuestImage:
    """The test image, built into ``root`` (see the module docstring) if not there yet.

    Raises :class:`GuestImageUnavailable` with the build's output if it fails.
    """
    root = root or cache_root()
    directory = root / _script_digest()
    image = _load(directory)
    if image is not None:
        return image
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        image = _load(directory)
        if image is not None:
            return image
        done = subprocess.run(
            [sys.executable, str(SCRIPT), str(directory), "--debs", str(root / "debs"), "--quiet"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise GuestImageUnavailable(f"tools/build-test-image failed: {done.stderr.strip()[-2000:]}")
    image = _load(directory)
    if image is None:
        raise GuestImageUnavailable(f"tools/build-test-image left no image in {directory}")
    # Images of earlier versions of the script go once nobody has used them for a day: a
    # test run of another checkout on this machine may be booting one right now.
    for old in root.iterdir():
        stale = old.is_dir() and time.time() - old.stat().st_mtime > KEEP_OLD_IMAGES
        if old != directory and stale and re.fullmatch(r"[0-9a-f]{16}", old.name):
            shutil.rmtree(old, ignore_errors=True)
    os.utime(directory)  # in use
    return image
