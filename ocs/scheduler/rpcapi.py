"""The scheduler's operations on the bus (more arrive with the instances work)."""

from __future__ import annotations

from ocs.service import ServiceApi


class SchedulerApi(ServiceApi):
    service = "scheduler"
