"""``ocs-manage bus dead-letters [--requeue]``: casts the services gave up on."""

from __future__ import annotations

import argparse

from oslo_config import cfg

from ocs.bus import deadletters
from ocs.cmd.common import bus_from_conf


def dead_letters(conf: cfg.ConfigOpts, args: argparse.Namespace) -> int:
    bus = bus_from_conf(conf)
    if bus.is_memory:
        print("the in-memory bus keeps no dead letters (they are logged and dropped)")
        return 0
    try:
        letters = (deadletters.requeue if args.requeue else deadletters.peek)(bus, args.limit)
    finally:
        bus.close()
    verb = "requeued" if args.requeue else "dead letters"
    print(f"{len(letters)} {verb} (queue {bus.dead_letter_exchange.name})")
    for letter in letters:
        payload = letter.payload if len(letter.payload) <= 120 else letter.payload[:117] + "..."
        print(f"  {letter.queue}  {letter.operation}  failed {letter.failures}x ({letter.reason})  {payload}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    bus = sub.add_parser("bus", help="the message bus")
    bsub = bus.add_subparsers(dest="bus_command", required=True, metavar="COMMAND")
    p = bsub.add_parser(
        "dead-letters",
        help="list the casts services gave up on ([bus] handler_attempts failures); --requeue sends them back",
    )
    p.add_argument("--requeue", action="store_true", help="send them back to the queues they came from")
    p.add_argument("--limit", type=int, default=1000, help="at most this many (default 1000)")
    p.set_defaults(func=dead_letters)
