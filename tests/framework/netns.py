"""Network namespaces for tests: a host with a Linux bridge and "instances" on it.

A :class:`BridgeLab` makes a namespace ``ocst<random>h`` holding a bridge ``br0``
and, per instance, a namespace joined to the bridge by a veth pair whose host end
(the port, e.g. ``tapa``) is what a security-group ruleset filters. Names carry a
random part, so runs never collide; closing the lab ends every process it started
(by PID) and deletes every namespace it made, which takes the veths and the bridge
with them. Traffic never leaves these namespaces.

Inside a namespace the tests run small programs: this file is also a command-line
tool (``python netns.py serve|connect|ping|udp|hold ...``) needing only the standard
library, so what runs there is plain Python. Every step is bounded by a timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import select
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

PREFIX = "ocst"
AGENT = str(Path(__file__).resolve())
STEP_TIMEOUT = 10.0


def missing_prerequisites() -> str | None:
    """Why namespace tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "network namespace tests need root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"the {tool!r} command is missing (apt-get install iproute2 nftables)"
    return None


def run(argv: Sequence[str], *, timeout: float = STEP_TIMEOUT, check: bool = True, stdin: str | None = None):
    """Run a command with a timeout; CalledProcessError (with its output) when it fails."""
    result = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise subprocess.CalledProcessError(result.returncode, argv, result.stdout, result.stderr)
    return result


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> float | None:
    """Seconds until ``predicate()`` held (checked at least once), or None at the deadline."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start >= timeout:
            return None
        time.sleep(interval)


class Namespace:
    """One network namespace, its processes, and commands run inside it."""

    def __init__(self, name: str):
        self.name = name
        self.procs: list[subprocess.Popen[str]] = []
        run(["ip", "netns", "add", name])
        self.ip("link", "set", "lo", "up")

    def ip(self, *args: str) -> None:
        run(["ip", "-n", self.name, *args])

    def exec(self, *argv: str, timeout: float = STEP_TIMEOUT, check: bool = True, stdin: str | None = None):
        return run(["ip", "netns", "exec", self.name, *argv], timeout=timeout, check=check, stdin=stdin)

    def agent(self, *args: str, timeout: float = STEP_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run this file's command-line tool inside the namespace (never raises on exit status)."""
        return self.exec(sys.executable, AGENT, *args, timeout=timeout, check=False)

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        """Start this file's tool in the background; it ends when the namespace closes."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.name, sys.executable, AGENT, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            stop(proc)
        run(["ip", "netns", "delete", self.name], check=False)


def stop(proc: subprocess.Popen[str], timeout: float = 3.0) -> None:
    """End one process this framework started, by its PID."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def read_line(proc: subprocess.Popen[str], timeout: float) -> str | None:
    """One line of a spawned process's output, or None if none came in time."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        return None
    line = proc.stdout.readline()
    return line.strip() if line else None


@dataclass
class Instance:
    """An "instance": its namespace, port name on the bridge, MAC and addresses."""

    ns: Namespace
    port: str
    mac: str
    ip: str
    ip6: str

    def connect(self, host: str, port: int, timeout: float = 0.7) -> bool:
        """Whether a new TCP connection to ``host:port`` gets its echo."""
        return self.agent_ok("connect", host, str(port), "--timeout", str(timeout))

    def ping(self, host: str, timeout: float = 0.7) -> bool:
        return self.agent_ok("ping", host, "--timeout", str(timeout))

    def agent_ok(self, *args: str) -> bool:
        return self.ns.agent(*args).returncode == 0


class BridgeLab:
    """A host namespace with bridge ``br0`` and instances attached to it."""

    BRIDGE = "br0"

    def __init__(self) -> None:
        self.tag = PREFIX + secrets.token_hex(3)
        self.namespaces: list[Namespace] = []
        self.host = self._namespace("h")
        self.add_bridge(self.BRIDGE)
        for key in ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables"):
            self.host.exec("sysctl", "-qw", f"net.bridge.{key}=1")
        self.instances: list[Instance] = []

    def _namespace(self, suffix: str) -> Namespace:
        ns = Namespace(self.tag + suffix)
        self.namespaces.append(ns)
        return ns

    def add_bridge(self, name: str) -> None:
        self.host.ip("link", "add", name, "type", "bridge")
        self.host.ip("link", "set", name, "up")

    def add_instance(
        self, letter: str, ip: str, ip6: str, prefix: int = 24, prefix6: int = 64, bridge: str = BRIDGE
    ) -> Instance:
        """Instance ``letter``: port ``tap<letter>`` on ``bridge``, MAC ``02:00:00:00:00:<n>``."""
        ns = self._namespace(letter)
        port = f"tap{letter}"
        mac = f"02:00:00:00:00:{len(self.instances) + 1:02x}"
        self.host.ip("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns.name)
        self.host.ip("link", "set", port, "master", bridge, "up")
        ns.ip("link", "set", "eth0", "address", mac)
        ns.ip("addr", "add", f"{ip}/{prefix}", "dev", "eth0")
        ns.ip("addr", "add", f"{ip6}/{prefix6}", "dev", "eth0", "nodad")
        ns.ip("link", "set", "eth0", "up")
        instance = Instance(ns, port, mac, ip, ip6)
        self.instances.append(instance)
        return instance

    def nft(self, script: str) -> None:
        """Load an nft script into the host namespace (one transaction)."""
        self.host.exec("nft", "-f", "-", stdin=script)

    def dump(self) -> str:
        """The host's ruleset and links, for a failing test's report."""
        out = []
        for argv in (["nft", "list", "ruleset"], ["ip", "-br", "link"]):
            result = self.host.exec(*argv, check=False)
            out.append(f"$ {' '.join(argv)}\n{result.stdout}{result.stderr}")
        return "\n".join(out)

    def close(self) -> None:
        for ns in reversed(self.namespaces):
            ns.close()
        self.namespaces.clear()

    def __enter__(self) -> BridgeLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the tool run inside namespaces ---------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    """TCP echo servers and UDP listeners (datagrams appended to ``--log``), dual stack."""
    listeners: dict[socket.socket, str] = {}
    for port in args.tcp:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", port))
        s.listen(64)
        listeners[s] = "tcp"
    for port in args.udp:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", port))
        listeners[s] = "udp"
    print("ready", flush=True)
    clients: set[socket.socket] = set()
    while True:
        ready, _, _ = select.select([*listeners, *clients], [], [], 1.0)
        for s in ready:
            if listeners.get(s) == "tcp":
                conn, _ = s.accept()
                clients.add(conn)
            elif listeners.get(s) == "udp":
                data, peer = s.recvfrom(2048)
                with open(args.log, "a") as log:
                    log.write(f"{peer[0].removeprefix('::ffff:')} {data.decode(errors='replace')}\n")
            else:
                data = s.recv(2048)
                if data:
                    s.sendall(data)
                else:
                    clients.discard(s)
                    s.close()


def _connect(args: argparse.Namespace) -> int:
    try:
        with socket.create_connection((args.host, args.port), timeout=args.timeout) as s:
            s.sendall(b"hello\n")
            return 0 if s.recv(64) == b"hello\n" else 1
    except OSError:
        return 1


def _hold(args: argparse.Namespace) -> int:
    """One long connection: each line on stdin is sent, and "ok" or "fail" printed."""
    with socket.create_connection((args.host, args.port), timeout=args.timeout) as s:
        print("connected", flush=True)
        for line in sys.stdin:
            try:
                s.sendall(line.encode())
                ok = s.recv(2048) == line.encode()
            except OSError:
                ok = False
            print("ok" if ok else "fail", flush=True)
    return 0


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ping(args: argparse.Namespace) -> int:
    ident = os.getpid() & 0xFFFF
    header = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
    packet = struct.pack("!BBHHH", 8, 0, _checksum(header + b"ocs"), ident, 1) + b"ocs"
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
        s.sendto(packet, (args.host, 0))
        deadline = time.monotonic() + args.timeout
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([s], [], [], left)
            if not ready:
                break
            data, _ = s.recvfrom(2048)
            icmp = data[(data[0] & 0x0F) * 4 :]
            if icmp[0] == 0 and struct.unpack("!H", icmp[4:6])[0] == ident:
                return 0
    return 1


def _ipv4_udp(src: str, dst: str, port: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, socket.IPPROTO_UDP, 0,
        socket.inet_aton(src), socket.inet_aton(dst),
    )  # fmt: skip
    return header[:10] + struct.pack("!H", _checksum(header)) + header[12:] + udp


def _udp(args: argparse.Namespace) -> int:
    """One UDP datagram: from this namespace's own address, or forged (``--src``,
    ``--src-mac``: built by hand and sent raw)."""
    payload = args.payload.encode()
    if args.src_mac:
        frame = bytes.fromhex(args.dst_mac.replace(":", "")) + bytes.fromhex(args.src_mac.replace(":", ""))
        frame += b"\x08\x00" + _ipv4_udp(args.src, args.host, args.port, payload)
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
            s.bind((args.ifname, 0))
            s.send(frame)
    elif args.src:
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as s:
            s.sendto(_ipv4_udp(args.src, args.host, args.port, payload), (args.host, 0))
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("", args.sport))
            s.sendto(payload, (args.host, args.port))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve")
    p.add_argument("--tcp", type=int, action="append", default=[])
    p.add_argument("--udp", type=int, action="append", default=[])
    p.add_argument("--log", default=os.devnull)
    p.set_defaults(fn=_serve)
    for name, fn in (("connect", _connect), ("hold", _hold)):
        p = sub.add_parser(name)
        p.add_argument("host")
        p.add_argument("port", type=int)
        p.add_argument("--timeout", type=float, default=1.0)
        p.set_defaults(fn=fn)
    p = sub.add_parser("ping")
    p.add_argument("host")
    p.add_argument("--timeout", type=float, default=1.0)
    p.set_defaults(fn=_ping)
    p = sub.add_parser("udp")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("payload")
    p.add_argument("--src")
    p.add_argument("--sport", type=int, default=0)
    p.add_argument("--src-mac")
    p.add_argument("--dst-mac")
    p.add_argument("--ifname", default="eth0")
    p.set_defaults(fn=_udp)
    args = parser.parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
