"""Boot time of a real guest through the libvirt driver (issue 5).

    python -m benchmarks.libvirt_boot [--runs 5] [--uri qemu:///system] [--json FILE]

Spawns the OCS test image (``tools/build-test-image``, built once into
``~/.cache/ocs-test-image``) with :class:`~ocs.compute_agent.libvirt.driver.LibvirtDriver`
``--runs`` times, one guest at a time, and measures from the call to ``spawn``
to the guest's markers on its serial console:

- ``spawn``: until ``spawn`` returned (image cache, overlay, config drive,
  define, start; the image is cached by a first, unmeasured run);
- ``userspace``: until ``OCS-TEST-IMAGE: init`` (the guest's first userspace
  line: kernel boot done);
- ``ready``: until ``OCS-TEST-IMAGE: userspace ready`` (modules loaded, config
  drive read);
- ``destroy``: how long ``destroy`` of the running guest took.

With ``--api`` the clock starts at RunInstances instead, through the whole path
(boto3 → API → scheduler → agent → libvirt) of an all-in-one on 127.0.0.1, and
the markers are read with GetConsoleOutput: what a user of the cloud waits for.
``spawn`` is then the time until DescribeInstances shows ``running``, and
``destroy`` TerminateInstances until ``terminated``.

Prints p50/min/max of each (the issue's figure is the p50 of ``userspace``;
target ≤ 3.5 s under QEMU software emulation) and the domain type used.
Needs libvirtd (virtlogd, then libvirtd) and QEMU; guest files go to a
temporary directory under /var/tmp that QEMU's user can reach.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ocs.compute_agent.libvirt.driver import LibvirtDriver
from tests.framework.guest_image import MARK_INIT, MARK_READY, GuestImage, guest_image

POLL = 0.005


def wait_marker(read: Callable[[], bytes], marker: bytes, timeout: float) -> float:
    """Seconds on the monotonic clock when ``marker`` appeared in ``read()``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker in read():
            return time.monotonic()
        time.sleep(POLL)
    raise TimeoutError(f"{marker!r} did not appear within {timeout:.0f} s")


def one_boot(driver: LibvirtDriver, image: GuestImage, timeout: float) -> dict[str, float]:
    spec = image.spec()
    iid = spec.instance_id
    started = time.monotonic()
    driver.spawn(spec)
    spawned = time.monotonic()
    try:
        userspace = wait_marker(lambda: driver.console_output(iid), MARK_INIT, timeout)
        ready = wait_marker(lambda: driver.console_output(iid), MARK_READY, timeout)
    finally:
        before_destroy = time.monotonic()
        driver.destroy(iid)
    return {
        "spawn": spawned - started,
        "userspace": userspace - started,
        "ready": ready - started,
        "destroy": time.monotonic() - before_destroy,
    }


def one_api_boot(ec2: Any, ami: str, timeout: float) -> dict[str, float]:
    started = time.monotonic()
    iid = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]

    def console() -> bytes:
        return str(ec2.get_console_output(InstanceId=iid).get("Output", "")).encode()

    def state() -> str:
        return str(
            ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]
        )

    try:
        running = wait_marker(lambda: state().encode(), b"running", timeout)
        userspace = wait_marker(console, MARK_INIT, timeout)
        ready = wait_marker(console, MARK_READY, timeout)
    finally:
        before_destroy = time.monotonic()
        ec2.terminate_instances(InstanceIds=[iid])
        wait_marker(lambda: state().encode(), b"terminated", timeout)
    return {
        "spawn": running - started,
        "userspace": userspace - started,
        "ready": ready - started,
        "destroy": time.monotonic() - before_destroy,
    }


def api_samples(
    uri: str, workdir: Path, image: GuestImage, runs: int, timeout: float
) -> list[dict[str, float]]:
    """``runs`` boots through the API of an all-in-one on the libvirt driver (plus a warm-up)."""
    from tests.framework.cloud import Cloud
    from tests.integration.libvirt.test_api_path import register

    overrides = {
        "DEFAULT": {"host": f"bench-{os.getpid()}"},
        "compute": {"driver": "libvirt"},
        "libvirt": {
            "uri": uri,
            "instances_path": str(workdir / "instances"),
            "image_cache_path": str(workdir / "cache"),
        },
    }
    cloud = Cloud(workdir / "state", overrides).start()
    try:
        ec2 = cloud.client()
        ami = register(cloud, image)
        one_api_boot(ec2, ami, timeout)  # warm-up: fills the image cache
        return [one_api_boot(ec2, ami, timeout) for _ in range(runs)]
    finally:
        cloud.stop()


def summary(samples: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {
        key: {
            "p50": statistics.median(s[key] for s in samples),
            "min": min(s[key] for s in samples),
            "max": max(s[key] for s in samples),
        }
        for key in samples[0]
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.libvirt_boot", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--runs", type=int, default=5, help="measured boots (default %(default)s)")
    parser.add_argument("--uri", default="qemu:///system", help="libvirt URI (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for a marker")
    parser.add_argument("--json", type=Path, help="also write the samples and summary here")
    parser.add_argument("--api", action="store_true", help="from RunInstances, through an all-in-one's API")
    args = parser.parse_args(argv)
    image = guest_image()
    workdir = Path(tempfile.mkdtemp(prefix="ocs-libvirt-boot-", dir="/var/tmp"))
    workdir.chmod(0o755)
    if args.api:
        try:
            samples = api_samples(args.uri, workdir, image, args.runs, args.timeout)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return report(args, "RunInstances", "kvm or qemu (as probed)", image, samples)
    driver = LibvirtDriver(
        "bench",
        uri=args.uri,
        instances_path=str(workdir / "instances"),
        image_cache_path=str(workdir / "cache"),
    )
    try:
        driver.init_host()
        one_boot(driver, image, args.timeout)  # warm-up: fills the image cache
        samples = [one_boot(driver, image, args.timeout) for _ in range(args.runs)]
    finally:
        driver.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return report(args, "spawn()", driver.virt_type, image, samples)


def report(args: Any, start: str, virt_type: str, image: GuestImage, samples: list[dict[str, float]]) -> int:
    result = summary(samples)
    print(
        f"libvirt boot, domain type {virt_type}, {args.runs} runs, image {image.manifest['kernel_package']}"
    )
    print(f"{'from ' + start + ' to':<28}{'p50':>8}{'min':>8}{'max':>8}")
    labels = {
        "spawn": "spawn() returned" if start == "spawn()" else "state running",
        "userspace": "'OCS-TEST-IMAGE: init'",
        "ready": "'userspace ready'",
        "destroy": "(destroy, by itself)",
    }
    for key, label in labels.items():
        row = result[key]
        print(f"{label:<28}{row['p50']:>7.2f}s{row['min']:>7.2f}s{row['max']:>7.2f}s")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"virt_type": virt_type, "start": start, "samples": samples, "summary": result}, indent=2
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
