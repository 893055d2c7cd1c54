"""``ocs-volume``: the block-storage service (EBS volumes and snapshots) as its own process."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from oslo_config import cfg

from ocs import errors
from ocs.api_ec2.service import database_url
from ocs.cmd.common import bus_from_conf, parse_conf
from ocs.cmd.scheduler import run_until_signal
from ocs.conf.volume import state_path
from ocs.db import engine as db_engine
from ocs.volume.backend import VolumeBackend
from ocs.volume.backends import make_backend
from ocs.volume.service import VolumeEndpoint, VolumeService, VolumeSettings


def backend_settings(conf: cfg.ConfigOpts) -> dict[str, Any]:
    """The constructor keywords of the configured backend."""
    vol = conf.volume
    if vol.backend == "rbd":
        return {
            "pool": vol.rbd_pool,
            "ceph_conf": vol.rbd_ceph_conf,
            "user": vol.rbd_user,
            "keyring": vol.rbd_keyring,
            "timeout": float(vol.rbd_timeout),
            "copy_timeout": float(vol.operation_timeout),
            "monitors": vol.rbd_monitors,
            "secret_uuid": vol.rbd_secret_uuid,
        }
    return {
        "state_dir": state_path(conf),
        "volume_format": vol.volume_format,
        "qemu_img": vol.qemu_img,
        "timeout": float(vol.operation_timeout),
    }


def backend_from_conf(conf: cfg.ConfigOpts) -> VolumeBackend:
    vol = conf.volume
    try:
        return make_backend(vol.backend, **backend_settings(conf))
    except (ValueError, OSError) as exc:
        raise errors.ConfigError(reason=f"[volume] backend {vol.backend}: {exc}") from None


def settings_from_conf(conf: cfg.ConfigOpts) -> VolumeSettings:
    return VolumeSettings(
        host=str(conf.host),
        workers=int(conf.volume.workers),
        sweep_interval=float(conf.volume.sweep_interval),
        attachment_timeout=float(conf.volume.attachment_timeout),
    )


def main(argv: Sequence[str] | None = None) -> int:
    conf = parse_conf(argv, "ocs-volume")
    bus = bus_from_conf(conf)
    engine = db_engine.make_engine(
        database_url(conf), pool_size=conf.database.pool_size, max_overflow=conf.database.max_overflow
    )
    endpoint = VolumeEndpoint(
        db_engine.session_factory(engine), backend_from_conf(conf), settings_from_conf(conf)
    )
    service = VolumeService(bus, endpoint)

    def stop() -> None:
        service.stop()
        bus.close()
        engine.dispose()

    return run_until_signal(service.start, stop, f"volume service on {conf.host}")


if __name__ == "__main__":
    sys.exit(main())
