"""Options of the [auth] group: request signing and secrets at rest."""

from __future__ import annotations

from oslo_config import cfg

GROUP = "auth"

OPTS = [
    cfg.IntOpt(
        "max_clock_skew",
        default=900,
        min=1,
        help="Seconds by which a signed request's timestamp may differ from the "
        "server's clock before it is refused (AWS allows 15 minutes).",
    ),
    cfg.StrOpt(
        "encryption_key",
        secret=True,
        help="Fernet key (32 url-safe base64-encoded bytes) that encrypts secret "
        "access keys at rest in the database. Every API process of one cloud must "
        "use the same key. When unset, the key is read from encryption_key_file.",
    ),
    cfg.StrOpt(
        "encryption_key_file",
        help="File that holds the Fernet key when encryption_key is unset. Defaults "
        "to <state_dir>/secret.key, generated with mode 0600 on first use.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(OPTS, group=GROUP)
