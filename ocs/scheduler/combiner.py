"""Calls made at the same time from several threads, run together by one of them.

The scheduler's bus server hands each ``schedule_instances`` to a worker thread of
its own. When several arrive together (the messages the server prefetched), each
decision in its own transactions costs a round trip per statement and a commit per
request. A :class:`Combiner` lets the first caller lead: it takes every call queued
(up to ``max_batch``) and runs them with one ``run_batch``; the callers that came
while it ran wait, then one of them leads the next batch. Each caller gets its own
result or exception back. A lone call is a batch of one: nothing waits for company.

Pure threading: no bus, no database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Combiner"]

Req = TypeVar("Req")
Res = TypeVar("Res")


class _Slot(Generic[Req, Res]):
    __slots__ = ("request", "done", "result", "error")

    def __init__(self, request: Req) -> None:
        self.request = request
        self.done = False
        self.result: Res | None = None
        self.error: BaseException | None = None


class Combiner(Generic[Req, Res]):
    """Runs ``run_batch(requests) -> [result or exception, one per request]`` over the
    calls of :meth:`call` that are waiting together, at most ``max_batch`` at once."""

    def __init__(
        self, run_batch: Callable[[list[Req]], Sequence[Res | BaseException]], max_batch: int = 32
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run_batch = run_batch
        self.max_batch = max_batch
        self._cv = threading.Condition()
        self._queue: list[_Slot[Req, Res]] = []
        self._leading = False
        self.batches = 0  # for tests and benchmarks
        self.largest = 0

    def call(self, request: Req) -> Res:
        """The result of ``request`` (run alone or with the calls waiting with it); its
        exception is raised here, in the caller's thread."""
        slot: _Slot[Req, Res] = _Slot(request)
        with self._cv:
            self._queue.append(slot)
            while not slot.done and self._leading:
                self._cv.wait()
            if not slot.done:
                self._leading = True
        if not slot.done:
            self._lead(slot)
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _lead(self, mine: _Slot[Req, Res]) -> None:
        try:
            while not mine.done:
                with self._cv:
                    batch = self._queue[: self.max_batch]
                    del self._queue[: self.max_batch]
                self._run(batch)
                with self._cv:
                    self._cv.notify_all()
        finally:
            with self._cv:
                self._leading = False
                self._cv.notify_all()  # a waiting caller leads the next batch

    def _run(self, batch: list[_Slot[Req, Res]]) -> None:
        self.batches += 1
        self.largest = max(self.largest, len(batch))
        try:
            outcomes: Sequence[Res | BaseException] = self._run_batch([s.request for s in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"run_batch answered {len(outcomes)} of {len(batch)} requests")
        except BaseException as exc:  # noqa: BLE001 (raised again in every caller of the batch)
            outcomes = [exc] * len(batch)
        for slot, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                slot.error = outcome
            else:
                slot.result = outcome
            slot.done = True
