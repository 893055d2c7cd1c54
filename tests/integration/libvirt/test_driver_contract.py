"""The driver contract against real QEMU guests of the OCS test image."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ocs.compute_agent import domain_xml
from ocs.compute_agent.driver import Driver, GuestSpec, NicSpec, VolumeAttachment
from tests.framework.guest_image import MARK_READY, GuestImage
from tests.unit.compute_agent.contract import DriverContract, wait_for

pytestmark = pytest.mark.slow


class TestLibvirtQemuContract(DriverContract):
    # Real guests under software emulation on a small machine: a few, not fifty.
    concurrent_guests = 4
    concurrent_threads = 2

    @pytest.fixture(autouse=True)
    def _environment(self, test_image: GuestImage, workdir: Path, bridge: str) -> None:
        self.image = test_image
        self.workdir = workdir
        self.bridge = bridge

    @pytest.fixture
    def make_driver(self, libvirt_uri: str, workdir: Path) -> Callable[[], Driver]:
        from ocs.compute_agent.libvirt.driver import LibvirtDriver

        return lambda: LibvirtDriver(
            f"itest-{os.getpid()}",
            uri=libvirt_uri,
            instances_path=str(workdir / "instances"),
            image_cache_path=str(workdir / "cache"),
        )

    def spec(self, instance_id: str | None = None, **changes: Any) -> GuestSpec:
        return self.image.spec(instance_id, **changes)

    def volume(
        self, tmp_path: Path, volume_id: str = "vol-0123456789abcdef0", device: str = "/dev/sdf"
    ) -> VolumeAttachment:
        path = self.workdir / "volumes" / f"{tmp_path.name}-{volume_id}.img"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"\0" * 1024 * 1024)
        return VolumeAttachment(volume_id, device, "file", str(path))

    def nic(self, mac: str = "02:00:0a:00:00:05") -> NicSpec:
        return NicSpec(mac=mac, bridge=self.bridge, ip="10.0.0.5", interface_id="eni-0123456789abcdef0")

    def stop_from_inside(self, driver: Driver, instance_id: str) -> None:
        """Once its init listens for ACPI, the guest is told to power off and does so itself
        (libvirt is used directly: the driver plays no part)."""
        import libvirt

        assert wait_for(lambda: MARK_READY in driver.console_output(instance_id), timeout=60.0)
        conn = libvirt.open(driver.uri)  # type: ignore[attr-defined]
        try:
            conn.lookupByName(domain_xml.domain_name(instance_id)).shutdown()
        finally:
            conn.close()
