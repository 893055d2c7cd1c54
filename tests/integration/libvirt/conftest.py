"""Fixtures for tests with real QEMU guests: libvirtd, the test image, a work directory.

The tests skip, saying why, unless libvirt-python is installed and libvirtd
answers at ``$OCS_TEST_LIBVIRT_URI`` (default ``qemu:///system``); with
``OCS_TEST_REQUIRE_SERVICES=1`` (CI) they fail instead. libvirtd runs QEMU as
its own user, so guest files live in a world-searchable directory under
/var/tmp rather than in pytest's private tmp. When a test fails, the tail of
every guest console it left is printed (Firecracker's test framework does the
same): that is usually all one needs to see why a guest did not boot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.framework.guest_image import GuestImage, GuestImageUnavailable, guest_image
from tests.services import services_required

URI = os.environ.get("OCS_TEST_LIBVIRT_URI", "qemu:///system")
BRIDGE = "br-ocs-test"
_WORKDIRS: list[Path] = []


def _unavailable(reason: str) -> None:
    if services_required():
        pytest.fail(reason + " and OCS_TEST_REQUIRE_SERVICES is set", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def libvirt_uri() -> str:
    """The URI of a libvirtd that answers (skip or fail otherwise)."""
    try:
        import libvirt
    except ImportError:
        _unavailable("libvirt-python is not installed (pip install 'ocs[libvirt]')")
    try:
        conn = libvirt.open(URI)
    except libvirt.libvirtError as exc:
        _unavailable(f"libvirtd is not reachable at {URI} ({exc}); start virtlogd -d, then libvirtd -d")
    try:
        conn.getCapabilities()
    finally:
        conn.close()
    if shutil.which("qemu-img") is None:
        _unavailable("qemu-img is not installed (apt-get install qemu-utils)")
    return URI


@pytest.fixture(scope="session")
def test_image(libvirt_uri: str) -> GuestImage:
    try:
        return guest_image()
    except (GuestImageUnavailable, OSError, subprocess.SubprocessError) as exc:
        _unavailable(f"the OCS test image cannot be built here: {exc}")
        raise


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    """A directory QEMU (user libvirt-qemu) can reach: instances, image cache, volumes."""
    path = Path(tempfile.mkdtemp(prefix="ocs-libvirt-tests-", dir="/var/tmp"))
    path.chmod(0o755)
    _WORKDIRS.append(path)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def bridge() -> Iterator[str]:
    """An isolated Linux bridge (no address, no uplink) for interface hot-plug."""
    made = False
    if not Path(f"/sys/class/net/{BRIDGE}").exists():
        done = subprocess.run(["ip", "link", "add", BRIDGE, "type", "bridge"], capture_output=True, text=True)
        if done.returncode != 0:
            _unavailable(f"cannot create the test bridge {BRIDGE}: {done.stderr.strip()}")
        made = True
    subprocess.run(["ip", "link", "set", BRIDGE, "up"], check=True)
    yield BRIDGE
    if made:
        subprocess.run(["ip", "link", "del", BRIDGE], check=False)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[Any]:
    report = yield
    if report.when == "call" and report.failed:
        consoles = sorted(c for w in _WORKDIRS for c in w.glob("**/console.log"))
        for console in consoles[-4:]:
            tail = console.read_bytes()[-3000:].decode("utf-8", "replace")
            report.sections.append((f"guest console {console.parent.name}", tail))
    return report
