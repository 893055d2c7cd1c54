"""The ``noop`` network driver: bookkeeping only (the fake hypervisor's companion).

It remembers the last plan and how often it was asked, so that tests and demos see
what would have been configured; it touches nothing on the host.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import replace

from ocs.network.driver import ApplyResult, NetworkDriver
from ocs.network.plan import HostPlan


class NoopDriver(NetworkDriver):
    name = "noop"
    enforcing = False  # bookkeeping only: bindings and other hosts need not wait for a plan

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.plan: HostPlan | None = None
        self.applies = 0
        self.firewall_applies = 0

    def apply(self, plan: HostPlan) -> ApplyResult:
        with self._lock:
            changed = self.plan != plan
            self.plan = plan
            self.applies += 1
        return ApplyResult(("plan",) if changed else ())

    def apply_firewall(self, plan: HostPlan) -> ApplyResult:
        with self._lock:
            changed = self.plan is None or self.plan.firewall != plan.firewall
            self.plan = plan if self.plan is None else replace(self.plan, firewall=plan.firewall)
            self.firewall_applies += 1
        return ApplyResult(("firewall",) if changed else ())

    def teardown(self) -> ApplyResult:
        with self._lock:
            had, self.plan = self.plan, None
        return ApplyResult(("plan",) if had is not None else ())

    def listen(self, plan: HostPlan, subnet_id: str, port: int) -> socket.socket | None:
        return None
