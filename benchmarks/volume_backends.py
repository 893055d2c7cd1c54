"""Snapshot and clone time of a 1 GiB volume with 10% written, per volume backend (issue 10).

    python -m benchmarks.volume_backends [--runs 3] [--json FILE]

For each backend (``file`` qcow2, ``file`` raw, ``rbd`` on a private single-node
Ceph cluster started for the run, :mod:`tests.framework.ceph`), ``--runs`` times:
create a 1 GiB volume, write 10% of it (ten 10.24 MiB extents spread over the
volume, through qemu-io), then time

- ``create``: :meth:`create` of a blank 1 GiB volume;
- ``snapshot``: :meth:`snapshot` of the written volume (a point-in-time copy);
- ``clone``: :meth:`clone` of a 1 GiB volume from that snapshot (for ``rbd`` a
  clone flattened at once: the new volume owns its bytes);
- ``delete``: deleting the clone, the volume and the snapshot.

Prints the median of each, in seconds. Backend calls only: CreateVolume→available
through the API adds the bus and the database (tens of milliseconds).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ocs.volume.backend import GIB, VolumeBackend
from ocs.volume.backends.file import FileBackend
from ocs.volume.backends.rbd import RbdBackend
from tests.framework.ceph import CephUnavailable, start_cluster

CHUNK = GIB // 100  # ten of them: 10% of 1 GiB


def fill(target: str, fmt: str) -> None:
    commands = []
    for i in range(10):
        commands += ["-c", f"write -P {0x30 + i} {i * GIB // 10} {CHUNK}"]
    subprocess.run(["qemu-io", "-f", fmt, *commands, target], check=True, capture_output=True, timeout=600)


def timed(call: Callable[[], object]) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


def measure(backend: VolumeBackend, target: Callable[[str], str], fmt: str, run: int) -> dict[str, float]:
    vol, snap, clone, blank = f"vol-b{run}", f"snap-b{run}", f"vol-c{run}", f"vol-z{run}"
    out = {"create": timed(lambda: backend.create(blank, 1))}
    backend.create(vol, 1)
    fill(target(vol), fmt)
    out["snapshot"] = timed(lambda: backend.snapshot(vol, snap))
    out["clone"] = timed(lambda: backend.clone(snap, clone, 1))

    def delete() -> None:
        for v in (clone, vol, blank):
            backend.delete(v)
        backend.delete_snapshot(snap)

    out["delete"] = timed(delete)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    scratch = Path(tempfile.mkdtemp(prefix="ocs-bench-volumes-"))
    try:
        for fmt in ("qcow2", "raw"):
            fb = FileBackend(scratch / fmt, volume_format=fmt)
            runs = [measure(fb, lambda v, fb=fb: str(fb.volume_path(v)), fmt, i) for i in range(args.runs)]
            results[f"file-{fmt}"] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        try:
            cluster = start_cluster(scratch / "ceph")
        except CephUnavailable as exc:
            print(f"rbd: skipped ({exc})")
        else:
            try:
                rb = RbdBackend(**cluster.backend_settings())
                auth = f"conf={cluster.conf}:id={cluster.client}:keyring={cluster.client_keyring}"
                runs = [measure(rb, lambda v: f"rbd:{rb.spec(v)}:{auth}", "raw", i) for i in range(args.runs)]
                results["rbd"] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            finally:
                cluster.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{'backend':<12}" + "".join(f"{k:>10}" for k in ("create", "snapshot", "clone", "delete")))
    for name, row in results.items():
        print(f"{name:<12}" + "".join(f"{row[k]:>10.2f}" for k in ("create", "snapshot", "clone", "delete")))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
