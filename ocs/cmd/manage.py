"""``ocs-manage``: the operator's command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from oslo_config import cfg
from sqlalchemy.exc import SQLAlchemyError

from ocs import conf as ocs_conf
from ocs import errors, log
from ocs.manage import (
    accounts,
    allinone,
    bus,
    db,
    devcluster,
    hosts,
    images,
    instance_types,
    instances,
    quotas,
)

LOG = logging.getLogger("ocs.manage")

_FAMILIES = (allinone, devcluster, db, accounts, instance_types, images, instances, quotas, hosts, bus)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocs-manage", description="Operate an OCS cloud.")
    parser.add_argument(
        "--config-file",
        action="append",
        default=[],
        metavar="PATH",
        help="configuration file (repeatable; later files override earlier ones; "
        "default: $OCS_CONFIG_FILE if set)",
    )
    parser.add_argument("--debug", action="store_true", help="verbose logging, tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for family in _FAMILIES:
        family.register(sub)
    return parser


def load_conf(config_files: Sequence[str]) -> cfg.ConfigOpts:
    """The configuration from ``config_files``, else from ``$OCS_CONFIG_FILE``, else oslo's defaults."""
    if not config_files and os.environ.get("OCS_CONFIG_FILE"):
        config_files = [os.environ["OCS_CONFIG_FILE"]]
    conf = ocs_conf.make_conf()
    conf([], project="ocs", default_config_files=list(config_files) or None)
    return conf


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        conf = load_conf(args.config_file)
        log.setup(debug=args.debug or conf.debug)
        return int(args.func(conf, args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.debug:
            LOG.exception("command failed")
        print(f"ocs-manage: error: {describe(exc)}", file=sys.stderr)
        return 1


def describe(exc: BaseException) -> str:
    """One line an operator can act on."""
    if isinstance(exc, errors.OcsError):
        return str(exc)
    if isinstance(exc, SQLAlchemyError):
        orig = getattr(exc, "orig", None)
        detail = str(orig or exc).strip().splitlines()[0]
        return f"database error: {detail}"
    if isinstance(exc, cfg.Error):
        return f"configuration error: {exc}"
    if isinstance(exc, OSError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    sys.exit(main())
