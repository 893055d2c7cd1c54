"""The ``libvirt`` driver's registry entry: real QEMU/KVM guests.

The driver lives in :mod:`ocs.compute_agent.libvirt` (connection and events,
host capabilities and the KVM probe, the driver itself). Importing this module
needs libvirt-python (the ``ocs[libvirt]`` extra): without it the import fails
with ``ModuleNotFoundError`` for ``libvirt``, which the registry turns into
advice on how to install it.
"""

from __future__ import annotations

from ocs.compute_agent.libvirt.driver import LibvirtDriver

__all__ = ["LibvirtDriver"]
