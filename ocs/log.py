"""Logging set up once per process, at the edge."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"


def setup(debug: bool = False, stream: object = None) -> None:
    """Log to stderr (or ``stream``) at INFO, or DEBUG when ``debug``."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("amqp", "kombu", "sqlalchemy.engine", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
