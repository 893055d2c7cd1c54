"""The hypervisor drivers, by name: an explicit registry, imported lazily.

``libvirt`` needs libvirt-python (the ``ocs[libvirt]`` extra), so nothing is
imported until a driver is asked for by name.
"""

from __future__ import annotations

import importlib
from typing import Any

from ocs.compute_agent.driver import Driver, DriverError

#: Driver name → ``"module:Class"``.
DRIVERS: dict[str, str] = {
    "fake": "ocs.compute_agent.drivers.fake:FakeDriver",
    "libvirt": "ocs.compute_agent.drivers.libvirt:LibvirtDriver",
}

#: Hints for a driver whose module is missing one of its optional dependencies.
_EXTRAS: dict[str, str] = {
    "libvirt": "pip install 'ocs[libvirt]' (it builds libvirt-python, which needs "
    "libvirt-dev, pkg-config and a C compiler)",
}


def driver_class(name: str) -> type[Driver]:
    """The class registered as ``name``.

    Raises :class:`DriverError` for an unknown name (listing the choices) or a
    driver whose optional dependencies are not installed (saying how to get them).
    """
    try:
        target = DRIVERS[name]
    except KeyError:
        choices = ", ".join(sorted(DRIVERS))
        raise DriverError(f"unknown hypervisor driver {name!r}; choose one of: {choices}") from None
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or ""
        hint = "" if missing.startswith("ocs.") else _EXTRAS.get(name, "")
        raise DriverError(
            f"hypervisor driver {name!r} is not available: {exc}" + (f"; {hint}" if hint else "")
        ) from exc
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Driver)):
        raise DriverError(f"{target} is not a hypervisor driver")
    return cls


def load_driver(name: str, /, **settings: Any) -> Driver:
    """A new driver ``name`` built from ``settings`` (its constructor's keywords).

    The driver is not connected yet: call its ``init_host`` first.
    """
    return driver_class(name)(**settings)
