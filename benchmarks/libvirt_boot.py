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

Prints p50/min/max of each (the issue's figure is the p50 of ``userspace``;
target ≤ 3.5 s under QEMU software emulation) and the domain type used.
Needs libvirtd (virtlogd, then libvirtd) and QEMU; guest files go to a
temporary directory under /var/tmp that QEMU's user can reach.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

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
    args = parser.parse_args(argv)
    image = guest_image()
    workdir = Path(tempfile.mkdtemp(prefix="ocs-libvirt-boot-", dir="/var/tmp"))
    workdir.chmod(0o755)
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
    result = summary(samples)
    print(
        f"libvirt boot, domain type {driver.virt_type}, {args.runs} runs, image {image.manifest['kernel_package']}"
    )
    print(f"{'from spawn() to':<28}{'p50':>8}{'min':>8}{'max':>8}")
    labels = {
        "spawn": "spawn() returned",
        "userspace": "'OCS-TEST-IMAGE: init'",
        "ready": "'userspace ready'",
        "destroy": "(destroy, by itself)",
    }
    for key, label in labels.items():
        row = result[key]
        print(f"{label:<28}{row['p50']:>7.2f}s{row['min']:>7.2f}s{row['max']:>7.2f}s")
    if args.json:
        args.json.write_text(
            json.dumps({"virt_type": driver.virt_type, "samples": samples, "summary": result}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
