"""The linux driver without root: what it would run, against a host it observes through a fake."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ocs.network import plan
from ocs.network.drivers.linux import LinuxDriver, dnsmasq_pid
from ocs.network.plan import DesiredState, PlanSettings


class FakeHost:
    """Answers ``ip``/``bridge``/``nft`` like a host with these links and namespaces."""

    def __init__(self, links: list[str], namespaces: list[str]):
        self.links = links
        self.namespaces = namespaces
        self.commands: list[list[str]] = []

    def __call__(self, argv: Sequence[str], stdin: str | None) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        self.commands.append(argv)
        out = ""
        if argv[-2:] == ["addr", "show"]:
            out = json.dumps([{"ifname": n, "flags": ["UP"]} for n in self.links])
        elif argv[-3:] == ["-j", "netns", "list"]:
            out = json.dumps([{"name": n} for n in self.namespaces])
        return subprocess.CompletedProcess(argv, 0, out, "")

    def changing(self) -> list[str]:
        return [" ".join(c) for c in self.commands if any(w in c for w in ("del", "delete", "add", "-f"))]


def test_teardown_removes_only_what_it_owns(tmp_path: Path) -> None:
    mine = plan.netns_prefix("h1") + "0123456789"
    theirs = plan.netns_prefix("h2") + "0123456789"
    host = FakeHost(
        links=["lo", "eth0", "docker0", "virbr0", "ocsb0123456789a", "ocsx0123456789a", "ocst0123456789a"],
        namespaces=[mine, theirs, "ocst1234h", "other"],
    )
    driver = LinuxDriver("hostns", runner=host)
    empty = plan.plan_host(DesiredState(host="h1"), PlanSettings(state_dir=str(tmp_path)))
    result = driver.apply(empty)
    changing = host.changing()
    assert f"ip netns delete {mine}" in changing
    assert "ip -n hostns link del ocsb0123456789a" in changing
    assert "ip -n hostns link del ocsx0123456789a" in changing
    for foreign in (theirs, "ocst1234h", "other", "eth0", "docker0", "virbr0", "ocst0123456789a"):
        assert not any(c.endswith(" " + foreign) for c in changing if "del" in c), foreign
    assert result.changed
    # Every ip command ran in the host's namespace, every nft inside it too.
    assert all(c[:3] == ["ip", "-n", "hostns"] for c in host.commands if c[0] == "ip" and "netns" not in c)
    assert all(c[:4] == ["ip", "netns", "exec", "hostns"] for c in host.commands if "nft" in c[:5])


def test_a_pid_file_alone_never_names_a_process_to_signal(tmp_path: Path) -> None:
    pid_file = tmp_path / "dnsmasq.pid"
    pid_file.write_text(str(os.getpid()))  # alive, but not the dnsmasq of this config
    assert dnsmasq_pid(pid_file, str(tmp_path / "dnsmasq.conf")) is None
    pid_file.write_text("999999999")
    assert dnsmasq_pid(pid_file, str(tmp_path / "dnsmasq.conf")) is None
    pid_file.write_text("garbage")
    assert dnsmasq_pid(pid_file, str(tmp_path / "dnsmasq.conf")) is None


class RoutesHost:
    """Answers ``ip -j route show`` in a namespace with ``routes``; records every command."""

    def __init__(self, routes: list[dict[str, object]]):
        self.routes = routes
        self.commands: list[list[str]] = []

    def __call__(self, argv: Sequence[str], stdin: str | None) -> subprocess.CompletedProcess[str]:
        self.commands.append(list(argv))
        out = json.dumps(self.routes) if "route" in argv and "show" in argv else ""
        return subprocess.CompletedProcess(list(argv), 0, out, "")


def test_static_routes_converge_to_exactly_the_plans() -> None:
    """Routes the plan names and the namespace has are left alone, the kernel's own too;
    the others go, the missing ones come (via a next hop on-link, on-link, blackhole)."""
    host = RoutesHost(
        [
            {"dst": "default", "gateway": "198.51.100.1", "dev": "ocsv1", "flags": ["onlink"]},
            {"dst": "10.0.0.0/16", "dev": "ocsn1", "scope": "link", "flags": []},
            {"type": "blackhole", "dst": "203.0.113.0/24", "flags": []},
            {"dst": "192.0.2.0/24", "gateway": "10.0.1.7", "dev": "ocsq1", "flags": ["onlink"]},
            {"dst": "10.0.1.0/24", "dev": "ocsn1", "protocol": "kernel", "scope": "link", "flags": []},
        ]
    )
    driver = LinuxDriver(runner=host)
    changes: list[str] = []
    wanted = {
        "0.0.0.0/0": ("via", "198.51.100.1", "ocsv1"),
        "10.0.0.0/16": ("dev", "ocsn1"),
        "192.0.2.0/24": ("via", "10.0.1.30", "ocsq1"),  # the next hop moved
        "198.18.0.0/15": ("blackhole",),
    }
    driver._sync_routes(wanted, "ns1", "subnet-1", changes)
    ran = [" ".join(c) for c in host.commands if "show" not in c]
    assert ran == [
        "ip -n ns1 route del blackhole 203.0.113.0/24",
        "ip -n ns1 route replace 192.0.2.0/24 via 10.0.1.30 dev ocsq1 onlink",
        "ip -n ns1 route replace blackhole 198.18.0.0/15",
    ]
    assert changes == [
        "route 203.0.113.0/24 removed from subnet-1",
        "route 192.0.2.0/24 via 10.0.1.30 in subnet-1",
        "route 198.18.0.0/15 blackhole in subnet-1",
    ]
    # The namespace has what the plan says: nothing to run.
    host.routes = [
        {"dst": "default", "gateway": "198.51.100.1", "dev": "ocsv1", "flags": ["onlink"]},
        {"dst": "10.0.0.0/16", "dev": "ocsn1", "scope": "link", "flags": []},
        {"dst": "192.0.2.0/24", "gateway": "10.0.1.30", "dev": "ocsq1", "flags": ["onlink"]},
        {"type": "blackhole", "dst": "198.18.0.0/15", "flags": []},
    ]
    host.commands.clear()
    driver._sync_routes(wanted, "ns1", "subnet-1", changes := [])
    assert changes == [] and all("show" in c for c in host.commands)
