"""The fleet (host states kept between decisions) chooses as the core does."""

from __future__ import annotations

import random
from dataclasses import replace

from ocs.scheduler.core import HostState, Request, make_scheduler
from ocs.scheduler.fleet import Fleet
from ocs.scheduler.host_view import HostView


def _hosts(n: int) -> list[HostState]:
    return [
        HostState(
            name=f"h{i:03d}",
            availability_zone="az1" if i % 3 else "az2",
            total_vcpus=16,
            total_memory_mib=32768,
            total_disk_gib=500,
            used_vcpus=(i * 7) % 40,
            used_memory_mib=((i * 5) % 28) * 1024,
            instances=i % 5,
        )
        for i in range(n)
    ]


REQUESTS = [
    Request(vcpus=2, memory_mib=2048, disk_gib=10),
    Request(vcpus=4, memory_mib=8192, disk_gib=20, availability_zone="az2"),
    Request(vcpus=1, memory_mib=512, disk_gib=1, count=7),
    Request(vcpus=2, memory_mib=2048, disk_gib=10, count=3),
]


def test_a_sequence_of_decisions_matches_the_core_on_the_updated_states() -> None:
    for weigher in ("spread", "pack"):
        scheduler = make_scheduler(weigher)
        fleet = Fleet(scheduler, _hosts(60))
        states = {h.name: h for h in _hosts(60)}
        for request in REQUESTS * 10:
            chosen = fleet.place(request)
            expected = scheduler.schedule(states.values(), request).hosts
            assert tuple(chosen) == expected
            for name in expected:
                states[name] = states[name].with_instance(request)


def test_stops_when_nothing_more_fits() -> None:
    fleet = Fleet(make_scheduler(), [HostState(name="a", availability_zone="z", total_vcpus=2,
                                               total_memory_mib=4096, total_disk_gib=100)])  # fmt: skip
    request = Request(vcpus=1, memory_mib=1024, disk_gib=10, count=20)
    assert fleet.place(request) == ["a"] * 4  # 4 GiB of RAM at ratio 1.0
    assert fleet.place(replace(request, count=1)) == []


def test_an_updated_host_is_seen_by_the_next_decision() -> None:
    hosts = _hosts(10)
    fleet = Fleet(make_scheduler(), hosts)
    request = Request(vcpus=1, memory_mib=512)
    first = fleet.place(request)[0]
    fleet.update(replace(fleet.state(first), enabled=False))
    for _ in range(50):
        assert fleet.place(request)[0] != first
    fleet.update(replace(fleet.state(first), enabled=True, used_vcpus=0, used_memory_mib=0, instances=0))
    assert fleet.place(request) == [first]  # now the emptiest


def test_random_ties_stay_among_the_best() -> None:
    hosts = [HostState(name=f"h{i}", availability_zone="z", total_vcpus=64, total_memory_mib=65536,
                       total_disk_gib=1000) for i in range(20)]  # fmt: skip
    scheduler = make_scheduler(rng=random.Random(4), host_subset_size=3)
    fleet = Fleet(scheduler, hosts)
    chosen = fleet.place(Request(vcpus=1, memory_mib=1024, count=20))
    assert len(set(chosen[:18])) == 18  # among the 3 best: an empty host while 3 are left


def test_the_view_reads_the_hosts_again_after_its_ttl_or_when_invalidated() -> None:
    now = [0.0]
    hosts = _hosts(5)
    view = HostView(lambda: list(hosts), make_scheduler(), ttl=2.0, clock=lambda: now[0])
    request = Request(vcpus=1, memory_mib=512)
    first, _ = view.place(request)
    hosts = [replace(h, enabled=h.name != first[0]) for h in hosts]  # disabled elsewhere
    now[0] = 1.9
    assert view.loads == 1
    now[0] = 2.0
    for _ in range(20):
        assert view.place(request)[0] != first
    assert view.loads == 2
    view.invalidate()
    view.place(request)
    assert view.loads == 3
