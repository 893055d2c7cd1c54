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

from collections.abc import Iterable

from ocs.api_ec2.context import RequestContext
from ocs.network.rpcapi import RoutingChanged, SecurityGroupsChanged


def security_groups_changed(ctx: RequestContext, group_ids: Iterable[str]) -> None:
    """Fan ``security_groups_changed`` out for these groups once ``ctx`` has committed."""
    network = ctx.services.get("network")
    wanted = sorted({g for g in group_ids if g})
    if network is None or not wanted:
        return
    message = SecurityGroupsChanged(wanted)
    ctx.on_commit(lambda: network.security_groups_changed(message))


def routing_changed(ctx: RequestContext, vpc_ids: Iterable[str | None]) -> None:
    """Fan ``routing_changed`` out for these VPCs once ``ctx`` has committed: a public
    address was (dis)associated, or a route, a route table's subnets or an internet
    gateway changed; the hosts carrying the VPCs converge their uplinks."""
    network = ctx.services.get("network")
    wanted = sorted({v for v in vpc_ids if v})
    if network is None or not wanted:
        return
    message = RoutingChanged(wanted)
    ctx.on_commit(lambda: network.routing_changed(message))
