"""The network data plane of one host, planned: desired state in, host configuration out.

A pure module. :func:`plan_host` takes what the database says this host must carry
(:class:`DesiredState`: its VPCs and subnets, the instance interfaces placed on it,
the security-group rules and memberships they need, the other hosts' tunnel
addresses) and returns a :class:`HostPlan`, everything a driver must make true:

* per VPC, a Linux bridge and (when the host has a tunnel address) a VXLAN device
  on it, whose VNI is derived from the VPC id and whose flood list is the tunnel
  addresses of the other hosts carrying that VPC;
* per subnet with a port here, a network namespace joined to the VPC's bridge by a
  veth pair; the namespace end holds the subnet's gateway address (the first host
  address, as in EC2) with a MAC derived from the subnet, runs dnsmasq handing every
  port its fixed address by MAC (router, DNS, MTU, lease time), and redirects the
  metadata address 169.254.169.254:80 to the metadata listener the service binds in
  that namespace (it tells callers apart by source address and subnet);
* per port, the tap name the hypervisor creates and plugs into the VPC's bridge;
* the host's security-group ruleset (:mod:`ocs.network.nft`, one chain pair per
  port) and an "edge" table that keeps every host's gateway and DHCP server local:
  the gateway's MAC, ARP for gateway addresses and DHCP never cross a VXLAN device,
  since every host answers for its subnets' gateways itself;
* per subnet whose route table sends traffic to an internet gateway (and when the
  host has a public network, :attr:`PlanSettings.public_gateway`), an uplink: a
  veth pair from the subnet's namespace to the public bridge. The namespace holds
  the public addresses (elastic IPs, auto-assigned addresses) of its ports there as
  /32s, so it answers ARP for them on the public network, translates them to the
  private addresses and back (DNAT in, SNAT out), routes the destinations the route
  table sends to the gateway via the public network's router, and forwards nothing
  else: a port without a public address never reaches the public network, and
  nothing from outside reaches a port but through its public address. This is how
  an internet gateway works in EC2, and how Neutron's router namespaces do it;
* per subnet whose route table sends traffic to a NAT gateway or a network
  interface (an instance's ENI: a NAT instance, an appliance with source/dest
  check off), a *router port*: a second veth pair from the subnet's namespace to
  the VPC's bridge, whose namespace end has a MAC of its own per (host, subnet)
  (:func:`router_mac`) and no address. The namespace routes each such destination
  ``via`` the target's private address ``onlink`` out of the router port, with a
  permanent neighbour entry for the target's MAC (so it never ARPs), and forwards
  only from its subnet to outside the VPC. A target that cannot carry traffic (a
  NAT gateway deleted, an instance stopped) is a ``blackhole`` route, as EC2 shows it;
* per NAT gateway placed on this host (its ``host``), a namespace of its own: its
  network interface on the VPC's bridge (the ENI's MAC and private address, the
  VPC's block on-link) and an uplink to the public bridge holding its elastic IP.
  It translates the VPC's connections to the elastic IP (SNAT out, conntrack back),
  routes the destinations its own subnet's table sends to the internet gateway via
  the public router, and lets nothing in that it did not send out.

Why a router port, and why NAT gateways are centralised: every host answers for
every subnet's gateway MAC and IP (a distributed gateway), so a frame *routed* by a
gateway namespace carries the gateway's MAC, which the edge table keeps off VXLAN
(another host's bridge would learn it from the tunnel and steal every local
gateway). Neutron's DVR answers with a per-host router MAC rewritten into such
frames and static FDB entries (l2pop); here the namespace simply owns a second port
with a per-host MAC for routed traffic, and never ARPs from it. Frames to a NAT
gateway or an instance then cross VXLAN like any instance's frames. The way back
needs no router: the target (the NAT namespace, the NAT instance) has the VPC's
block on-link and answers the instance directly over the VPC's segment, and the
instance's security groups see a reply of a connection it made. So a NAT gateway is
one namespace on one host (placed by the API, as EC2 places it in one zone), and
an instance on any host reaches it; no host but the NAT's needs a public network.

Names are short hashes so they cannot collide with the host's own devices and fit
Linux's 15 characters: ``ocsb…`` bridge, ``ocsx…`` VXLAN, ``ocst…`` tap, ``ocsg…``/
``ocsn…`` the veth ends, ``ocsu…``/``ocsv…`` the uplink's ends (host/namespace), ``ocsr…``/``ocsq…`` the router
port's, the same letters keyed by a NAT gateway's id for its namespace, and namespaces ``ocs-<host hash>-<subnet hash>`` (namespaces
are machine-wide: the host hash keeps two "hosts" on one machine apart).

Everything is sorted, so the same input always renders the same plan
(:func:`describe` is what the golden files hold). Bad input raises ``ValueError``.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network

from ocs.network import dhcp_options, nft

PREFIX = "ocs"
METADATA_ADDRESS = "169.254.169.254"
EDGE_TABLE = "ocs_edge"
META_TABLE = "ocs_meta"
VXLAN_OVERHEAD = 50


@dataclass(frozen=True)
class PlanSettings:
    """How this host builds its data plane (from configuration, at the process edge).

    ``state_dir`` holds dnsmasq's files; ``metadata_port`` is where the metadata
    listener binds inside each subnet namespace; ``mtu`` is the underlay's MTU
    (instances get it minus the VXLAN overhead). ``netns_scope`` goes into the
    namespace names with the host name, so that several "hosts" of the same names
    can share one machine (tests, demos; namespaces are machine-wide). ``firewall``
    False leaves the security-group ruleset out of the plan (its costliest part):
    for bookkeeping drivers, which enforce nothing.

    The public network: ``public_gateway`` is its router as ``address/prefixlen``
    ("" : the host has no public network, and public addresses stay bookkeeping);
    ``public_bridge`` the bridge uplinks plug into (``public_interface``, if set, is
    enslaved to it: the NIC on the public network); ``public_gateway_on_host`` has the
    host itself hold the router's address on the bridge (one machine: the host reaches
    public addresses and is their way out).
    """

    state_dir: str = "/var/lib/ocs/network"
    lease_time: int = 3600
    metadata_port: int = 8775
    vxlan_port: int = 4789
    mtu: int = 1500
    dns_domain: str = "ocs.internal"
    netns_scope: str = ""
    firewall: bool = True
    public_bridge: str = "ocs-public"
    public_gateway: str = ""
    public_interface: str = ""
    public_gateway_on_host: bool = False


@dataclass(frozen=True)
class HopRoute:
    """A route to a NAT gateway or a network interface, resolved to the next hop: the
    target's private address ``via`` and its ``mac`` (both empty: the target cannot
    carry traffic, a blackhole)."""

    destination: str
    via: str = ""
    mac: str = ""


@dataclass(frozen=True)
class SubnetState:
    """A subnet; ``internet_routes`` are the destinations its route table sends to an
    internet gateway attached to its VPC (empty: no way to the public network);
    ``vpc_cidr_block`` its VPC's block (the "local" route: never sent to the gateway);
    ``hop_routes`` its table's routes to NAT gateways and network interfaces."""

    id: str
    vpc_id: str
    cidr_block: str
    internet_routes: tuple[str, ...] = ()
    vpc_cidr_block: str = ""
    hop_routes: tuple[HopRoute, ...] = ()
    # The VPC's DHCP options set ((key, values) pairs); None: the cloud's own (DNS at the
    # gateway, the cloud's domain), as for the set EC2 makes for every account.
    dhcp_options: tuple[tuple[str, tuple[str, ...]], ...] | None = None


@dataclass(frozen=True)
class NatGatewayState:
    """A public NAT gateway placed on this host: its network interface (``ip`` in
    ``cidr_block``, its subnet's, with ``mac``), its elastic IP ``public_ip``, and the
    destinations its subnet's table sends to the internet gateway."""

    id: str
    vpc_id: str
    subnet_id: str
    cidr_block: str
    vpc_cidr_block: str
    ip: str
    mac: str
    public_ip: str
    internet_routes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortState:
    """One instance interface placed on this host: its primary private address ``ip``,
    its ``secondary_ips``, and ``public_ips``, (public, private) pairs mapping a public
    address to one of its private ones."""

    interface_id: str
    instance_id: str
    mac: str
    ip: str
    subnet_id: str
    group_ids: tuple[str, ...] = ()
    hostname: str = ""
    device_index: int = 0
    secondary_ips: tuple[str, ...] = ()
    public_ips: tuple[tuple[str, str], ...] = ()
    source_dest_check: bool = True


@dataclass(frozen=True)
class DesiredState:
    """What the database says ``host`` must carry.

    ``rules`` are the rules of every group a port belongs to; ``group_members``
    the addresses of every group a rule references (resolved to CIDRs);
    ``peers`` maps a VPC id to the tunnel addresses of the other hosts carrying it.
    """

    host: str
    subnets: tuple[SubnetState, ...] = ()
    ports: tuple[PortState, ...] = ()
    rules: tuple[nft.Rule, ...] = ()
    group_members: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    tunnel_ip: str | None = None
    peers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    nat_gateways: tuple[NatGatewayState, ...] = ()
    ordered: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)
    """Ports (by interface id) filtered by Compute Engine firewalls instead of their
    groups: (ingress, egress) statements from :mod:`ocs.network.gce_firewall`."""


@dataclass(frozen=True)
class BridgePlan:
    vpc_id: str
    bridge: str
    vxlan: str | None
    vni: int
    zone: int
    peers: tuple[str, ...] = ()


@dataclass(frozen=True)
class SubnetPlan:
    """One subnet's namespace, gateway and dnsmasq. ``hosts`` are dnsmasq's
    ``dhcp-hostsfile`` lines (re-read on SIGHUP); ``dnsmasq_conf`` its config
    (a change restarts it)."""

    subnet_id: str
    vpc_id: str
    bridge: str
    netns: str
    veth_host: str
    veth_ns: str
    gateway_ip: str
    prefixlen: int
    gateway_mac: str
    conf_path: str
    hosts_path: str
    pid_path: str
    dnsmasq_conf: str
    hosts: str
    nat_script: str
    uplink_host: str = ""
    uplink_ns: str = ""
    public_ips: tuple[str, ...] = ()
    public_routes: tuple[str, ...] = ()
    router_host: str = ""
    router_ns: str = ""
    router_mac: str = ""
    hop_routes: tuple[HopRoute, ...] = ()


@dataclass(frozen=True)
class NatPlan:
    """A NAT gateway's namespace: its interface ``veth_ns`` (``veth_host`` on the VPC's
    bridge) with ``mac`` and ``ip``/``prefixlen``, the VPC's block on-link, and an
    uplink (when the host has a public network) holding ``public_ip``, routing
    ``public_routes`` via the public router; ``nat_script`` its ruleset."""

    nat_id: str
    vpc_id: str
    bridge: str
    netns: str
    veth_host: str
    veth_ns: str
    mac: str
    ip: str
    prefixlen: int
    vpc_cidr_block: str
    public_ip: str
    nat_script: str
    state_path: str
    uplink_host: str = ""
    uplink_ns: str = ""
    public_routes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortPlan:
    interface_id: str
    instance_id: str
    subnet_id: str
    bridge: str
    tap: str
    mac: str
    ip: str
    mtu: int
    device_index: int = 0


@dataclass(frozen=True)
class PublicPlan:
    """The host's public network: a bridge (with the NIC ``interface`` on it, if any),
    its router ``gateway_ip``/``prefixlen``, held by the host itself when ``on_host``."""

    bridge: str
    gateway_ip: str
    prefixlen: int
    interface: str = ""
    on_host: bool = False


@dataclass(frozen=True)
class HostPlan:
    host: str
    tunnel_ip: str | None
    vxlan_port: int
    bridges: tuple[BridgePlan, ...]
    subnets: tuple[SubnetPlan, ...]
    ports: tuple[PortPlan, ...]
    firewall: str
    netns_prefix: str
    state_dir: str
    public: PublicPlan | None = None
    nat_gateways: tuple[NatPlan, ...] = ()

    def port(self, interface_id: str) -> PortPlan | None:
        return next((p for p in self.ports if p.interface_id == interface_id), None)


# --- names -------------------------------------------------------------------------------


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def device_name(kind: str, key: str) -> str:
    """``ocs`` + one letter of kind + 11 hex digits of the key's hash: 15 characters."""
    if len(kind) != 1:
        raise ValueError(f"a device kind is one letter, not {kind!r}")
    return f"{PREFIX}{kind}{_digest(key)[:11]}"


def bridge_name(vpc_id: str) -> str:
    return device_name("b", vpc_id)


def tap_name(interface_id: str) -> str:
    """The tap the hypervisor makes for an interface (libvirt's ``<target dev=…/>``)."""
    return device_name("t", interface_id)


def uplink_ns_name(subnet_id: str) -> str:
    """The namespace end of a subnet's uplink (``ocsv…``)."""
    return device_name("v", subnet_id)


def router_mac(host: str, subnet_id: str, scope: str = "") -> str:
    """The MAC of a subnet's router port on one host: locally administered, unicast,
    different on every host (frames routed to a NAT gateway or an interface cross VXLAN
    with it)."""
    raw = _digest(f"rt:{scope}/{host}/{subnet_id}")[:10]
    return "06:" + ":".join(raw[i : i + 2] for i in range(0, 10, 2))


def port_mtu(settings: PlanSettings, tunnel_ip: str | None) -> int:
    """The MTU of every port on a host: the underlay's, less VXLAN's overhead with a tunnel."""
    return settings.mtu - VXLAN_OVERHEAD if tunnel_ip else settings.mtu


def netns_prefix(host: str, scope: str = "") -> str:
    return f"{PREFIX}-{_digest(f'host:{scope}/{host}')[:6]}-"


def netns_name(host: str, subnet_id: str, scope: str = "") -> str:
    return netns_prefix(host, scope) + _digest(subnet_id)[:10]


def vni_of(vpc_id: str) -> int:
    """The VPC's VXLAN network identifier: 24 bits of its id's hash (never 0)."""
    return int(_digest("vni:" + vpc_id)[:6], 16) or 1


def gateway_mac(subnet_id: str) -> str:
    """A locally administered unicast MAC, the same on every host for one subnet."""
    raw = _digest("gw:" + subnet_id)[:10]
    return "02:" + ":".join(raw[i : i + 2] for i in range(0, 10, 2))


def _zones(vpc_ids: list[str]) -> dict[str, int]:
    """Conntrack zone per VPC from its hash (probing past collisions, in id order)."""
    taken: dict[int, str] = {}
    out: dict[str, int] = {}
    for vpc_id in sorted(vpc_ids):
        zone = 1 + int(_digest("zone:" + vpc_id)[:8], 16) % 65535
        while zone in taken:
            zone = zone % 65535 + 1
        taken[zone] = vpc_id
        out[vpc_id] = zone
    return out


# --- planning --------------------------------------------------------------------------


def plan_host(state: DesiredState, settings: PlanSettings) -> HostPlan:
    """The configuration ``state.host`` must have (see the module's docstring)."""
    subnets = {s.id: s for s in state.subnets}
    for port in state.ports:
        if port.subnet_id not in subnets:
            raise ValueError(f"port {port.interface_id} is in unknown subnet {port.subnet_id}")
    used_subnets = sorted({p.subnet_id for p in state.ports})
    vpc_ids = sorted({subnets[s].vpc_id for s in used_subnets} | {n.vpc_id for n in state.nat_gateways})
    mtu = port_mtu(settings, state.tunnel_ip)
    bridges = _bridges(state, vpc_ids)
    _check_vnis(bridges)
    public = public_plan(settings)
    subnet_plans = tuple(_subnet(state, subnets[s], settings, mtu, public) for s in used_subnets)
    nats = tuple(
        _nat_gateway(state, n, settings, public) for n in sorted(state.nat_gateways, key=lambda n: n.id)
    )
    ports = tuple(
        PortPlan(
            interface_id=p.interface_id,
            instance_id=p.instance_id,
            subnet_id=p.subnet_id,
            bridge=bridge_name(subnets[p.subnet_id].vpc_id),
            tap=tap_name(p.interface_id),
            mac=p.mac.lower(),
            ip=p.ip,
            mtu=mtu,
            device_index=p.device_index,
        )
        for p in sorted(state.ports, key=lambda p: p.interface_id)
    )
    return HostPlan(
        host=state.host,
        tunnel_ip=state.tunnel_ip,
        vxlan_port=settings.vxlan_port,
        bridges=bridges,
        subnets=subnet_plans,
        ports=ports,
        firewall=firewall_script(state, bridges, subnet_plans) if settings.firewall else "",
        netns_prefix=netns_prefix(state.host, settings.netns_scope),
        state_dir=settings.state_dir,
        public=public
        if any(s.uplink_ns for s in subnet_plans)
        or any(n.uplink_ns for n in nats)
        or (public and public.on_host)
        else None,
        nat_gateways=nats,
    )


def public_plan(settings: PlanSettings) -> PublicPlan | None:
    """The public network from the settings (None: the host has none)."""
    if not settings.public_gateway:
        return None
    try:
        gateway = ipaddress.IPv4Interface(settings.public_gateway)
    except ValueError:
        raise ValueError(
            f"public gateway {settings.public_gateway!r} is not an IPv4 address/prefixlen"
        ) from None
    if not settings.public_bridge or len(settings.public_bridge) > 15:
        raise ValueError(f"public bridge name {settings.public_bridge!r} is not a Linux device name")
    return PublicPlan(
        bridge=settings.public_bridge,
        gateway_ip=str(gateway.ip),
        prefixlen=gateway.network.prefixlen,
        interface=settings.public_interface,
        on_host=settings.public_gateway_on_host,
    )


def _bridges(state: DesiredState, vpc_ids: list[str]) -> tuple[BridgePlan, ...]:
    zones = _zones(vpc_ids)
    out = []
    for vpc_id in vpc_ids:
        peers = sorted(
            {str(ipaddress.ip_address(p)) for p in state.peers.get(vpc_id, ())} - {state.tunnel_ip or ""}
        )
        out.append(
            BridgePlan(
                vpc_id=vpc_id,
                bridge=bridge_name(vpc_id),
                vxlan=device_name("x", vpc_id) if state.tunnel_ip else None,
                vni=vni_of(vpc_id),
                zone=zones[vpc_id],
                peers=tuple(peers) if state.tunnel_ip else (),
            )
        )
    return tuple(out)


def _check_vnis(bridges: tuple[BridgePlan, ...]) -> None:
    seen: dict[int, str] = {}
    for b in bridges:
        if b.vni in seen:
            raise ValueError(f"VPCs {seen[b.vni]} and {b.vpc_id} hash to the same VNI {b.vni}")
        seen[b.vni] = b.vpc_id


def _subnet(
    state: DesiredState, subnet: SubnetState, settings: PlanSettings, mtu: int, public: PublicPlan | None
) -> SubnetPlan:
    net = IPv4Network(subnet.cidr_block)
    if net.prefixlen > 28:
        raise ValueError(f"subnet {subnet.id} {subnet.cidr_block} is smaller than a /28")
    gateway = str(net.network_address + 1)
    base = f"{settings.state_dir}/{subnet.id}"
    ns_dev = device_name("n", subnet.id)
    hosts = []
    for p in sorted(state.ports, key=lambda p: p.interface_id):
        if p.subnet_id != subnet.id:
            continue
        if ipaddress.ip_address(p.ip) not in net:
            raise ValueError(f"port {p.interface_id} address {p.ip} is outside {subnet.cidr_block}")
        name = p.hostname or "ip-" + p.ip.replace(".", "-")
        hosts.append(f"{p.mac.lower()},{p.ip},{name},{settings.lease_time}")
    conf = "\n".join(
        [
            f"# OCS dnsmasq for {subnet.id} ({subnet.cidr_block}) on {state.host}",
            f"interface={ns_dev}",
            "bind-interfaces",
            "except-interface=lo",
            "no-resolv",
            "no-hosts",
            "no-ping",
            "leasefile-ro",
            "dhcp-authoritative",
            f"domain={settings.dns_domain}",
            f"local=/{settings.dns_domain}/",
            f"pid-file={base}/dnsmasq.pid",
            f"dhcp-hostsfile={base}/hosts",
            f"dhcp-range=set:subnet,{net.network_address},static,{net.netmask},{settings.lease_time}",
            f"dhcp-option=tag:subnet,option:router,{gateway}",
            *_dhcp_options(subnet, gateway, settings.dns_domain),
            f"dhcp-option=tag:subnet,option:mtu,{mtu}",
            *_vpc_route(subnet, net, gateway),
            "",
        ]
    )
    uplink = bool(public and subnet.internet_routes)
    mapped: list[tuple[str, str]] = []  # (public, private), of this subnet's ports here
    if uplink:
        for p in state.ports:
            if p.subnet_id == subnet.id:
                owned = {p.ip, *p.secondary_ips}
                mapped += [(pub, priv) for pub, priv in p.public_ips if priv in owned]
    mapped.sort(key=lambda m: ipaddress.ip_address(m[0]))
    uplink_ns = uplink_ns_name(subnet.id) if uplink else ""
    local = tuple(b for b in (subnet.vpc_cidr_block or subnet.cidr_block,) if b)
    hops = tuple(
        sorted(
            (HopRoute(h.destination, h.via, h.mac.lower()) for h in subnet.hop_routes),
            key=lambda h: ipaddress.ip_network(h.destination),
        )
    )
    for hop in hops:
        ipaddress.ip_network(hop.destination)
        if bool(hop.via) != bool(hop.mac):
            raise ValueError(f"route {hop.destination} of {subnet.id} names half a next hop")
    router_ns = device_name("q", subnet.id) if hops else ""
    nat = nat_script(ns_dev, uplink_ns, mapped, settings.metadata_port, local, router_ns)
    return SubnetPlan(
        subnet_id=subnet.id,
        vpc_id=subnet.vpc_id,
        bridge=bridge_name(subnet.vpc_id),
        netns=netns_name(state.host, subnet.id, settings.netns_scope),
        veth_host=device_name("g", subnet.id),
        veth_ns=ns_dev,
        gateway_ip=gateway,
        prefixlen=net.prefixlen,
        gateway_mac=gateway_mac(subnet.id),
        conf_path=f"{base}/dnsmasq.conf",
        hosts_path=f"{base}/hosts",
        pid_path=f"{base}/dnsmasq.pid",
        dnsmasq_conf=conf,
        hosts="".join(line + "\n" for line in hosts),
        nat_script=nat,
        uplink_host=device_name("u", subnet.id) if uplink else "",
        uplink_ns=uplink_ns,
        public_ips=tuple(pub for pub, _ in mapped),
        public_routes=tuple(sorted(subnet.internet_routes, key=ipaddress.ip_network)) if uplink else (),
        router_host=device_name("r", subnet.id) if hops else "",
        router_ns=router_ns,
        router_mac=router_mac(state.host, subnet.id, settings.netns_scope) if hops else "",
        hop_routes=hops,
    )


def _nat_gateway(
    state: DesiredState, nat: NatGatewayState, settings: PlanSettings, public: PublicPlan | None
) -> NatPlan:
    net = IPv4Network(nat.cidr_block)
    if ipaddress.ip_address(nat.ip) not in net:
        raise ValueError(f"NAT gateway {nat.id} address {nat.ip} is outside {nat.cidr_block}")
    vpc = nat.vpc_cidr_block or nat.cidr_block
    ipaddress.ip_address(nat.public_ip)
    uplink = public is not None
    veth_ns = device_name("n", nat.id)
    uplink_ns = uplink_ns_name(nat.id) if uplink else ""
    return NatPlan(
        nat_id=nat.id,
        vpc_id=nat.vpc_id,
        bridge=bridge_name(nat.vpc_id),
        netns=netns_name(state.host, nat.id, settings.netns_scope),
        veth_host=device_name("g", nat.id),
        veth_ns=veth_ns,
        mac=nat.mac.lower(),
        ip=nat.ip,
        prefixlen=net.prefixlen,
        vpc_cidr_block=vpc,
        public_ip=nat.public_ip,
        nat_script=nat_gateway_script(veth_ns, uplink_ns, nat.public_ip, vpc),
        state_path=f"{settings.state_dir}/{nat.id}",
        uplink_host=device_name("u", nat.id) if uplink else "",
        uplink_ns=uplink_ns,
        public_routes=tuple(sorted(nat.internet_routes, key=ipaddress.ip_network)) if uplink else (),
    )


def _dhcp_options(subnet: SubnetState, gateway: str, dns_domain: str) -> list[str]:
    """DNS servers, domain name, NTP and NetBIOS servers of the VPC's DHCP options set
    (AmazonProvidedDNS is the gateway's resolver)."""
    if subnet.dhcp_options is None:
        return [
            f"dhcp-option=tag:subnet,option:dns-server,{gateway}",
            f"dhcp-option=tag:subnet,option:domain-name,{dns_domain}",
        ]
    return [f"dhcp-option=tag:subnet,{o}" for o in dhcp_options.dnsmasq_options(subnet.dhcp_options, gateway)]


def _vpc_route(subnet: SubnetState, net: IPv4Network, gateway: str) -> list[str]:
    """The VPC's "local" route, as DHCP's classless static routes (option 121): the
    whole VPC block on-link (next hop 0.0.0.0), then the default route via the
    gateway (a client taking option 121 ignores option 3, RFC 3442). Every subnet of a
    VPC shares its bridge and VXLAN segment, so an instance reaches an instance of
    another subnet directly, on any host, with its groups applied as for its own
    subnet. Nothing when the subnet is the whole VPC."""
    if not subnet.vpc_cidr_block:
        return []
    vpc = IPv4Network(subnet.vpc_cidr_block)
    if vpc == net or not net.subnet_of(vpc):
        return []
    return [f"dhcp-option=tag:subnet,option:classless-static-route,{vpc},0.0.0.0,0.0.0.0/0,{gateway}"]


def nat_script(
    ns_dev: str,
    uplink: str,
    mapped: list[tuple[str, str]],
    metadata_port: int,
    local: tuple[str, ...] = (),
    router: str = "",
) -> str:
    """The subnet namespace's table: the metadata redirect and, with an ``uplink``, the
    one-to-one NAT of ``mapped`` (public, private) pairs and a forward filter that lets
    only those through, and never to link-local or ``local`` (the VPC's own) addresses:
    the VPC's local route beats any route to the gateway (see the module). Answers
    to the instances' own connections come back (``established``; their replies are
    de-SNATed, which is no ``dnat`` status). With a
    ``router`` port, the subnet's traffic to outside the VPC may leave through it (to a
    NAT gateway or an interface; their answers come back to the instances directly)."""
    never = ", ".join(["169.254.0.0/16", *local])
    lines = [
        f"add table ip {META_TABLE}",
        f"delete table ip {META_TABLE}",
        f"table ip {META_TABLE} {{",
    ]
    if uplink:
        lines += [
            _map("to_private", [f"{pub} : {priv}" for pub, priv in mapped]),
            _map("to_public", [f"{priv} : {pub}" for pub, priv in sorted(mapped, key=_by_private)]),
            _set("exposed", "ipv4_addr", sorted({priv for _, priv in mapped}, key=ipaddress.ip_address)),
        ]
    lines += [
        "\tchain prerouting {",
        "\t\ttype nat hook prerouting priority dstnat; policy accept;",
        f'\t\tiifname "{ns_dev}" ip daddr {METADATA_ADDRESS} tcp dport 80 redirect to :{metadata_port}',
    ]
    if uplink:
        lines += [
            f'\t\tiifname "{uplink}" dnat to ip daddr map @to_private',
            "\t}",
            "\tchain postrouting {",
            "\t\ttype nat hook postrouting priority srcnat; policy accept;",
            f'\t\toifname "{uplink}" snat to ip saddr map @to_public',
        ]
    if uplink or router:
        lines += [
            "\t}",
            "\tchain forward {",
            "\t\ttype filter hook forward priority filter; policy drop;",
        ]
    if uplink:
        lines += [
            f'\t\tiifname "{ns_dev}" oifname "{uplink}" ip saddr @exposed ip daddr != {{ {never} }} accept',
            f'\t\tiifname "{uplink}" oifname "{ns_dev}" ct status dnat accept',
            f'\t\tiifname "{uplink}" oifname "{ns_dev}" ct state established,related accept',
        ]
    if router:
        lines.append(f'\t\tiifname "{ns_dev}" oifname "{router}" ip daddr != {{ {never} }} accept')
    if uplink:
        lines += [
            "\t}",
            "\tchain input {",
            "\t\ttype filter hook input priority filter; policy accept;",
            f'\t\tiifname "{uplink}" ct state established,related accept',
            f'\t\tiifname "{uplink}" drop',
        ]
    lines += ["\t}", "}", ""]
    return "\n".join(lines)


def nat_gateway_script(eni: str, uplink: str, public_ip: str, vpc_block: str) -> str:
    """A NAT gateway namespace's table: connections from the VPC out of the ``uplink``
    with the elastic IP as their source, their answers back, nothing else in (no
    uplink: nothing forwarded at all)."""
    lines = [
        f"add table ip {META_TABLE}",
        f"delete table ip {META_TABLE}",
        f"table ip {META_TABLE} {{",
    ]
    if uplink:
        lines += [
            "\tchain postrouting {",
            "\t\ttype nat hook postrouting priority srcnat; policy accept;",
            f'\t\toifname "{uplink}" snat to {public_ip}',
            "\t}",
        ]
    lines += [
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy drop;",
    ]
    if uplink:
        lines += [
            f'\t\tiifname "{eni}" oifname "{uplink}" ip saddr {vpc_block}'
            f" ip daddr != {{ 169.254.0.0/16, {vpc_block} }} accept",
            f'\t\tiifname "{uplink}" oifname "{eni}" ct state established,related accept',
        ]
    lines += [
        "\t}",
        "\tchain input {",
        "\t\ttype filter hook input priority filter; policy accept;",
    ]
    if uplink:
        lines += [
            f'\t\tiifname "{uplink}" ct state established,related accept',
            f'\t\tiifname "{uplink}" drop',
        ]
    lines += ["\t}", "}", ""]
    return "\n".join(lines)


def _by_private(m: tuple[str, str]) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(m[1])


def _map(name: str, elements: list[str]) -> str:
    body = f" elements = {{ {', '.join(elements)} }};" if elements else ""
    return f"\tmap {name} {{ type ipv4_addr : ipv4_addr;{body} }}"


def firewall_script(
    state: DesiredState, bridges: tuple[BridgePlan, ...], subnets: tuple[SubnetPlan, ...]
) -> str:
    """One ``nft -f`` transaction: the security groups of every port, and the edge table."""
    subnet_of = {s.subnet_id: s for s in subnets}
    ports = tuple(
        nft.Port(tap_name(p.interface_id), p.mac, (p.ip, *p.secondary_ips), p.group_ids, p.source_dest_check)
        for p in sorted(state.ports, key=lambda p: p.interface_id)
    )
    port_groups = {g for p in ports for g in p.group_ids}
    fw = nft.Firewall(
        ports=ports,
        rules=tuple(r for r in state.rules if r.group_id in port_groups),
        group_members=dict(state.group_members),
        zones={b.bridge: b.zone for b in bridges},
        always_allowed=tuple(sorted({*nft.ALWAYS_ALLOWED, *(s.gateway_ip for s in subnet_of.values())})),
        ordered={tap_name(i): rules for i, rules in state.ordered.items()},
    )
    return nft.replace_script(fw) + edge_script(bridges, subnets, tuple(p.ifname for p in ports))


def edge_script(
    bridges: tuple[BridgePlan, ...], subnets: tuple[SubnetPlan, ...], taps: tuple[str, ...] = ()
) -> str:
    """The bridge table that fails closed on taps OCS did not set up (an ``ocst…`` device
    the ruleset does not name would otherwise be unfiltered) and keeps gateways and DHCP
    off the VXLAN devices."""
    lines = [
        f"add table bridge {EDGE_TABLE}",
        f"delete table bridge {EDGE_TABLE}",
        f"table bridge {EDGE_TABLE} {{",
        _set("taps", "ifname", [f'"{t}"' for t in sorted(taps)]),
    ]
    tunnels = sorted(b.vxlan for b in bridges if b.vxlan)
    tunnel_rules: list[str] = []
    if tunnels and subnets:
        lines += [
            _set("tunnels", "ifname", [f'"{t}"' for t in tunnels]),
            _set("gateway_macs", "ether_addr", sorted({s.gateway_mac for s in subnets})),
            _set(
                "gateway_ips", "ipv4_addr", sorted({s.gateway_ip for s in subnets}, key=ipaddress.ip_address)
            ),
        ]
        tunnel_rules = [
            "ether saddr @gateway_macs drop",
            "ether daddr @gateway_macs drop",
            "arp daddr ip @gateway_ips drop",
            "arp saddr ip @gateway_ips drop",
            "udp dport { 67, 68 } drop",
        ]
    for hook, key in (("prerouting", "iifname"), ("forward", "oifname"), ("output", "oifname")):
        lines += [
            f"\tchain {hook} {{",
            f"\t\ttype filter hook {hook} priority -10; policy accept;",
            f'\t\t{key} "{PREFIX}t*" {key} != @taps drop',
            *(f"\t\t{key} @tunnels {rule}" for rule in tunnel_rules),
            "\t}",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _set(name: str, kind: str, elements: list[str]) -> str:
    body = f" elements = {{ {', '.join(elements)} }};" if elements else ""
    return f"\tset {name} {{ type {kind};{body} }}"


# --- rendering for humans and golden files -------------------------------------------------


def describe(plan: HostPlan) -> str:
    """The whole plan as stable text."""
    out = [f"host {plan.host} tunnel {plan.tunnel_ip or '-'} vxlan-port {plan.vxlan_port}"]
    out.append(f"netns-prefix {plan.netns_prefix} state-dir {plan.state_dir}")
    if plan.public is not None:
        pub = plan.public
        out.append(
            f"public bridge {pub.bridge} gateway {pub.gateway_ip}/{pub.prefixlen}"
            f" interface {pub.interface or '-'} on-host {'yes' if pub.on_host else 'no'}"
        )
    for b in plan.bridges:
        out.append(
            f"bridge {b.bridge} vpc {b.vpc_id} zone {b.zone} vxlan {b.vxlan or '-'} vni {b.vni}"
            f" peers {','.join(b.peers) or '-'}"
        )
    for s in plan.subnets:
        out.append(
            f"subnet {s.subnet_id} vpc {s.vpc_id} bridge {s.bridge} netns {s.netns}"
            f" veth {s.veth_host}/{s.veth_ns} gateway {s.gateway_ip}/{s.prefixlen} mac {s.gateway_mac}"
        )
        out += [f"  conf| {line}" for line in s.dnsmasq_conf.splitlines()]
        out += [f"  hosts| {line}" for line in s.hosts.splitlines()]
        if s.uplink_ns:
            out.append(
                f"  uplink {s.uplink_host}/{s.uplink_ns} public {','.join(s.public_ips) or '-'}"
                f" routes {','.join(s.public_routes)}"
            )
        if s.router_ns:
            out.append(f"  router {s.router_host}/{s.router_ns} mac {s.router_mac}")
            out += [
                f"  hop {h.destination} " + (f"via {h.via} mac {h.mac}" if h.via else "blackhole")
                for h in s.hop_routes
            ]
        out += [f"  nat| {line}" for line in s.nat_script.splitlines()]
    for n in plan.nat_gateways:
        out.append(
            f"nat-gateway {n.nat_id} vpc {n.vpc_id} bridge {n.bridge} netns {n.netns}"
            f" veth {n.veth_host}/{n.veth_ns} ip {n.ip}/{n.prefixlen} mac {n.mac} vpc-block {n.vpc_cidr_block}"
        )
        out.append(
            f"  uplink {n.uplink_host or '-'}/{n.uplink_ns or '-'} public {n.public_ip}"
            f" routes {','.join(n.public_routes) or '-'} state {n.state_path}"
        )
        out += [f"  nat| {line}" for line in n.nat_script.splitlines()]
    for p in plan.ports:
        out.append(
            f"port {p.interface_id} instance {p.instance_id} subnet {p.subnet_id} bridge {p.bridge}"
            f" tap {p.tap} mac {p.mac} ip {p.ip} mtu {p.mtu}"
        )
    out += [f"  nft| {line}" for line in plan.firewall.splitlines()]
    return "\n".join(out) + "\n"
