"""An in-process kombu transport that wakes consumers instead of polling them.

kombu's ``memory://`` transport keeps messages in process-global queues and its
consumers poll them: an idle consumer sleeps ``polling_interval`` (1 s by
default) between looks, so a request/reply round trip costs up to two sleeps.
A short interval makes it fast but burns CPU in every idle consumer thread.

This transport keeps kombu's memory semantics (process-global queues and
bindings, topic, direct and fanout exchanges) and replaces the sleep with an
event: every put sets the wake-up event of each connection that consumes the
queue, so a waiting consumer reacts within microseconds and an idle one costs
nothing. :class:`ocs.bus.transport.Bus` uses it for ``memory://`` URLs.

Its state is separate from kombu's own ``memory://`` transport but is still
shared by every connection in the process: tests isolate themselves with a
unique exchange name (queue names are prefixed with it).
"""

from __future__ import annotations

import threading
import weakref
from queue import Empty
from time import monotonic
from typing import Any

from kombu.transport import memory, virtual


class _Wakeups:
    """Which live transports consume which queue, to wake them on a put."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._transports: weakref.WeakSet[Transport] = weakref.WeakSet()

    def register(self, transport: Transport) -> None:
        with self._lock:
            self._transports.add(transport)

    def unregister(self, transport: Transport) -> None:
        with self._lock:
            self._transports.discard(transport)

    def notify(self, queue: str) -> None:
        with self._lock:
            transports = list(self._transports)
        for transport in transports:
            callbacks = transport._callbacks
            if callbacks is not None and queue in callbacks:
                transport.wakeup.set()


_WAKEUPS = _Wakeups()


class Channel(memory.Channel):
    """kombu's memory channel whose puts wake the consuming connections."""

    #: Queues of this transport; process-global, separate from kombu's memory://.
    queues: dict[str, Any] = {}

    #: Unacknowledged messages go back to their queue when a channel closes,
    #: as RabbitMQ does when a consumer's connection goes away.
    do_restore = True

    def _put(self, queue: str, message: Any, **kwargs: Any) -> None:
        super()._put(queue, message, **kwargs)
        _WAKEUPS.notify(queue)

    def _put_fanout(self, exchange: str, message: Any, routing_key: str | None = None, **kwargs: Any) -> None:
        for queue in self._lookup(exchange, routing_key):
            self._put(queue, message)

    def _restore(self, message: Any) -> None:
        # Tell the next consumer, as AMQP's ``redelivered`` flag does.
        message.delivery_info["redelivered"] = True
        super()._restore(message)

    def queue_delete(
        self, queue: str, if_unused: bool = False, if_empty: bool = False, **kwargs: Any
    ) -> None:
        if if_empty and self._size(queue):
            return
        super().queue_delete(queue, if_unused=if_unused, if_empty=if_empty, **kwargs)
        self.queues.pop(queue, None)

    def close(self) -> None:
        # kombu's memory channel empties nothing here either; it only resets an
        # instance attribute, which would hide the shared queues from this channel.
        virtual.Channel.close(self)


class Transport(memory.Transport):
    """kombu's memory transport with event-driven ``drain_events``."""

    Channel = Channel
    global_state = virtual.BrokerState()
    driver_name = "ocs-memory"

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.wakeup = threading.Event()
        self._interrupted = False
        _WAKEUPS.register(self)

    def interrupt(self) -> None:
        """Make a waiting (or the next) ``drain_events`` return at once."""
        self._interrupted = True
        self.wakeup.set()

    def close_connection(self, connection: Any) -> None:
        _WAKEUPS.unregister(self)
        super().close_connection(connection)

    def drain_events(self, connection: Any, timeout: float | None = None, **kwargs: Any) -> None:
        """Deliver one message, waiting up to ``timeout`` seconds for it."""
        cycle = self.cycle
        assert cycle is not None
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            self.wakeup.clear()
            try:
                cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                pass
            if self._interrupted:
                self._interrupted = False
                raise TimeoutError()
            if deadline is None:
                self.wakeup.wait()
                continue
            remaining = deadline - monotonic()
            if remaining <= 0:
                raise TimeoutError()
            self.wakeup.wait(remaining)
