"""The ``oslo.config.opts`` entry point used by oslo-config-generator."""

from __future__ import annotations

from oslo_config import cfg

from ocs.conf import _MODULES


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """Every option group with its options, in a stable order."""
    return [(m.GROUP, list(m.OPTS)) for m in _MODULES]
