"""Options of the [images] group: where image bytes are kept."""

from __future__ import annotations

from pathlib import Path

from oslo_config import cfg

GROUP = "images"

OPTS = [
    cfg.StrOpt(
        "store_dir",
        sample_default="<state_dir>/images",
        help="Directory of the image store: the bytes of every image imported with "
        "'ocs-manage image import', one file per distinct content, named by its "
        "SHA-256 checksum. Defaults to the 'images' directory inside state_dir. "
        "Every process that imports, serves or removes image bytes (ocs-manage, the "
        "all-in-one) must see the same directory.",
    ),
    cfg.BoolOpt(
        "default_image",
        default=True,
        help="Whether the all-in-one registers, on its first start, a public machine "
        "image named 'ocs-demo' (a blank 1 MiB raw disk, enough for the simulated "
        "hypervisor) so that RunInstances works at once.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(OPTS, group=GROUP)


def store_path(conf: cfg.ConfigOpts) -> Path:
    """The image store directory configured in ``conf`` (read at the process edge)."""
    if conf.images.store_dir:
        return Path(conf.images.store_dir).expanduser()
    return Path(conf.state_dir).expanduser() / "images"
