"""The ``linux`` network driver: bridges, VXLAN, namespaces, dnsmasq and nftables.

It converges one host to a :class:`~ocs.network.plan.HostPlan` with ``ip``,
``bridge``, ``nft`` and ``dnsmasq``, observing before it acts, so that applying
the same plan again runs no changing command at all. ``netns`` names the namespace
that stands for the host (where bridges, VXLAN devices, taps and the security-group
ruleset live): ``None`` is the namespace of the process (production); tests pass a
namespace they made, so two "hosts" can share one machine.

What it owns, and so may remove: in the host namespace the devices named
``ocsb…``, ``ocsx…``, ``ocsg…``, ``ocsu…``, ``ocsr…`` (taps are the hypervisor's: only attached), the
nft tables ``ocs`` and ``ocs_edge``; namespaces starting with the plan's
``netns_prefix`` (subnets' and NAT gateways'); under ``state_dir`` one directory per subnet or NAT gateway, and the dnsmasq
whose PID file is there *and* whose command line names that directory's config
(a PID is never signalled on the file's word alone).

Rulesets are loaded only when their text changed: a digest of the last loaded
text is kept in ``state_dir`` (and the table must still exist), so a restart of
the service loads nothing twice while a rebooted host gets everything back.

Static routes in a namespace (to the public router, to NAT gateways and interfaces
through the router port, blackholes, a NAT gateway's VPC block) are one desired
table per namespace (:func:`_sync_routes`): every route not the kernel's that the
plan does not name goes. Next hops through a router port get permanent neighbour
entries, so the port never ARPs.
"""

from __future__ import annotations

import ctypes
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ocs.network import nft
from ocs.network.driver import ApplyResult, NetworkDriver, NetworkDriverError
from ocs.network.plan import (
    EDGE_TABLE,
    META_TABLE,
    BridgePlan,
    HostPlan,
    NatPlan,
    PublicPlan,
    SubnetPlan,
    uplink_ns_name,
)

LOG = logging.getLogger(__name__)

Runner = Callable[[Sequence[str], str | None], subprocess.CompletedProcess[str]]
OWNED_PREFIXES = ("ocsb", "ocsx", "ocsg", "ocsu", "ocsr")
#: The uplink's link-local pair (the namespace end holds public addresses as /32s too).
UPLINK_ADDRESS = "169.254.255.2/30"
CLONE_NEWNET = 0x40000000
COMMAND_TIMEOUT = 20.0


def run_command(argv: Sequence[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
    except FileNotFoundError as exc:
        return subprocess.CompletedProcess(list(argv), 127, "", str(exc))


class LinuxDriver(NetworkDriver):
    name = "linux"

    def __init__(
        self,
        netns: str | None = None,
        *,
        runner: Runner = run_command,
        dnsmasq: str = "dnsmasq",
    ) -> None:
        self.netns = netns
        self._run = runner
        self._dnsmasq = dnsmasq
        self._lock = threading.RLock()

    # --- commands -------------------------------------------------------------------------

    def _cmd(self, argv: Sequence[str], stdin: str | None = None, *, check: bool = True) -> str:
        result = self._run(argv, stdin)
        if check and result.returncode != 0:
            raise NetworkDriverError(f"{' '.join(argv)}: {result.stderr.strip() or result.returncode}")
        return result.stdout

    def _ip(self, *args: str, ns: str | None = None, check: bool = True) -> str:
        where = ns or self.netns
        return self._cmd(["ip", *(["-n", where] if where else []), *args], check=check)

    def _in(
        self, ns: str | None, argv: Sequence[str], stdin: str | None = None, *, check: bool = True
    ) -> str:
        prefix = ["ip", "netns", "exec", ns] if ns else []
        return self._cmd([*prefix, *argv], stdin, check=check)

    def _links(self, ns: str | None = None) -> dict[str, dict[str, Any]]:
        out = self._ip("-j", "-d", "addr", "show", ns=ns)
        return {link["ifname"]: link for link in json.loads(out or "[]")}

    def _namespaces(self) -> set[str]:
        out = self._cmd(["ip", "-j", "netns", "list"])
        return {n["name"] for n in json.loads(out or "[]")}

    # --- the contract -----------------------------------------------------------------------

    def apply(self, plan: HostPlan) -> ApplyResult:
        with self._lock:
            changes: list[str] = []
            self._host_settings()
            links = self._links()
            for bridge in plan.bridges:
                self._bridge(plan, bridge, links, changes)
            if plan.public is not None:
                self._public_bridge(plan.public, links, changes)
            namespaces = self._namespaces()
            for subnet in plan.subnets:
                self._subnet(subnet, links, namespaces, changes)
                self._uplink(plan.public, subnet, links, changes)
                self._router_port(subnet, links, changes)
                self._sync_routes(s_routes(plan.public, subnet), subnet.netns, subnet.subnet_id, changes)
            for nat in plan.nat_gateways:
                self._nat_gateway(plan.public, nat, links, namespaces, changes)
            self._attach_taps(plan, links, changes)
            self._load_firewall(plan, changes)
            self._remove_stale(plan, self._links(), changes)
            return ApplyResult(tuple(changes))

    def apply_firewall(self, plan: HostPlan) -> ApplyResult:
        with self._lock:
            changes: list[str] = []
            self._load_firewall(plan, changes)
            return ApplyResult(tuple(changes))

    def teardown(self) -> ApplyResult:
        with self._lock:
            changes: list[str] = []
            self._remove_stale(None, self._links(), changes)
            return ApplyResult(tuple(changes))

    def listen(self, plan: HostPlan, subnet_id: str, port: int) -> socket.socket | None:
        subnet = next((s for s in plan.subnets if s.subnet_id == subnet_id), None)
        if subnet is None:
            raise NetworkDriverError(f"subnet {subnet_id} has no namespace on {plan.host}")
        return socket_in_namespace(subnet.netns, port)

    # --- host -------------------------------------------------------------------------------

    def _host_settings(self) -> None:
        self._cmd(["modprobe", "br_netfilter"], check=False)
        for key, value in nft.REQUIRED_SYSCTLS.items():
            self._in(self.netns, ["sysctl", "-qw", f"{key}={value}"])

    def _bridge(
        self, plan: HostPlan, b: BridgePlan, links: dict[str, dict[str, Any]], changes: list[str]
    ) -> None:
        if b.bridge not in links:
            self._ip("link", "add", b.bridge, "type", "bridge")
            changes.append(f"bridge {b.bridge} added")
            links[b.bridge] = {"flags": []}
        _up(self, b.bridge, links[b.bridge], changes)
        if b.vxlan is None:
            return
        info = links.get(b.vxlan)
        data = (info or {}).get("linkinfo", {}).get("info_data", {})
        if info is not None and (
            data.get("id") != b.vni
            or data.get("local") != plan.tunnel_ip
            or data.get("port") != plan.vxlan_port
        ):
            self._ip("link", "del", b.vxlan)
            changes.append(f"vxlan {b.vxlan} removed (settings changed)")
            info = None
        if info is None:
            self._ip(
                "link", "add", b.vxlan, "type", "vxlan", "id", str(b.vni), "local", str(plan.tunnel_ip),
                "dstport", str(plan.vxlan_port),
            )  # fmt: skip
            changes.append(f"vxlan {b.vxlan} vni {b.vni} added")
            info = {"flags": []}
        if info.get("master") != b.bridge:
            self._ip("link", "set", b.vxlan, "master", b.bridge)
            changes.append(f"vxlan {b.vxlan} attached to {b.bridge}")
        _up(self, b.vxlan, info, changes)
        self._flood_list(b, changes)

    def _public_bridge(self, pub: PublicPlan, links: dict[str, dict[str, Any]], changes: list[str]) -> None:
        """The public network's bridge (made if missing, never removed: the operator may
        have made it, with the host's NIC on it), its NIC, the router's address if the
        host is the router."""
        if pub.bridge not in links:
            self._ip("link", "add", pub.bridge, "type", "bridge")
            changes.append(f"public bridge {pub.bridge} added")
            links[pub.bridge] = {"flags": []}
        _up(self, pub.bridge, links[pub.bridge], changes)
        if pub.interface:
            nic = links.get(pub.interface)
            if nic is None:
                raise NetworkDriverError(f"public interface {pub.interface} does not exist")
            if nic.get("master") != pub.bridge:
                self._ip("link", "set", pub.interface, "master", pub.bridge)
                changes.append(f"public interface {pub.interface} attached to {pub.bridge}")
            _up(self, pub.interface, nic, changes)
        if pub.on_host:
            have = {(a["local"], a["prefixlen"]) for a in links[pub.bridge].get("addr_info", [])}
            if (pub.gateway_ip, pub.prefixlen) not in have:
                self._ip("addr", "add", f"{pub.gateway_ip}/{pub.prefixlen}", "dev", pub.bridge)
                changes.append(f"public gateway {pub.gateway_ip}/{pub.prefixlen} on {pub.bridge}")
            self._in(self.netns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])

    def _uplink(
        self, pub: PublicPlan | None, s: SubnetPlan, links: dict[str, dict[str, Any]], changes: list[str]
    ) -> None:
        """The subnet namespace's way to the public network (see :mod:`ocs.network.plan`):
        a veth pair on the public bridge, the public addresses on the namespace end,
        routes to the internet gateway's destinations via the public router."""
        if pub is None or not s.uplink_ns:
            stale = uplink_ns_name(s.subnet_id)  # the name an uplink of this subnet has
            if self._links(s.netns).get(stale) is not None:
                self._ip("link", "del", stale, ns=s.netns, check=False)
                changes.append(f"uplink of {s.subnet_id} removed")
            return
        self._veth(s.netns, s.uplink_host, s.uplink_ns, pub.bridge, links, changes, "uplink")
        self._routing_sysctls(s.netns)
        want = {(ip, 32) for ip in s.public_ips} | {_pair(UPLINK_ADDRESS)}
        self._addresses(s.netns, s.uplink_ns, want, s.subnet_id, changes)

    def _veth(
        self,
        netns: str,
        host_end: str,
        ns_end: str,
        bridge: str,
        links: dict[str, dict[str, Any]],
        changes: list[str],
        what: str,
        mac: str = "",
    ) -> dict[str, Any]:
        """A veth pair from ``netns`` (``ns_end``, with ``mac`` if given) to ``bridge``,
        both ends up; the namespace end's link as ``ip -j addr`` shows it."""
        inner = self._links(netns)
        if ns_end not in inner or host_end not in links:
            self._ip("link", "del", host_end, check=False)
            self._ip("link", "del", ns_end, ns=netns, check=False)
            self._ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end, "netns", netns)
            changes.append(f"{what} {host_end}/{ns_end} added")
            links[host_end] = {"flags": []}
            inner = self._links(netns)
        outside = links[host_end]
        if outside.get("master") != bridge:
            self._ip("link", "set", host_end, "master", bridge)
            changes.append(f"{what} {host_end} attached to {bridge}")
        _up(self, host_end, outside, changes)
        info = inner[ns_end]
        if mac and info.get("address") != mac:
            self._ip("link", "set", ns_end, "address", mac, ns=netns)
            changes.append(f"{what} {ns_end} mac {mac}")
        _up(self, ns_end, info, changes, ns=netns)
        return dict(info)

    def _addresses(
        self, netns: str, dev: str, want: set[tuple[str, int]], label: str, changes: list[str]
    ) -> None:
        """Exactly the IPv4 addresses ``want`` on ``dev`` in ``netns``."""
        info = self._links(netns).get(dev, {})
        have = {(a["local"], a["prefixlen"]) for a in info.get("addr_info", []) if a.get("family") == "inet"}
        for ip, prefixlen in sorted(have - want):
            self._ip("addr", "del", f"{ip}/{prefixlen}", "dev", dev, ns=netns)
            changes.append(f"address {ip}/{prefixlen} removed from {label}")
        for ip, prefixlen in sorted(want - have):
            self._ip("addr", "add", f"{ip}/{prefixlen}", "dev", dev, ns=netns)
            if prefixlen == 32:
                changes.append(f"public address {ip} added to {label}")

    def _routing_sysctls(self, netns: str) -> None:
        """A namespace that routes: it forwards, and answers ARP only on the interface that
        holds the address asked for (``arp_ignore=1``). Linux otherwise answers on every
        interface: a subnet's router port (no address) would answer for the gateway with
        its own MAC, an uplink for private addresses on the public network."""
        self._in(netns, ["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.arp_ignore=1"])

    def _router_port(self, s: SubnetPlan, links: dict[str, dict[str, Any]], changes: list[str]) -> None:
        """The subnet namespace's port for routed traffic (see :mod:`ocs.network.plan`):
        its own MAC, no address, a permanent neighbour entry per next hop. Without hop
        routes it goes (its host end is an owned device the plan does not name)."""
        if not s.router_ns:
            return
        self._veth(s.netns, s.router_host, s.router_ns, s.bridge, links, changes, "router port", s.router_mac)
        self._routing_sysctls(s.netns)
        want = {h.via: h.mac for h in s.hop_routes if h.via}
        entries = json.loads(self._ip("-j", "neigh", "show", "dev", s.router_ns, ns=s.netns) or "[]")
        have = {e["dst"]: e.get("lladdr", "") for e in entries if "PERMANENT" in e.get("state", [])}
        for ip in sorted(set(have) - set(want)):
            self._ip("neigh", "del", ip, "dev", s.router_ns, ns=s.netns, check=False)
            changes.append(f"next hop {ip} removed from {s.subnet_id}")
        for ip, mac in sorted(want.items()):
            if have.get(ip) != mac:
                self._ip(
                    "neigh", "replace", ip, "lladdr", mac, "dev", s.router_ns, "nud", "permanent", ns=s.netns
                )
                changes.append(f"next hop {ip} is {mac} in {s.subnet_id}")

    def _nat_gateway(
        self,
        pub: PublicPlan | None,
        n: NatPlan,
        links: dict[str, dict[str, Any]],
        namespaces: set[str],
        changes: list[str],
    ) -> None:
        """A NAT gateway's namespace (see :mod:`ocs.network.plan`): its interface on the
        VPC's bridge, its uplink with the elastic IP, its routes and ruleset."""
        if n.netns not in namespaces:
            self._cmd(["ip", "netns", "add", n.netns])
            changes.append(f"netns {n.netns} added")
        inner = self._links(n.netns)
        _up(self, "lo", inner.get("lo", {}), changes, ns=n.netns)
        self._veth(n.netns, n.veth_host, n.veth_ns, n.bridge, links, changes, "NAT gateway port", n.mac)
        self._addresses(n.netns, n.veth_ns, {(n.ip, n.prefixlen)}, n.nat_id, changes)
        self._routing_sysctls(n.netns)
        routes: dict[str, tuple[str, ...]] = {_normal(n.vpc_cidr_block): ("dev", n.veth_ns)}
        if pub is not None and n.uplink_ns:
            self._veth(n.netns, n.uplink_host, n.uplink_ns, pub.bridge, links, changes, "uplink")
            want = {(n.public_ip, 32), _pair(UPLINK_ADDRESS)}
            self._addresses(n.netns, n.uplink_ns, want, n.nat_id, changes)
            routes.update({_normal(d): ("via", pub.gateway_ip, n.uplink_ns) for d in n.public_routes})
        self._sync_routes(routes, n.netns, n.nat_id, changes)
        self._load(n.netns, f"{n.state_path}/nat.sha256", n.nat_script, ("ip", META_TABLE), changes)

    def _sync_routes(
        self, wanted: dict[str, tuple[str, ...]], netns: str, label: str, changes: list[str]
    ) -> None:
        """Exactly the static routes ``wanted`` (destination → ``("via", gateway, dev)``,
        ``("dev", dev)`` or ``("blackhole",)``) in the namespace's main table; the
        kernel's own (connected) routes are left alone."""
        have: dict[str, tuple[str, ...]] = {}
        for r in json.loads(self._ip("-j", "route", "show", "table", "main", ns=netns) or "[]"):
            if r.get("protocol") == "kernel" or "dst" not in r:
                continue
            if r.get("type") == "blackhole":
                have[_normal(r["dst"])] = ("blackhole",)
            elif "gateway" in r:
                have[_normal(r["dst"])] = ("via", r["gateway"], r.get("dev", ""))
            else:
                have[_normal(r["dst"])] = ("dev", r.get("dev", ""))
        for dst in sorted(set(have) - set(wanted)):
            kind = ["blackhole"] if have[dst] == ("blackhole",) else []
            self._ip("route", "del", *kind, dst, ns=netns, check=False)
            changes.append(f"route {dst} removed from {label}")
        for dst, spec in sorted(wanted.items()):
            if have.get(dst) == spec:
                continue
            if spec[0] == "via":
                self._ip("route", "replace", dst, "via", spec[1], "dev", spec[2], "onlink", ns=netns)
                changes.append(f"route {dst} via {spec[1]} in {label}")
            elif spec[0] == "dev":
                self._ip("route", "replace", dst, "dev", spec[1], ns=netns)
                changes.append(f"route {dst} on-link in {label}")
            else:
                self._ip("route", "replace", "blackhole", dst, ns=netns)
                changes.append(f"route {dst} blackhole in {label}")

    def _flood_list(self, b: BridgePlan, changes: list[str]) -> None:
        assert b.vxlan is not None
        ns = ["-n", self.netns] if self.netns else []
        out = self._cmd(["bridge", *ns, "-j", "fdb", "show", "dev", b.vxlan])
        have = {e.get("dst") for e in json.loads(out or "[]") if e.get("mac") == "00:00:00:00:00:00"}
        for peer in sorted(set(b.peers) - have):
            self._cmd(["bridge", *ns, "fdb", "append", "00:00:00:00:00:00", "dev", b.vxlan, "dst", peer])
            changes.append(f"vxlan {b.vxlan} peer {peer} added")
        for peer in sorted(p for p in have - set(b.peers) if p):
            self._cmd(["bridge", *ns, "fdb", "del", "00:00:00:00:00:00", "dev", b.vxlan, "dst", peer])
            changes.append(f"vxlan {b.vxlan} peer {peer} removed")

    def _attach_taps(self, plan: HostPlan, links: dict[str, dict[str, Any]], changes: list[str]) -> None:
        """Taps the hypervisor made already go on the right bridge, up (a restart, a moved port).

        With a namespace of its own (``netns``), the driver first moves the plan's taps
        in from the process's namespace, where a hypervisor beside it made them
        unattached (it cannot reach bridges in another namespace). Only taps the plan
        names move; the move keeps the hypervisor's file descriptor working."""
        if self.netns:
            missing = {p.tap for p in plan.ports} - set(links)
            if missing:
                outside = json.loads(self._cmd(["ip", "-j", "link", "show"]) or "[]")
                for name in sorted({link.get("ifname", "") for link in outside} & missing):
                    self._cmd(["ip", "link", "set", name, "netns", self.netns])
                    changes.append(f"tap {name} moved into {self.netns}")
                links = self._links()
        for port in plan.ports:
            info = links.get(port.tap)
            if info is None:
                continue
            if info.get("master") != port.bridge:
                self._ip("link", "set", port.tap, "master", port.bridge)
                changes.append(f"tap {port.tap} attached to {port.bridge}")
            _up(self, port.tap, info, changes)

    # --- subnets ----------------------------------------------------------------------------

    def _subnet(
        self, s: SubnetPlan, links: dict[str, dict[str, Any]], namespaces: set[str], changes: list[str]
    ) -> None:
        if s.netns not in namespaces:
            self._cmd(["ip", "netns", "add", s.netns])
            changes.append(f"netns {s.netns} added")
        inner = self._links(s.netns)
        _up(self, "lo", inner.get("lo", {}), changes, ns=s.netns)
        if s.veth_ns not in inner or s.veth_host not in links:
            self._ip("link", "del", s.veth_host, check=False)
            self._ip("link", "del", s.veth_ns, ns=s.netns, check=False)
            self._ip("link", "add", s.veth_host, "type", "veth", "peer", "name", s.veth_ns, "netns", s.netns)
            changes.append(f"veth {s.veth_host}/{s.veth_ns} added")
            links[s.veth_host] = {"flags": []}
            inner = self._links(s.netns)
        host_end = links[s.veth_host]
        if host_end.get("master") != s.bridge:
            self._ip("link", "set", s.veth_host, "master", s.bridge)
            changes.append(f"veth {s.veth_host} attached to {s.bridge}")
        _up(self, s.veth_host, host_end, changes)
        self._gateway(s, inner[s.veth_ns], changes)
        self._load(
            s.netns, f"{Path(s.conf_path).parent}/nat.sha256", s.nat_script, ("ip", META_TABLE), changes
        )
        self._dnsmasq_running(s, changes)

    def _gateway(self, s: SubnetPlan, info: dict[str, Any], changes: list[str]) -> None:
        if info.get("address") != s.gateway_mac:
            self._ip("link", "set", s.veth_ns, "address", s.gateway_mac, ns=s.netns)
            changes.append(f"gateway {s.veth_ns} mac {s.gateway_mac}")
        have = {(a["local"], a["prefixlen"]) for a in info.get("addr_info", []) if a.get("family") == "inet"}
        if have != {(s.gateway_ip, s.prefixlen)}:
            self._ip("addr", "flush", "dev", s.veth_ns, "scope", "global", ns=s.netns)
            self._ip("addr", "add", f"{s.gateway_ip}/{s.prefixlen}", "dev", s.veth_ns, ns=s.netns)
            changes.append(f"gateway {s.gateway_ip}/{s.prefixlen} in {s.netns}")
        _up(self, s.veth_ns, info, changes, ns=s.netns)

    def _dnsmasq_running(self, s: SubnetPlan, changes: list[str]) -> None:
        directory = Path(s.conf_path).parent
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o755)
        conf_changed = _write(Path(s.conf_path), s.dnsmasq_conf)
        hosts_changed = _write(Path(s.hosts_path), s.hosts)
        pid = dnsmasq_pid(Path(s.pid_path), s.conf_path)
        if pid is not None and not conf_changed:
            if hosts_changed:
                os.kill(pid, signal.SIGHUP)
                changes.append(f"dnsmasq {s.subnet_id} hosts reloaded")
            return
        if pid is not None:
            _end(pid)
        self._in(s.netns, [self._dnsmasq, f"--conf-file={s.conf_path}"])
        changes.append(f"dnsmasq {s.subnet_id} started")
        deadline = time.monotonic() + 5
        while dnsmasq_pid(Path(s.pid_path), s.conf_path) is None:
            if time.monotonic() > deadline:
                raise NetworkDriverError(f"dnsmasq for {s.subnet_id} wrote no PID file")
            time.sleep(0.02)

    # --- rulesets ---------------------------------------------------------------------------

    def _load_firewall(self, plan: HostPlan, changes: list[str]) -> None:
        Path(plan.state_dir).mkdir(parents=True, exist_ok=True)
        digest_file = f"{plan.state_dir}/firewall{_ns_tag(self.netns)}.sha256"
        self._load(self.netns, digest_file, plan.firewall, ("bridge", nft.TABLE), changes)

    def _load(
        self, ns: str | None, digest_file: str, script: str, table: tuple[str, str], changes: list[str]
    ) -> None:
        digest = hashlib.sha256(script.encode()).hexdigest()
        path = Path(digest_file)
        loaded = path.read_text() if path.exists() else ""
        if loaded == digest and self._in(ns, ["nft", "list", "table", *table], check=False) != "":
            return
        self._in(ns, ["nft", "-f", "-"], script)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(digest)
        changes.append(f"nft {table[1]} loaded{' in ' + ns if ns else ''}")

    # --- removal ----------------------------------------------------------------------------

    def _remove_stale(
        self, plan: HostPlan | None, links: dict[str, dict[str, Any]], changes: list[str]
    ) -> None:
        wanted: set[str] = set()
        subnets: set[str] = set()
        if plan is not None:
            subnets = {s.subnet_id for s in plan.subnets}
            wanted = {s.netns for s in plan.subnets} | {s.veth_host for s in plan.subnets}
            wanted |= {b.bridge for b in plan.bridges} | {b.vxlan for b in plan.bridges if b.vxlan}
            wanted |= {s.uplink_host for s in plan.subnets if s.uplink_host}
            wanted |= {s.router_host for s in plan.subnets if s.router_host}
            for n in plan.nat_gateways:
                subnets.add(n.nat_id)
                wanted |= {n.netns, n.veth_host, *([n.uplink_host] if n.uplink_host else [])}
        state_dir = Path(plan.state_dir) if plan is not None else self._last_state_dir
        if state_dir is not None and state_dir.is_dir():
            for directory in sorted(state_dir.iterdir()):
                if directory.is_dir() and directory.name not in subnets:
                    pid = dnsmasq_pid(directory / "dnsmasq.pid", str(directory / "dnsmasq.conf"))
                    if pid is not None:
                        _end(pid)
                        changes.append(f"dnsmasq {directory.name} stopped")
                    shutil.rmtree(directory, ignore_errors=True)
        prefix = plan.netns_prefix if plan is not None else self._last_prefix
        for ns in sorted(self._namespaces()):
            if prefix and ns.startswith(prefix) and ns not in wanted:
                self._cmd(["ip", "netns", "delete", ns])
                changes.append(f"netns {ns} removed")
        for name in sorted(links):
            if name.startswith(OWNED_PREFIXES) and name not in wanted:
                self._ip("link", "del", name, check=False)
                changes.append(f"device {name} removed")
        if plan is None:
            script = (
                nft.remove_script() + f"add table bridge {EDGE_TABLE}\ndelete table bridge {EDGE_TABLE}\n"
            )
            self._in(self.netns, ["nft", "-f", "-"], script)
            if state_dir is not None:
                Path(f"{state_dir}/firewall{_ns_tag(self.netns)}.sha256").unlink(missing_ok=True)
        else:
            self._last_state_dir, self._last_prefix = state_dir, prefix

    _last_state_dir: Path | None = None
    _last_prefix: str = ""

    def remember(self, state_dir: str, netns_prefix: str) -> None:
        """Where a previous run kept its state, so :meth:`teardown` finds it without a plan."""
        self._last_state_dir, self._last_prefix = Path(state_dir), netns_prefix


# --- helpers ---------------------------------------------------------------------------------


def _up(
    driver: LinuxDriver, name: str, info: dict[str, Any], changes: list[str], *, ns: str | None = None
) -> None:
    if "UP" not in info.get("flags", []):
        driver._ip("link", "set", name, "up", ns=ns)
        if name != "lo":
            changes.append(f"{name} up")


def s_routes(pub: PublicPlan | None, s: SubnetPlan) -> dict[str, tuple[str, ...]]:
    """The static routes of a subnet's namespace: the internet gateway's destinations via
    the public router, the NAT gateways' and interfaces' via their next hop out of the
    router port, blackholes for targets that cannot carry traffic."""
    routes: dict[str, tuple[str, ...]] = {}
    if pub is not None and s.uplink_ns:
        routes.update({_normal(d): ("via", pub.gateway_ip, s.uplink_ns) for d in s.public_routes})
    for hop in s.hop_routes:
        routes[_normal(hop.destination)] = ("via", hop.via, s.router_ns) if hop.via else ("blackhole",)
    return routes


def _pair(cidr: str) -> tuple[str, int]:
    address, _, prefixlen = cidr.partition("/")
    return address, int(prefixlen)


def _normal(destination: str) -> str:
    """A route destination as ``ip -j route`` prints it (``default``) or as a network."""
    if destination == "default":
        return "0.0.0.0/0"
    return str(ipaddress.ip_network(destination, strict=False))


def _ns_tag(netns: str | None) -> str:
    return f"-{netns}" if netns else ""


def _write(path: Path, text: str) -> bool:
    """Write ``text`` unless the file holds it already; whether it changed."""
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o644)
    tmp.replace(path)
    return True


def dnsmasq_pid(pid_file: Path, conf_path: str) -> int | None:
    """The PID in ``pid_file`` if that process is alive and is the dnsmasq of ``conf_path``."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if f"--conf-file={conf_path}".encode() in cmdline else None


def _end(pid: int, timeout: float = 3.0) -> None:
    """End one dnsmasq we started (checked by the caller), by PID."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for its parent does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def socket_in_namespace(netns: str, port: int) -> socket.socket:
    """A TCP socket listening on ``port`` inside namespace ``netns``.

    A socket belongs to the namespace it was created in, so a short-lived thread
    enters the namespace (``setns`` changes only the calling thread), makes the
    socket and ends; the process's other threads never leave their namespace.
    """
    result: list[socket.socket | OSError] = []

    def make() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(f"/run/netns/{netns}", "rb") as f:
                if libc.setns(f.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {netns} failed")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("0.0.0.0", port))
            sock.listen(128)
            result.append(sock)
        except OSError as exc:  # handed to the caller's thread
            result.append(exc)

    thread = threading.Thread(target=make, name=f"netns-{netns}", daemon=True)
    thread.start()
    thread.join()
    if not result or isinstance(result[0], OSError):
        raise NetworkDriverError(f"cannot listen on port {port} in {netns}: {result[0] if result else '?'}")
    return result[0]
