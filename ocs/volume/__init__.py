"""Block storage: EBS volumes and snapshots on a backend, and the ``ocs-volume`` service.

:mod:`ocs.volume.backend` is the backend contract (pure: neither bus nor database),
:mod:`ocs.volume.backends` the registry and the backends, :mod:`ocs.volume.rpcapi`
the service's operations on the bus and :mod:`ocs.volume.service` the service.
"""
