"""The driver registry: names, lazy imports, clear errors."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from types import ModuleType

import pytest

from ocs.compute_agent import drivers
from ocs.compute_agent.driver import Driver, DriverError
from ocs.compute_agent.drivers.fake import FakeDriver


def test_the_registry_names_fake_and_libvirt() -> None:
    assert set(drivers.DRIVERS) == {"fake", "libvirt"}


def test_load_driver_builds_a_driver_from_settings() -> None:
    driver = drivers.load_driver("fake", hostname="node-7", vcpus=2, memory_mib=1024, disk_gib=10)
    assert isinstance(driver, FakeDriver)
    driver.init_host()
    assert (driver.host_resources().hostname, driver.host_resources().vcpus) == ("node-7", 2)


def test_an_unknown_driver_lists_the_choices() -> None:
    with pytest.raises(DriverError, match="unknown hypervisor driver 'xen'; choose one of: fake, libvirt"):
        drivers.load_driver("xen")


def test_a_driver_without_its_extra_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = importlib.import_module

    def import_module(name: str, package: str | None = None) -> ModuleType:
        if name == "ocs.compute_agent.drivers.libvirt":
            raise ModuleNotFoundError("No module named 'libvirt'", name="libvirt")
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", import_module)
    with pytest.raises(DriverError, match=r"ocs\[libvirt\]"):
        drivers.driver_class("libvirt")


def test_a_registered_name_must_be_a_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(drivers.DRIVERS, "bogus", "ocs.compute_agent.driver:GuestSpec")
    with pytest.raises(DriverError, match="not a hypervisor driver"):
        drivers.driver_class("bogus")


@pytest.mark.parametrize("name", sorted(drivers.DRIVERS))
def test_every_importable_driver_implements_the_whole_contract(name: str) -> None:
    try:
        cls = drivers.driver_class(name)
    except DriverError as exc:
        pytest.skip(str(exc))
    assert issubclass(cls, Driver) and not inspect.isabstract(cls)


def test_importing_the_registry_imports_no_driver() -> None:
    code = (
        "import sys, ocs.compute_agent.drivers; "
        "print([m for m in sys.modules if m.startswith('ocs.compute_agent.drivers.') or m == 'libvirt'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_compute_agent_imports_neither_database_nor_configuration() -> None:
    code = (
        "import sys, ocs.compute_agent.driver, ocs.compute_agent.drivers.fake; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'oslo_config') "
        "or m.startswith(('ocs.db', 'ocs.conf', 'ocs.bus'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
