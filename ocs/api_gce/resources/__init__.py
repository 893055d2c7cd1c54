"""The Compute Engine resources, one module per family; ``ROUTES`` is every route of them."""

from __future__ import annotations

from ocs.api_gce.resources import (
    addresses,
    catalog,
    disks,
    firewalls,
    instance_disks,
    instances,
    networks,
    operations,
)
from ocs.api_gce.routes import Route

ROUTES: list[Route] = [
    *addresses.ROUTES,
    *firewalls.ROUTES,
    *catalog.ROUTES,
    *instances.ROUTES,
    *networks.ROUTES,
    *operations.ROUTES,
    *disks.ROUTES,
    *instance_disks.ROUTES,
]
