"""``ocs-manage all-in-one``: the whole cloud in one process."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

import platformdirs
from oslo_config import cfg

from ocs.allinone import AllInOne
from ocs.wsgi_server import parse_listen


def run(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    if args.state_dir:
        conf.set_override("state_dir", args.state_dir)
    if args.listen:
        parse_listen(args.listen)
        conf.set_override("listen", args.listen, group="api")
    if args.hypervisor:
        conf.set_override("driver", args.hypervisor, group="compute")
    if args.fake_hosts is not None:
        conf.set_override("fake_hosts", args.fake_hosts, group="compute")
    cloud = AllInOne(conf)

    def _stop(signum: int, frame: FrameType | None) -> None:
        cloud.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    cloud.start()
    print(f"OCS all-in-one is running at {cloud.endpoint()}", flush=True)
    print(f"  state directory  {cloud.state_dir}")
    print(f"  configuration    {cloud.conf_file}")
    print(f"  credentials      {cloud.ocsrc}   (source it, then: aws ec2 describe-regions)")
    print(f"  compute hosts    {', '.join(a.settings.host for a in cloud.agents)}")
    if conf.compute.driver == "libvirt" and not cloud.has_bootable_image():
        print("  no bootable image is registered for real VMs; build and register the OCS test image with:")
        print(
            f"    {sys.executable} -m ocs.images.test_image ~/.cache/ocs-test-image"
            f" | OCS_CONFIG_FILE={cloud.conf_file} sh"
        )
    print("Stop it with Ctrl-C.", flush=True)
    sys.stdout.flush()
    cloud.serve_forever()
    print("OCS all-in-one stopped.", flush=True)
    return 0


def _host_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must be between 1 and 1000, not {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("all-in-one", help="run every service in one process (SQLite, in-memory bus)")
    p.add_argument(
        "--state-dir",
        help=f"directory for the database, keys and ocsrc (default {platformdirs.user_data_dir('ocs')})",
    )
    p.add_argument("--listen", help="HOST:PORT of the EC2 API (default 127.0.0.1:8773)")
    p.add_argument("--hypervisor", choices=["fake", "libvirt"], help="hypervisor driver (default fake)")
    p.add_argument(
        "--fake-hosts",
        type=_host_count,
        metavar="N",
        help="simulated compute hosts with the fake driver, spread over the availability zones (default 1)",
    )
    p.set_defaults(func=run)
