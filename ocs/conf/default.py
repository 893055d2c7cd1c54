"""Options of the [DEFAULT] group: where state lives and who this host is."""

from __future__ import annotations

import socket

import platformdirs
from oslo_config import cfg

GROUP = "DEFAULT"

OPTS = [
    cfg.StrOpt(
        "state_dir",
        default=platformdirs.user_data_dir("ocs"),
        sample_default="~/.local/share/ocs",
        help="Directory that holds this node's state: the SQLite database of the "
        "all-in-one, the generated encryption key, the image store and the files "
        "written for users (ocs.conf, ocsrc). Created on first use.",
    ),
    cfg.StrOpt(
        "host",
        default=socket.gethostname(),
        sample_default="localhost",
        help="Name of this node as the other services see it. The compute agent "
        "listens on the queue compute.<host>; must be unique among the hosts of one "
        "cloud.",
    ),
    cfg.BoolOpt(
        "debug",
        default=False,
        help="Log at DEBUG level instead of INFO. Secret access keys are never logged at any level.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(OPTS)
