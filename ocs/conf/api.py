"""Options of the [api] group: the EC2 front end process."""

from __future__ import annotations

from oslo_config import cfg

GROUP = "api"

OPTS = [
    cfg.StrOpt(
        "listen",
        default="127.0.0.1:8773",
        help="HOST:PORT on which ocs-api (and the all-in-one) serve the EC2 API.",
    ),
    cfg.IntOpt(
        "workers",
        default=2,
        min=1,
        help="Number of gunicorn worker processes of ocs-api. The all-in-one "
        "always serves from threads inside its single process.",
    ),
    cfg.StrOpt(
        "public_endpoint",
        help="URL by which clients reach the API, written into ocsrc as "
        "AWS_ENDPOINT_URL. Defaults to http://<listen>.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(OPTS, group=GROUP)
