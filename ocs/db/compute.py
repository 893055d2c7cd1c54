"""Repository of reservations, instances, per-account quotas and private addresses.

Plain functions taking the session and the caller's account id; the caller owns
the transaction. Another account's instance is exactly as invisible as one that
never existed. Host claims are not here (see ``ocs.db.hosts``).

Instance states are EC2's (:data:`STATE_CODES`). Every change of an instance the
API makes goes through :func:`update_if_unchanged`, a conditional UPDATE on the
row's ``version``: the scheduler service changes the same rows when agents
report, and a change decided on a stale read must be decided again.

Quotas (EC2's "Running On-Demand instances" limits): an account may have at most
``instances`` instances and ``vcpus`` vCPUs in the states that use a host's CPU
(:data:`COUNTED_STATES`; stopped and terminated instances do not count, as on
EC2). Absent a row in ``quotas``, :data:`DEFAULT_QUOTAS` apply.

Network identity: each instance gets a primary network interface (device index
0, deleted on termination) in the same transaction, holding the lowest free
address of its subnet (or the requested one) from the IPAM that accounts for the
addresses of every interface (:mod:`ocs.db.ipam`). The instance's own
``private_ip_address``, ``mac_address``, ``network_interface_id`` and
``security_group_ids`` mirror its primary interface for the services that read
them (scheduler, metadata); the interface rows are the source of truth.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Select, func, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ocs import errors, ids
from ocs.db import instance_events as db_events
from ocs.db import interface_cleanup, ipam, public_addresses, secgroups, volume_cleanup, vpcs
from ocs.db import tags as db_tags
from ocs.db.models.accounts import Account
from ocs.db.models.base import utcnow
from ocs.db.models.compute import Host, Instance, Quota, Reservation
from ocs.db.models.interfaces import NetworkInterface
from ocs.db.models.network import SecurityGroup
from ocs.db.models.tags import Tag

LOG = logging.getLogger(__name__)

STATE_CODES: Final = {
    "pending": 0,
    "running": 16,
    "shutting-down": 32,
    "terminated": 48,
    "stopping": 64,
    "stopped": 80,
}
COUNTED_STATES: Final = ("pending", "running", "stopping", "shutting-down")
DEFAULT_QUOTAS: Final = {"instances": 20, "vcpus": 64}
QUOTA_RESOURCES: Final = tuple(DEFAULT_QUOTAS)
#: Limits whose defaults come from configuration ([volume] gib_per_account,
#: snapshots_per_account and provisioned_iops_per_account); a row in ``quotas``
#: overrides them for one account.
CONFIGURED_QUOTAS: Final = ("volume_gib", "snapshots", "provisioned_iops")


# --- errors -------------------------------------------------------------------------------------


class InstanceLimitExceeded(errors.LimitExceeded):
    code = "InstanceLimitExceeded"
    message = "Your quota allows for {remaining} more running instance(s). You requested at least {requested}"


class VcpuLimitExceeded(errors.LimitExceeded):
    code = "VcpuLimitExceeded"
    message = (
        "You have requested more vCPU capacity than your current vCPU limit of {limit} allows for the "
        "instance bucket that the specified instance type belongs to. Please visit "
        "http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit."
    )


def not_found(instance_ids: Sequence[str]) -> errors.NotFound:
    """``InvalidInstanceID.NotFound`` naming every unknown ID, as EC2 words it."""
    wanted = list(instance_ids)
    if len(wanted) == 1:
        text = f"The instance ID '{wanted[0]}' does not exist"
    else:
        text = f"The instance IDs '{', '.join(wanted)}' do not exist"
    return errors.NotFound(text, code="InvalidInstanceID.NotFound", id=wanted[0] if wanted else "")


# --- lookups ------------------------------------------------------------------------------------


def validate_ids(instance_ids: Iterable[str]) -> list[str]:
    """The IDs without duplicates (request order); Malformed for the first bad one."""
    out = list(dict.fromkeys(instance_ids))
    for instance_id in out:
        ids.validate("instance", instance_id)
    return out


def list_instances(s: Session, account_id: str, instance_ids: Sequence[str] | None = None) -> list[Instance]:
    """The account's instances (every one of ``instance_ids`` must exist), by ID."""
    q = select(Instance).where(Instance.account_id == account_id).order_by(Instance.id)
    if instance_ids is None:
        return list(s.scalars(q))
    wanted = validate_ids(instance_ids)
    if not wanted:
        return list(s.scalars(q))
    rows = list(s.scalars(q.where(Instance.id.in_(wanted))))
    found = {r.id for r in rows}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise not_found(missing)
    return rows


@dataclass(frozen=True)
class Narrowing:
    """Equalities a listing applies in the database: ``columns`` maps an Instance
    attribute to the values it may have, ``tags`` a tag key to the values its tag
    may have. The caller filters exactly afterwards; this only reads fewer rows."""

    columns: Mapping[str, Sequence[str]] = field(default_factory=dict)
    tags: Mapping[str, Sequence[str]] = field(default_factory=dict)


def instance_chunks(
    s: Session,
    account_id: str,
    *,
    after: str | None = None,
    narrowing: Narrowing | None = None,
    first: int = 100,
    most: int = 2000,
) -> Iterator[list[Instance]]:
    """The account's instances with IDs above ``after``, in ID order, a chunk at a time.

    Chunks grow from ``first`` rows to ``most`` (doubling), so that a caller
    that needs a page stops after reading little more than the page.
    """
    q = select(Instance).where(Instance.account_id == account_id)
    for column, values in (narrowing.columns if narrowing else {}).items():
        q = q.where(getattr(Instance, column).in_(list(values)))
    for key, values in (narrowing.tags if narrowing else {}).items():
        tagged = select(Tag.resource_id).where(
            Tag.account_id == account_id,
            Tag.resource_id == Instance.id,
            Tag.key == key,
            Tag.value.in_(list(values)),
        )
        q = q.where(tagged.exists())
    size = max(1, first)
    while True:
        rows = list(
            s.scalars(
                (q if after is None else q.where(Instance.id > after)).order_by(Instance.id).limit(size)
            )
        )
        if rows:
            yield rows
        if len(rows) < size:
            return
        after = rows[-1].id
        size = min(most, size * 2)


def get_instances(s: Session, account_id: str, instance_ids: Sequence[str]) -> list[Instance]:
    """The account's instances ``instance_ids`` in request order; every one must exist."""
    if not instance_ids:
        raise errors.MissingParameter(name="InstanceId")
    by_id = {r.id: r for r in list_instances(s, account_id, instance_ids)}
    return [by_id[i] for i in dict.fromkeys(instance_ids)]


def get_instance(s: Session, account_id: str, instance_id: str | None) -> Instance:
    if not instance_id:
        raise errors.MissingParameter(name="InstanceId")
    return get_instances(s, account_id, [instance_id])[0]


def instance_exists(s: Session, account_id: str, instance_id: str) -> bool:
    """Whether the account sees this instance (CreateTags & co.)."""
    row = s.get(Instance, instance_id)
    return row is not None and row.account_id == account_id


def reservations_of(s: Session, reservation_ids: Iterable[str]) -> dict[str, Reservation]:
    wanted = list(dict.fromkeys(reservation_ids))
    if not wanted:
        return {}
    return {r.id: r for r in s.scalars(select(Reservation).where(Reservation.id.in_(wanted)))}


def list_all(s: Session, account_id: str | None = None) -> list[Instance]:
    """Every instance (of one account if given), oldest first: the operator's view."""
    q = select(Instance).order_by(Instance.launch_time, Instance.reservation_id, Instance.launch_index)
    if account_id is not None:
        q = q.where(Instance.account_id == account_id)
    return list(s.scalars(q))


# --- quotas ---------------------------------------------------------------------------------------


def _check_resource(resource: str) -> str:
    if resource not in QUOTA_RESOURCES + CONFIGURED_QUOTAS:
        raise errors.InvalidParameterValue(
            value=resource,
            name="resource",
            reason="Valid values: " + ", ".join(QUOTA_RESOURCES + CONFIGURED_QUOTAS) + ".",
        )
    return resource


def quota_override(s: Session, account_id: str, resource: str) -> int | None:
    """The account's own limit on ``resource`` (None: it has the default)."""
    row = s.get(Quota, (account_id, _check_resource(resource)))
    return None if row is None else row.limit


def get_quotas(s: Session, account_id: str) -> dict[str, int]:
    """The account's limits, the defaults filled in."""
    limits = dict(DEFAULT_QUOTAS)
    for row in s.scalars(select(Quota).where(Quota.account_id == account_id)):
        if row.resource in limits:
            limits[row.resource] = row.limit
    return limits


def set_quota(s: Session, account_id: str, resource: str, limit: int | None) -> None:
    """Set one limit (None: back to the default)."""
    _check_resource(resource)
    row = s.get(Quota, (account_id, resource))
    if limit is None:
        if row is not None:
            s.delete(row)
    else:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise errors.InvalidParameterValue(value=limit, name=resource, reason="It must be 0 or more.")
        if row is None:
            s.add(Quota(account_id=account_id, resource=resource, limit=limit))
        else:
            row.limit = limit
    s.flush()


def usage(s: Session, account_id: str, *, locked: bool = False) -> dict[str, int]:
    """What counts against the account's quotas now.

    ``locked``: first take the account's quota lock (held until the transaction
    ends), so that concurrent launches of one account are checked one after the
    other and never exceed the quota together.
    """
    if locked:
        lock_account(s, account_id)
    q = select(func.count(), func.coalesce(func.sum(Instance.vcpus), 0)).where(
        Instance.account_id == account_id, Instance.state.in_(COUNTED_STATES)
    )
    count, vcpus = s.execute(q).one()
    return {"instances": int(count or 0), "vcpus": int(vcpus or 0)}


def lock_account(s: Session, account_id: str) -> None:
    """Serialize quota checks of one account (a no-op on SQLite, whose writers are serial)."""
    s.execute(select(Account.id).where(Account.id == account_id).with_for_update())


def launch_allowance(s: Session, account_id: str, vcpus_each: int, min_count: int, max_count: int) -> int:
    """How many of ``max_count`` instances of ``vcpus_each`` vCPUs the quotas allow.

    Fewer than ``min_count``: InstanceLimitExceeded or VcpuLimitExceeded,
    whichever limit binds.
    """
    limits, used = get_quotas(s, account_id), usage(s, account_id, locked=True)
    by_count = max(0, limits["instances"] - used["instances"])
    by_vcpus = max(0, limits["vcpus"] - used["vcpus"]) // max(1, vcpus_each)
    if by_count < min_count:
        raise InstanceLimitExceeded(remaining=by_count, requested=min_count)
    if by_vcpus < min_count:
        raise VcpuLimitExceeded(limit=limits["vcpus"])
    return min(max_count, by_count, by_vcpus)


def check_start_quota(s: Session, account_id: str, starting: Sequence[Instance]) -> None:
    """The quotas must allow stopped ``starting`` instances to run again."""
    if not starting:
        return
    limits, used = get_quotas(s, account_id), usage(s, account_id, locked=True)
    if used["instances"] + len(starting) > limits["instances"]:
        raise InstanceLimitExceeded(
            remaining=max(0, limits["instances"] - used["instances"]), requested=len(starting)
        )
    if used["vcpus"] + sum(i.vcpus for i in starting) > limits["vcpus"]:
        raise VcpuLimitExceeded(limit=limits["vcpus"])


# --- addresses ------------------------------------------------------------------------------------

# The IPAM of every interface's addresses is ocs.db.ipam; these names stay for existing callers.
InsufficientFreeAddresses = ipam.InsufficientFreeAddresses
free_address_count = ipam.free_address_count
check_requested_address = ipam.check_requested_address
subnet_usage = ipam.subnet_usage


def _live_interfaces() -> Select[Any]:
    """Interfaces that keep a subnet or group in use: unattached ones, and those of live instances."""
    return (
        select(NetworkInterface.id)
        .outerjoin(Instance, Instance.id == NetworkInterface.instance_id)
        .where(or_(NetworkInterface.instance_id.is_(None), Instance.state != "terminated"))
    )


def subnet_in_use(s: Session, subnet_id: str) -> bool:
    """Whether a live instance or a network interface is in the subnet."""
    instance = s.scalar(
        select(Instance.id).where(Instance.subnet_id == subnet_id, Instance.state != "terminated").limit(1)
    )
    interface = s.scalar(_live_interfaces().where(NetworkInterface.subnet_id == subnet_id).limit(1))
    return instance is not None or interface is not None


def group_in_use(s: Session, group_id: str) -> bool:
    """Whether a live instance or a network interface uses the group."""
    group = s.get(SecurityGroup, group_id)
    if group is None:
        return False
    rows = s.scalars(
        select(Instance.security_group_ids).where(
            Instance.account_id == group.account_id,
            Instance.vpc_id == group.vpc_id,
            Instance.state != "terminated",
        )
    )
    interfaces = s.scalars(
        _live_interfaces()
        .with_only_columns(NetworkInterface.security_group_ids)
        .where(NetworkInterface.account_id == group.account_id, NetworkInterface.vpc_id == group.vpc_id)
    )
    return any(group_id in (groups or []) for groups in [*rows, *interfaces])


vpcs.SUBNET_IN_USE_CHECKS.append(subnet_in_use)
secgroups.IN_USE_CHECKS.append(group_in_use)


# --- launching ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LaunchSpec:
    """What every instance of one RunInstances shares (all of it validated already)."""

    image_id: str
    instance_type: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    architecture: str
    availability_zone: str
    subnet_id: str
    subnet_cidr: str
    vpc_id: str
    security_group_ids: tuple[str, ...]
    root_device_name: str
    kernel_id: str | None = None
    ramdisk_id: str | None = None
    key_name: str | None = None
    user_data: str | None = None
    client_token: str | None = None
    disable_api_termination: bool = False
    shutdown_behavior: str = "stop"
    private_ip_address: str | None = None
    associate_public_ip: bool = False
    public_ip_required: bool = False
    public_pool: tuple[str, ...] = ()
    primary_interface_id: str | None = None  # an existing interface to launch as the primary


def new_mac_address() -> str:
    """A locally administered unicast MAC address (``02:xx:xx:xx:xx:xx``)."""
    return "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(5))


def _fresh_id(s: Session, kind: str, model: type[Instance] | type[Reservation]) -> str:
    for _ in range(8):
        candidate = ids.new_id(kind)
        if s.get(model, candidate) is None:
            return candidate
    raise errors.InternalError(f"No free {kind} id found after 8 attempts.")


def _new_instance(
    s: Session,
    account_id: str,
    reservation_id: str,
    index: int,
    spec: LaunchSpec,
    now: dt.datetime,
    instance_id: str | None = None,
) -> Instance:
    return Instance(
        id=instance_id or _fresh_id(s, "instance", Instance),
        account_id=account_id,
        reservation_id=reservation_id,
        launch_index=index,
        image_id=spec.image_id,
        kernel_id=spec.kernel_id,
        ramdisk_id=spec.ramdisk_id,
        instance_type=spec.instance_type,
        vcpus=spec.vcpus,
        memory_mib=spec.memory_mib,
        disk_gib=spec.disk_gib,
        architecture=spec.architecture,
        key_name=spec.key_name,
        user_data=spec.user_data,
        state="pending",
        task="scheduling",
        power_state="nostate",
        state_transition_reason="",
        hosts_tried=[],
        availability_zone=spec.availability_zone,
        vpc_id=spec.vpc_id,
        subnet_id=spec.subnet_id,
        mac_address=new_mac_address(),
        network_interface_id=ids.new_id("network_interface"),
        security_group_ids=list(spec.security_group_ids),
        client_token=spec.client_token,
        disable_api_termination=spec.disable_api_termination,
        shutdown_behavior=spec.shutdown_behavior,
        root_device_name=spec.root_device_name,
        launch_time=now,
        updated_at=now,
        version=1,
    )


def primary_interface(
    instance: Instance, address: str, now: dt.datetime, *, associate_public_ip: bool = False
) -> NetworkInterface:
    """The primary network interface (device index 0) of a new instance, attached to it."""
    return NetworkInterface(
        id=instance.network_interface_id or ids.new_id("network_interface"),
        account_id=instance.account_id,
        subnet_id=instance.subnet_id,
        vpc_id=instance.vpc_id,
        availability_zone=instance.availability_zone,
        description="",
        mac_address=instance.mac_address or new_mac_address(),
        private_ip_address=address,
        security_group_ids=list(instance.security_group_ids or []),
        source_dest_check=True,
        status=interface_cleanup.IN_USE,
        interface_type="interface",
        requester_managed=False,
        attachment_id=new_attachment_id(),
        instance_id=instance.id,
        device_index=0,
        attach_status="attached",
        attach_time=now,
        delete_on_termination=True,
        associate_public_ip=associate_public_ip,
        created_at=now,
    )


def new_attachment_id() -> str:
    return ids.new_id("network_interface_attachment")


def launch(
    s: Session, account_id: str, spec: LaunchSpec, count: int, *, now: dt.datetime | None = None
) -> tuple[Reservation, list[Instance]]:
    """A reservation and ``count`` pending instances (task ``scheduling``), each with its
    primary network interface and an address of the subnet (the requested one, else the
    lowest free one), all in the caller's transaction. With ``spec.associate_public_ip``
    each primary interface also gets a public address of ``spec.public_pool``
    (``InsufficientAddressCapacity`` when the pool runs out: the caller rolls back)."""
    when = now or utcnow()
    reservation = Reservation(
        id=_fresh_id(s, "reservation", Reservation), account_id=account_id, created_at=when
    )
    s.add(reservation)
    s.flush()
    if spec.primary_interface_id is not None:
        return reservation, [_launch_on_interface(s, account_id, reservation, spec, when)]
    pool = ipam.open_pool(s, spec.subnet_id, spec.subnet_cidr)
    made: list[Instance] = []
    used: set[str] | None = None
    exhausted = False  # the pool ran out: the rest launch without public addresses (best effort)
    together = _insert_together(s, pool, account_id, reservation.id, spec, count, when)
    for index in range(count):
        latest: list[Any] = []

        def rows(address: str, index: int = index, latest: list[Any] = latest) -> list[object]:
            instance = _new_instance(s, account_id, reservation.id, index, spec, when)
            instance.private_ip_address = address
            eni = primary_interface(instance, address, when, associate_public_ip=spec.associate_public_ip)
            latest[:] = [instance, eni]
            return [instance, eni, ipam.address_row(pool, eni.id, address, primary=True)]

        if together:
            latest[:] = together[index]
        else:
            ipam.insert_with_address(s, pool, rows, requested=spec.private_ip_address)
        if spec.associate_public_ip and (spec.public_ip_required or not exhausted):
            used = public_addresses.used_public_ips(s) if used is None else used
            try:
                public_addresses.assign(s, latest[1], spec.public_pool, now=when, used=used)
            except errors.OcsError as exc:
                if spec.public_ip_required or exc.code != "InsufficientAddressCapacity":
                    raise
                exhausted = True
                LOG.warning(
                    "public address pool exhausted: %s launches without a public address", latest[0].id
                )
        made.append(latest[0])
    LOG.info(
        "Account %s launches %d %s instance(s) in reservation %s",
        account_id,
        count,
        spec.instance_type,
        reservation.id,
    )
    return reservation, made


def _insert_together(
    s: Session,
    pool: ipam.Pool,
    account_id: str,
    reservation_id: str,
    spec: LaunchSpec,
    count: int,
    when: dt.datetime,
) -> list[tuple[Instance, NetworkInterface]]:
    """The ``count`` instances of a launch with their primary interfaces and addresses (the
    lowest free ones), inserted with one INSERT per table rather than a savepoint and three
    INSERTs per instance; [] when a launch of one, or of a requested address, or when a row
    collided (nothing of it is left: the caller inserts them one by one)."""
    if count < 2 or spec.private_ip_address:
        return []
    taken = set(pool.used)
    try:
        addresses = [pool.next_free() for _ in range(count)]
        for address in addresses:
            pool.used.add(address)
    except ipam.InsufficientFreeAddresses:
        pool.used = taken
        return []
    instance_ids = _fresh_ids(s, "instance", Instance, count)
    out: list[tuple[Instance, NetworkInterface]] = []
    for index, (iid, address) in enumerate(zip(instance_ids, addresses, strict=True)):
        instance = _new_instance(s, account_id, reservation_id, index, spec, when, instance_id=iid)
        instance.private_ip_address = address
        out.append(
            (
                instance,
                primary_interface(instance, address, when, associate_public_ip=spec.associate_public_ip),
            )
        )
    try:
        with s.begin_nested():
            s.add_all([i for i, _ in out])
            s.flush()
            s.add_all([e for _, e in out])
            s.flush()
            s.add_all([ipam.address_row(pool, e.id, e.private_ip_address, primary=True) for _, e in out])
            s.flush()
    except IntegrityError:
        pool.used = taken
        return []
    return out


def _fresh_ids(s: Session, kind: str, model: type[Instance], count: int) -> list[str]:
    """``count`` new IDs that no row of ``model`` has (one query per round of candidates)."""
    found: list[str] = []
    for _ in range(8):
        candidates = [ids.new_id(kind) for _ in range(count - len(found))]
        clash = set(s.scalars(select(model.id).where(model.id.in_(candidates))))
        found += [c for c in dict.fromkeys(candidates) if c not in clash and c not in found]
        if len(found) == count:
            return found
    raise errors.InternalError(f"No free {kind} ids found after 8 attempts.")


def _launch_on_interface(
    s: Session, account_id: str, reservation: Reservation, spec: LaunchSpec, when: dt.datetime
) -> Instance:
    """One instance whose primary is the existing interface ``spec.primary_interface_id``
    (free, checked by the caller), attached at device index 0 and kept at termination."""
    eni = s.get(NetworkInterface, spec.primary_interface_id)
    if eni is None or eni.account_id != account_id:
        raise ids.not_found("network_interface", spec.primary_interface_id)
    instance = _new_instance(s, account_id, reservation.id, 0, spec, when)
    instance.network_interface_id = eni.id
    instance.mac_address = eni.mac_address
    instance.private_ip_address = eni.private_ip_address
    s.add(instance)
    s.flush()
    done = s.execute(
        update(NetworkInterface)
        .where(NetworkInterface.id == eni.id, NetworkInterface.instance_id.is_(None))
        .values(
            status=interface_cleanup.IN_USE,
            attachment_id=new_attachment_id(),
            instance_id=instance.id,
            device_index=0,
            attach_status="attached",
            attach_time=when,
            delete_on_termination=False,
        )
        .execution_options(synchronize_session=False)
    )
    if not getattr(done, "rowcount", 0):
        raise errors.InUse(f"Interface: [{eni.id}] in use.", code="InvalidNetworkInterface.InUse")
    s.expire(eni)
    LOG.info("Account %s launches %s on interface %s in %s", account_id, instance.id, eni.id, reservation.id)
    return instance


def placed_instances(s: Session, reservation_id: str) -> list[Instance]:
    """The instances of a reservation that still exist, by launch index."""
    return list(
        s.scalars(
            select(Instance).where(Instance.reservation_id == reservation_id).order_by(Instance.launch_index)
        )
    )


def delete_unplaced(
    s: Session, account_id: str, reservation_id: str, instance_ids: Sequence[str]
) -> list[str]:
    """Delete those of ``instance_ids`` that have no host yet (with their tags), and the
    reservation once empty; the IDs of the instances that are gone (here or before).
    """
    wanted = (
        list(
            s.scalars(
                select(Instance.id).where(Instance.account_id == account_id, Instance.id.in_(instance_ids))
            )
        )
        if instance_ids
        else []
    )
    db_events.delete_unplaced(
        s, wanted, reservation_id=reservation_id, answered_after=None
    )  # not answered yet
    left = set(s.scalars(select(Instance.id).where(Instance.id.in_(wanted)))) if wanted else set()
    gone = [i for i in instance_ids if i not in left]
    for instance_id in gone:  # also those the scheduler deleted
        db_tags.delete_all_for(s, instance_id)
    db_events.delete_empty_reservations(s, [reservation_id])
    s.flush()
    return gone


# --- changes --------------------------------------------------------------------------------------


def update_if_unchanged(s: Session, instance: Instance, **changes: object) -> bool:
    """Apply ``changes`` unless the row changed since ``instance`` was read; True if applied.

    The row's ``version`` grows by one; ``instance`` is refreshed either way.
    """
    now = utcnow()
    result = s.execute(
        update(Instance)
        .where(Instance.id == instance.id, Instance.version == instance.version)
        .values(**changes, version=Instance.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    applied = bool(getattr(result, "rowcount", 0) == 1)
    if applied:
        public_addresses.after_state_change(s, instance.id, instance.state, changes)
    if applied and changes.get("state") == "terminated" and instance.state != "terminated":
        interface_cleanup.release_instance_interfaces(s, [instance.id])
        volume_cleanup.release_instance_volumes(s, [instance.id])
    s.refresh(instance)
    return applied


def update_many_if_unchanged(s: Session, changes: Sequence[tuple[Instance, Mapping[str, object]]]) -> bool:
    """:func:`update_if_unchanged` for several instances at once, all or nothing: True
    if every row was unchanged since it was read and got its changes; False if any had
    changed (some rows may have been written: the caller rolls the transaction back).

    Instances with the same changes are written by one UPDATE over their (id, version)
    pairs, their public addresses, interfaces and volumes released together, and every
    instance is read again by one SELECT: a handful of statements for a hundred
    instances rather than four per instance.
    """
    groups: list[tuple[dict[str, object], list[Instance]]] = []  # by equal changes (values may be lists)
    for instance, values in changes:
        if not values:
            continue
        same = next((rows for known, rows in groups if known == values), None)
        if same is None:
            groups.append((dict(values), [instance]))
        else:
            same.append(instance)
    if not groups:
        return True
    now = utcnow()
    for values, rows in groups:
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            result = s.execute(
                update(Instance)
                .where(tuple_(Instance.id, Instance.version).in_([(r.id, r.version) for r in chunk]))
                .values(**values, version=Instance.version + 1, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != len(chunk):
                return False
        public_addresses.after_state_changes(s, [(r.id, r.state) for r in rows], values)
        if values.get("state") == "terminated":
            ending = [r.id for r in rows if r.state != "terminated"]
            interface_cleanup.release_instance_interfaces(s, ending)
            volume_cleanup.release_instance_volumes(s, ending)
    changed = [r.id for _, rows in groups for r in rows]
    for start in range(0, len(changed), 500):
        s.scalars(
            select(Instance)
            .where(Instance.id.in_(changed[start : start + 500]))
            .execution_options(populate_existing=True)
        ).all()
    return True


def terminated_changes(now: dt.datetime) -> dict[str, object]:
    """The columns of an instance that ends terminated without a host to clean up."""
    return {
        "state": "terminated",
        "task": None,
        "terminated_at": now,
        "private_ip_address": None,
        "power_state": "nostate",
    }


# --- placement hints ------------------------------------------------------------------------------


def roomiest_zone(s: Session, zones: Sequence[str]) -> str:
    """The zone whose enabled hosts have the most free vCPUs (the first zone if none has hosts).

    Used when RunInstances names neither a subnet nor a zone, as EC2 picks one.
    """
    free: dict[str, int] = dict.fromkeys(zones, -1)
    rows = s.execute(
        select(Host.availability_zone, func.sum(Host.vcpus - Host.vcpus_used))
        .where(Host.enabled.is_(True), Host.availability_zone.in_(list(zones)))
        .group_by(Host.availability_zone)
    )
    for zone, room in rows:
        free[zone] = int(room or 0)
    return max(zones, key=lambda z: (free[z], -list(zones).index(z)))
