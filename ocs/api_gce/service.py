"""Building the Compute Engine front end from configuration (the process edge)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import falcon
from oslo_config import cfg
from sqlalchemy.orm import Session, sessionmaker

from ocs.api_ec2 import service as ec2_service
from ocs.api_gce.app import GceDeps, create_app, dispatcher
from ocs.api_gce.context import Settings
from ocs.crypto import SecretBox


def settings_from_conf(conf: cfg.ConfigOpts) -> Settings:
    return Settings(
        ec2=ec2_service.settings_from_conf(conf),
        endpoint=ec2_service.endpoint_url(conf),
        token_lifetime=conf.gce.access_token_lifetime,
        jwt_clock_skew=conf.gce.jwt_clock_skew,
        wait_timeout=conf.gce.operation_wait_timeout,
    )


def gce_app(
    conf: cfg.ConfigOpts, sessions: sessionmaker[Session], box: SecretBox, services: dict[str, Any]
) -> falcon.App:
    return create_app(
        GceDeps(settings=settings_from_conf(conf), sessions=sessions, secret_box=box, services=services)
    )


def front_ends(conf: cfg.ConfigOpts, services: dict[str, Any] | None = None) -> Callable[..., Any]:
    """The WSGI app of one API listener: EC2's, and Compute Engine's beside it when
    ``[gce] enabled`` (dispatched by path: /compute/... and /token)."""
    deps = ec2_service.deps_from_conf(conf, services)
    ec2 = ec2_service.create_app(deps)
    if not conf.gce.enabled:
        return ec2
    return dispatcher(ec2, gce_app(conf, deps.sessions, deps.secret_box, deps.services))
