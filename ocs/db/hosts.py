"""Repository of compute hosts and service heartbeats.

A host row is created by its agent's first report (:func:`upsert_host`) and
kept up to date by every later one; operators enable and disable it. Its
``*_used`` columns and ``instance_count`` are the resources claimed by the
instances placed on it, and change only here, through conditional updates:

- :func:`claim` adds ``count`` instances' resources only if the result stays
  within the limits the scheduler computed (``floor(total × ratio)``), the host
  is enabled and its heartbeat recent, in one ``UPDATE ... WHERE`` statement;
  two schedulers racing for the last room of a host cannot both win, whatever
  the database (SQLite serializes writers, PostgreSQL and MariaDB re-check the
  condition on the locked row).
- :func:`release` gives them back (never below zero).

The invariant the scheduler service keeps on top of this: an instance holds a
claim on ``instance.host`` exactly while ``host`` is set and its state is not
``terminated``; whoever moves an instance in or out of that condition claims
or releases in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, Table, Update, bindparam, case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from ocs import errors
from ocs.db.models.base import utcnow
from ocs.db.models.compute import Host, ServiceRecord


class HostNotFound(errors.NotFound):
    """No compute host of that name has ever reported."""

    code = "InvalidHost.NotFound"
    message = "The host '{name}' does not exist"


@dataclass(frozen=True)
class Amount:
    """Resources of one instance, or limits of a host (plain values)."""

    vcpus: int
    memory_mib: int
    disk_gib: int


@dataclass(frozen=True)
class HostFacts:
    """What an agent reports about its host."""

    name: str
    availability_zone: str
    hypervisor_type: str
    hypervisor_version: str
    architectures: tuple[str, ...]
    vcpus: int
    memory_mib: int
    disk_gib: int


def architectures_of(host: Host | Row[Any]) -> tuple[str, ...]:
    """The host's guest architectures (stored comma-separated)."""
    return tuple(a for a in (host.architectures or "").split(",") if a)


# --- hosts -------------------------------------------------------------------


def _facts_values(facts: HostFacts, now: dt.datetime) -> dict[str, object]:
    return {
        "availability_zone": facts.availability_zone,
        "hypervisor_type": facts.hypervisor_type,
        "hypervisor_version": facts.hypervisor_version,
        "architectures": ",".join(facts.architectures),
        "vcpus": facts.vcpus,
        "memory_mib": facts.memory_mib,
        "disk_gib": facts.disk_gib,
        "last_heartbeat": now,
    }


def upsert_host(s: Session, facts: HostFacts, now: dt.datetime | None = None) -> None:
    """Record an agent's report: create its host on the first one, else update
    its capacity, zone, hypervisor and heartbeat. Claims and the operator's
    enabled flag are left alone."""
    now = now or utcnow()
    values = _facts_values(facts, now)
    done = s.execute(update(Host).where(Host.name == facts.name).values(**values))
    if done.rowcount:  # type: ignore[attr-defined]
        return
    try:
        with s.begin_nested():
            s.add(Host(name=facts.name, enabled=True, **values))
    except IntegrityError:  # another scheduler created it in between
        s.execute(update(Host).where(Host.name == facts.name).values(**values))


def list_hosts(s: Session) -> list[Host]:
    return list(s.scalars(select(Host).order_by(Host.name)))


#: The columns :func:`host_rows` reads (what the scheduler decides on).
HOST_COLUMNS = (
    Host.name,
    Host.availability_zone,
    Host.enabled,
    Host.architectures,
    Host.vcpus,
    Host.memory_mib,
    Host.disk_gib,
    Host.vcpus_used,
    Host.memory_mib_used,
    Host.disk_gib_used,
    Host.instance_count,
    Host.last_heartbeat,
)


def host_rows(s: Session) -> list[Row[Any]]:
    """Every host's :data:`HOST_COLUMNS` as plain rows (no ORM objects: a tenth of the cost)."""
    return list(s.execute(select(*HOST_COLUMNS).order_by(Host.name)))


def find_host(s: Session, name: str) -> Host | None:
    return s.get(Host, name)


def get_host(s: Session, name: str) -> Host:
    host = find_host(s, name)
    if host is None:
        raise HostNotFound(name=name)
    return host


def set_enabled(s: Session, name: str, enabled: bool, reason: str | None = None) -> Host:
    """Enable a host, or disable it (it then gets no new instances; the ones it
    runs keep running). ``reason`` is kept while disabled."""
    host = get_host(s, name)
    host.enabled = enabled
    host.disabled_reason = None if enabled else (reason or None)
    s.flush()
    return host


def is_alive(host: Host | Row[Any], now: dt.datetime, down_after: float) -> bool:
    """Whether the host's last heartbeat is at most ``down_after`` seconds old."""
    beat = host.last_heartbeat
    return beat is not None and (now - beat).total_seconds() <= down_after


# --- claims ------------------------------------------------------------------


def _floor_zero(column: InstrumentedAttribute[int], amount: int) -> ColumnElement[int]:
    return case((column - amount < 0, 0), else_=column - amount)


def claim(
    s: Session,
    name: str,
    each: Amount,
    limits: Amount,
    *,
    count: int = 1,
    alive_since: dt.datetime | None = None,
    totals: Amount | None = None,
) -> bool:
    """Claim ``count`` × ``each`` on host ``name`` if it stays within ``limits``.

    Also requires the host to be enabled and, with ``alive_since``, to have
    reported since then; with ``totals``, to still have the capacity ``limits``
    were computed from (a scheduler deciding on states read a while ago must not
    claim by limits its agent has since lowered). True if the claim was made;
    False if the host is missing, disabled, silent, resized or full (another
    scheduler got there first).
    """
    if count <= 0:
        return True
    params: dict[str, object] = {
        "p_name": name,
        "p_vcpus": each.vcpus * count,
        "p_memory_mib": each.memory_mib * count,
        "p_disk_gib": each.disk_gib * count,
        "p_count": count,
        "p_max_vcpus": limits.vcpus,
        "p_max_memory_mib": limits.memory_mib,
        "p_max_disk_gib": limits.disk_gib,
    }
    if alive_since is not None:
        params["p_alive_since"] = alive_since
    if totals is not None:
        params.update(
            p_total_vcpus=totals.vcpus, p_total_memory_mib=totals.memory_mib, p_total_disk_gib=totals.disk_gib
        )
    done = s.execute(_claim_statement(alive_since is not None, totals is not None), params)
    return bool(done.rowcount)  # type: ignore[attr-defined]


@functools.cache
def _claim_statement(alive: bool, totals: bool) -> Update:
    """The conditional UPDATE of :func:`claim`, built once (building it cost as much as running it)."""
    hosts = Host.__table__
    assert isinstance(hosts, Table)
    table = hosts.c
    conditions = [
        table.name == bindparam("p_name"),
        table.enabled.is_(True),
        table.vcpus_used + bindparam("p_vcpus") <= bindparam("p_max_vcpus"),
        table.memory_mib_used + bindparam("p_memory_mib") <= bindparam("p_max_memory_mib"),
        table.disk_gib_used + bindparam("p_disk_gib") <= bindparam("p_max_disk_gib"),
    ]
    if alive:
        conditions.append(table.last_heartbeat >= bindparam("p_alive_since"))
    if totals:
        conditions += [
            table.vcpus == bindparam("p_total_vcpus"),
            table.memory_mib == bindparam("p_total_memory_mib"),
            table.disk_gib == bindparam("p_total_disk_gib"),
        ]
    return (
        update(hosts)
        .where(*conditions)
        .values(
            vcpus_used=table.vcpus_used + bindparam("p_vcpus"),
            memory_mib_used=table.memory_mib_used + bindparam("p_memory_mib"),
            disk_gib_used=table.disk_gib_used + bindparam("p_disk_gib"),
            instance_count=table.instance_count + bindparam("p_count"),
        )
    )


def release(s: Session, name: str, each: Amount, *, count: int = 1) -> None:
    """Give back ``count`` × ``each`` claimed on host ``name`` (floored at zero)."""
    if count <= 0:
        return
    s.execute(
        update(Host)
        .where(Host.name == name)
        .values(
            vcpus_used=_floor_zero(Host.vcpus_used, each.vcpus * count),
            memory_mib_used=_floor_zero(Host.memory_mib_used, each.memory_mib * count),
            disk_gib_used=_floor_zero(Host.disk_gib_used, each.disk_gib * count),
            instance_count=_floor_zero(Host.instance_count, count),
        )
        .execution_options(synchronize_session=False)
    )


def change_claim(s: Session, name: str, old: Amount, new: Amount) -> None:
    """Replace one instance's claim ``old`` by ``new`` on host ``name``
    (ModifyInstanceAttribute instanceType of a stopped instance), without a
    limit check: the instance already lives there. The instance count is unchanged."""
    s.execute(
        update(Host)
        .where(Host.name == name)
        .values(
            vcpus_used=_floor_zero(Host.vcpus_used, old.vcpus - new.vcpus),
            memory_mib_used=_floor_zero(Host.memory_mib_used, old.memory_mib - new.memory_mib),
            disk_gib_used=_floor_zero(Host.disk_gib_used, old.disk_gib - new.disk_gib),
        )
        .execution_options(synchronize_session=False)
    )


# --- service heartbeats --------------------------------------------------------


def record_heartbeat(
    s: Session,
    service: str,
    host: str,
    *,
    pid: int = 0,
    version: str = "",
    started_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
    tunnel_ip: str | None = None,
) -> None:
    """Record that ``service`` on ``host`` is alive now (creating its record); a network
    service records its ``tunnel_ip`` too."""
    now = now or utcnow()
    values: dict[str, object] = {"pid": pid, "version": version, "last_heartbeat": now}
    if tunnel_ip is not None:
        values["tunnel_ip"] = tunnel_ip
    if started_at is not None:
        values["started_at"] = started_at
    where = (ServiceRecord.service == service, ServiceRecord.host == host)
    done = s.execute(update(ServiceRecord).where(*where).values(**values))
    if done.rowcount:  # type: ignore[attr-defined]
        return
    values.setdefault("started_at", now)
    try:
        with s.begin_nested():
            s.add(ServiceRecord(service=service, host=host, **values))
    except IntegrityError:
        s.execute(update(ServiceRecord).where(*where).values(**values))


def list_services(s: Session, services: Sequence[str] = ()) -> list[ServiceRecord]:
    query = select(ServiceRecord).order_by(ServiceRecord.service, ServiceRecord.host)
    if services:
        query = query.where(ServiceRecord.service.in_(services))
    return list(s.scalars(query))
