"""The network drivers (``linux``, ``noop``); the registry is :data:`ocs.network.driver.REGISTRY`."""
