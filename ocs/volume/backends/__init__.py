"""The volume backends, by the name ``[volume] backend`` gives them.

A plain dictionary: a backend is a class whose constructor takes keyword
settings: ``file`` (image files made with qemu-img) and ``rbd`` (Ceph RBD images).
"""

from __future__ import annotations

from typing import Any

from ocs.volume.backend import VolumeBackend
from ocs.volume.backends.file import FileBackend
from ocs.volume.backends.rbd import RbdBackend

BACKENDS: dict[str, type[VolumeBackend]] = {"file": FileBackend, "rbd": RbdBackend}


def make_backend(name: str, **settings: Any) -> VolumeBackend:
    """The backend ``name`` built with ``settings``; ValueError for an unknown name."""
    try:
        cls = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown volume backend {name!r} (known: {', '.join(sorted(BACKENDS))})") from None
    return cls(**settings)
