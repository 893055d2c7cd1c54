"""The compute agent's operations on the bus; each host listens on compute.<host>."""

from __future__ import annotations

from ocs.service import ServiceApi


class ComputeApi(ServiceApi):
    service = "compute"
    topic = "compute.{host}"
