"""The instance metadata service (169.254.169.254): EC2's IMDSv1 and IMDSv2 for OCS guests.

A pure package: it imports neither the database, the bus nor the configuration.
Everything it knows about instances comes through an injected
``lookup(CallerKey) -> InstanceMetadata | None``.

- :mod:`.model`: :class:`CallerKey` (subnet id + source address) and the data.
- :mod:`.tree`: the metadata tree, listings and the identity document.
- :mod:`.tokens`: stateless IMDSv2 tokens bound to one instance.
- :mod:`.app`: :func:`create_metadata_app`, the falcon app.
- :mod:`.server`: :func:`serve_metadata`, a listener that sets the IP TTL of
  token responses to the caller's hop limit.
"""

from ocs.network.metadata.app import (
    NETWORK_ID_HEADER,
    SOURCE_IP_HEADER,
    create_metadata_app,
    network_caller_key,
    proxy_caller_key,
)
from ocs.network.metadata.model import CallerKey, InstanceMetadata, InterfaceMetadata, MetadataOptions
from ocs.network.metadata.server import MetadataServer, hop_limit_lookup, serve_metadata, set_hop_limit

__all__ = [
    "NETWORK_ID_HEADER",
    "SOURCE_IP_HEADER",
    "CallerKey",
    "InstanceMetadata",
    "InterfaceMetadata",
    "MetadataOptions",
    "MetadataServer",
    "create_metadata_app",
    "hop_limit_lookup",
    "network_caller_key",
    "proxy_caller_key",
    "serve_metadata",
    "set_hop_limit",
]
