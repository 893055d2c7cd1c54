"""Configuration: one option group per area, read at the process edge.

Every process builds one ``cfg.ConfigOpts`` with :func:`make_conf`, parses its
command line and configuration files, and passes plain values further down.
Pure cores never import this package.
"""

from __future__ import annotations

from oslo_config import cfg

from ocs.conf import (
    api,
    auth,
    bus,
    compute,
    database,
    default,
    ec2,
    gce,
    images,
    libvirt,
    network,
    scheduler,
    volume,
)

_MODULES = (default, database, bus, api, auth, ec2, gce, scheduler, compute, libvirt, images, network, volume)


def register_all(conf: cfg.ConfigOpts) -> cfg.ConfigOpts:
    """Register every OCS option group on ``conf`` and return it."""
    for module in _MODULES:
        module.register_opts(conf)
    return conf


def make_conf() -> cfg.ConfigOpts:
    """A fresh ConfigOpts with every OCS option registered (tests use one each)."""
    return register_all(cfg.ConfigOpts())


__all__ = ["make_conf", "register_all"]
