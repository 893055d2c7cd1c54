"""Replies to calls: one reply queue per :class:`~ocs.bus.transport.Bus`.

Every call carries ``reply_to`` (this router's queue) and a fresh
``correlation_id``. The router consumes the queue on its own thread and hands
each reply to the caller waiting for that correlation id, so any number of
threads can have calls outstanding at once. A reply for which nobody waits
any more (its caller timed out) is dropped.

If the broker connection drops, the router reconnects with a new reply queue;
replies sent to the old one are lost and their callers time out.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from kombu.entity import Queue

from ocs.bus.consumer import ConsumerThread

if TYPE_CHECKING:
    from ocs.bus.transport import Bus

LOG = logging.getLogger(__name__)


class Pending:
    """A caller's wait for one reply."""

    __slots__ = ("event", "reply")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reply: dict[str, Any] | None = None

    def wait(self, timeout: float) -> dict[str, Any] | None:
        """The reply body, or None if none came within ``timeout`` seconds."""
        if self.event.wait(max(0.0, timeout)):
            return self.reply
        return None


class ReplyRouter(ConsumerThread):
    """Consumes the reply queue and routes replies by correlation id."""

    def __init__(self, bus: Bus) -> None:
        super().__init__(bus, name=f"ocs-bus-replies-{bus.exchange_name}")
        self.queue: Queue = bus.reply_queue()
        self._pending: dict[str, Pending] = {}
        self._lock = threading.Lock()
        self._connected_once = False

    @property
    def address(self) -> str:
        """The ``reply_to`` of calls made now."""
        return str(self.queue.name)

    def expect(self, correlation_id: str) -> Pending:
        pending = Pending()
        with self._lock:
            self._pending[correlation_id] = pending
        return pending

    def forget(self, correlation_id: str) -> None:
        with self._lock:
            self._pending.pop(correlation_id, None)

    def get_consumers(self, Consumer: Any, channel: Any) -> list[Any]:
        return [Consumer(queues=[self.queue], on_message=self._on_reply, accept=["json"], no_ack=True)]

    def on_connection_revived(self) -> None:
        # An exclusive queue dies with its connection and may stay locked for a
        # while on the broker: take a new name on every (re)connection.
        if self._connected_once:
            self.queue = self.bus.reply_queue()
        self._connected_once = True

    def _on_reply(self, message: Any) -> None:
        correlation_id = message.properties.get("correlation_id")
        with self._lock:
            pending = self._pending.pop(correlation_id, None)
        if pending is None:
            LOG.debug("dropping a reply nobody waits for: %s", correlation_id)
            return
        try:
            pending.reply = message.decode()
        except Exception:
            LOG.exception("undecodable reply %s", correlation_id)
            pending.reply = {
                "error": {"class": "InternalError", "message": "An internal error has occurred."}
            }
        pending.event.set()

    def on_consume_end(self, connection: Any, channel: Any) -> None:
        super().on_consume_end(connection, channel)
        if self.should_stop:
            try:
                self.queue.bind(channel).delete()
            except self.bus.errors:
                LOG.debug("could not delete reply queue %s", self.address, exc_info=True)
