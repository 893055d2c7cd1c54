"""Bus operations as typed declarations, and the client that sends them.

A service declares its operations once, as the attributes of an
:class:`RpcClient` subclass; that class body is the table that says, for each
operation, whether it is a cast, a call or a fanout, where it goes and how long
it may take::

    @dataclass
    class ScheduleInstances:
        reservation_id: str
        instance_ids: list[str]

    class SchedulerClient(RpcClient):
        service = "scheduler"                      # topic defaults to the service
        schedule_instances = rpc.cast(ScheduleInstances)
        select_host = rpc.call(SelectHost, Placement, timeout=10.0)

    SchedulerClient(bus).schedule_instances(ScheduleInstances("r-1", ["i-1"]))

    class ComputeClient(RpcClient):
        service = "compute"
        topic = "compute.{host}"                   # filled from the payload's ``host``
        spawn = rpc.cast(Spawn)
        console_output = rpc.call(ConsoleRequest, ConsoleOutput, timeout=5.0)
        refresh_rules = rpc.fanout(RefreshRules)   # every compute server gets it

The server side (:class:`ocs.bus.server.RpcServer`) takes the same class and an
endpoint object with one method per operation, named like the operation.

Delivery semantics:

- ``cast``: fire and forget. Persistent by default: the target's durable queue
  is declared before publishing, the message is ``delivery_mode=2`` with
  publisher confirms, and the server acknowledges it only after its handler
  returned, so a crash or a killed server leads to redelivery (at least once:
  handlers must be idempotent).
- ``call``: request/reply through the bus's reply queue, ``correlation_id`` and
  an explicit timeout; no reply in time raises :class:`ocs.errors.BusTimeout`.
  Calls are transient and expire on the broker with their timeout, so a call
  that timed out is never executed later.
- ``fanout``: broadcast to every running subscriber of the service (transient).
"""

from __future__ import annotations

import enum
import time
import uuid
from time import monotonic
from typing import Any, ClassVar, Generic, TypeVar, overload

from kombu.entity import Exchange, Queue

from ocs import errors
from ocs.bus.messages import error_from_wire, from_wire, to_wire
from ocs.bus.transport import Bus

ReqT = TypeVar("ReqT")
RespT = TypeVar("RespT")

#: Header with the wall-clock time (epoch seconds) after which a call is stale.
DEADLINE_HEADER = "x-ocs-deadline"


class Kind(enum.Enum):
    CAST = "cast"
    CALL = "call"
    FANOUT = "fanout"


class Operation(Generic[ReqT, RespT]):
    """One declared bus operation; a descriptor on an :class:`RpcClient` class.

    ``request``/``response`` are payload types (see :mod:`ocs.bus.messages`),
    ``timeout`` the seconds a call waits for its reply or a cast/fanout may take
    to publish (None: the bus's ``rpc_timeout``), ``persistent`` whether the
    message survives a broker restart and is redelivered after a crash,
    ``topic`` sends this operation to another (concrete) topic than the
    client class's; the service's server listens there too.
    """

    def __init__(
        self,
        kind: Kind,
        request: Any,
        response: Any = None,
        *,
        timeout: float | None = None,
        persistent: bool | None = None,
        topic: str | None = None,
        name: str = "",
    ) -> None:
        if response is not None and kind is not Kind.CALL:
            raise ValueError(f"only a call has a response type, not a {kind.value}")
        if topic is not None and ("{" in topic or kind is Kind.FANOUT):
            raise ValueError("an operation's own topic must be concrete, and a fanout has none")
        if kind is Kind.FANOUT and persistent:
            raise ValueError("fanout subscribers' queues are transient; it cannot be persistent")
        self.kind = kind
        self.request = request
        self.response = response
        self.timeout = timeout
        self.persistent = (kind is Kind.CAST) if persistent is None else persistent
        self.topic = topic
        self.name = name

    def __set_name__(self, owner: type, name: str) -> None:
        if not self.name:
            self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> Operation[ReqT, RespT]: ...

    @overload
    def __get__(self, instance: RpcClient, owner: type) -> BoundOperation[ReqT, RespT]: ...

    def __get__(self, instance: RpcClient | None, owner: type) -> Any:
        if instance is None:
            return self
        return BoundOperation(instance, self)

    def __repr__(self) -> str:
        return (
            f"<Operation {self.name} {self.kind.value} topic={self.topic} "
            f"timeout={self.timeout} persistent={self.persistent}>"
        )


class BoundOperation(Generic[ReqT, RespT]):
    """An operation of one client: calling it sends the message."""

    def __init__(self, client: RpcClient, operation: Operation[ReqT, RespT]) -> None:
        self.client = client
        self.operation = operation

    def __call__(self, request: ReqT, *, timeout: float | None = None, topic: str | None = None) -> RespT:
        result: RespT = self.client.invoke(self.operation, request, timeout=timeout, topic=topic)
        return result


def cast(
    request: type[ReqT],
    *,
    timeout: float | None = None,
    persistent: bool = True,
    topic: str | None = None,
) -> Operation[ReqT, None]:
    """Declare a fire-and-forget operation taking a ``request`` payload."""
    return Operation(Kind.CAST, request, timeout=timeout, persistent=persistent, topic=topic)


@overload
def call(
    request: type[ReqT],
    response: type[RespT],
    *,
    timeout: float | None = None,
    persistent: bool = False,
    topic: str | None = None,
) -> Operation[ReqT, RespT]: ...


@overload
def call(
    request: type[ReqT],
    response: None = None,
    *,
    timeout: float | None = None,
    persistent: bool = False,
    topic: str | None = None,
) -> Operation[ReqT, None]: ...


def call(
    request: Any,
    response: Any = None,
    *,
    timeout: float | None = None,
    persistent: bool = False,
    topic: str | None = None,
) -> Operation[Any, Any]:
    """Declare a request/reply operation; the reply is a ``response`` payload
    (None: the call only waits for the handler to finish, or for its error)."""
    return Operation(Kind.CALL, request, response, timeout=timeout, persistent=persistent, topic=topic)


def fanout(request: type[ReqT], *, timeout: float | None = None) -> Operation[ReqT, None]:
    """Declare a broadcast to every running server of the service."""
    return Operation(Kind.FANOUT, request, timeout=timeout, persistent=False)


class RpcClient:
    """Generic client of one service; subclasses declare its operations.

    ``service`` names the service (and its fanout exchange); ``topic`` is the
    routing key of its queue, a template filled from the request payload when
    it holds ``{field}`` placeholders (default: the service name). Thread-safe:
    one client may be used by many threads at once.
    """

    service: ClassVar[str] = ""
    topic: ClassVar[str | None] = None
    operations: ClassVar[dict[str, Operation[Any, Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        ops: dict[str, Operation[Any, Any]] = {}
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                if isinstance(value, Operation):
                    ops[value.name] = value
        cls.operations = ops
        if ops and not cls.service:
            raise TypeError(f"{cls.__name__} declares operations but no service name")

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    @classmethod
    def default_topic(cls) -> str:
        return cls.topic or cls.service

    # --- sending ------------------------------------------------------------

    def invoke(
        self,
        operation: Operation[Any, Any] | str,
        request: Any,
        *,
        timeout: float | None = None,
        topic: str | None = None,
    ) -> Any:
        """Send ``request`` as ``operation`` (an Operation or its name)."""
        op = self.operations[operation] if isinstance(operation, str) else operation
        payload = to_wire(request)
        seconds = timeout or op.timeout or self.bus.rpc_timeout
        body = {"op": op.name, "payload": payload}
        if op.kind is Kind.FANOUT:
            exchange = self.bus.fanout_exchange(self.service)
            self.bus.publish(
                body, exchange=exchange, routing_key=self.service, timeout=seconds, declare=[exchange]
            )
            return None
        target = topic or self.resolve_topic(op, payload)
        if op.kind is Kind.CAST:
            self.bus.publish(
                body,
                exchange=self.bus.exchange,
                routing_key=target,
                timeout=seconds,
                persistent=op.persistent,
                declare=self._declare(op, target),
            )
            return None
        return self._call(op, body, target, seconds)

    def resolve_topic(self, op: Operation[Any, Any], payload: Any) -> str:
        """The routing key of ``op`` for this (wire) payload."""
        template = op.topic or self.default_topic()
        if "{" not in template:
            return template
        try:
            return template.format(**(payload if isinstance(payload, dict) else {}))
        except (KeyError, IndexError) as exc:
            raise ValueError(
                f"{self.service}.{op.name} needs {exc} in its payload to address {template!r}"
            ) from exc

    def _declare(self, op: Operation[Any, Any], target: str) -> list[Exchange | Queue]:
        # A persistent message must not be dropped for want of a queue: declare
        # the target's durable queue, so it waits there for its server.
        if op.persistent:
            return [self.bus.topic_queue(target)]
        return [self.bus.exchange]

    def _call(self, op: Operation[Any, Any], body: dict[str, Any], target: str, timeout: float) -> Any:
        deadline = monotonic() + timeout
        router = self.bus.replies
        if not router.wait_ready(timeout):
            raise errors.ServiceUnavailable(
                f"The message bus is unreachable; could not call {target}.{op.name}."
            )
        correlation_id = uuid.uuid4().hex
        pending = router.expect(correlation_id)
        try:
            remaining = max(0.001, deadline - monotonic())
            self.bus.publish(
                body,
                exchange=self.bus.exchange,
                routing_key=target,
                timeout=remaining,
                persistent=op.persistent,
                declare=self._declare(op, target),
                reply_to=router.address,
                correlation_id=correlation_id,
                expiration=remaining,
                headers={DEADLINE_HEADER: time.time() + remaining},
            )
            reply = pending.wait(deadline - monotonic())
        finally:
            router.forget(correlation_id)
        if reply is None:
            raise errors.BusTimeout(target=target, method=op.name, timeout=f"{timeout:g}")
        if "error" in reply:
            raise error_from_wire(reply["error"])
        return from_wire(op.response, reply.get("result"))
