"""Building the EC2 front end from configuration (the process edge)."""

from __future__ import annotations

import falcon
from oslo_config import cfg

from ocs.api_ec2.app import ApiDeps, create_app
from ocs.api_ec2.context import Settings
from ocs.crypto import load_secret_box
from ocs.db import engine as db_engine


def endpoint_url(conf: cfg.ConfigOpts) -> str:
    """The URL clients use to reach this API."""
    if conf.api.public_endpoint:
        return str(conf.api.public_endpoint)
    return f"http://{conf.api.listen}"


def settings_from_conf(conf: cfg.ConfigOpts) -> Settings:
    return Settings(
        region=conf.ec2.region,
        availability_zones=tuple(conf.ec2.availability_zones),
        endpoint=endpoint_url(conf),
        max_clock_skew=conf.auth.max_clock_skew,
        default_vpc_cidr=conf.ec2.default_vpc_cidr,
    )


def database_url(conf: cfg.ConfigOpts) -> str:
    return str(conf.database.connection or db_engine.default_url(conf.state_dir))


def deps_from_conf(conf: cfg.ConfigOpts) -> ApiDeps:
    engine = db_engine.make_engine(
        database_url(conf),
        pool_size=conf.database.pool_size,
        max_overflow=conf.database.max_overflow,
        echo=conf.database.echo,
    )
    box = load_secret_box(
        conf.auth.encryption_key, conf.auth.encryption_key_file, conf.state_dir
    )
    return ApiDeps(
        settings=settings_from_conf(conf),
        sessions=db_engine.session_factory(engine),
        secret_box=box,
    )


def app_from_conf(conf: cfg.ConfigOpts) -> falcon.App:
    return create_app(deps_from_conf(conf))
