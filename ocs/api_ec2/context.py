"""What a handler gets besides its parameters: who is asking, and the tools to answer.

The context is built once per request by the app. Handlers read the caller's
account from it and use its session for every database access, so a handler can
never see another account's resources by accident: every repository function
takes ``ctx.account_id``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Settings:
    """Plain values the EC2 front end needs, read from configuration at the edge."""

    region: str
    availability_zones: tuple[str, ...]
    endpoint: str
    max_clock_skew: int = 900
    default_vpc_cidr: str = "172.31.0.0/16"
    strict_credential_scope: bool = False
    public_address_pool: tuple[str, ...] = ("198.51.100.0/24",)
    elastic_ips_per_account: int = 5
    volume_gib_per_account: int = 51200
    snapshots_per_account: int = 100000
    provisioned_iops_per_account: int = 300000
    max_queue_wait: float = 0.0  # seconds a request may wait for a thread (0: no limit)


@dataclass
class RequestContext:
    """One request: the authenticated caller, the database session and the clock."""

    account_id: str
    access_key_id: str
    request_id: str
    action: str
    settings: Settings
    session: Session
    now: Callable[[], datetime]
    services: dict[str, Any] = field(default_factory=dict)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    client_token: str | None = None  # the request's ClientToken, if it takes one
    params_digest: str = ""  # of its parameters, for the ClientToken record

    def on_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the request's transaction has committed (a message to a
        service about what the request changed); a failing action is logged, the
        request still succeeds."""
        self.after_commit.append(action)
