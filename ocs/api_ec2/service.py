"""Building the EC2 front end from configuration (the process edge)."""

from __future__ import annotations

import ipaddress
from typing import Any

import falcon
from oslo_config import cfg

from ocs import errors
from ocs.api_ec2 import throttle
from ocs.api_ec2.app import ApiDeps, create_app
from ocs.api_ec2.context import Settings
from ocs.api_ec2.throttle import Limit, Policy, Throttle, parse_limit
from ocs.bus import Bus
from ocs.compute_agent.rpcapi import ComputeApi
from ocs.crypto import load_secret_box
from ocs.db import engine as db_engine
from ocs.network import ipam
from ocs.network.rpcapi import NetworkHostApi
from ocs.scheduler.rpcapi import SchedulerApi
from ocs.volume.rpcapi import VolumeApi


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
        strict_credential_scope=conf.ec2.strict_credential_scope,
        public_address_pool=_public_pool(conf.network.public_address_pool, conf.network.public_gateway),
        elastic_ips_per_account=conf.network.elastic_ips_per_account,
        volume_gib_per_account=conf.volume.gib_per_account,
        snapshots_per_account=conf.volume.snapshots_per_account,
        provisioned_iops_per_account=conf.volume.provisioned_iops_per_account,
        max_queue_wait=conf.api.max_queue_wait,
    )


def _public_pool(blocks: list[str], gateway: str = "") -> tuple[str, ...]:
    """``[network] public_address_pool`` as IPv4 CIDR blocks; ConfigError for anything else,
    and for a pool that could hand out ``[network] public_gateway``'s own address."""
    out = []
    for block in blocks:
        try:
            out.append(str(ipaddress.IPv4Network(block, strict=False)))
        except ValueError as exc:
            raise errors.ConfigError(reason=f"[network] public_address_pool: {exc}") from None
    if gateway:
        try:
            router = ipaddress.IPv4Interface(gateway).ip
        except ValueError as exc:
            raise errors.ConfigError(reason=f"[network] public_gateway: {exc}") from None
        if any(low <= int(router) <= high for low, high in map(ipam.pool_range, out)):
            raise errors.ConfigError(
                reason=f"[network] public_gateway {router} is an address of public_address_pool, "
                "which would hand it out as an instance's public address: leave it out of the pool"
            )
    return tuple(out)


def _limit(text: str, option: str) -> Limit:
    try:
        return parse_limit(text)
    except ValueError as exc:
        raise errors.ConfigError(reason=f"[api] {option}: {exc}") from None


def throttle_from_conf(conf: cfg.ConfigOpts) -> Throttle | None:
    """EC2's request throttling with the bucket sizes of ``[api]``; None when disabled."""
    api = conf.api
    if not api.throttling:
        return None
    options = {klass: "throttle_" + klass.replace("-", "_") for klass in throttle.CLASSES}
    classes = {klass: _limit(getattr(api, option), option) for klass, option in options.items()}
    actions = dict(throttle.EC2_ACTION_LIMITS)
    actions.update({a: _limit(t, "throttle_actions " + a) for a, t in api.throttle_actions.items()})
    resources = dict(throttle.EC2_RESOURCE_LIMITS)
    resources.update({a: _limit(t, "throttle_resources " + a) for a, t in api.throttle_resources.items()})
    return Throttle(Policy(classes=classes, actions=actions, resources=resources))


def database_url(conf: cfg.ConfigOpts) -> str:
    return str(conf.database.connection or db_engine.default_url(conf.state_dir))


def deps_from_conf(conf: cfg.ConfigOpts, services: dict[str, Any] | None = None) -> ApiDeps:
    """The app's dependencies; ``services`` are the bus clients handlers use
    (``ctx.services["scheduler"]`` ...), none when not given."""
    engine = db_engine.make_engine(
        database_url(conf),
        pool_size=conf.database.pool_size,
        max_overflow=conf.database.max_overflow,
        echo=conf.database.echo,
    )
    box = load_secret_box(conf.auth.encryption_key, conf.auth.encryption_key_file, conf.state_dir)
    return ApiDeps(
        settings=settings_from_conf(conf),
        sessions=db_engine.session_factory(engine),
        secret_box=box,
        services=dict(services or {}),
        throttle=throttle_from_conf(conf),
    )


def bus_clients(bus: Bus) -> dict[str, Any]:
    """The bus clients of the services the EC2 handlers call."""
    return {
        "scheduler": SchedulerApi(bus),
        "compute": ComputeApi(bus),
        "network": NetworkHostApi(bus),
        "volume": VolumeApi(bus),
    }


def app_from_conf(conf: cfg.ConfigOpts) -> falcon.App:
    """The app of one ``ocs-api`` worker, with its own bus connection.

    gunicorn calls this in each worker after the fork (no preloading), so the
    bus, its reply queue and its thread belong to that worker.
    """
    from ocs.cmd.common import bus_from_conf  # the process edge builds the bus

    return create_app(deps_from_conf(conf, bus_clients(bus_from_conf(conf))))
