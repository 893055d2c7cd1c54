"""The message bus between OCS services: typed operations over kombu.

- :class:`Bus` (``transport``): one per process; URL, exchange, publishing.
- :class:`RpcClient` and :func:`cast` / :func:`call` / :func:`fanout`
  (``rpc``): a service's operations declared in its client class.
- :class:`RpcServer` (``server``): consumes a service's queue and dispatches to
  an endpoint object, on a thread or blocking, reconnecting on its own.
- ``messages``: dataclass payloads to and from JSON, error envelopes.

Configuration is passed in as plain values (see ``ocs.conf.bus``); this package
imports neither ``ocs.conf`` nor ``ocs.db``.
"""

from ocs.bus.rpc import BoundOperation, Kind, Operation, RpcClient, call, cast, fanout
from ocs.bus.server import RpcServer
from ocs.bus.transport import Bus

__all__ = [
    "BoundOperation",
    "Bus",
    "Kind",
    "Operation",
    "RpcClient",
    "RpcServer",
    "call",
    "cast",
    "fanout",
]
