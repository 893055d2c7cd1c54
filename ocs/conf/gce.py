"""Options of the [gce] group: the Compute Engine v1 front end (served by ocs-api and the
all-in-one beside the EC2 API, under /compute/v1/ and /token)."""

from __future__ import annotations

from oslo_config import cfg

GROUP = "gce"

OPTS = [
    cfg.BoolOpt(
        "enabled",
        default=True,
        help="Whether ocs-api and the all-in-one serve the Compute Engine v1 API "
        "(paths /compute/v1/... and the OAuth 2.0 token endpoint /token) on the "
        "listener of the EC2 API.",
    ),
    cfg.IntOpt(
        "access_token_lifetime",
        default=3600,
        min=60,
        help="Seconds an access token issued by the token endpoint stays valid "
        "(Google's are valid for an hour). Tokens are not stored: each is sealed "
        "with the cloud's [auth] encryption key, and stops working early when its "
        "service-account key is revoked.",
    ),
    cfg.IntOpt(
        "jwt_clock_skew",
        default=300,
        min=0,
        help="Seconds by which the iat/exp of a service-account JWT may disagree with the server's clock.",
    ),
    cfg.FloatOpt(
        "operation_wait_timeout",
        default=120.0,
        min=0,
        help="Seconds an operations 'wait' call blocks at most before it answers "
        "the operation as it is (Compute Engine waits up to 2 minutes).",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(OPTS, group=GROUP)
