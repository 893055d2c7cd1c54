"""The network service's operations on the bus (more arrive with the networking work)."""

from __future__ import annotations

from ocs.service import ServiceApi


class NetworkApi(ServiceApi):
    service = "network"
