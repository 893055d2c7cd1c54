"""Hosts made of namespaces for the network data plane's tests.

A :class:`DataPlaneLab` makes, per "host", a namespace ``ocst<tag><host>`` standing
for the machine, and a :class:`~ocs.network.service.NetworkHostEndpoint` with the
``linux`` driver pointed at it (its state in ``/run/ocs-test-<tag>/<host>``, a
path dnsmasq can read after dropping privileges). Hosts may be joined by an
"underlay" veth pair carrying VXLAN. Instances are namespaces whose veth's host end
is the tap the service named, on the bridge it named, as a hypervisor would plug
it; they ask for their address by DHCP with busybox ``udhcpc``.

Closing the lab tears every driver down (which ends the dnsmasq processes they
started, by PID), stops the metadata listeners and deletes every namespace the lab
made and its state directory.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from ocs.network.drivers.linux import LinuxDriver
from ocs.network.plan import PlanSettings
from ocs.network.rpcapi import PortBinding, SetupPort
from ocs.network.service import NetworkHostEndpoint, NetworkSettings
from tests.framework.netns import PREFIX, Namespace, run, wait_until

UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
bound|renew)
  ip addr flush dev "$interface" scope global
  ip addr add "$ip/$subnet" dev "$interface"
  if [ -n "$staticroutes" ]; then  # option 121 replaces option 3 (RFC 3442)
    set -- $staticroutes
    while [ $# -ge 2 ]; do
      if [ "$2" = 0.0.0.0 ]; then ip route replace "$1" dev "$interface"
      else ip route replace "$1" via "$2" dev "$interface"; fi
      shift 2
    done
  elif [ -n "$router" ]; then ip route replace default via "$router" dev "$interface"; fi
  printf '{"ip":"%s","subnet":"%s","router":"%s","dns":"%s","lease":"%s","mtu":"%s","domain":"%s"}' \\
    "$ip" "$subnet" "$router" "$dns" "$lease" "$mtu" "$domain" > "$UDHCPC_OUT"
  ;;
esac
exit 0
"""


def missing_dataplane_tools() -> str | None:
    for tool, package in (("dnsmasq", "dnsmasq-base"), ("busybox", "busybox")):
        if shutil.which(tool) is None:
            return f"the {tool!r} command is missing (apt-get install {package})"
    return None


@dataclass
class Host:
    name: str
    ns: Namespace
    endpoint: NetworkHostEndpoint
    driver: LinuxDriver
    state_dir: Path
    tunnel_ip: str | None = None


@dataclass
class Guest:
    """An instance: its namespace and where the service plugged it."""

    ns: Namespace
    binding: PortBinding
    lease: dict[str, str] = field(default_factory=dict)

    @property
    def ip(self) -> str:
        return self.binding.ip

    def connect(self, host: str, port: int, timeout: float = 0.7) -> bool:
        return self.ns.agent("connect", host, str(port), "--timeout", str(timeout)).returncode == 0

    def http(self, method: str, url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        """One HTTP request from inside the instance: (status, body); (0, error) when none came."""
        code = (
            "import json,sys,urllib.request,urllib.error\n"
            "m,u,h=sys.argv[1],sys.argv[2],json.loads(sys.argv[3])\n"
            "r=urllib.request.Request(u,method=m,headers=h)\n"
            "try:\n"
            "  x=urllib.request.urlopen(r,timeout=3);print(x.status);print(x.read().decode(),end='')\n"
            "except urllib.error.HTTPError as e:\n"
            "  print(e.code);print(e.read().decode(),end='')\n"
        )
        result = self.ns.exec("python3", "-c", code, method, url, json.dumps(headers or {}), check=False)
        if result.returncode != 0:
            return 0, result.stderr
        status, _, body = result.stdout.partition("\n")
        return int(status), body


class DataPlaneLab:
    """``configured_peers`` False: the hosts' settings name no other host's tunnel
    address; they find each other in the database (what each network service records)."""

    def __init__(self, sessions: sessionmaker[Session], *, configured_peers: bool = True):
        self.sessions = sessions
        self.configured_peers = configured_peers
        self.tag = PREFIX + secrets.token_hex(3)
        self.root = Path(f"/run/ocs-test-{self.tag}")
        self.root.mkdir(mode=0o755)
        self.root.chmod(0o755)
        self.script = self.root / "udhcpc.sh"
        self.script.write_text(UDHCPC_SCRIPT)
        self.script.chmod(0o755)
        self.hosts: dict[str, Host] = {}
        self.namespaces: list[Namespace] = []
        self.tunnel_ips: dict[str, str] = {}

    def _namespace(self, suffix: str) -> Namespace:
        ns = Namespace(self.tag + suffix)
        self.namespaces.append(ns)
        return ns

    def add_host(self, name: str, tunnel_ip: str | None = None, *, public_gateway: str = "") -> Host:
        """A host; with ``public_gateway`` (the public network's router, address/prefixlen)
        it has a public network too, whose bridge :meth:`internet` plugs into."""
        ns = self._namespace(name)
        state_dir = self.root / name
        if tunnel_ip:
            self.tunnel_ips[name] = tunnel_ip
        driver = LinuxDriver(ns.name)
        settings = NetworkSettings(
            host=name,
            plan=PlanSettings(
                state_dir=str(state_dir), lease_time=600, netns_scope=self.tag, public_gateway=public_gateway
            ),
            tunnel_ip=tunnel_ip,
            tunnel_ips=self.tunnel_ips if self.configured_peers else {},  # shared: later hosts are peers too
        )
        host = Host(
            name, ns, NetworkHostEndpoint(self.sessions, driver, settings), driver, state_dir, tunnel_ip
        )
        self.hosts[name] = host
        return host

    def underlay(self, a: Host, b: Host) -> None:
        """A veth pair between two hosts carrying their tunnel addresses (/24)."""
        a.ns.ip("link", "add", "under0", "type", "veth", "peer", "name", "under0", "netns", b.ns.name)
        for host in (a, b):
            host.ns.ip("addr", "add", f"{host.tunnel_ip}/24", "dev", "under0")
            host.ns.ip("link", "set", "under0", "up")
        # A fresh link drops what it sends until the kernel activates it (up to a second),
        # and an ARP lost then leaves the peer unresolved for seconds: wait until it answers.
        assert b.tunnel_ip is not None
        up = wait_until(lambda: a.ns.agent("ping", str(b.tunnel_ip), "--timeout", "0.3").returncode == 0, 10)
        assert up is not None, "the underlay never came up"

    def internet(self, host: Host, address: str, letter: str = "w") -> Namespace:
        """A namespace standing for the world outside: plugged into the host's public
        bridge with ``address`` (address/prefixlen; the public network's router)."""
        assert host.endpoint.plan is not None and host.endpoint.plan.public is not None
        ns = self._namespace(letter)
        dev = f"{self.tag[-5:]}{letter}"[-15:]
        host.ns.ip("link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns", ns.name)
        host.ns.ip("link", "set", dev, "master", host.endpoint.plan.public.bridge, "up")
        ns.ip("addr", "add", address, "dev", "eth0")
        ns.ip("link", "set", "eth0", "up")
        return ns

    def plug(self, host: Host, instance_id: str, letter: str) -> Guest:
        """Set the port up through the service, then plug an instance namespace into it."""
        binding = host.endpoint.setup_port(SetupPort(host.name, instance_id))
        ns = self._namespace(letter)
        host.ns.ip("link", "add", binding.tap, "type", "veth", "peer", "name", "eth0", "netns", ns.name)
        host.ns.ip("link", "set", binding.tap, "master", binding.bridge, "up")
        ns.ip("link", "set", "eth0", "address", binding.mac, "mtu", str(binding.mtu), "up")
        return Guest(ns, binding)

    def dhcp(self, guest: Guest) -> dict[str, str]:
        """Ask for an address with udhcpc; the options the server gave."""
        out = self.root / f"lease-{guest.ns.name}.json"
        run(
            ["ip", "netns", "exec", guest.ns.name, "env", f"UDHCPC_OUT={out}", "busybox", "udhcpc",
             "-i", "eth0", "-n", "-q", "-t", "6", "-T", "1", "-O", "mtu", "-O", "staticroutes",
             "-s", str(self.script)],
            timeout=20,
        )  # fmt: skip
        guest.lease = json.loads(out.read_text())
        return guest.lease

    def dump(self) -> str:
        out = []
        for host in self.hosts.values():
            for argv in (["nft", "list", "ruleset"], ["ip", "-br", "link"], ["bridge", "fdb", "show"]):
                result = host.ns.exec(*argv, check=False)
                out.append(f"[{host.name}] $ {' '.join(argv)}\n{result.stdout}{result.stderr}")
        return "\n".join(out)

    def close(self) -> None:
        for host in self.hosts.values():
            host.endpoint.close()
            try:
                host.driver.teardown()
            except Exception as exc:  # cleanup goes on
                print(f"teardown of {host.name} failed: {exc}")
        for ns in reversed(self.namespaces):
            ns.close()
        self.namespaces.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DataPlaneLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ip_json(ns: Namespace, *args: str) -> list[dict[str, object]]:
    result = subprocess.run(
        ["ip", "-n", ns.name, "-j", *args], capture_output=True, text=True, timeout=10, check=True
    )
    return list(json.loads(result.stdout or "[]"))
