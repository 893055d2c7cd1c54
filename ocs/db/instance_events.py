"""Instance rows as the scheduler service changes them: placement, agents'
observations, build timeouts and purges.

Every change is conditional on the row's ``version`` (read, decide, then
``UPDATE ... WHERE id = :id AND version = :version``, bumping it), so several
schedulers and the API writing at once never overwrite each other's decision
unseen: the loser reads the row again and decides again. Claims on hosts are
changed in the same transaction (:mod:`ocs.db.hosts`).

The API's own repository of instances is :mod:`ocs.db.compute`; this module
holds only what the scheduler side needs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from ocs.db import hosts as db_hosts
from ocs.db import interface_cleanup, public_addresses, volume_cleanup
from ocs.db import tags as db_tags
from ocs.db.models.base import utcnow
from ocs.db.models.compute import Instance, Reservation

TERMINATED = "terminated"

ON_DELETE: list[Callable[[Session, Sequence[str]], None]] = []
"""``(session, instance_ids)`` functions that remove what other families keep
for instances about to be deleted (volume attachments ...); families append
theirs at import. Tags and network interfaces are handled here: an instance that
ends (terminated or deleted) loses its delete-on-termination interfaces and
leaves its other ones detached (:mod:`ocs.db.interface_cleanup`); so do its EBS
volumes (:mod:`ocs.db.volume_cleanup`)."""


def amount(inst: Instance) -> db_hosts.Amount:
    """The resources an instance claims on its host."""
    return db_hosts.Amount(inst.vcpus, inst.memory_mib, inst.disk_gib)


# --- reading --------------------------------------------------------------------------


def load_instances(s: Session, instance_ids: Iterable[str]) -> list[Instance]:
    """The instances with these IDs that exist, in launch order."""
    wanted = list(dict.fromkeys(instance_ids))
    if not wanted:
        return []
    rows = s.scalars(
        select(Instance).where(Instance.id.in_(wanted)).execution_options(populate_existing=True)
    )
    return sorted(rows, key=lambda i: (i.reservation_id, i.launch_index, i.id))


def get_instance(s: Session, instance_id: str) -> Instance | None:
    return s.get(Instance, instance_id, populate_existing=True)


def on_host(s: Session, host: str) -> list[Instance]:
    """The instances placed on ``host`` that are not terminated."""
    return list(
        s.scalars(
            select(Instance)
            .where(Instance.host == host, Instance.state != TERMINATED)
            .order_by(Instance.id)
            .execution_options(populate_existing=True)
        )
    )


def hosts_of(s: Session, instance_ids: Collection[str]) -> dict[str, tuple[str | None, str]]:
    """``{instance_id: (host, state)}`` of those that exist."""
    out: dict[str, tuple[str | None, str]] = {}
    ids = list(instance_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for iid, host, state in s.execute(
            select(Instance.id, Instance.host, Instance.state).where(Instance.id.in_(chunk))
        ):
            out[iid] = (host, state)
    return out


def on_hosts_in(
    s: Session, hosts: Collection[str], states_tasks: Sequence[tuple[str, str]], limit: int = 500
) -> list[Instance]:
    """Instances placed on one of ``hosts`` in one of the (state, task) pairs."""
    if not hosts:
        return []
    found: list[Instance] = []
    for state, task in states_tasks:
        found += s.scalars(
            select(Instance)
            .where(Instance.host.in_(list(hosts)), Instance.state == state, Instance.task == task)
            .order_by(Instance.updated_at)
            .limit(limit)
            .execution_options(populate_existing=True)
        )
    return found


def stuck(s: Session, states_tasks: Sequence[tuple[str, str]], before: dt.datetime) -> list[Instance]:
    """Instances in one of the (state, task) pairs, unchanged since before ``before``."""
    found: list[Instance] = []
    for state, task in states_tasks:
        found += s.scalars(
            select(Instance)
            .where(Instance.state == state, Instance.task == task, Instance.updated_at < before)
            .order_by(Instance.updated_at)
            .limit(500)
            .execution_options(populate_existing=True)
        )
    return found


# --- writing --------------------------------------------------------------------------


def apply(s: Session, inst: Instance, values: dict[str, Any], *, release_claim: bool = False) -> bool:
    """Write ``values`` to ``inst`` if nobody changed it since it was read.

    Bumps ``version``; with ``release_claim`` gives the instance's resources
    back to its (current) host in the same transaction. False on a conflict
    (nothing written: read again and decide again).
    """
    done = s.execute(
        update(Instance)
        .where(Instance.id == inst.id, Instance.version == inst.version)
        .values(**values, version=Instance.version + 1)
        .execution_options(synchronize_session=False)
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        return False
    public_addresses.after_state_change(s, inst.id, inst.state, values)
    if values.get("state") == TERMINATED and inst.state != TERMINATED:
        interface_cleanup.release_instance_interfaces(s, [inst.id])
        volume_cleanup.release_instance_volumes(s, [inst.id])
    if release_claim and inst.host and inst.state != TERMINATED:
        db_hosts.release(s, inst.host, amount(inst))
    return True


def set_power_state(s: Session, inst: Instance, power_state: str) -> None:
    """Record the power state a heartbeat saw, without bumping ``version``
    (it is an observation, not a decision) nor ``updated_at``."""
    s.execute(
        update(Instance)
        .where(Instance.id == inst.id, Instance.state == inst.state)
        .values(power_state=power_state, updated_at=Instance.updated_at)
        .execution_options(synchronize_session=False)
    )


def assign(s: Session, instance_ids: Sequence[str], host: str, *, task: str) -> list[str]:
    """Place the still unplaced instances ``instance_ids`` (pending, task
    ``scheduling``, no host) on ``host`` with ``task``; returns those placed."""
    if not instance_ids:
        return []
    unplaced = (
        Instance.id.in_(instance_ids),
        Instance.host.is_(None),
        Instance.state == "pending",
        Instance.task == "scheduling",
    )
    done = s.execute(
        update(Instance)
        .where(*unplaced)
        .values(host=host, task=task, version=Instance.version + 1)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount == len(instance_ids):  # type: ignore[attr-defined]
        return list(instance_ids)
    placed = set(s.scalars(select(Instance.id).where(Instance.id.in_(instance_ids), Instance.host == host)))
    return [i for i in instance_ids if i in placed]


def unassign(s: Session, instance_ids: Sequence[str], host: str, task: str) -> int:
    """Delete instances placed on ``host`` but never built (still pending with
    ``task``); returns how many, so that the caller releases their claims."""
    if not instance_ids:
        return 0
    doomed = list(
        s.scalars(
            select(Instance.id).where(
                Instance.id.in_(instance_ids),
                Instance.host == host,
                Instance.state == "pending",
                Instance.task == task,
            )
        )
    )
    _delete(s, doomed)
    return len(doomed)


#: Seconds after its launch within which an instance's RunInstances surely still waits
#: for the scheduler: its call (SchedulerApi.schedule_instances) times out after 30 s,
#: counted from after the launch was committed, and the API then answers every
#: instance ``pending``. Later, a scheduler still working on the launch must not
#: delete what it could not place: the client may have been told about it.
LAUNCH_ANSWER_WINDOW = 25.0


def delete_unplaced(
    s: Session,
    instance_ids: Sequence[str],
    *,
    reservation_id: str | None = None,
    answered_after: float | None = LAUNCH_ANSWER_WINDOW,
) -> int:
    """Delete the instances among ``instance_ids`` that have no host (they never
    will), and the reservation when none of its instances is left.

    ``answered_after``: instances launched longer ago than that many seconds are kept
    (pending without a host): their RunInstances may have answered them already (see
    :data:`LAUNCH_ANSWER_WINDOW`), so the scheduler's periodic task places them later or
    ends them ``terminated`` with a StateReason, as for any launch answered unplaced.
    The scheduler, which cannot know whether its caller still waits, keeps the default;
    the API, deleting before it answers, passes None."""
    query = select(Instance.id).where(Instance.id.in_(instance_ids), Instance.host.is_(None))
    if answered_after is not None:
        query = query.where(Instance.launch_time > utcnow() - dt.timedelta(seconds=answered_after))
    doomed = list(s.scalars(query))
    _delete(s, doomed)
    if reservation_id is not None:
        delete_empty_reservations(s, [reservation_id])
    return len(doomed)


def _delete(s: Session, instance_ids: Sequence[str]) -> None:
    if not instance_ids:
        return
    interface_cleanup.release_instance_interfaces(s, instance_ids)
    volume_cleanup.discard_instance_volumes(s, instance_ids)  # a launch that never happened
    for hook in ON_DELETE:
        hook(s, instance_ids)
    for iid in instance_ids:
        db_tags.delete_all_for(s, iid)
    s.execute(
        delete(Instance).where(Instance.id.in_(instance_ids)).execution_options(synchronize_session=False)
    )


def delete_empty_reservations(s: Session, reservation_ids: Iterable[str]) -> None:
    ids = list(set(reservation_ids))
    if not ids:
        return
    s.execute(
        delete(Reservation)
        .where(
            Reservation.id.in_(ids),
            ~exists(select(Instance.id).where(Instance.reservation_id == Reservation.id)),
        )
        .execution_options(synchronize_session=False)
    )


def purge_terminated(s: Session, before: dt.datetime, limit: int = 500) -> list[str]:
    """Delete instances terminated before ``before`` (with their tags, and their
    reservations once empty); returns their IDs."""
    rows = list(
        s.execute(
            select(Instance.id, Instance.reservation_id)
            .where(Instance.state == TERMINATED, Instance.terminated_at < before)
            .limit(limit)
        )
    )
    ids = [r[0] for r in rows]
    if not ids:
        return []
    interface_cleanup.release_instance_interfaces(s, ids)
    volume_cleanup.release_instance_volumes(s, ids)
    for hook in ON_DELETE:
        hook(s, ids)
    for iid in ids:
        db_tags.delete_all_for(s, iid)
    s.execute(
        delete(Instance)
        .where(Instance.id.in_(ids), Instance.state == TERMINATED)
        .execution_options(synchronize_session=False)
    )
    delete_empty_reservations(s, (r[1] for r in rows))
    return ids
