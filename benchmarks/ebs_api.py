"""CreateVolume→available and AttachVolume→attached latency through the EC2 API, per volume
backend (issue 10).

    python -m benchmarks.ebs_api [--runs 20] [--backends file,rbd] [--json FILE]

For each backend an all-in-one cloud (fake hypervisor, SQLite, in-process bus) is started on
127.0.0.1 (``rbd``: on a private single-node Ceph cluster started for the run, as the tests
do); one instance is launched and, ``--runs`` times, a 1 GiB volume is created, attached to
it, detached and deleted. The client polls DescribeVolumes every 10 ms and reports, per
backend, the p50/p95 of:

- ``create``: CreateVolume's call until DescribeVolumes says ``available``;
- ``attach``: AttachVolume's call until the attachment says ``attached``;
- ``detach``: DetachVolume's call until the volume is ``available`` again.

The fake hypervisor's attach is bookkeeping only: the figures are OCS's own path (API,
bus, volume service, backend, agent); a libvirt hot-plug adds QEMU's part.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

POLL = 0.01


def _until(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for a volume state")
        time.sleep(POLL)


def _state(ec2: Any, volume_id: str) -> str:
    """The volume's state, or its single attachment's when it has one."""
    volume = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    attachments = volume.get("Attachments", [])
    return str(attachments[0]["State"] if attachments else volume["State"])


def _wait(ec2: Any, volume_id: str, state: str) -> None:
    _until(lambda: _state(ec2, volume_id) == state)


def measure(cloud: Any, runs: int) -> dict[str, list[float]]:
    ec2 = cloud.client()
    [image] = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"]
    [made] = ec2.run_instances(ImageId=image["ImageId"], MinCount=1, MaxCount=1)["Instances"]
    iid, zone = made["InstanceId"], made["Placement"]["AvailabilityZone"]
    _until(
        lambda: (
            ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]
            == "running"
        )
    )
    out: dict[str, list[float]] = {"create": [], "attach": [], "detach": []}
    for _ in range(runs):
        started = time.monotonic()
        vid = ec2.create_volume(Size=1, AvailabilityZone=zone)["VolumeId"]
        _wait(ec2, vid, "available")
        out["create"].append(time.monotonic() - started)

        started = time.monotonic()
        ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/sdf")
        _wait(ec2, vid, "attached")
        out["attach"].append(time.monotonic() - started)

        started = time.monotonic()
        ec2.detach_volume(VolumeId=vid)
        _wait(ec2, vid, "available")
        out["detach"].append(time.monotonic() - started)
        ec2.delete_volume(VolumeId=vid)
    ec2.terminate_instances(InstanceIds=[iid])
    return out


def _rbd_overrides(cluster: Any) -> dict[str, dict[str, Any]]:
    settings = cluster.backend_settings()
    return {
        "volume": {
            "backend": "rbd",
            "rbd_pool": settings["pool"],
            "rbd_ceph_conf": settings["ceph_conf"],
            "rbd_user": settings["user"],
            "rbd_keyring": settings["keyring"],
            "rbd_timeout": settings["timeout"],
        }
    }


def run_backend(backend: str, runs: int, scratch: Path) -> dict[str, list[float]]:
    from tests.framework.ceph import start_cluster
    from tests.framework.cloud import Cloud

    cluster = start_cluster(scratch / "ceph") if backend == "rbd" else None
    try:
        overrides = _rbd_overrides(cluster) if cluster is not None else {}
        cloud = Cloud(scratch / f"cloud-{backend}", overrides).start()
        try:
            return measure(cloud, runs)
        finally:
            cloud.stop()
    finally:
        if cluster is not None:
            cluster.stop()


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ebs_api", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--backends", default="file,rbd")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="ocs-ebs-bench-") as scratch:
        for backend in args.backends.split(","):
            results[backend] = run_backend(backend, args.runs, Path(scratch))
    print(f"{'backend':8} {'step':7} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9}")
    for backend, steps in results.items():
        for step, values in steps.items():
            mean = 1000 * statistics.fmean(values)
            print(f"{backend:8} {step:7} {_ms(values, 0.5):9.1f} {_ms(values, 0.95):9.1f} {mean:9.1f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
