"""The dispatch table: EC2 action name → handler, built once at import.

Each module of this package is one EC2 resource family and exports ``ACTIONS``,
a dict from action name to a handler ``(ctx, params) -> dict``. ``params`` holds
the request parsed into botocore member names; the handler returns a dict keyed
by the member names of the action's output shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ocs.api_ec2.actions import (
    addresses,
    customer_gateways,
    dhcp_options,
    image_builds,
    images,
    instance_attributes,
    instance_types,
    instances,
    internet_gateways,
    keypairs,
    nat_gateways,
    network_interfaces,
    regions,
    route_tables,
    security_groups,
    snapshot_sharing,
    snapshots,
    tags,
    volume_modifications,
    volumes,
    vpcs,
)
from ocs.api_ec2.context import RequestContext

Handler = Callable[[RequestContext, dict[str, Any]], dict[str, Any]]

_MODULES = (
    regions,
    tags,
    instance_types,
    keypairs,
    images,
    vpcs,
    internet_gateways,
    dhcp_options,
    customer_gateways,
    route_tables,
    nat_gateways,
    security_groups,
    instances,
    instance_attributes,
    network_interfaces,
    addresses,
    volumes,
    snapshots,
    volume_modifications,
    snapshot_sharing,
    image_builds,
)


def _build() -> dict[str, Handler]:
    table: dict[str, Handler] = {}
    for module in _MODULES:
        for name, handler in module.ACTIONS.items():
            if name in table:
                raise RuntimeError(f"action {name} is handled twice")
            table[name] = handler
    return table


HANDLERS: dict[str, Handler] = _build()

#: A handler that holds its ClientToken before it has its answer
#: (:func:`ocs.db.tags.hold_client_token`) rebuilds the answer of a retry from the
#: resource the token names: ``(ctx, resource_id) -> result``, None when it is gone.
Replay = Callable[[RequestContext, str], dict[str, Any] | None]
REPLAYS: dict[str, Replay] = {
    name: replay for module in _MODULES for name, replay in getattr(module, "REPLAYS", {}).items()
}

# Actions that change nothing: DryRun still answers DryRunOperation for them,
# as EC2 does, but they need no idempotency bookkeeping.
READ_ONLY_PREFIXES = ("Describe", "Get", "List")
