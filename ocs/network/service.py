"""The network service on one host: desired state from the database, converged by a driver.

:class:`NetworkHostEndpoint` serves :class:`~ocs.network.rpcapi.NetworkHostApi` on
``network.<host>``. Every operation does the same thing at heart: read what the host
must carry (:func:`desired_state`, through :mod:`ocs.network.ports`), plan it
(:func:`ocs.network.plan.plan_host`, pure) and hand the plan to the driver, which
converges idempotently; ``security_groups_changed`` takes the fast path and only
reloads the ruleset, and only when a port here is touched by the groups.

Besides ports, the desired state holds the NAT gateways placed on this host
(:func:`ocs.network.routes.nat_gateways_on`) and, per subnet, its routes to NAT gateways and network
interfaces resolved to next hops (:func:`ocs.network.routes.hop_routes`). After each convergence the
endpoint records what it built (:meth:`NetworkHostEndpoint._record`): its ``pending``
NAT gateways become ``available``, its ``deleting`` ones ``deleted``, and its tunnel
address goes into its ``services`` row, where the other hosts read their peers
(:func:`ocs.network.routes.tunnel_ips_of`; ``[network] tunnel_ips`` only overrides). A route whose
target instance stops is re-resolved (a blackhole) at the hosts' next convergence;
until then its packets go to a MAC nobody answers.

The endpoint also runs the metadata service's listeners: one per subnet namespace
on the host (``driver.listen``), each knowing its subnet, so the metadata app tells
callers apart by (subnet, source address) and answers only with that caller's own
instance (:func:`metadata_for`).

:class:`NetworkService` runs it on the bus, converges once at start (a restarted
service or host comes back to the desired state) and then every
``sync_interval`` seconds, which repairs anything a lost message left behind.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ocs import errors
from ocs.bus import Bus, RpcServer
from ocs.db import engine as db_engine
from ocs.db import hosts as db_hosts
from ocs.db import routing as db_routing
from ocs.db import secgroups as db_secgroups
from ocs.db.models.compute import Instance
from ocs.db.models.interfaces import ElasticAddress
from ocs.db.models.keypairs import KeyPair
from ocs.db.models.network import DhcpOptions, SecurityGroup, SecurityGroupRule, Subnet, Vpc
from ocs.db.models.routing import NatGateway
from ocs.db.routing import LIVE_NAT
from ocs.network import gce_ports, nft, ports
from ocs.network.driver import NetworkDriver
from ocs.network.metadata import (
    CallerKey,
    InstanceMetadata,
    InterfaceMetadata,
    MetadataServer,
    create_metadata_app,
    hop_limit_lookup,
    network_caller_key,
    serve_metadata,
)
from ocs.network.plan import (
    DesiredState,
    HostPlan,
    PlanSettings,
    SubnetState,
    bridge_name,
    plan_host,
    port_mtu,
    tap_name,
)
from ocs.network.routes import hop_routes, internet_routes, nat_carriers, nat_gateways_on, tunnel_ips_of
from ocs.network.rpcapi import (
    NetworkApi,
    NetworkHostApi,
    PortBinding,
    PortBindings,
    RoutingChanged,
    SecurityGroupsChanged,
    SetupPort,
    SetupPorts,
    SyncHost,
    TeardownPort,
    VpcHostsChanged,
)
from ocs.service import StatusEndpoint

LOG = logging.getLogger(__name__)

#: Seconds the sync thread waits once asked to converge (only bookkeeping drivers ask),
#: so that a burst of launches or terminations is one convergence.
COALESCE_DELAY = 0.5
#: Seconds between two heartbeats of a host's network service (its tunnel address).
HEARTBEAT_EVERY = 60.0


@dataclass(frozen=True)
class NetworkSettings:
    """The service's settings, read from configuration at the edge.

    ``tunnel_ip``: this host's VXLAN underlay address (None: no VXLAN, one host);
    ``tunnel_ips``: every host's underlay address by host name (the peers).
    """

    host: str
    plan: PlanSettings = field(default_factory=PlanSettings)
    tunnel_ip: str | None = None
    tunnel_ips: dict[str, str] = field(default_factory=dict)
    region: str = "us-east-1"
    metadata_secret: bytes = b"ocs-metadata-token-secret"
    sync_interval: float = 30.0
    workers: int = 4


class PortNotFound(errors.NotFound):
    code = "InvalidNetworkInterfaceID.NotFound"
    message = "The network interface of instance '{instance_id}' is not on host '{host}'."


# --- reading the database ------------------------------------------------------------------


def _rule(row: SecurityGroupRule) -> nft.Rule:
    return nft.Rule(
        group_id=row.group_id,
        is_egress=row.is_egress,
        ip_protocol=row.ip_protocol,
        from_port=row.from_port,
        to_port=row.to_port,
        cidr_ipv4=row.cidr_ipv4,
        cidr_ipv6=row.cidr_ipv6,
        prefix_list_id=row.prefix_list_id,
        referenced_group_id=row.referenced_group_id,
    )


def desired_state(s: Session, settings: NetworkSettings, *, exclude: Iterable[str] = ()) -> DesiredState:
    """What ``settings.host`` must carry (ports in ``exclude`` left out)."""
    skip = set(exclude)
    local = [hp for hp in ports.ports_for_host(s, settings.host) if hp.port.interface_id not in skip]
    subnet_ids = sorted({hp.port.subnet_id for hp in local})
    subnets = s.scalars(select(Subnet).where(Subnet.id.in_(subnet_ids))).all() if subnet_ids else []
    group_ids = sorted({g for hp in local for g in hp.port.group_ids})
    rules = [_rule(r) for rows in db_secgroups.rules_for(s, group_ids).values() for r in rows]
    referenced = {r.referenced_group_id for r in rules if r.referenced_group_id}
    vpc_ids = {hp.vpc_id for hp in local}
    members: dict[str, list[str]] = {g: [] for g in referenced}
    carriers: dict[str, set[str]] = {}
    nat_vpcs = set(
        s.scalars(
            select(NatGateway.vpc_id).where(NatGateway.host == settings.host, NatGateway.state.in_(LIVE_NAT))
        )
    )
    others = ports.ports_in_vpcs(s, vpc_ids | nat_vpcs) if referenced or settings.tunnel_ip else []
    for hp in others:
        if hp.port.interface_id in skip:
            continue
        for g in hp.port.group_ids:
            if g in members:
                members[g].append(hp.port.ip)
        if hp.host:
            carriers.setdefault(hp.vpc_id, set()).add(hp.host)
    nats = nat_gateways_on(s, settings.host)
    if settings.tunnel_ip:
        for vpc_id, host in nat_carriers(s, vpc_ids | {n.vpc_id for n in nats}):
            carriers.setdefault(vpc_id, set()).add(host)
    tunnel_ips = {**tunnel_ips_of(s), **settings.tunnel_ips} if settings.tunnel_ip else {}
    peers = {
        vpc: tuple(sorted(tunnel_ips[h] for h in hosts if h != settings.host and h in tunnel_ips))
        for vpc, hosts in carriers.items()
    }
    internet = internet_routes(s, subnets)
    hops = hop_routes(s, subnets)
    vpc_blocks = (
        dict(s.execute(select(Vpc.id, Vpc.cidr_block).where(Vpc.id.in_({x.vpc_id for x in subnets}))).all())
        if subnets
        else {}
    )
    dhcp = vpc_dhcp_options(s, {x.vpc_id for x in subnets})
    return DesiredState(
        host=settings.host,
        subnets=tuple(
            SubnetState(
                x.id,
                x.vpc_id,
                x.cidr_block,
                internet.get(x.id, ()),
                vpc_blocks.get(x.vpc_id, ""),
                hops.get(x.id, ()),
                dhcp.get(x.vpc_id),
            )
            for x in subnets
        ),
        ports=tuple(hp.port for hp in local),
        rules=tuple(rules),
        group_members={g: tuple(sorted(set(ips))) for g, ips in members.items()},
        tunnel_ip=settings.tunnel_ip,
        peers=peers,
        nat_gateways=nats,
        ordered=gce_ports.ordered_rules(s, local, skip),
    )


def vpc_dhcp_options(
    s: Session, vpc_ids: set[str]
) -> dict[str, tuple[tuple[str, tuple[str, ...]], ...] | None]:
    """Each VPC's DHCP options for its DHCP servers: its set's (key, values), none for
    ``default``, None (the cloud's own) for the set EC2 makes for every account."""
    if not vpc_ids:
        return {}
    chosen = dict(s.execute(select(Vpc.id, Vpc.dhcp_options_id).where(Vpc.id.in_(vpc_ids))).all())
    sets = {
        row.id: row for row in s.scalars(select(DhcpOptions).where(DhcpOptions.id.in_(set(chosen.values()))))
    }
    out: dict[str, tuple[tuple[str, tuple[str, ...]], ...] | None] = {}
    for vpc_id, options_id in chosen.items():
        row = sets.get(options_id)
        if options_id == "default":
            out[vpc_id] = ()
        elif row is None or row.default_for is not None:
            out[vpc_id] = None
        else:
            out[vpc_id] = tuple((str(k), tuple(str(v) for v in values)) for k, values in row.configurations)
    return out


def _hostname(region: str, ip: str) -> str:
    host = "ip-" + ip.replace(".", "-")
    return f"{host}.ec2.internal" if region == "us-east-1" else f"{host}.{region}.compute.internal"


def _public_hostname(region: str, ip: str) -> str:
    host = "ec2-" + ip.replace(".", "-")
    return (
        f"{host}.compute-1.amazonaws.com"
        if region == "us-east-1"
        else f"{host}.{region}.compute.amazonaws.com"
    )


def _public_ipv4s(s: Session, interface_id: str | None) -> dict[str, str]:
    """``{public address: private address}`` mapped to the interface (elastic IPs and the
    public address EC2 assigned at launch or start alike)."""
    if not interface_id:
        return {}
    rows = s.execute(
        select(ElasticAddress.public_ip, ElasticAddress.private_ip_address)
        .where(ElasticAddress.network_interface_id == interface_id)
        .order_by(ElasticAddress.private_ip_address)
    )
    return {public: private or "" for public, private in rows}


def _user_data(inst: Instance) -> bytes | None:
    if not inst.user_data:
        return None
    try:
        return base64.b64decode(inst.user_data)
    except (binascii.Error, ValueError):
        return inst.user_data.encode()


def metadata_for(s: Session, key: CallerKey, region: str) -> InstanceMetadata | None:
    """The metadata of the instance calling from ``key`` (None: nobody we know)."""
    inst = ports.port_at(s, key.network_id, key.source_ip)
    if inst is None or not inst.private_ip_address:
        return None
    subnet, vpc = s.get(Subnet, key.network_id), s.get(Vpc, inst.vpc_id) if inst.vpc_id else None
    groups = db_secgroups.groups_by_id(s, inst.security_group_ids or [])
    names = tuple(g.name for g in groups.values() if isinstance(g, SecurityGroup))
    hostname = _hostname(region, inst.private_ip_address)
    mac = (inst.mac_address or "").lower()
    publics = _public_ipv4s(s, inst.network_interface_id)
    public_ipv4 = next((p for p, private in publics.items() if private == inst.private_ip_address), None)
    show_dns = vpc is None or bool(vpc.enable_dns_hostnames)
    public_hostname = _public_hostname(region, public_ipv4) if public_ipv4 and show_dns else None
    interface = InterfaceMetadata(
        mac=mac,
        device_number=0,
        interface_id=inst.network_interface_id or inst.id,
        subnet_id=key.network_id,
        subnet_ipv4_cidr_block=subnet.cidr_block if subnet else "",
        vpc_id=inst.vpc_id or "",
        vpc_ipv4_cidr_blocks=(vpc.cidr_block,) if vpc else (),
        local_ipv4s=(inst.private_ip_address,),
        owner_id=inst.account_id,
        local_hostname=hostname,
        security_group_ids=tuple(inst.security_group_ids or ()),
        security_groups=names,
        ipv4_associations=publics,
        public_hostname=public_hostname,
    )
    keys = {}
    if inst.key_name:
        pair = s.scalar(
            select(KeyPair).where(KeyPair.account_id == inst.account_id, KeyPair.name == inst.key_name)
        )
        if pair is not None:
            keys[inst.key_name] = pair.public_key
    return InstanceMetadata(
        instance_id=inst.id,
        ami_id=inst.image_id,
        instance_type=inst.instance_type,
        account_id=inst.account_id,
        region=region,
        availability_zone=inst.availability_zone,
        local_ipv4=inst.private_ip_address,
        local_hostname=hostname,
        pending_time=inst.launch_time,
        mac=mac,
        public_ipv4=public_ipv4,
        public_hostname=public_hostname,
        interfaces=(interface,),
        security_groups=names,
        public_keys=keys,
        user_data=_user_data(inst),
        architecture=inst.architecture,
        kernel_id=inst.kernel_id,
        ramdisk_id=inst.ramdisk_id,
        reservation_id=inst.reservation_id,
        launch_index=inst.launch_index,
    )


# --- the endpoint --------------------------------------------------------------------------


class NetworkHostEndpoint(StatusEndpoint):
    """Serves one host's data plane (see the module)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        driver: NetworkDriver,
        settings: NetworkSettings,
        *,
        writers: sessionmaker[Session] | None = None,
    ):
        """``sessions`` read (they may be read-only); ``writers`` (default: ``sessions``)
        record what the host built, rarely (see :meth:`_record`)."""
        super().__init__("network", settings.host)
        self.sessions = sessions
        self.writers = writers or sessions
        self.driver = driver
        if not driver.enforcing:  # nothing enforces a ruleset: do not compile one
            settings = replace(settings, plan=replace(settings.plan, firewall=False))
        self.settings = settings
        self.plan: HostPlan | None = None
        self._released: dict[str, str] = {}  # interface id -> instance id, torn down
        self._released_lock = threading.Lock()  # not the convergence's: never waits for one
        self._lock = threading.RLock()
        self._full = _Requests()  # convergences asked for (ports set up or torn down)
        self._rules = _Requests()  # ruleset reloads asked for (security groups changed)
        self._listeners: dict[str, MetadataServer] = {}
        #: Told the VPCs this host started or stopped carrying (the other hosts' flood lists).
        self.notify: Callable[[list[str]], None] | None = None
        #: Told the groups whose members here came or went (other hosts' group references).
        self.notify_groups: Callable[[list[str]], None] | None = None
        self._memberships: frozenset[tuple[str, str, tuple[str, ...]]] = frozenset()
        self._beat_at: float | None = None  # when _record last wrote the heartbeat
        #: Asks for a convergence soon (the service's sync thread); by default, now.
        self.converge_soon: Callable[[], object] = self.converge

    def _tx(self) -> AbstractContextManager[Session]:
        return db_engine.transaction(self.sessions)

    def _state(self) -> DesiredState:
        with self._tx() as s:
            with self._released_lock:
                released = set(self._released)
            return desired_state(s, self.settings, exclude=released)

    def _plan(self) -> HostPlan:
        return plan_host(self._state(), self.settings.plan)

    def converge(self) -> HostPlan:
        """Read, plan, apply; then open or close metadata listeners to match."""
        with self._lock:
            full, rules = self._full.mark(), self._rules.mark()
            state = self._state()
            plan = plan_host(state, self.settings.plan)
            before = {b.vpc_id for b in self.plan.bridges} if self.plan is not None else set()
            members_before = self._memberships
            result = self.driver.apply(plan)
            if result.changed:
                LOG.info("network on %s: %s", self.settings.host, "; ".join(result.changes))
            self.plan = plan
            for s in plan.subnets:  # a namespace made again: its old listener is in the old one
                if f"netns {s.netns} added" in result.changes and s.subnet_id in self._listeners:
                    self._listeners.pop(s.subnet_id).stop()
            self._metadata_listeners(plan)
            self._memberships = members = frozenset((p.interface_id, p.ip, p.group_ids) for p in state.ports)
            self._full.served(full)
            self._rules.served(rules)
            self._record(plan)
        carried = {b.vpc_id for b in plan.bridges}
        _tell(self.notify, sorted(carried ^ before))
        if self.driver.enforcing:
            _tell(self.notify_groups, sorted({g for entry in members ^ members_before for g in entry[2]}))
        return plan

    def _record(self, plan: HostPlan) -> None:
        """Tell the database what this host built: its NAT gateways are ``available``
        (and those it tore down ``deleted``), and it is alive at its tunnel address
        (the other hosts' peer, without configuration), at most every
        :data:`HEARTBEAT_EVERY` seconds."""
        now = time.monotonic()
        beat = self._beat_at is None or now - self._beat_at >= HEARTBEAT_EVERY
        with self._tx() as s:  # a write only when there is something to write
            unsettled = db_routing.has_unsettled_nat_gateways(s, self.settings.host)
        if not (beat or unsettled):
            return
        settled: list[str] = []
        with db_engine.transaction(self.writers) as s:
            if unsettled:
                settled = db_routing.settle_nat_gateways(
                    s, self.settings.host, [n.nat_id for n in plan.nat_gateways]
                )
            if beat:
                db_hosts.record_heartbeat(
                    s, "network", self.settings.host, pid=os.getpid(), tunnel_ip=self.settings.tunnel_ip
                )
        if beat:
            self._beat_at = now
        if settled:
            LOG.info("network on %s: NAT gateways settled: %s", self.settings.host, ", ".join(settled))

    def _metadata_listeners(self, plan: HostPlan) -> None:
        wanted = {s.subnet_id for s in plan.subnets}
        for subnet_id in sorted(set(self._listeners) - wanted):
            self._listeners.pop(subnet_id).stop()
        for subnet_id in sorted(wanted - set(self._listeners)):
            sock = self.driver.listen(plan, subnet_id, self.settings.plan.metadata_port)
            if sock is None:
                continue
            app = create_metadata_app(
                self.metadata_lookup,
                caller_key=network_caller_key(subnet_id),
                token_secret=self.settings.metadata_secret,
            )
            self._listeners[subnet_id] = serve_metadata(
                app, "", 0, hop_limit_lookup(self.metadata_lookup, subnet_id), sock=sock
            )

    def metadata_lookup(self, key: CallerKey) -> InstanceMetadata | None:
        with self._tx() as s:
            return metadata_for(s, key, self.settings.region)

    def close(self) -> None:
        with self._lock:
            for server in self._listeners.values():
                server.stop()
            self._listeners.clear()

    # --- operations -----------------------------------------------------------------------

    def _converge_after(self, ticket: int) -> HostPlan:
        """A convergence that started after request ``ticket``: one that ran meanwhile
        (requests came in a burst), else a new one."""
        with self._lock:
            if self.plan is not None and self._full.is_served(ticket):
                return self.plan
            return self.converge()

    def setup_port(self, req: SetupPort) -> PortBinding:
        found = self._bindings(req.instance_id, req.interface_id)
        if not found:
            raise PortNotFound(instance_id=req.instance_id, host=req.host)
        return found[0]  # "": the primary interface

    def setup_ports(self, req: SetupPorts) -> PortBindings:
        return PortBindings(req.instance_id, self._bindings(req.instance_id, ""))

    def _bindings(self, instance_id: str, interface_id: str) -> list[PortBinding]:
        """The bindings of the instance's ports on this host ("": every one), by device
        index, once the host carries them."""
        with self._released_lock:
            for released, holder in list(self._released.items()):
                if holder == instance_id and interface_id in ("", released):
                    del self._released[released]
        if not self.driver.enforcing:
            found = self._bindings_from_database(instance_id, interface_id)
            if found:
                self.converge_soon()
                return found
        plan = self._converge_after(self._full.ask())
        mine = sorted(
            (p for p in plan.ports if p.instance_id == instance_id and interface_id in ("", p.interface_id)),
            key=lambda p: p.device_index,
        )
        netns = self.driver.netns or ""
        return [
            PortBinding(
                instance_id=p.instance_id,
                interface_id=p.interface_id,
                bridge=p.bridge,
                tap=p.tap,
                mac=p.mac,
                ip=p.ip,
                mtu=p.mtu,
                netns=netns,
                device_index=p.device_index,
            )
            for p in mine
        ]

    def _bindings_from_database(self, instance_id: str, interface_id: str) -> list[PortBinding]:
        """The bindings the next plan will have, read from the ports alone (none: no such
        port on this host); what a driver that plugs nothing answers at once."""
        with self._tx() as s:
            found = [
                hp
                for hp in ports.ports_of_instance(s, instance_id)
                if hp.host == self.settings.host and interface_id in ("", hp.port.interface_id)
            ]
        mtu = port_mtu(self.settings.plan, self.settings.tunnel_ip)
        return [
            PortBinding(
                instance_id=hp.port.instance_id,
                interface_id=hp.port.interface_id,
                bridge=bridge_name(hp.vpc_id),
                tap=tap_name(hp.port.interface_id),
                mac=hp.port.mac,
                ip=hp.port.ip,
                mtu=mtu,
                netns=self.driver.netns or "",
                device_index=hp.port.device_index,
            )
            for hp in found
        ]

    def teardown_port(self, req: TeardownPort) -> None:
        known = [
            p.interface_id for p in (self.plan.ports if self.plan else ()) if p.instance_id == req.instance_id
        ]
        if not known and not req.interface_id:  # not converged since it was set up (lazily)
            with self._tx() as s:
                known = [hp.port.interface_id for hp in ports.ports_of_instance(s, req.instance_id)]
        with self._released_lock:
            for interface_id in known:
                if req.interface_id in ("", interface_id):
                    self._released[interface_id] = req.instance_id
            if req.interface_id:
                self._released[req.interface_id] = req.instance_id
        if not self.driver.enforcing:
            self.converge_soon()
            return
        self._converge_after(self._full.ask())

    def sync_host(self, req: SyncHost) -> None:
        self.converge()

    def vpc_hosts_changed(self, req: VpcHostsChanged) -> None:
        """Another host started or stopped carrying a VPC: refresh the flood lists."""
        with self._lock:
            carried = {b.vpc_id for b in self.plan.bridges} if self.plan is not None else set()
        if req.host != self.settings.host and carried & set(req.vpc_ids) and self.settings.tunnel_ip:
            self.converge()

    def routing_changed(self, req: RoutingChanged) -> None:
        """Public addresses or routes changed: converge if this host carries such a VPC."""
        with self._lock:
            carried = {b.vpc_id for b in self.plan.bridges} if self.plan is not None else set()
        if req.vpc_ids and not carried & set(req.vpc_ids):
            return
        if not self.driver.enforcing:
            self.converge_soon()
            return
        self._converge_after(self._full.ask())

    def security_groups_changed(self, req: SecurityGroupsChanged) -> None:
        """Reload the ruleset if a port here is in, or refers to, one of the groups.

        A burst of changes is served by a few reloads: a reload that started after a
        request read the database after it, and serves it too."""
        if req.host == self.settings.host:
            return  # this host's own members changed: it converged before it told
        if not self.driver.enforcing:
            self.converge_soon()
            return
        ticket = self._rules.ask()
        with self._lock:
            if self._rules.is_served(ticket):
                return
            mark = self._rules.mark()
            plan = self._plan()
            if self.plan is None or plan.subnets != self.plan.subnets or plan.bridges != self.plan.bridges:
                self.converge()
                return
            if plan.firewall != self.plan.firewall:
                self.driver.apply_firewall(plan)
                self.plan = replace(self.plan, firewall=plan.firewall)
            self._rules.served(mark)


class _Requests:
    """Numbered requests for a fresh look at the database. A look that starts after a
    request was made reads what the request's sender had committed, so it serves
    that request too: handlers waiting their turn skip what others did meanwhile."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._asked = 0
        self._served = 0

    def ask(self) -> int:
        """A new request's number."""
        with self._lock:
            self._asked += 1
            return self._asked

    def mark(self) -> int:
        """The requests a look starting now serves (every one made so far)."""
        with self._lock:
            return self._asked

    def served(self, mark: int) -> None:
        with self._lock:
            self._served = max(self._served, mark)

    def is_served(self, ticket: int) -> bool:
        with self._lock:
            return self._served >= ticket


def _tell(notify: Callable[[list[str]], None] | None, ids: list[str]) -> None:
    """Tell the other hosts (a failure is logged: their periodic convergence catches up)."""
    if notify is None or not ids:
        return
    try:
        notify(ids)
    except Exception:
        LOG.exception("could not tell the other hosts about %s", ids)


class NetworkService:
    """The host endpoint on the bus, a first convergence, and periodic ones."""

    def __init__(
        self,
        bus: Bus,
        endpoint: NetworkHostEndpoint,
        *,
        on_error: Callable[[BaseException], None] | None = None,
        status: bool = True,
    ) -> None:
        """``status``: answer ``status`` on ``network`` too (one per process is enough)."""
        self.endpoint = endpoint
        self.settings = settings = endpoint.settings
        api = NetworkHostApi(bus)
        endpoint.notify = lambda vpc_ids: api.vpc_hosts_changed(VpcHostsChanged(settings.host, vpc_ids))
        endpoint.notify_groups = lambda ids: api.security_groups_changed(
            SecurityGroupsChanged(ids, host=settings.host)
        )
        self.servers = [
            *(
                [RpcServer(bus, NetworkApi, StatusEndpoint("network", settings.host), workers=1)]
                if status
                else []
            ),
            # A cast whose handler finds the database unreachable (teardown_port of a
            # port not converged yet, sync_host) is held and run again once it is back,
            # as the scheduler's are, rather than acknowledged and lost.
            RpcServer(
                bus,
                NetworkHostApi,
                self.endpoint,
                topic=f"network.{settings.host}",
                workers=settings.workers,
                transient=db_engine.is_outage,
            ),
        ]
        self._stopping = threading.Event()
        self._wake = threading.Event()
        endpoint.converge_soon = self._wake.set
        self._thread = threading.Thread(target=self._periodic, name="ocs-network-sync", daemon=True)
        self._on_error = on_error

    def start(self) -> None:
        self._sync_once()
        for server in self.servers:
            server.start()
        self._thread.start()

    def _sync_once(self) -> None:
        try:
            self.endpoint.converge()
        except Exception as exc:
            LOG.exception("network on %s: convergence failed", self.settings.host)
            if self._on_error is not None:
                self._on_error(exc)

    def _periodic(self) -> None:
        """Converge every ``sync_interval`` seconds, and soon after being asked (a burst
        of asks is one convergence)."""
        while not self._stopping.is_set():
            if self._wake.wait(self.settings.sync_interval):
                self._stopping.wait(COALESCE_DELAY)  # the rest of a burst of asks
            self._wake.clear()
            if not self._stopping.is_set():
                self._sync_once()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        for server in self.servers:
            server.stop()
        self._thread.join(timeout=5)
        self.endpoint.close()
