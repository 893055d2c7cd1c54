"""The network driver contract: what ``ocs-network`` asks of a host's data plane.

A driver makes one host look like a :class:`~ocs.network.plan.HostPlan`. It is
small on purpose: the planning is pure (:mod:`ocs.network.plan`), the driver only
converges. Drivers come from :data:`REGISTRY` (:func:`make_driver`):

- ``linux``: bridges, VXLAN, namespaces, dnsmasq and nftables
  (:mod:`ocs.network.drivers.linux`);
- ``noop``: bookkeeping only, for the fake hypervisor (:mod:`ocs.network.drivers.noop`).

Failure semantics, common to every driver:

- Every method is idempotent: calling it again with the same plan changes nothing
  and reports no changes.
- A failed :meth:`NetworkDriver.apply` raises :class:`NetworkDriverError` and may
  leave the host partly converged; the next ``apply`` repairs it (the service
  applies again periodically). Nothing half-made is *open*: the ruleset is replaced
  in one transaction, and a tap (``ocst…``) that the loaded ruleset does not name
  has all its traffic dropped, so a guest plugged before its rules exist, or after
  an apply failed, is cut off rather than unfiltered. ``setup_port`` answers only
  after a successful apply, so the hypervisor plugs a tap whose rules are loaded.
- A driver owns only what carries its names (``ocs`` prefixes, its host's
  namespace prefix, its own dnsmasq PIDs); it never removes anything else.
"""

from __future__ import annotations

import abc
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ocs.network.plan import HostPlan


class NetworkDriverError(Exception):
    """The host could not be converged; the message says which step failed."""


@dataclass(frozen=True)
class ApplyResult:
    """What an apply changed (empty: the host already matched the plan)."""

    changes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.changes)


class NetworkDriver(abc.ABC):
    """One host's data plane."""

    name: str = ""
    #: The network namespace holding the driver's bridges (None: the process's own).
    netns: str | None = None
    #: False for a driver that keeps bookkeeping only: nothing on the host depends on
    #: its plan being current, so the service answers ``setup_port`` from the port's
    #: names at once and converges lazily (soon after being asked, once for a burst),
    #: and does not tell other hosts about its members (their periodic sync catches up);
    #: its plans leave the security-group ruleset out (nothing would enforce it).
    #: True: a port's binding is answered only once the plan carrying it is applied.
    enforcing: bool = True

    @abc.abstractmethod
    def apply(self, plan: HostPlan) -> ApplyResult:
        """Make the host match ``plan`` and remove what the driver owns that the plan
        no longer has (bridges, VXLAN devices, namespaces, dnsmasq, rules).

        Idempotent; converges from any state, including after a restart of the
        service or of the host. Raises :class:`NetworkDriverError` (see the module)."""

    @abc.abstractmethod
    def apply_firewall(self, plan: HostPlan) -> ApplyResult:
        """Load only ``plan``'s security-group ruleset (one atomic transaction).

        The fast path for security-group changes; the rest of the plan is left as it
        is. Raises :class:`NetworkDriverError` when the ruleset is refused; the old
        one then stays loaded."""

    @abc.abstractmethod
    def teardown(self) -> ApplyResult:
        """Remove everything this driver made on the host (an empty plan)."""

    @abc.abstractmethod
    def listen(self, plan: HostPlan, subnet_id: str, port: int) -> socket.socket | None:
        """A listening TCP socket inside the subnet's namespace, on ``port`` of every
        address there (the metadata listener; the plan redirects 169.254.169.254:80 to
        it). None when the driver has no namespaces (``noop``). Raises
        :class:`NetworkDriverError` when the namespace does not exist."""


DriverFactory = Callable[..., NetworkDriver]


def _linux(**kwargs: Any) -> NetworkDriver:
    from ocs.network.drivers.linux import LinuxDriver

    return LinuxDriver(**kwargs)


def _noop(**kwargs: Any) -> NetworkDriver:
    from ocs.network.drivers.noop import NoopDriver

    return NoopDriver(**kwargs)


REGISTRY: dict[str, DriverFactory] = {"linux": _linux, "noop": _noop}
"""Driver name -> factory taking the driver's constructor arguments."""


def make_driver(name: str, **kwargs: Any) -> NetworkDriver:
    try:
        factory = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown network driver {name!r}; expected one of {sorted(REGISTRY)}") from None
    return factory(**kwargs)
