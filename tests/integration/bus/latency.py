"""Measure bus latencies on memory:// and (if it answers) RabbitMQ.

    python -m tests.integration.bus.latency [N]

Prints, per transport: call round trip (one caller, sequential), call round trip
with 10 threads calling at once (per call and in total throughput), and the
time a persistent cast takes to publish (with publisher confirms on AMQP) and
to reach its handler. It creates its topology under a unique exchange name and
deletes it afterwards.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass

from ocs.bus import Bus, RpcClient, RpcServer, call, cast
from tests.services import RABBITMQ_URL, port_open


@dataclass
class Probe:
    n: int
    sent: float = 0.0


class ProbeClient(RpcClient):
    service = "probe"
    echo = call(Probe, Probe, timeout=5.0)
    note = cast(Probe)


class ProbeEndpoint:
    def __init__(self) -> None:
        self.delays: list[float] = []
        self.done = threading.Event()
        self.expected = 0

    def echo(self, request: Probe) -> Probe:
        return request

    def note(self, request: Probe) -> None:
        self.delays.append(time.perf_counter() - request.sent)
        if len(self.delays) >= self.expected:
            self.done.set()


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"mean {_ms(statistics.fmean(ordered))}, p50 {_ms(p50)}, p99 {_ms(p99)}"


def _sequential_calls(client: ProbeClient, n: int) -> list[float]:
    samples = []
    for i in range(n):
        start = time.perf_counter()
        client.echo(Probe(i))
        samples.append(time.perf_counter() - start)
    return samples


def _threaded_calls(client: ProbeClient, n: int, threads: int = 10) -> tuple[list[float], float]:
    samples: list[float] = []
    lock = threading.Lock()

    def run() -> None:
        mine = _sequential_calls(client, n // threads)
        with lock:
            samples.extend(mine)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return samples, time.perf_counter() - start


def measure(url: str, n: int) -> None:
    bus = Bus(url, f"ocs-bench-{uuid.uuid4().hex[:8]}")
    endpoint = ProbeEndpoint()
    server = RpcServer(bus, ProbeClient, endpoint, workers=4)
    server.start()
    client = ProbeClient(bus)
    try:
        _sequential_calls(client, 20)  # warm up connections and caches
        print(f"{url.split('@')[-1]}")
        print(f"  call, 1 thread:       {_percentiles(_sequential_calls(client, n))}")
        samples, total = _threaded_calls(client, n)
        print(f"  call, 10 threads:     {_percentiles(samples)}; {len(samples) / total:.0f} calls/s")
        publish = []
        for i in range(n):  # one at a time: latency, not queueing
            endpoint.expected = i + 1
            endpoint.done.clear()
            start = time.perf_counter()
            client.note(Probe(i, sent=start))
            publish.append(time.perf_counter() - start)
            endpoint.done.wait(5)
        print(f"  cast publish:         {_percentiles(publish)}")
        print(f"  cast to handler:      {_percentiles(endpoint.delays)}")
    finally:
        server.stop()
        bus.close()
        bus.delete_topology(["probe"], ["probe"])


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    measure("memory://", n)
    if port_open("127.0.0.1", 5672):
        measure(RABBITMQ_URL, n)
    else:
        print("RabbitMQ is not reachable on 127.0.0.1:5672; skipped amqp://")


if __name__ == "__main__":
    main()
