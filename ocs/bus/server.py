"""The service runner: consume a service's queue and dispatch to an endpoint.

:class:`RpcServer` takes the same :class:`~ocs.bus.rpc.RpcClient` subclass that
callers use (its class body is the table of operations) and an endpoint object
with one method per operation, named like it, taking the request payload and
returning the response payload (calls) or None::

    server = RpcServer(bus, SchedulerClient, SchedulerEndpoint(...))
    server.start()            # on a thread; or server.serve_forever() in a process
    ...
    server.stop()

Handlers run on a pool of ``workers`` threads; the consuming thread only
receives, dispatches and acknowledges (kombu channels are not thread-safe), so
heartbeats keep flowing while a handler runs for long. A message is
acknowledged only after its handler returned:

- a call's result or error goes back to the caller, then the message is acked;
  an :class:`~ocs.errors.OcsError` travels as itself, anything else as a bare
  ``InternalError`` (the traceback is logged here);
- a cast whose handler raises an ``OcsError`` is acked (retrying cannot help);
  an exception that ``transient`` recognises (the service's database is
  unreachable) is not the message's fault: the handler is run again, with a
  backoff, until it succeeds, and the message stays unacknowledged meanwhile
  (nothing is lost however long the outage; at stop it is requeued);
  any other exception (a bug, a poison message) sends it round again, to the end of
  its queue, with a count of its failures in a header; once it has failed the bus's
  ``handler_attempts`` times it is rejected, and the broker moves it to the
  dead-letter queue (``<exchange>.dead``), logged, where an operator finds it
  (``ocs-manage bus dead-letters``); a broadcast's failing message is dropped
  (logged) after one redelivery;
- a message whose handler never finished (crash, kill, lost connection) stays
  unacked and the broker delivers it again.

Lost broker connections are re-established automatically (kombu's
ConsumerMixin) with the bus's ``reconnect_interval``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from queue import Empty, SimpleQueue
from time import monotonic
from typing import Any

from kombu.entity import Queue

from ocs import errors
from ocs.bus.consumer import ConsumerThread
from ocs.bus.messages import error_to_wire, from_wire, to_wire
from ocs.bus.rpc import DEADLINE_HEADER, Kind, Operation, RpcClient
from ocs.bus.transport import Bus

LOG = logging.getLogger(__name__)

ACK, REQUEUE, REJECT = "ack", "requeue", "reject"

#: How often the consuming thread looks for finished handlers while some run
#: (AMQP; the memory transport is woken at once).
ACK_INTERVAL = 0.002

#: Seconds a reply may take to publish.
REPLY_TIMEOUT = 5.0

#: Backoff between runs of a cast's handler that failed for a transient reason.
TRANSIENT_BACKOFF = (0.5, 5.0)  # first, longest

#: The header counting the runs of a cast's handler that failed (see RpcServer).
FAILURES_HEADER = "x-ocs-failures"


class RpcServer(ConsumerThread):
    """Serves ``api``'s operations on ``topic`` with ``endpoint``'s methods.

    ``topic`` is the concrete routing key to listen on (required when the
    api's topic is a template such as ``compute.{host}``). When the api
    declares fanout operations the server also subscribes to its broadcasts.
    ``prefetch`` bounds the unacknowledged messages held (default: workers + 1,
    so that the next message is at hand while an acknowledgement is on its way).
    ``transient`` says whether an exception a cast's handler raised will pass by
    itself (a database outage): the handler is then run again until it succeeds,
    the message held unacknowledged, ``transient_backoff`` (first, longest) seconds
    apart. While every worker waits so, the server
    takes no more than ``prefetch`` messages: the rest wait in the broker, in order.
    """

    def __init__(
        self,
        bus: Bus,
        api: type[RpcClient],
        endpoint: object,
        *,
        topic: str | None = None,
        workers: int = 1,
        prefetch: int | None = None,
        name: str | None = None,
        transient: Callable[[BaseException], bool] | None = None,
        transient_backoff: tuple[float, float] = TRANSIENT_BACKOFF,
    ) -> None:
        self.api = api
        self.transient = transient or (lambda _exc: False)
        self.transient_backoff = transient_backoff
        self.endpoint = endpoint
        self.topic = topic or api.default_topic()
        if "{" in self.topic:
            raise ValueError(
                f"{api.__name__}'s topic {self.topic!r} is a template; give the server its concrete topic"
            )
        missing = [n for n in api.operations if not callable(getattr(endpoint, n, None))]
        if missing:
            raise TypeError(
                f"{type(endpoint).__name__} has no handler for {api.__name__} operations {sorted(missing)}"
            )
        super().__init__(bus, name=name or f"ocs-rpc-{self.topic}")
        self.workers = workers
        self.prefetch = prefetch or workers + 1
        self.topics = sorted(
            {op.topic or self.topic for op in api.operations.values() if op.kind is not Kind.FANOUT}
        )
        self._fanout = any(op.kind is Kind.FANOUT for op in api.operations.values())
        self._done: SimpleQueue[tuple[Any, str]] = SimpleQueue()
        self._in_flight = 0
        self._grace = 5.0
        self._executor: ThreadPoolExecutor | None = None
        self._subscription: Queue | None = None

    # --- lifecycle ----------------------------------------------------------

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking messages, let running handlers finish (up to ``timeout``
        seconds; unfinished ones are redelivered later) and return."""
        self._grace = timeout
        super().stop(timeout + 1.0)

    def _main(self) -> None:
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix=self.name)
        self._done, self._in_flight = SimpleQueue(), 0  # forget a previous run's messages
        try:
            super()._main()
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # --- consuming (consumer thread) ----------------------------------------

    def get_consumers(self, Consumer: Any, channel: Any) -> list[Any]:
        if not self.bus.is_memory:  # before any message can be dead-lettered into it
            self.bus.dead_letter_queue().bind(channel).declare()
        queues = [self.bus.topic_queue(topic) for topic in self.topics]
        self._subscription = self.bus.fanout_queue(self.api.service) if self._fanout else None
        if self._subscription is not None:
            queues.append(self._subscription)
        return [
            Consumer(
                queues=[queue], on_message=self._on_message, accept=["json"], prefetch_count=self.prefetch
            )
            for queue in queues
        ]

    def consume(
        self,
        limit: int | None = None,
        timeout: float | None = None,
        safety_interval: float = 1.0,
        **kwargs: Any,
    ) -> Iterator[None]:
        """kombu's consume loop, plus acknowledging what the workers finished."""
        with self.consumer_context(**kwargs) as (conn, _channel, consumers):
            while not self.should_stop:
                self._settle()
                wait = ACK_INTERVAL if self._in_flight else safety_interval
                try:
                    conn.drain_events(timeout=wait)
                except TimeoutError:
                    conn.heartbeat_check()
                except OSError:
                    if not self.should_stop:
                        raise
                yield None
            self._finish(consumers)

    def on_consume_end(self, connection: Any, channel: Any) -> None:
        super().on_consume_end(connection, channel)
        if self._subscription is not None:  # auto-delete on RabbitMQ, not in memory
            try:
                self._subscription.bind(channel).delete()
            except self.bus.errors:
                LOG.debug("%s: could not delete %s", self.name, self._subscription.name, exc_info=True)

    def _on_message(self, message: Any) -> None:
        assert self._executor is not None
        self._in_flight += 1
        self._executor.submit(self._work, message, self._done)

    def _settle(self, wait: float = 0.0) -> None:
        while True:
            try:
                message, outcome = self._done.get(timeout=wait) if wait else self._done.get_nowait()
            except Empty:
                return
            wait = 0.0
            self._in_flight -= 1
            try:
                if outcome == ACK:
                    message.ack()
                elif outcome == REQUEUE:
                    message.requeue()
                else:
                    message.reject()
            except Exception as exc:  # noqa: BLE001 - its channel may be gone
                LOG.warning(
                    "%s: could not %s a message (it will be redelivered): %s", self.name, outcome, exc
                )

    def _finish(self, consumers: list[Any]) -> None:
        for consumer in consumers:
            try:
                consumer.cancel()
            except self.bus.errors:
                LOG.debug("%s: cancel failed", self.name, exc_info=True)
        deadline = monotonic() + self._grace
        while self._in_flight and monotonic() < deadline:
            self._settle(wait=min(0.05, max(0.001, deadline - monotonic())))
        if self._in_flight:
            LOG.warning(
                "%s: %d handlers still running at stop; their messages will be redelivered",
                self.name,
                self._in_flight,
            )

    # --- handling (worker threads) ------------------------------------------

    def _work(self, message: Any, done: SimpleQueue[tuple[Any, str]]) -> None:
        try:
            outcome = REQUEUE if self.should_stop else self._handle(message)
        except Exception:
            LOG.exception("%s: failed to handle a message", self.name)
            outcome = REJECT
        done.put((message, outcome))
        self.interrupt()

    def _handle(self, message: Any) -> str:
        body = message.decode()
        name = body.get("op") if isinstance(body, dict) else None
        op = self.api.operations.get(name) if isinstance(name, str) else None
        reply_to = message.properties.get("reply_to")
        if op is None:
            LOG.error("%s: dropping a message for unknown operation %r", self.name, name)
            unknown = errors.InternalError(f"The {self.api.service} service has no operation {name!r}.")
            self._reply(message, reply_to, {"error": error_to_wire(unknown)})
            return REJECT
        if reply_to and self._expired(message):
            LOG.warning("%s: dropping %s, its caller gave up", self.name, op.name)
            return ACK
        return self._dispatch(op, body, message, reply_to)

    def _dispatch(
        self, op: Operation[Any, Any], body: dict[str, Any], message: Any, reply_to: str | None
    ) -> str:
        payload = body.get("payload")
        backoff, longest = self.transient_backoff
        failures = 0
        while True:
            try:
                request = from_wire(op.request, payload)
                value = getattr(self.endpoint, op.name)(request)
                result = to_wire(value) if reply_to else None
            except errors.OcsError as exc:
                level = logging.INFO if reply_to else logging.WARNING  # else nobody hears of it
                LOG.log(level, "%s.%s raised %s: %s", self.api.service, op.name, exc.code, exc)
                self._reply(message, reply_to, {"error": error_to_wire(exc)})
                return ACK
            except Exception as exc:  # noqa: BLE001 - logged in _failed, or transient
                if not reply_to and self.transient(exc):
                    failures += 1
                    if self.should_stop:
                        LOG.warning(
                            "%s.%s: stopping; the message goes back to the queue", self.api.service, op.name
                        )
                        return REQUEUE
                    LOG.warning(
                        "%s.%s failed (%d) for a transient reason, again in %.1f s: %s",
                        self.api.service,
                        op.name,
                        failures,
                        backoff,
                        exc,
                    )
                    self._wakeup.wait(backoff)
                    backoff = min(backoff * 2, longest)
                    continue
                return self._failed(op, body, message, reply_to, exc)
            if failures:
                LOG.info("%s.%s succeeded after %d transient failures", self.api.service, op.name, failures)
            self._reply(message, reply_to, {"result": result})
            return ACK

    def _failed(
        self,
        op: Operation[Any, Any],
        body: dict[str, Any],
        message: Any,
        reply_to: str | None,
        exc: Exception,
    ) -> str:
        LOG.error("%s.%s failed", self.api.service, op.name, exc_info=exc)
        if reply_to:
            self._reply(message, reply_to, {"error": error_to_wire(exc)})
            return ACK
        headers = dict(message.headers or {})
        exchange, key = message.delivery_info.get("exchange"), message.delivery_info.get("routing_key") or ""
        if exchange == self.bus.exchange_name:  # a cast to a topic
            queue = self.bus.topic_queue(key).name
        elif exchange == "" and key.startswith(self.bus.exchange_name + "."):  # one sent round again
            queue = key
        else:  # a broadcast, on this server's own queue
            if message.delivery_info.get("redelivered"):
                LOG.error("%s.%s failed again on redelivery; dropping the message", self.api.service, op.name)
                return REJECT
            return REQUEUE
        failures = _count(headers.get(FAILURES_HEADER)) + 1
        if failures >= self.bus.handler_attempts:
            LOG.error(
                "%s.%s failed %d times; the message goes to the dead-letter queue %s",
                self.api.service,
                op.name,
                failures,
                "(none: dropped)" if self.bus.is_memory else self.bus.dead_letter_exchange.name,
            )
            return REJECT
        # Round again, at the end of its queue (others go first), with its count: put
        # back before it is acknowledged, so that it is never lost (a crash in between
        # delivers it twice; handlers are idempotent).
        try:
            self.bus.publish(
                body,
                exchange="",
                routing_key=queue,
                timeout=REPLY_TIMEOUT,
                persistent=True,
                headers={**headers, FAILURES_HEADER: failures},
            )
        except errors.OcsError:
            LOG.warning("%s.%s: could not send it round again; requeued", self.api.service, op.name)
            return REQUEUE
        LOG.warning(
            "%s.%s failed (%d of %d runs); the message goes round again",
            self.api.service,
            op.name,
            failures,
            self.bus.handler_attempts,
        )
        return ACK

    def _reply(self, message: Any, reply_to: str | None, body: dict[str, Any]) -> None:
        if not reply_to:
            return
        try:
            self.bus.publish(
                body,
                exchange="",
                routing_key=reply_to,
                timeout=REPLY_TIMEOUT,
                correlation_id=message.properties.get("correlation_id"),
            )
        except errors.OcsError:
            LOG.exception("%s: could not send a reply to %s", self.name, reply_to)

    @staticmethod
    def _expired(message: Any) -> bool:
        deadline = (message.headers or {}).get(DEADLINE_HEADER)
        return isinstance(deadline, (int, float)) and time.time() > deadline


def _count(value: Any) -> int:
    """A failure count from a header (anything else counts as none)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
