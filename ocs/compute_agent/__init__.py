"""The compute agent: one per host, it runs guests through a hypervisor driver.

- :mod:`ocs.compute_agent.driver`: the driver contract (fifteen methods, their
  failure semantics in the docstrings) and the value types that arrive in bus
  messages (:class:`~ocs.compute_agent.driver.GuestSpec` …) or go back
  (:class:`~ocs.compute_agent.driver.GuestInfo`,
  :class:`~ocs.compute_agent.driver.HostResources`).
- :mod:`ocs.compute_agent.drivers`: the registry (``fake``, ``libvirt``) and
  ``load_driver(name, **settings)``.
- :mod:`ocs.compute_agent.drivers.fake`: a simulated hypervisor configured
  through its constructor (capacity, boot delay, faults, clock), for tests,
  demos and scale runs with many hosts in one process.

The agent never imports the database nor the configuration: everything it needs
arrives in the message or as plain constructor values, and it answers on the bus.
"""
