"""A consuming loop on its own connection that reconnects until it is stopped.

Built on kombu's :class:`~kombu.mixins.ConsumerMixin`, which re-establishes the
connection and re-declares the consumers whenever the broker connection is
lost. This adds what a service needs around it: a thread or a blocking mode,
a readiness signal, a configurable reconnect interval and a prompt ``stop()``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from kombu.connection import Connection
from kombu.mixins import ConsumerMixin

if TYPE_CHECKING:
    from ocs.bus.transport import Bus

LOG = logging.getLogger(__name__)

#: Reconnection attempts start at the bus's reconnect_interval and double up to this.
MAX_RECONNECT_INTERVAL = 30.0


class _Stopping(Exception):
    """Raised inside kombu's reconnect loop to abandon it on stop()."""


class ConsumerThread(ConsumerMixin):
    """Base of the RPC server and the reply router.

    Subclasses define ``get_consumers(Consumer, channel)``. ``poll_interval`` is
    how long one wait for a message lasts on AMQP (the bound on ``stop()``
    latency there); the memory transport is interrupted at once.
    """

    poll_interval: float = 0.1

    def __init__(self, bus: Bus, name: str) -> None:
        self.bus = bus
        self.name = name
        self.connection = bus.connection(consumer=True)
        self.should_stop = False
        self._ready = threading.Event()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None
        self._current: Connection | None = None

    # --- lifecycle ----------------------------------------------------------

    def start(self, wait: float | None = 10.0) -> None:
        """Consume on a daemon thread; wait up to ``wait`` s until consuming."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        self.should_stop = False
        self._wakeup.clear()
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()
        if wait:
            self.wait_ready(wait)

    def serve_forever(self) -> None:
        """Consume on the calling thread until :meth:`stop` (or Ctrl-C)."""
        self.should_stop = False
        self._wakeup.clear()
        try:
            self._main()
        except KeyboardInterrupt:
            self.should_stop = True

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once the consumers are declared and listening."""
        return self._ready.wait(timeout)

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop consuming and wait up to ``timeout`` seconds for the thread."""
        self.should_stop = True
        self._wakeup.set()
        self.interrupt()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                LOG.warning("%s did not stop within %.1f s", self.name, timeout)

    def interrupt(self) -> None:
        """Cut the current wait for messages short (memory transport only)."""
        conn = self._current
        transport = getattr(conn, "_transport", None) if conn is not None else None
        interrupt = getattr(transport, "interrupt", None)
        if interrupt is not None:
            interrupt()

    def _main(self) -> None:
        try:
            while not self.should_stop:
                try:
                    self.run(safety_interval=self.poll_interval)  # returns on stop
                except _Stopping:
                    break
                except Exception:
                    # kombu's loop retries connection errors itself; anything
                    # else must not end the service either.
                    LOG.exception("%s: consuming failed, restarting", self.name)
                    self._ready.clear()
                    self._wakeup.wait(self.bus.reconnect_interval)
        finally:
            self._ready.clear()
            self._current = None

    # --- kombu ConsumerMixin hooks ------------------------------------------

    def create_connection(self) -> Connection:
        return self.bus.connection(consumer=True)

    @contextmanager
    def establish_connection(self) -> Iterator[Connection]:
        with self.create_connection() as conn:
            interval = self.bus.reconnect_interval
            while True:
                self._raise_if_stopping()
                try:
                    conn.ensure_connection(max_retries=0)
                    break
                except self.bus.errors as exc:
                    self.on_connection_error(exc, interval)
                    self._wakeup.wait(interval)
                    interval = min(interval * 2, MAX_RECONNECT_INTERVAL)
            self._current = conn
            try:
                yield conn
            finally:
                self._ready.clear()  # until consumers are declared on a new connection

    def _raise_if_stopping(self) -> None:
        if self.should_stop:
            raise _Stopping()

    def on_connection_error(self, exc: BaseException, interval: float) -> None:
        self._ready.clear()
        LOG.warning("%s: cannot reach the broker, retrying in %.1f s: %s", self.name, interval, exc)

    def on_connection_revived(self) -> None:
        LOG.debug("%s: connected to %r", self.name, self.bus)

    def on_consume_ready(self, connection: Connection, channel: Any, consumers: Any, **kwargs: Any) -> None:
        self._ready.set()

    def on_consume_end(self, connection: Connection, channel: Any) -> None:
        self._ready.clear()

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        LOG.error("%s: dropping a message that is not JSON (%s): %r", self.name, exc, message.body[:200])
        message.reject()
