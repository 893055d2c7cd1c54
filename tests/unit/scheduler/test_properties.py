"""Properties of the scheduler over random fleets and requests (hypothesis).

The checks restate each rule independently of the implementation: capacity as
``used + placed <= total × ratio`` over the reals, the static filters as plain
conditions on the host.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from ocs import errors
from ocs.scheduler.core import HostState, NoValidHost, Placement, Ratios, Request, make_scheduler
from ocs.scheduler.weighers import free_share

ZONES = ("az1", "az2", "az3")
ARCHES = ("x86_64", "i386", "arm64")
RATIO_VALUES = (0.29, 0.5, 1.0, 1.1, 1.5, 4.0, 16.0)
EC2_SENTENCE = "There is not enough capacity to fulfill your request. "

ratios_st = st.builds(
    Ratios, st.sampled_from(RATIO_VALUES), st.sampled_from(RATIO_VALUES), st.sampled_from(RATIO_VALUES)
)


@st.composite
def request_st(draw: st.DrawFn, names: list[str]) -> Request:
    count = draw(st.integers(1, 12))
    excluded = draw(st.just(set()) | st.sets(st.sampled_from(names), max_size=2))
    return Request(
        vcpus=draw(st.integers(0, 4)),
        memory_mib=draw(st.integers(0, 8)) * 512,
        disk_gib=draw(st.integers(0, 40)),
        architecture=draw(st.sampled_from(ARCHES)),
        availability_zone=draw(st.none() | st.sampled_from(ZONES)),
        count=count,
        min_count=draw(st.integers(1, count)),
        excluded_hosts=tuple(sorted(excluded)),
    )


@st.composite
def host_st(draw: st.DrawFn, name: str, request: Request) -> HostState:
    """A host; a suitable one (most of them) is up, in the zone and of the architecture asked."""
    suitable = draw(st.sampled_from([True, True, False]))
    zone = (
        request.availability_zone if suitable and request.availability_zone else draw(st.sampled_from(ZONES))
    )
    arches = draw(st.sets(st.sampled_from(ARCHES)) | st.just({"x86_64"}))
    total = (draw(st.integers(0, 32)), draw(st.integers(0, 64)) * 512, draw(st.integers(0, 400)))
    return HostState(
        name=name,
        availability_zone=zone,
        total_vcpus=total[0],
        total_memory_mib=total[1],
        total_disk_gib=total[2],
        used_vcpus=draw(st.just(0) | st.integers(0, 2 * total[0])),
        used_memory_mib=draw(st.just(0) | st.integers(0, 2 * total[1])),
        used_disk_gib=draw(st.just(0) | st.integers(0, 2 * total[2])),
        instances=draw(st.integers(0, 3)),
        max_instances=draw(st.none() | st.integers(0, 8)),
        enabled=suitable or draw(st.booleans()),
        alive=suitable or draw(st.booleans()),
        architectures=tuple(sorted(arches | {request.architecture} if suitable else arches)),
        ratios=draw(st.none() | ratios_st),
    )


@dataclass(frozen=True)
class Case:
    hosts: list[HostState]
    request: Request
    weigher: str
    ratios: Ratios
    seed: int | None
    subset: int

    def run(self) -> Placement | NoValidHost:
        rng = random.Random(self.seed) if self.seed is not None else None
        scheduler = make_scheduler(
            self.weigher,
            cpu_allocation_ratio=self.ratios.cpu,
            ram_allocation_ratio=self.ratios.ram,
            disk_allocation_ratio=self.ratios.disk,
            rng=rng,
            host_subset_size=self.subset if rng else 1,
        )
        try:
            return scheduler.schedule(self.hosts, self.request)
        except NoValidHost as error:
            return error

    def with_request(self, **changes: object) -> Case:
        request = Request(**{**vars(self.request), **changes})
        return Case(self.hosts, request, self.weigher, self.ratios, self.seed, self.subset)

    def ratios_of(self, host: HostState) -> Ratios:
        return host.ratios or self.ratios


@st.composite
def case_st(draw: st.DrawFn) -> Case:
    names = [
        f"host-{n:02d}" for n in draw(st.lists(st.integers(0, 99), unique=True, min_size=1, max_size=12))
    ]
    request = draw(request_st(names))
    hosts = [draw(host_st(name, request)) for name in names]
    weigher = draw(st.sampled_from(["spread", "pack"]))
    seed = draw(st.none() | st.integers(0, 2**32))
    return Case(hosts, request, weigher, draw(ratios_st), seed, draw(st.integers(1, 3)))


def statically_eligible(host: HostState, request: Request) -> bool:
    """The filters that no placement of the request can change."""
    return (
        host.enabled
        and host.alive
        and host.name not in request.excluded_hosts
        and request.availability_zone in (None, host.availability_zone)
        and request.architecture in host.architectures
    )


def fits(case: Case, host: HostState, instances: int) -> bool:
    """``instances`` of the request on ``host`` stay within its capacity, over the reals."""
    r, ratios = case.request, case.ratios_of(host)
    return (
        host.used_vcpus + instances * r.vcpus <= host.total_vcpus * ratios.cpu + 1e-6
        and host.used_memory_mib + instances * r.memory_mib <= host.total_memory_mib * ratios.ram + 1e-6
        and host.used_disk_gib + instances * r.disk_gib <= host.total_disk_gib * ratios.disk + 1e-6
        and (host.max_instances is None or host.instances + instances <= host.max_instances)
    )


def placed_on(result: Placement | NoValidHost) -> Counter[str]:
    return Counter(result.hosts) if isinstance(result, Placement) else Counter()


PROPERTY = settings(max_examples=100, deadline=None)


@PROPERTY
@given(case_st())
def test_never_overcommits_a_host(case: Case) -> None:
    by_name = {h.name: h for h in case.hosts}
    for name, instances in placed_on(case.run()).items():
        assert fits(case, by_name[name], instances)


@PROPERTY
@given(case_st())
def test_places_only_on_hosts_that_pass_every_filter(case: Case) -> None:
    by_name = {h.name: h for h in case.hosts}
    for name in placed_on(case.run()):
        assert statically_eligible(by_name[name], case.request)
        assert fits(case, by_name[name], 1)


@PROPERTY
@given(case_st())
def test_places_between_min_and_max_count_or_refuses(case: Case) -> None:
    result = case.run()
    if isinstance(result, Placement):
        assert case.request.min_count <= len(result.hosts) <= case.request.count
        assert result.report.placed == len(result.hosts)
        assert not result.report.refused
    else:
        assert result.report.placed < case.request.min_count
        assert result.report.refused


@PROPERTY
@given(case_st())
def test_every_host_is_accounted_for(case: Case) -> None:
    result = case.run()
    report = result.report
    assert report.hosts == len(case.hosts)
    assert sum(c.hosts for c in report.removed) + report.passed == report.hosts
    assert sum(c.hosts for c in report.filled) <= report.passed
    if report.placed < case.request.count:
        # Every host that passed at first ran out of room for the later instances.
        assert sum(c.hosts for c in report.filled) == report.passed
    # The counts agree with the static filters restated here.
    static = ("enabled_alive", "excluded_hosts", "availability_zone", "architecture")
    statically_removed = sum(c.hosts for c in report.removed if c.name in static)
    assert statically_removed == sum(not statically_eligible(h, case.request) for h in case.hosts)


@PROPERTY
@given(case_st())
def test_stops_only_when_no_host_has_room_left(case: Case) -> None:
    # With MinCount 1 nothing is refused once one instance is placed, so the
    # placements are all visible; MinCount does not change them (next test).
    result = case.with_request(min_count=1).run()
    placed = placed_on(result)
    if sum(placed.values()) < case.request.count:
        for host in case.hosts:
            if statically_eligible(host, case.request):
                assert not fits(case, host, placed[host.name] + 1), host.name


@PROPERTY
@given(case_st())
def test_refuses_exactly_when_fewer_than_min_count_fit(case: Case) -> None:
    result, relaxed = case.run(), case.with_request(min_count=1).run()
    placed = relaxed.report.placed
    assert isinstance(result, NoValidHost) == (placed < case.request.min_count)
    assert result.report.placed == placed
    if isinstance(result, Placement) and isinstance(relaxed, Placement):
        assert result.hosts == relaxed.hosts


@PROPERTY
@given(case_st())
def test_a_refusal_explains_itself(case: Case) -> None:
    result = case.run()
    if not isinstance(result, NoValidHost):
        return
    assert isinstance(result, errors.InsufficientInstanceCapacity)
    assert result.code == "InsufficientInstanceCapacity"
    message = str(result)
    assert message.startswith(EC2_SENTENCE + "No valid host")
    assert f"{len(case.hosts)} host" in message
    for count in result.report.removed:
        if count.hosts:
            assert f"{count.label} removed {count.hosts}" in message
    for count in result.report.filled:
        if count.hosts:
            assert f"{count.label} {count.hosts}" in message


@PROPERTY
@given(case_st(), st.randoms(use_true_random=False))
def test_same_input_same_output_whatever_the_host_order(case: Case, shuffler: random.Random) -> None:
    first, again = case.run(), case.run()
    shuffled_hosts = list(case.hosts)
    shuffler.shuffle(shuffled_hosts)
    shuffled = Case(shuffled_hosts, case.request, case.weigher, case.ratios, case.seed, case.subset).run()
    for other in (again, shuffled):
        assert type(other) is type(first)
        assert other.report == first.report
        assert placed_on(other) == placed_on(first)
        if isinstance(first, Placement) and isinstance(other, Placement):
            assert other.hosts == first.hosts


@PROPERTY
@given(case_st())
def test_one_instance_goes_to_the_best_weighed_host(case: Case) -> None:
    single = Case(case.hosts, case.request, case.weigher, case.ratios, None, 1).with_request(
        count=1, min_count=1
    )
    result = single.run()
    eligible = [h for h in case.hosts if statically_eligible(h, single.request) and fits(single, h, 1)]
    assert isinstance(result, Placement) == bool(eligible)
    if isinstance(result, Placement):
        sign = 1 if case.weigher == "spread" else -1

        def key(h: HostState) -> tuple[float, str]:
            resolved = h if h.ratios else HostState(**{**vars(h), "ratios": case.ratios})
            return (-sign * free_share(resolved), h.name)

        assert result.hosts == (min(eligible, key=key).name,)
