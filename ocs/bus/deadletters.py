"""Dead letters: casts a service gave up on (see :class:`ocs.bus.server.RpcServer`).

On RabbitMQ a topic queue's rejected messages go, through the dead-letter exchange
``<exchange>.dead``, to the durable queue of the same name, with the broker's
``x-death`` header (the queue they came from, why, when) and OCS's failure count.
:func:`peek` lists them without taking them; :func:`requeue` sends each back to the
queue it came from with its count reset (once the fault is fixed), and acknowledges
it only after the broker confirmed the copy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ocs.bus.transport import Bus

#: Seconds one broker operation may take.
TIMEOUT = 10.0


@dataclass(frozen=True)
class DeadLetter:
    queue: str  # where it was consumed from
    operation: str
    failures: int
    reason: str  # the broker's: "rejected", "expired" ...
    payload: str  # JSON, as sent


def _describe(message: Any) -> DeadLetter:
    from ocs.bus.server import FAILURES_HEADER

    headers = message.headers or {}
    death = (headers.get("x-death") or [{}])[0]
    body = json.loads(message.body) if isinstance(message.body, (bytes, str)) else {}
    return DeadLetter(
        queue=str(death.get("queue", "?")),
        operation=str(body.get("op", "?")) if isinstance(body, dict) else "?",
        # the header counts the failures before the last run (a message is rejected as it came)
        failures=int(headers.get(FAILURES_HEADER) or 0) + 1,
        reason=str(death.get("reason", "?")),
        payload=json.dumps(body.get("payload") if isinstance(body, dict) else body, sort_keys=True),
    )


def peek(bus: Bus, limit: int = 1000) -> list[DeadLetter]:
    """Up to ``limit`` dead letters, oldest first; they all stay in the queue."""
    found: list[DeadLetter] = []
    with bus.connection() as conn:
        channel = conn.channel()
        queue = bus.dead_letter_queue().bind(channel)
        queue.declare()
        while len(found) < limit:
            message = queue.get(no_ack=False)
            if message is None:
                break
            found.append(_describe(message))
        channel.close()  # every message taken unacknowledged goes back, in order
    return found


def requeue(bus: Bus, limit: int = 1000) -> list[DeadLetter]:
    """Send up to ``limit`` dead letters back to their queues; what was sent."""
    from ocs.bus.server import FAILURES_HEADER

    sent: list[DeadLetter] = []
    with bus.connection() as conn:
        channel = conn.channel()
        queue = bus.dead_letter_queue().bind(channel)
        queue.declare()
        while len(sent) < limit:
            message = queue.get(no_ack=False)
            if message is None:
                break
            letter = _describe(message)
            headers = {
                k: v for k, v in (message.headers or {}).items() if k not in ("x-death", FAILURES_HEADER)
            }
            bus.publish(
                json.loads(message.body),
                exchange="",
                routing_key=letter.queue,
                timeout=TIMEOUT,
                persistent=True,
                headers=headers,
            )
            message.ack()
            sent.append(letter)
        channel.close()
    return sent
