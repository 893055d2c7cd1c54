"""Options of the [database] group."""

from __future__ import annotations

from oslo_config import cfg

GROUP = "database"

OPTS = [
    cfg.StrOpt(
        "connection",
        secret=True,
        help="SQLAlchemy URL of the database that holds the cloud's desired state, "
        "for example postgresql+psycopg2://ocs:PASSWORD@db.example.com/ocs or "
        "mysql+pymysql://ocs:PASSWORD@db.example.com/ocs. When unset, a SQLite file "
        "ocs.sqlite inside state_dir is used (the all-in-one default). Only the API, "
        "the scheduler and the network service connect to it.",
    ),
    cfg.IntOpt(
        "pool_size",
        default=5,
        min=1,
        help="Connections kept open per process (ignored for SQLite).",
    ),
    cfg.IntOpt(
        "max_overflow",
        default=10,
        min=0,
        help="Connections allowed beyond pool_size under load (ignored for SQLite).",
    ),
    cfg.BoolOpt(
        "echo",
        default=False,
        help="Log every SQL statement (very verbose; for debugging only).",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(OPTS, group=GROUP)
