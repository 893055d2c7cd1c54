"""The libvirt hypervisor driver (registered as ``libvirt`` in :mod:`ocs.compute_agent.drivers`).

- :mod:`.host`: the host's capabilities, the KVM probe, the choice of domain type;
- :mod:`.connection`: one thread-safe connection with lifecycle events;
- :mod:`.driver`: :class:`~.driver.LibvirtDriver`, the driver contract over libvirt.

Pure pieces live beside the agent: :mod:`ocs.compute_agent.domain_xml`,
:mod:`ocs.compute_agent.configdrive`, :mod:`ocs.compute_agent.image_cache`.
"""
