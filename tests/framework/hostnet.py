"""The network of a cloud whose guests are real, kept inside a namespace the test owns.

In production ``ocs-network``'s bridges, taps and rulesets live in the host's own
namespace, beside libvirt. Tests must not touch the machine's namespace, so
:func:`host_network` makes a namespace ``ocst…h`` standing for the host's network
and a state directory dnsmasq can read, and gives the cloud's ``[network]``
overrides: the ``linux`` driver there (libvirt makes each tap unattached, the
network service moves it in, see :mod:`ocs.network.rpcapi`). Afterwards a driver
of its own tears down what the cloud's left (dnsmasq by PID, subnet namespaces),
then the namespace goes, taking every device in it.

Without root, ``ip``, ``nft`` or dnsmasq, ``required=False`` callers get guests
without a network (``[compute] plug_network = False``) instead of a skip.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ocs.network.drivers.linux import LinuxDriver
from ocs.network.plan import netns_prefix
from tests.framework.dataplane import missing_dataplane_tools
from tests.framework.netns import PREFIX, Namespace, missing_prerequisites


@contextmanager
def host_network(host: str, *, required: bool = True) -> Iterator[dict[str, dict[str, Any]]]:
    """Overrides (group → options) for a cloud whose compute host is ``host``."""
    reason = missing_prerequisites() or missing_dataplane_tools()
    if reason:
        if required:
            pytest.skip(reason)
        yield {"compute": {"plug_network": False}}
        return
    tag = PREFIX + secrets.token_hex(3)
    ns = Namespace(tag + "h")
    state = Path(f"/run/ocs-test-{tag}")
    state.mkdir(mode=0o755)
    try:
        yield {"network": {"driver": "linux", "host_namespace": ns.name, "state_dir": str(state)}}
    finally:
        driver = LinuxDriver(ns.name)
        driver.remember(str(state), netns_prefix(host))
        try:
            driver.teardown()
        finally:
            ns.close()
            shutil.rmtree(state, ignore_errors=True)


def merged(*overrides: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for layer in overrides:
        for group, values in layer.items():
            out.setdefault(group, {}).update(values)
    return out
