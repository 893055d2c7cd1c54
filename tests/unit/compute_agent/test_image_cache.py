"""The per-host image cache: fetch once, verify, overlay."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from ocs.compute_agent.driver import ImageRef
from ocs.compute_agent.image_cache import GIB, ImageCache, ImageUnavailable, backing_file
from ocs.images.store import ImageStore

DATA = b"OCS-TEST-IMAGE-ROOT-DISK v1\n".ljust(3 * 1024 * 1024 + 17, b"\1")
SHA = hashlib.sha256(DATA).hexdigest()

needs_qemu_img = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed")


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "store").ensure()


@pytest.fixture
def cache(tmp_path: Path, store: ImageStore) -> ImageCache:
    return ImageCache(tmp_path / "cache", store.root)


def stored(store: ImageStore, data: bytes = DATA) -> ImageRef:
    item = store.put(io.BytesIO(data))
    return ImageRef("ami-0123456789abcdef0", item.key, "raw", f"sha256:{item.sha256}", item.size)


def test_an_image_from_the_store_is_cached_verified_and_readable(
    cache: ImageCache, store: ImageStore
) -> None:
    image = cache.fetch(stored(store))
    assert image.path == cache.cache_dir / f"sha256-{SHA}"
    assert image.path.read_bytes() == DATA
    assert (image.disk_format, image.virtual_size) == ("raw", len(DATA))
    assert image.path.stat().st_mode & 0o777 == 0o644, "QEMU runs as another user"
    assert not [p for p in cache.cache_dir.iterdir() if p.name.startswith(".tmp")]


def test_a_cached_image_is_not_fetched_again(cache: ImageCache, store: ImageStore) -> None:
    ref = stored(store)
    first = cache.fetch(ref)
    store.delete(ref.location)
    assert cache.fetch(ref) == first


def test_a_store_key_is_its_own_checksum(cache: ImageCache, store: ImageStore) -> None:
    ref = stored(store)
    (store.root / ref.location).write_bytes(DATA[:-1] + b"X")  # the store's file went bad
    with pytest.raises(ImageUnavailable, match="checksum mismatch") as bad:
        cache.fetch(ImageRef(ref.image_id, ref.location))
    assert not bad.value.retryable
    assert [p.name for p in cache.cache_dir.iterdir() if not p.name.startswith(".lock")] == []


def test_a_wrong_checksum_or_size_is_refused(cache: ImageCache, store: ImageStore) -> None:
    ref = stored(store)
    with pytest.raises(ImageUnavailable, match="checksum mismatch"):
        cache.fetch(ImageRef(ref.image_id, ref.location, checksum="sha256:" + "0" * 64))
    with pytest.raises(ImageUnavailable, match="size mismatch"):
        cache.fetch(ImageRef(ref.image_id, ref.location, checksum=ref.checksum, size=5))
    with pytest.raises(ImageUnavailable, match="unsupported checksum"):
        cache.fetch(ImageRef(ref.image_id, ref.location, checksum="crc32:abcd"))


def test_other_checksum_algorithms_work(cache: ImageCache, tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    path.write_bytes(DATA)
    image = cache.fetch(ImageRef("ami-1", str(path), checksum="md5:" + hashlib.md5(DATA).hexdigest()))
    assert image.path.name == "md5-" + hashlib.md5(DATA).hexdigest()


def test_paths_and_file_urls(cache: ImageCache, tmp_path: Path) -> None:
    path = tmp_path / "disk image.img"
    path.write_bytes(DATA)
    assert cache.fetch(ImageRef("ami-1", str(path))).path.read_bytes() == DATA
    assert cache.fetch(ImageRef("ami-1", "file://" + str(path).replace(" ", "%20"))).path.read_bytes() == DATA


@pytest.mark.parametrize(
    ("location", "reason", "retryable"),
    [
        ("", "no data", False),
        ("relative/path.img", "unsupported image location", False),
        ("ftp://host/x.img", "unsupported image location", False),
        ("/nonexistent/x.img", "missing", False),
        ("a" * 64, "missing", False),
    ],
)
def test_unusable_locations(cache: ImageCache, location: str, reason: str, retryable: bool) -> None:
    with pytest.raises(ImageUnavailable, match=reason) as failed:
        cache.fetch(ImageRef("ami-1", location))
    assert failed.value.retryable is retryable


def test_a_host_without_the_store_cannot_read_store_keys(tmp_path: Path) -> None:
    with pytest.raises(ImageUnavailable, match="no image store"):
        ImageCache(tmp_path / "cache").fetch(ImageRef("ami-1", "a" * 64))


class CountingOpener:
    """An HTTP opener for tests: serves DATA, counts and optionally slows requests."""

    def __init__(self, delay: float = 0.0) -> None:
        self.urls: list[str] = []
        self.delay = delay
        self._lock = threading.Lock()

    def __call__(self, url: str, timeout: float) -> BinaryIO:
        with self._lock:
            self.urls.append(url)
        time.sleep(self.delay)
        return io.BytesIO(DATA)


def test_concurrent_fetches_of_one_image_download_it_once(tmp_path: Path) -> None:
    opener = CountingOpener(delay=0.2)
    cache = ImageCache(tmp_path / "cache", open_url=opener)
    ref = ImageRef("ami-1", "http://images.invalid/disk.img", checksum=f"sha256:{SHA}")
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.fetch(ref))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len(set(results)) == 1
    assert opener.urls == ["http://images.invalid/disk.img"]


@pytest.fixture
def http_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/disk.img":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(DATA)))
            self.end_headers()
            self.wfile.write(DATA)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_urls_on_loopback(tmp_path: Path, http_server: str) -> None:
    cache = ImageCache(tmp_path / "cache", timeout=5.0)
    assert (
        cache.fetch(ImageRef("ami-1", f"{http_server}/disk.img", checksum=f"sha256:{SHA}")).path.read_bytes()
        == DATA
    )
    with pytest.raises(ImageUnavailable) as missing:
        cache.fetch(ImageRef("ami-2", f"{http_server}/gone.img"))
    assert missing.value.retryable


# --- overlays ----------------------------------------------------------------------------------


def qemu_img_info(path: Path) -> dict[str, object]:
    out = subprocess.run(["qemu-img", "info", "--output=json", str(path)], check=True, capture_output=True)
    info: dict[str, object] = json.loads(out.stdout)
    return info


@needs_qemu_img
def test_an_overlay_has_the_instance_disk_size_on_the_cached_base(
    cache: ImageCache, store: ImageStore, tmp_path: Path
) -> None:
    base = cache.fetch(stored(store))
    overlay = cache.create_overlay(base, tmp_path / "disk", 2)
    info = qemu_img_info(overlay)
    assert info["format"] == "qcow2" and info["virtual-size"] == 2 * GIB
    assert info["backing-filename"] == str(base.path) and info["backing-filename-format"] == "raw"
    assert backing_file(overlay) == str(base.path)
    assert overlay.stat().st_size < 1024 * 1024, "an overlay holds only what the guest writes"


@needs_qemu_img
def test_qcow2_images_are_detected_and_sized(cache: ImageCache, store: ImageStore, tmp_path: Path) -> None:
    qcow = tmp_path / "src.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow), "3G"], check=True)
    base = cache.fetch(stored(store, qcow.read_bytes()))
    assert (base.disk_format, base.virtual_size) == ("qcow2", 3 * GIB)
    with pytest.raises(ImageUnavailable, match="needs 3 GiB") as too_big:
        cache.create_overlay(base, tmp_path / "disk", 2)
    assert not too_big.value.retryable
    assert (
        qemu_img_info(cache.create_overlay(base, tmp_path / "disk", 3))["backing-filename-format"] == "qcow2"
    )


@needs_qemu_img
def test_a_blank_disk_without_an_image(cache: ImageCache, tmp_path: Path) -> None:
    info = qemu_img_info(cache.create_overlay(None, tmp_path / "disk", 1))
    assert info["virtual-size"] == GIB and "backing-filename" not in info
    assert backing_file(tmp_path / "disk") is None


def test_a_failing_qemu_img_is_a_retryable_failure(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path / "cache", qemu_img=str(tmp_path / "no-qemu-img"))
    with pytest.raises(ImageUnavailable, match="cannot create the instance disk") as failed:
        cache.create_overlay(None, tmp_path / "disk", 1)
    assert failed.value.retryable


@needs_qemu_img
def test_unused_images_are_removed_used_ones_kept(
    cache: ImageCache, store: ImageStore, tmp_path: Path
) -> None:
    used = cache.fetch(stored(store))
    unused = cache.fetch(stored(store, b"other image"))
    overlay = cache.create_overlay(used, tmp_path / "disk", 1)
    old = time.time() - 3600
    for path in (used.path, unused.path):
        os.utime(path, (old, old))
    assert cache.remove_unused([overlay], older_than=60) == [unused.path]
    assert used.path.exists() and not unused.path.exists()
    assert cache.remove_unused([], older_than=7200) == []
