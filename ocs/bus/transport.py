"""The bus: connections, topology and thread-safe publishing.

One :class:`Bus` per process (or per test) holds the transport URL and the
exchange name; everything that talks on the bus gets its connections here.

Topology (``E`` is the exchange name from configuration, ``ocs`` by default):

- ``E``: topic exchange (durable) on which services are addressed by topic
  (``scheduler``, ``network``, ``compute.<host>``).
- ``E.<topic>``: the durable queue of a service topic, bound to ``E`` with the
  routing key ``<topic>``. Queue names carry the exchange name so that two
  clouds (or two tests) can share one broker with different exchange names.
- ``E.<service>.fanout``: fanout exchange (durable) of a service's broadcasts;
  each subscriber binds its own exclusive auto-delete queue
  ``E.<service>.fanout.<id>``.
- ``E.reply.<id>``: the reply queue of one :class:`Bus` (exclusive,
  auto-delete), addressed through the default exchange by ``reply_to``.

``memory://`` uses :mod:`ocs.bus.memory` (in-process, event-driven);
``amqp://`` uses py-amqp against RabbitMQ.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable
from time import monotonic, sleep
from typing import TYPE_CHECKING, Any

from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.exceptions import OperationalError
from kombu.messaging import Producer

from ocs import errors
from ocs.bus import memory

if TYPE_CHECKING:
    from ocs.bus.replies import ReplyRouter

LOG = logging.getLogger(__name__)

#: delivery_mode of messages that must survive a broker restart.
PERSISTENT = 2
TRANSIENT = 1


class _Publisher:
    """A connection and a producer, used by one thread at a time."""

    def __init__(self, bus: Bus, confirm: bool) -> None:
        self.bus = bus
        self.confirm = confirm
        self.connection: Connection | None = None
        self.producer: Producer | None = None

    def publish(self, body: Any, timeout: float, **kwargs: Any) -> None:
        if self.producer is None:
            conn = self.bus.connection(
                confirm_publish=self.confirm, connect_timeout=max(0.1, min(timeout, 5.0))
            )
            self.connection = conn
            conn.ensure_connection(max_retries=0)  # one attempt; publish() retries
            self.producer = Producer(conn.default_channel, serializer="json")
        wait = max(0.001, timeout)  # bounds the socket write and the broker's confirm
        self.producer.publish(body, timeout=wait, confirm_timeout=wait if self.confirm else None, **kwargs)

    def reset(self) -> None:
        conn, self.connection, self.producer = self.connection, None, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                LOG.debug("closing a broken publisher connection failed", exc_info=True)


class Bus:
    """Connection factory, topology and publisher pool of one cloud's bus.

    ``url`` is a kombu URL (``memory://`` or ``amqp://user:pw@host:5672//``),
    ``exchange`` the name of the topic exchange, ``rpc_timeout`` the default
    seconds of a call (operations may declare their own), ``reconnect_interval``
    the pause between reconnection attempts, ``heartbeat`` the AMQP heartbeat
    of consuming connections (0 disables it). Thread-safe.
    """

    def __init__(
        self,
        url: str = "memory://",
        exchange: str = "ocs",
        *,
        rpc_timeout: float = 30.0,
        reconnect_interval: float = 1.0,
        heartbeat: float = 30.0,
        max_idle_publishers: int = 8,
        handler_attempts: int = 3,
    ) -> None:
        self.url = url
        self.handler_attempts = handler_attempts
        self.exchange_name = exchange
        self.rpc_timeout = rpc_timeout
        self.reconnect_interval = reconnect_interval
        self.heartbeat = heartbeat
        self.is_memory = url.split(":", 1)[0] == "memory"
        self.exchange = Exchange(exchange, type="topic", durable=True)
        self._max_idle = max_idle_publishers
        self._idle: dict[bool, list[_Publisher]] = {True: [], False: []}
        self._lock = threading.Lock()
        self._replies: ReplyRouter | None = None
        self._closed = False
        probe = self.connection()
        self.errors: tuple[type[BaseException], ...] = (
            (OperationalError, OSError) + tuple(probe.connection_errors) + tuple(probe.channel_errors)
        )

    # --- connections and topology -------------------------------------------

    def connection(
        self, *, consumer: bool = False, confirm_publish: bool = False, connect_timeout: float = 5.0
    ) -> Connection:
        """A new, not yet connected kombu connection to this bus."""
        if self.is_memory:
            return Connection(hostname="localhost", transport=memory.Transport)
        options = {"confirm_publish": True} if confirm_publish else {}
        return Connection(
            self.url,
            heartbeat=self.heartbeat if consumer else 0,
            connect_timeout=connect_timeout,
            transport_options=options,
        )

    def topic_queue(self, topic: str) -> Queue:
        """The durable queue on which the service listening on ``topic`` consumes.

        A message rejected from it goes to the dead-letter exchange (RabbitMQ's DLX;
        the memory transport drops it). A queue declared without that argument by an
        older OCS must be deleted once (RabbitMQ refuses to redeclare it otherwise)."""
        return Queue(
            f"{self.exchange_name}.{topic}",
            exchange=self.exchange,
            routing_key=topic,
            durable=True,
            auto_delete=False,
            queue_arguments={"x-dead-letter-exchange": self.dead_letter_exchange.name},
        )

    @property
    def dead_letter_exchange(self) -> Exchange:
        """Where the broker sends what a service gave up on (a fanout exchange)."""
        return Exchange(f"{self.exchange_name}.dead", type="fanout", durable=True)

    def dead_letter_queue(self) -> Queue:
        """The durable queue that keeps dead letters until an operator looks at them."""
        exchange = self.dead_letter_exchange
        return Queue(exchange.name, exchange=exchange, durable=True, auto_delete=False)

    def fanout_exchange(self, service: str) -> Exchange:
        """The exchange of ``service``'s broadcasts."""
        return Exchange(f"{self.exchange_name}.{service}.fanout", type="fanout", durable=True)

    def fanout_queue(self, service: str) -> Queue:
        """A new subscriber queue for ``service``'s broadcasts (one per server)."""
        exchange = self.fanout_exchange(service)
        return Queue(
            f"{exchange.name}.{uuid.uuid4().hex[:12]}",
            exchange=exchange,
            durable=False,
            auto_delete=True,
            exclusive=True,
        )

    def reply_queue(self) -> Queue:
        """A new reply queue (exclusive, auto-delete) on the default exchange."""
        name = f"{self.exchange_name}.reply.{uuid.uuid4().hex}"
        return Queue(name, routing_key=name, durable=False, auto_delete=True, exclusive=True)

    @property
    def replies(self) -> ReplyRouter:
        """The reply router of this bus, started on first use."""
        with self._lock:
            if self._closed:
                raise errors.ServiceUnavailable("The message bus is closed.")
            if self._replies is None:
                from ocs.bus.replies import ReplyRouter

                self._replies = ReplyRouter(self)
                self._replies.start(wait=None)  # callers wait within their own timeouts
            return self._replies

    # --- publishing ---------------------------------------------------------

    def publish(
        self,
        body: Any,
        *,
        exchange: Exchange | str,
        routing_key: str,
        timeout: float,
        persistent: bool = False,
        declare: Iterable[Exchange | Queue] = (),
        **properties: Any,
    ) -> None:
        """Publish ``body`` (JSON) and retry on connection errors until ``timeout``.

        Persistent messages (``delivery_mode=2``) are published with publisher
        confirms: this returns once the broker has taken responsibility for them.
        Raises :class:`ocs.errors.ServiceUnavailable` if the broker cannot be
        reached in time.
        """
        deadline = monotonic() + timeout
        publisher = self._checkout(confirm=persistent)
        try:
            while True:
                try:
                    publisher.publish(
                        body,
                        timeout=deadline - monotonic(),
                        exchange=exchange,
                        routing_key=routing_key,
                        declare=list(declare),
                        delivery_mode=PERSISTENT if persistent else TRANSIENT,
                        **properties,
                    )
                    return
                except self.errors as exc:
                    publisher.reset()
                    self._retry_or_fail(exc, deadline, routing_key)
        finally:
            self._checkin(publisher)

    def _retry_or_fail(self, exc: BaseException, deadline: float, routing_key: str) -> None:
        remaining = deadline - monotonic()
        if remaining <= 0 or self._closed:
            raise errors.ServiceUnavailable(
                f"The message bus is unreachable ({type(exc).__name__}); could not send to {routing_key}."
            ) from exc
        LOG.warning("publish to %s failed (%s), retrying", routing_key, exc)
        sleep(min(self.reconnect_interval, remaining))

    def _checkout(self, confirm: bool) -> _Publisher:
        with self._lock:
            idle = self._idle[confirm]
            if idle:
                return idle.pop()
        return _Publisher(self, confirm)

    def _checkin(self, publisher: _Publisher) -> None:
        with self._lock:
            idle = self._idle[publisher.confirm]
            if not self._closed and len(idle) < self._max_idle:
                idle.append(publisher)
                return
        publisher.reset()

    def delete_topology(self, topics: Iterable[str] = (), services: Iterable[str] = ()) -> None:
        """Delete the queues of ``topics``, the fanout exchanges of ``services``
        and the topic exchange, with whatever messages they hold (clean-up)."""
        entities: list[Exchange | Queue] = [self.topic_queue(t) for t in topics]
        entities += [self.fanout_exchange(s) for s in services]
        entities += [self.dead_letter_queue(), self.dead_letter_exchange, self.exchange]
        absent: tuple[type[BaseException], ...] = (KeyError, *self.errors)
        with self.connection() as conn:
            for entity in entities:
                try:
                    entity.bind(conn.default_channel).delete()
                except absent as exc:
                    LOG.debug("could not delete %s: %s", entity.name, exc)

    # --- lifecycle ----------------------------------------------------------

    def close(self) -> None:
        """Stop the reply router and close the publishers' connections."""
        with self._lock:
            self._closed = True
            replies, self._replies = self._replies, None
            publishers = self._idle[True] + self._idle[False]
            self._idle = {True: [], False: []}
        if replies is not None:
            replies.stop()
        for publisher in publishers:
            publisher.reset()

    def __enter__(self) -> Bus:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Bus {self.exchange_name!r} on {Connection(self.url).as_uri()}>"
