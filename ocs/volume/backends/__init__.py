"""The volume backends, by the name ``[volume] backend`` gives them.

A plain dictionary: a backend is a class whose constructor takes keyword
settings. Only ``file`` exists so far; ``rbd`` (Ceph) is the next one.
"""

from __future__ import annotations

from typing import Any

from ocs.volume.backend import VolumeBackend
from ocs.volume.backends.file import FileBackend

BACKENDS: dict[str, type[VolumeBackend]] = {"file": FileBackend}


def make_backend(name: str, **settings: Any) -> VolumeBackend:
    """The backend ``name`` built with ``settings``; ValueError for an unknown name."""
    try:
        cls = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown volume backend {name!r} (known: {', '.join(sorted(BACKENDS))})") from None
    return cls(**settings)
