"""The scheduler's core on worked examples: placements, refusals and their words."""

from __future__ import annotations

import ast
import random
from pathlib import Path

import pytest

from ocs import errors
from ocs.scheduler import core
from ocs.scheduler.core import (
    HostState,
    NoValidHost,
    Ratios,
    Request,
    Scheduler,
    make_scheduler,
    schedule,
)
from ocs.scheduler.filters import build_filters
from ocs.scheduler.weighers import SpreadWeigher


def host(name: str, az: str = "az1", **kw: object) -> HostState:
    values: dict[str, object] = {
        "name": name,
        "availability_zone": az,
        "total_vcpus": 4,
        "total_memory_mib": 8192,
        "total_disk_gib": 100,
    }
    values.update(kw)
    return HostState(**values)  # type: ignore[arg-type]


def fleet() -> list[HostState]:
    """Five hosts: one down, two in another zone, two too small for 32 vCPUs."""
    return [
        host("h1", alive=False),
        host("h2", az="az2"),
        host("h3", az="az2"),
        host("h4"),
        host("h5"),
    ]


def refusal(hosts: list[HostState], request: Request, **settings: object) -> NoValidHost:
    with pytest.raises(NoValidHost) as caught:
        make_scheduler(**settings).schedule(hosts, request)  # type: ignore[arg-type]
    return caught.value


# --- placements -------------------------------------------------------------


def test_one_instance_goes_to_a_host_that_passes_every_filter() -> None:
    placement = schedule(fleet(), Request(vcpus=2, memory_mib=1024, availability_zone="az1"))
    assert placement.hosts == ("h4",)
    assert placement.report.message == (
        "Placed 1 instance: 5 hosts; disabled or down removed 1, availability zone removed 2; "
        "2 passed every filter."
    )


def test_later_instances_see_what_earlier_ones_consumed() -> None:
    hosts = [
        host("a", total_vcpus=2, ratios=Ratios(cpu=1.0)),
        host("b", total_vcpus=2, ratios=Ratios(cpu=1.0)),
    ]
    placement = make_scheduler("pack").schedule(hosts, Request(vcpus=1, memory_mib=256, count=4))
    assert placement.hosts == ("a", "a", "b", "b")
    with pytest.raises(NoValidHost):
        make_scheduler("pack").schedule(hosts, Request(vcpus=1, memory_mib=256, count=5, min_count=5))


def test_between_min_and_max_count_as_many_as_fit_are_placed() -> None:
    hosts = [host("a", total_vcpus=3, ratios=Ratios(cpu=1.0))]
    placement = schedule(hosts, Request(vcpus=1, memory_mib=256, count=5, min_count=2))
    assert placement.hosts == ("a", "a", "a")
    assert placement.report.placed == 3
    assert not placement.report.refused
    assert placement.report.message == (
        "Room for only 3 of 5 instances: 1 host; 1 passed every filter but filled up after 3 instances (vCPU 1)."
    )


def test_host_order_does_not_matter() -> None:
    request = Request(vcpus=1, memory_mib=1024, count=7)
    assert schedule(fleet(), request) == schedule(list(reversed(fleet())), request)


def test_instance_limit_counts_instances_placed_by_the_same_request() -> None:
    hosts = [host("a", max_instances=2, instances=1), host("b", max_instances=1)]
    placement = schedule(hosts, Request(vcpus=1, memory_mib=256, count=3, min_count=1))
    assert sorted(placement.hosts) == ["a", "b"]
    assert [c.hosts for c in placement.report.filled if c.name == "instance_count"] == [2]


def test_scheduler_ratios_apply_to_hosts_without_their_own() -> None:
    hosts = [host("own", ratios=Ratios(cpu=1.0)), host("default")]
    request = Request(vcpus=1, memory_mib=1, count=20, min_count=20)
    placement = make_scheduler("pack", cpu_allocation_ratio=4.0).schedule(hosts, request)
    assert placement.hosts.count("own") == 4
    assert placement.hosts.count("default") == 16
    with pytest.raises(NoValidHost):
        make_scheduler("pack", cpu_allocation_ratio=3.0).schedule(hosts, request)


# --- refusals ---------------------------------------------------------------


def test_refusal_explains_which_filter_removed_how_many_hosts() -> None:
    error = refusal(fleet(), Request(vcpus=32, memory_mib=1024, availability_zone="az1"))
    assert error.report.message == (
        "No valid host: 5 hosts; disabled or down removed 1, availability zone removed 2, vCPU removed 2."
    )
    removed = {c.name: c.hosts for c in error.report.removed}
    assert removed == {
        "enabled_alive": 1,
        "excluded_hosts": 0,
        "availability_zone": 2,
        "architecture": 0,
        "instance_count": 0,
        "vcpu": 2,
        "ram": 0,
        "disk": 0,
    }


def test_refusal_is_ec2s_insufficient_instance_capacity() -> None:
    error = refusal(fleet(), Request(vcpus=1, memory_mib=1024, architecture="arm64"))
    assert isinstance(error, errors.InsufficientInstanceCapacity)
    assert error.code == "InsufficientInstanceCapacity"
    assert error.status == 500
    assert str(error) == (
        "There is not enough capacity to fulfill your request. "
        "No valid host: 5 hosts; disabled or down removed 1, architecture removed 4."
    )


def test_refusal_of_several_instances_says_how_far_it_got() -> None:
    hosts = [host("a", total_vcpus=1, ratios=Ratios(cpu=1.0)), host("b", az="az2")]
    error = refusal(hosts, Request(vcpus=1, memory_mib=8192, count=4, min_count=2, availability_zone="az1"))
    assert error.report.placed == 1
    assert error.report.message == (
        "No valid host for at least 2 of 4 instances: 2 hosts; availability zone removed 1; "
        "1 passed every filter but filled up after 1 instance (vCPU 1)."
    )
    error = refusal(hosts, Request(vcpus=1, memory_mib=8192, count=3, min_count=3))
    assert error.report.message.startswith("No valid host for 3 instances: 2 hosts; 2 passed every filter")
    assert error.report.message.endswith("filled up after 2 instances (vCPU 1, RAM 1).")


def test_refusal_with_no_hosts() -> None:
    assert refusal([], Request(vcpus=1, memory_mib=1)).report.message == "No valid host: 0 hosts."


# --- reschedules and lost claims ---------------------------------------------


def test_a_failed_build_is_rescheduled_on_another_host() -> None:
    request = Request(vcpus=1, memory_mib=1024, availability_zone="az1")
    first = schedule(fleet(), request).hosts[0]
    second = schedule(fleet(), request.excluding(first)).hosts[0]
    assert {first, second} == {"h4", "h5"}
    error = refusal(fleet(), request.excluding(first).excluding(second))
    assert "excluded hosts removed 2" in error.report.message


def test_excluding_keeps_a_sorted_set() -> None:
    request = Request(vcpus=1, memory_mib=1, excluded_hosts=("b",)).excluding("c", "a", "b")
    assert request.excluded_hosts == ("a", "b", "c")


def test_remaining_after_a_lost_claim() -> None:
    request = Request(vcpus=1, memory_mib=1, count=5, min_count=3)
    assert request.remaining(0) == request
    assert (request.remaining(2).count, request.remaining(2).min_count) == (3, 1)
    assert (request.remaining(4).count, request.remaining(4).min_count) == (1, 1)
    assert (request.remaining(1).count, request.remaining(1).min_count) == (4, 2)
    for bad in (-1, 5):
        with pytest.raises(ValueError):
            request.remaining(bad)


# --- random tie-breaking ----------------------------------------------------


def test_seeded_random_source_replays_and_spreads_identical_hosts() -> None:
    hosts = [host(f"h{i}") for i in range(10)]
    request = Request(vcpus=1, memory_mib=1)

    def pick(seed: int) -> str:
        return make_scheduler(rng=random.Random(seed)).schedule(hosts, request).hosts[0]

    assert pick(7) == pick(7)
    assert len({pick(seed) for seed in range(30)}) > 3
    assert schedule(hosts, request).hosts == ("h0",)  # by name without one


def test_host_subset_size_draws_among_the_best_hosts() -> None:
    hosts = [host("best"), host("good", used_vcpus=1), host("worse", used_vcpus=3)]
    request = Request(vcpus=1, memory_mib=1)
    picks = {
        make_scheduler(rng=random.Random(seed), host_subset_size=2).schedule(hosts, request).hosts[0]
        for seed in range(30)
    }
    assert picks == {"best", "good"}


def test_host_subset_size_needs_a_random_source() -> None:
    with pytest.raises(ValueError, match="rng"):
        Scheduler(build_filters(["vcpu"]), SpreadWeigher(), host_subset_size=2)
    with pytest.raises(ValueError):
        Scheduler(build_filters(["vcpu"]), SpreadWeigher(), host_subset_size=0)


# --- validation -------------------------------------------------------------


def test_a_host_given_twice_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="twice"):
        schedule([host("a"), host("a")], Request(vcpus=1, memory_mib=1))


@pytest.mark.parametrize(
    "kw",
    [
        {"vcpus": -1, "memory_mib": 1},
        {"vcpus": 1, "memory_mib": 1, "count": 0},
        {"vcpus": 1, "memory_mib": 1, "count": 2, "min_count": 3},
        {"vcpus": 1, "memory_mib": 1, "min_count": 0},
    ],
)
def test_bad_requests(kw: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Request(**kw)  # type: ignore[arg-type]


def test_bad_hosts_and_ratios() -> None:
    with pytest.raises(ValueError):
        host("")
    with pytest.raises(ValueError):
        host("a", used_vcpus=-1)
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            Ratios(cpu=bad)
    with pytest.raises(ValueError):
        make_scheduler(ram_allocation_ratio=0)
    with pytest.raises(ValueError):
        make_scheduler("nearest")


def test_custom_filter_chain_and_its_report() -> None:
    scheduler = make_scheduler(filters=["ram"])
    placement = scheduler.schedule([host("a", alive=False)], Request(vcpus=1, memory_mib=1))
    assert placement.hosts == ("a",)
    assert [c.name for c in placement.report.removed] == ["ram"]


# --- purity -----------------------------------------------------------------


def test_the_core_imports_neither_bus_database_nor_configuration() -> None:
    forbidden = ("ocs.bus", "ocs.db", "ocs.conf", "oslo_config", "kombu", "sqlalchemy")
    for path in Path(core.__file__).parent.glob("*.py"):
        if path.name not in {"__init__.py", "core.py", "filters.py", "weighers.py"}:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            for name in names:
                assert not name.startswith(forbidden), f"{path.name} imports {name}"
