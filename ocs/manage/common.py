"""What every ocs-manage command shares: the database, output helpers."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from oslo_config import cfg
from sqlalchemy.orm import Session

from ocs.api_ec2.service import database_url
from ocs.crypto import SecretBox, load_secret_box
from ocs.db import engine as db_engine


@contextmanager
def session(conf: cfg.ConfigOpts) -> Iterator[Session]:
    """A session on the configured database, committed when the block succeeds."""
    engine = db_engine.make_engine(database_url(conf), pool_size=1, max_overflow=0)
    try:
        with db_engine.transaction(db_engine.session_factory(engine)) as s:
            yield s
    finally:
        engine.dispose()


def secret_box(conf: cfg.ConfigOpts) -> SecretBox:
    return load_secret_box(conf.auth.encryption_key, conf.auth.encryption_key_file, conf.state_dir)


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned table, the way operators read it in a terminal."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())
