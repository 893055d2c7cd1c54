"""The network service's operations on the bus.

``NetworkApi`` (topic ``network``) answers ``status`` for the service as a whole.
``NetworkHostApi`` is the data plane: one ``ocs-network`` runs on every host that
carries instances and listens on ``network.<host>``; it reads what its host must
carry from the database, so the messages only say *what* changed:

- ``setup_port`` (call, from the compute agent before it spawns a guest or plugs an
  interface): converge the host and answer where the hypervisor plugs the
  interface in (a tap named ``tap`` on bridge ``bridge``). Idempotent.
- ``setup_ports`` (call, from the compute agent before it starts a stopped guest and
  when it restarts): ``setup_port`` for every interface of the instance at once;
  answers their bindings, by device index (none: the host carries no port of it).
- ``teardown_port`` (cast, after the guest is destroyed or the interface detached):
  converge the host without that port. Idempotent.
- ``sync_host`` (cast): converge the host now (operators, after a host restart).
- ``security_groups_changed`` (fanout, from the API after any change to a group's
  rules or members): every host re-applies the ruleset of the ports it carries that
  the groups touch, within two seconds. Transient: a host that is down misses it
  and converges when it starts and then periodically.
- ``routing_changed`` (fanout, from the API after a public address was associated or
  disassociated, or a route, route-table association or internet gateway changed):
  every host carrying one of the VPCs converges (its uplinks, public addresses and
  routes), within a second or two. Transient, like ``security_groups_changed``.
- ``vpc_hosts_changed`` (fanout, sent by ``ocs-network`` itself when its host starts
  or stops carrying a VPC): the other hosts carrying the VPC refresh their VXLAN
  flood lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ocs.bus import call, cast, fanout
from ocs.service import ServiceApi


@dataclass(frozen=True)
class SetupPort:
    """Prepare ``host`` for an instance's interface ("": its primary interface)."""

    host: str
    instance_id: str
    interface_id: str = ""


@dataclass(frozen=True)
class PortBinding:
    """Where the hypervisor plugs the interface in: a tap device named ``tap``
    (libvirt: ``<target dev='…'/>``) on bridge ``bridge``, with this MAC and MTU.

    ``netns`` is the network namespace the bridge lives in ("": the one ``ocs-network``
    and the hypervisor share, as in production). When it is set (tests, demos), the
    hypervisor cannot reach the bridge: it makes the tap unattached, and a second
    ``setup_port`` once the tap exists has the service move it into ``netns`` and
    onto the bridge. ``device_index``: the interface's attachment's."""

    instance_id: str
    interface_id: str
    bridge: str
    tap: str
    mac: str
    ip: str
    mtu: int
    netns: str = ""
    device_index: int = 0


@dataclass(frozen=True)
class SetupPorts:
    """Prepare ``host`` for every interface of an instance."""

    host: str
    instance_id: str


@dataclass(frozen=True)
class PortBindings:
    """The bindings of an instance's interfaces on the host, by device index."""

    instance_id: str
    ports: list[PortBinding] = field(default_factory=list)


@dataclass(frozen=True)
class TeardownPort:
    host: str
    instance_id: str
    interface_id: str = ""


@dataclass(frozen=True)
class SyncHost:
    host: str


@dataclass(frozen=True)
class SecurityGroupsChanged:
    """These groups' rules or members changed (empty: assume every group did).

    ``host``: the network service that sent it (its own members changed; it has
    converged already and skips it); "" from the API."""

    group_ids: list[str] = field(default_factory=list)
    host: str = ""


@dataclass(frozen=True)
class RoutingChanged:
    """Public addresses or routes of these VPCs changed (empty: of any VPC)."""

    vpc_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VpcHostsChanged:
    """``host`` started or stopped carrying these VPCs."""

    host: str
    vpc_ids: list[str] = field(default_factory=list)


class NetworkApi(ServiceApi):
    service = "network"


class NetworkHostApi(ServiceApi):
    service = "network"
    topic = "network.{host}"

    setup_port = call(SetupPort, PortBinding, timeout=30.0)
    setup_ports = call(SetupPorts, PortBindings, timeout=30.0)
    teardown_port = cast(TeardownPort)
    sync_host = cast(SyncHost)
    security_groups_changed = fanout(SecurityGroupsChanged)
    vpc_hosts_changed = fanout(VpcHostsChanged)
    routing_changed = fanout(RoutingChanged)
