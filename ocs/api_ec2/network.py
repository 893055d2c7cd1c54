"""Telling the network service what a request changed, once the change has committed.

Public addresses and routes: :func:`routing_changed` (a fanout, transient too).

Every host's ``ocs-network`` reloads the ruleset of the ports it carries that the
groups touch (:meth:`~ocs.network.rpcapi.NetworkHostApi.security_groups_changed`,
a fanout): a rule authorized, revoked or modified; an instance joining or leaving
a group (ModifyInstanceAttribute ``groupSet``, TerminateInstances), which changes
what rules referring to the group allow on other hosts. The message is transient:
a host that misses it converges at its next periodic sync.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ocs.api_ec2.context import RequestContext
from ocs.network.rpcapi import RoutingChanged, SecurityGroupsChanged, SyncHost


def _fan_out(
    ctx: RequestContext, operation: str, ids: Iterable[str | None], message: Callable[[list[str]], object]
) -> None:
    """Send ``operation`` (a fanout of the network host API) with ``message(ids)`` once
    ``ctx`` has committed; nothing without a network service or ids."""
    network = ctx.services.get("network")
    wanted = sorted({i for i in ids if i})
    if network is None or not wanted:
        return
    send, sent = getattr(network, operation), message(wanted)
    ctx.on_commit(lambda: send(sent))


def security_groups_changed(ctx: RequestContext, group_ids: Iterable[str]) -> None:
    """Fan ``security_groups_changed`` out for these groups once ``ctx`` has committed."""
    _fan_out(ctx, "security_groups_changed", group_ids, SecurityGroupsChanged)


def routing_changed(ctx: RequestContext, vpc_ids: Iterable[str | None]) -> None:
    """Fan ``routing_changed`` out for these VPCs once ``ctx`` has committed: a public
    address was (dis)associated, or a route, a route table's subnets or an internet
    gateway changed; the hosts carrying the VPCs converge their uplinks."""
    _fan_out(ctx, "routing_changed", vpc_ids, RoutingChanged)


def sync_host(ctx: RequestContext, host: str) -> None:
    """Ask ``host``'s network service to converge once ``ctx`` has committed (a NAT
    gateway placed on it was made or deleted)."""
    _fan_out(ctx, "sync_host", [host], lambda hosts: SyncHost(hosts[0]))
