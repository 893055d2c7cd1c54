"""Options of the [bus] group: the AMQP message bus between services."""

from __future__ import annotations

from oslo_config import cfg

GROUP = "bus"

OPTS = [
    cfg.StrOpt(
        "transport_url",
        default="memory://",
        secret=True,
        help="kombu URL of the message bus. memory:// keeps every message inside one "
        "process (the all-in-one and unit tests); amqp://USER:PASSWORD@HOST:5672// "
        "uses RabbitMQ, which separate service processes and hosts need.",
    ),
    cfg.StrOpt(
        "exchange",
        default="ocs",
        help="Name of the topic exchange on which services address each other. "
        "Two clouds may share one RabbitMQ virtual host only with different names.",
    ),
    cfg.FloatOpt(
        "rpc_timeout",
        default=30.0,
        min=0.1,
        help="Seconds a call waits for its reply before it fails with a timeout "
        "error. Individual operations may declare a shorter or longer timeout.",
    ),
    cfg.IntOpt(
        "handler_attempts",
        default=3,
        min=1,
        help="Runs a cast gets when its handler fails with an unexpected error (not an "
        "EC2-style error, not an unreachable database, which are retried until it "
        "is back): after that many failures the message goes to the bus's dead-letter "
        "queue (<exchange>.dead on RabbitMQ, logged; 'ocs-manage bus dead-letters' "
        "lists and requeues them) instead of looping or being lost.",
    ),
    cfg.FloatOpt(
        "reconnect_interval",
        default=1.0,
        min=0.05,
        help="Seconds between attempts to reconnect to the broker after the "
        "connection is lost (doubles up to 30 seconds).",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(OPTS, group=GROUP)
