"""What an account does to its existing instances: change their state, read their console,
read and change their attributes.

StopInstances, StartInstances, RebootInstances and TerminateInstances decide per
instance from its current state (the contract of issue 4), write the change with
a conditional update on the row's version (the scheduler changes the same rows
when agents report; a change decided on a stale read is decided again), COMMIT,
and only then cast to the compute agent of the instance's host, so that the
agent's report can never arrive before the state it updates. A request naming
several instances changes all of them or, on any error, none.

* An instance already where it was sent stays there (EC2 reports the current
  state as both the previous and the current one). A state from which the
  change is impossible: ``IncorrectInstanceState`` "The instance 'i-x' is not in
  a state from which it can be stopped." [burstable-ai/burst#42,
  canonical/ubuntu-pro-client#1697]. Termination protection:
  ``OperationNotPermitted`` "The instance 'i-x' may not be terminated. Modify its
  'disableApiTermination' instance attribute and try again."
* ``Hibernate=true``: ``UnsupportedHibernationConfiguration`` (no instance here is
  configured for hibernation). ``Force=true`` on a ``stopping`` instance forces
  the stop again (what EC2 documents Force for).
* A stopped instance keeps its host (and its claim there) and starts again on it.
* Only an instance whose root device is EBS stops (its root volume, or the disk of
  its own that an image of the image store gives it, which OCS keeps across stop
  and start as EC2 keeps a root volume); an instance-store one (an image
  registered with a kernel and no disk): ``UnsupportedOperation`` "The instance
  'i-x' does not have an 'ebs' root device type and cannot be stopped."
  [mitchellh/vagrant-aws#193].
* Public IPv4: a stopping instance gives its auto-assigned public address back; a
  start assigns a new one (``InsufficientAddressCapacity`` with the pool out of
  addresses: nothing starts), see :mod:`ocs.db.public_addresses`.
* GetConsoleOutput: the agent's base64 text; no output (the member is absent)
  while the instance has no host or its agent does not answer.

DescribeInstanceAttribute and ModifyInstanceAttribute, as EC2 documents them:
``instanceType``, ``kernel``, ``ramdisk`` and ``userData`` change only while the
instance is stopped (``IncorrectInstanceState`` "The instance 'i-x' is not in the
'stopped' state."); ``disableApiTermination``, ``instanceInitiatedShutdownBehavior``
and ``groupSet`` change in any state but terminated. A new instance type must
exist and fit the instance's architecture; it changes the vCPUs and memory the
instance claims when it next starts (its root disk never shrinks). The other
attributes are read-only here: setting them to what OCS always has is accepted,
anything else is ``Unsupported``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ocs import errors
from ocs.api_ec2 import network
from ocs.api_ec2.actions import instances as api
from ocs.api_ec2.context import RequestContext
from ocs.compute_agent.driver import VolumeAttachment
from ocs.compute_agent.rpcapi import ConsoleRequest, GuestAction
from ocs.db import compute as repo
from ocs.db import hosts as db_hosts
from ocs.db import images as db_images
from ocs.db import instance_types as db_types
from ocs.db import interfaces as db_interfaces
from ocs.db import public_addresses
from ocs.db import secgroups as db_secgroups
from ocs.db import volume_attachments as db_attachments
from ocs.db.models.compute import Instance
from ocs.db.models.images import Image

GONE = ("shutting-down", "terminated")

LOG = logging.getLogger(__name__)

CHANGE_ATTEMPTS = 3

# --- state changes ---------------------------------------------------------------------------------


def user_initiated(now: dt.datetime) -> str:
    return f"User initiated ({now.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} GMT)"


def user_shutdown(now: dt.datetime) -> dict[str, Any]:
    """The reasons EC2 shows on an instance the user stopped or terminated."""
    return {
        "state_transition_reason": user_initiated(now),
        "state_reason_code": "Client.UserInitiatedShutdown",
        "state_reason_message": "Client.UserInitiatedShutdown: User initiated shutdown",
    }


@dataclass
class Plan:
    """What one state-change request does to one instance."""

    changes: dict[str, Any] = field(default_factory=dict)
    cast: str | None = None  # ComputeApi operation to send once committed
    force: bool = False


def _apply_plans(
    ctx: RequestContext,
    instance_ids: list[str],
    decide: Any,
    after: Callable[[list[Instance]], None] | None = None,
) -> list[tuple[Instance, str, Plan]]:
    """Decide per instance (``decide(rows) -> [Plan]`` may raise), apply, retry on a race, commit.

    ``after(changed rows)`` (may raise: nothing is committed) writes what goes with the
    changes in the same transaction."""
    s = ctx.session
    for _ in range(CHANGE_ATTEMPTS):
        rows = repo.get_instances(s, ctx.account_id, instance_ids)
        before = [r.state for r in rows]
        plans = decide(rows)
        if any(p.cast for p in plans) and ctx.services.get("compute") is None:
            raise errors.ServiceUnavailable("The compute service is not available. Try again later.")
        if repo.update_many_if_unchanged(s, [(r, p.changes) for r, p in zip(rows, plans, strict=True)]):
            if after is not None:
                after([r for r, p in zip(rows, plans, strict=True) if p.changes])
            s.commit()
            return list(zip(rows, before, plans, strict=True))
        s.rollback()  # an agent's report changed an instance meanwhile: decide again
    raise errors.ServiceUnavailable("The instances are changing state. Try again.")


def _send(ctx: RequestContext, done: list[tuple[Instance, str, Plan]]) -> None:
    compute = ctx.services.get("compute")
    starting = [row for row, _, plan in done if plan.cast == "start" and row.host]
    volumes = {row.id: _guest_volumes(ctx, row) for row in starting}
    if starting:
        ctx.session.commit()  # hold no transaction while casting
    for row, _, plan in done:
        if plan.cast and row.host:
            action = GuestAction(
                host=row.host, instance_id=row.id, force=plan.force, volumes=volumes.get(row.id)
            )
            getattr(compute, plan.cast)(action)


def _guest_volumes(ctx: RequestContext, row: Instance) -> tuple[VolumeAttachment, ...]:
    """The EBS volumes a starting guest must have (attached or detached while it was
    stopped); not its root volume, which is its root disk for good."""
    return tuple(
        VolumeAttachment.of_export(vol.id, att.device, vol.export)
        for att, vol in db_attachments.for_guest(ctx.session, row.id)
        if att.device != row.root_device_name
    )


def _state_changes(done: list[tuple[Instance, str, Plan]]) -> list[dict[str, Any]]:
    return [
        {"InstanceId": row.id, "CurrentState": api.state_of(row.state), "PreviousState": api.state_of(before)}
        for row, before, _ in done
    ]


def _instance_ids(params: dict[str, Any]) -> list[str]:
    wanted = params.get("InstanceIds") or []
    if not wanted:
        raise errors.MissingParameter(name="InstanceId")
    return list(wanted)


def stop_instances(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("Hibernate"):
        first = (params.get("InstanceIds") or [""])[0]
        raise errors.Unsupported(
            f"The instance '{first}' does not have hibernation configured.",
            code="UnsupportedHibernationConfiguration",
        )
    force, now = bool(params.get("Force")), ctx.now()

    def decide(rows: list[Instance]) -> list[Plan]:
        _refuse_instance_store(ctx, rows)
        plans = []
        for row in rows:
            if row.state == "running" and row.host:
                changes = {"state": "stopping", "task": "stopping", **user_shutdown(now)}
                plans.append(Plan(changes, cast="stop", force=force))
            elif row.state == "running":  # never placed on a host: nothing to power off
                plans.append(Plan({"state": "stopped", "task": None, **user_shutdown(now)}))
            elif row.state == "stopping":
                plans.append(Plan(cast="stop" if force else None, force=True))
            elif row.state == "stopped":
                plans.append(Plan())
            else:
                raise errors.IncorrectInstanceState(id=row.id, action="stopped")
        return plans

    done = _apply_plans(ctx, _instance_ids(params), decide)
    _send(ctx, done)
    return {"StoppingInstances": _state_changes(done)}


def _refuse_instance_store(ctx: RequestContext, rows: list[Instance]) -> None:
    images = {row.image_id: ctx.session.get(Image, row.image_id) for row in rows}
    for row in rows:
        image = images[row.image_id]
        if image is not None and image.root_device_type == "instance-store" and row.state not in GONE:
            raise errors.Unsupported(
                f"The instance '{row.id}' does not have an 'ebs' root device type and cannot be stopped.",
                code="UnsupportedOperation",
            )


def start_instances(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    now = ctx.now()

    def decide(rows: list[Instance]) -> list[Plan]:
        plans = []
        for row in rows:
            if row.state == "stopped":
                if not row.host:
                    raise errors.InsufficientInstanceCapacity()
                changes = {
                    "state": "pending",
                    "task": "starting",
                    "launch_time": now,
                    "state_transition_reason": "",
                    "state_reason_code": None,
                    "state_reason_message": None,
                }
                plans.append(Plan(changes, cast="start"))
            elif row.state in ("running", "pending"):
                plans.append(Plan())
            else:
                raise errors.IncorrectInstanceState(id=row.id, action="started")
        repo.check_start_quota(ctx.session, ctx.account_id, [r for r in rows if r.state == "stopped"])
        return plans

    def public_ips(started: list[Instance]) -> None:
        public_addresses.assign_for_instances(
            ctx.session, [r.id for r in started], ctx.settings.public_address_pool
        )

    done = _apply_plans(ctx, _instance_ids(params), decide, after=public_ips)
    _send(ctx, done)
    return {"StartingInstances": _state_changes(done)}


def reboot_instances(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    def decide(rows: list[Instance]) -> list[Plan]:
        for row in rows:
            if row.state != "running":
                raise errors.IncorrectInstanceState(id=row.id, action="rebooted")
        return [Plan(cast="reboot") for _ in rows]

    _send(ctx, _apply_plans(ctx, _instance_ids(params), decide))
    return {}


def terminate_instances(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    now = ctx.now()

    def decide(rows: list[Instance]) -> list[Plan]:
        for row in rows:
            if row.disable_api_termination and row.state != "terminated":
                raise errors.OperationNotPermitted(
                    f"The instance '{row.id}' may not be terminated. Modify its 'disableApiTermination' "
                    "instance attribute and try again."
                )
        plans = []
        for row in rows:
            if row.state in ("terminated", "shutting-down"):
                plans.append(Plan())
            elif not row.host:  # never placed: nothing to destroy
                plans.append(Plan({**repo.terminated_changes(now), **user_shutdown(now)}))
            else:
                changes = {"state": "shutting-down", "task": "terminating", **user_shutdown(now)}
                plans.append(Plan(changes, cast="destroy"))
        return plans

    done = _apply_plans(ctx, _instance_ids(params), decide)
    _send(ctx, done)
    leaving = [g for row, before, _ in done if before not in GONE for g in row.security_group_ids or ()]
    network.security_groups_changed(ctx, leaving)
    return {"TerminatingInstances": _state_changes(done)}


# --- GetConsoleOutput -------------------------------------------------------------------------------


def get_console_output(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """The guest's console (base64, as EC2 sends it); empty while the instance has no host."""
    row = repo.get_instance(ctx.session, ctx.account_id, params.get("InstanceId"))
    host, instance_id = row.host, row.id
    ctx.session.commit()  # hold no transaction while waiting on the agent
    result: dict[str, Any] = {"InstanceId": instance_id, "Timestamp": ctx.now()}
    compute = ctx.services.get("compute")
    if not host or compute is None:
        return result
    try:
        reply = compute.console_output(ConsoleRequest(host=host, instance_id=instance_id))
    except errors.OcsError as exc:
        LOG.warning("console of %s on %s unavailable: %s", instance_id, host, exc)
        return result
    if reply.output:
        result["Output"] = reply.output
    try:
        result["Timestamp"] = dt.datetime.fromisoformat(reply.timestamp)
    except (TypeError, ValueError):
        pass
    return result


def get_password_data(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """No image here makes a Windows administrator password: PasswordData is empty, as
    EC2 answers for Linux instances (and for Windows ones before the password exists)."""
    row = repo.get_instance(ctx.session, ctx.account_id, params.get("InstanceId"))
    return {"InstanceId": row.id, "Timestamp": ctx.now(), "PasswordData": ""}


# --- DescribeInstanceAttribute ------------------------------------------------------------------


def _value(value: Any) -> dict[str, Any]:
    return {} if value is None else {"Value": value}


def _groups(ctx: RequestContext, row: Instance) -> list[dict[str, str]]:
    rel = api.Related(groups=db_secgroups.groups_by_id(ctx.session, row.security_group_ids or []))
    return api.group_items(row, rel)


def _source_dest_check(ctx: RequestContext, row: Instance) -> bool:
    primary = db_interfaces.primary_of(ctx.session, row.id)
    return True if primary is None else bool(primary.source_dest_check)


_PER_INTERFACE = frozenset({"groupSet", "sourceDestCheck"})


def _check_single_interface(ctx: RequestContext, row: Instance, attribute: str) -> None:
    """groupSet and sourceDestCheck are the primary interface's: EC2 refuses them by instance
    once the instance has several interfaces (the caller must name the interface)."""
    if attribute not in _PER_INTERFACE:
        return
    if len(db_interfaces.interfaces_of_instances(ctx.session, [row.id]).get(row.id, [])) > 1:
        raise errors.OcsError(
            f"There are multiple interfaces attached to instance '{row.id}'. "
            "Please specify an interface ID for the operation instead.",
            code="InvalidInstanceID",
        )


Reader = Callable[[RequestContext, Instance], dict[str, Any]]

_READERS: dict[str, Reader] = {
    "instanceType": lambda ctx, r: {"InstanceType": _value(r.instance_type)},
    "kernel": lambda ctx, r: {"KernelId": _value(r.kernel_id)},
    "ramdisk": lambda ctx, r: {"RamdiskId": _value(r.ramdisk_id)},
    "userData": lambda ctx, r: {"UserData": _value(r.user_data)},
    "disableApiTermination": lambda ctx, r: {
        "DisableApiTermination": _value(bool(r.disable_api_termination))
    },
    "instanceInitiatedShutdownBehavior": lambda ctx, r: {
        "InstanceInitiatedShutdownBehavior": _value(r.shutdown_behavior)
    },
    "rootDeviceName": lambda ctx, r: {"RootDeviceName": _value(r.root_device_name)},
    "blockDeviceMapping": lambda ctx, r: {"BlockDeviceMappings": api.block_device_items(ctx, r)},
    "productCodes": lambda ctx, r: {"ProductCodes": []},
    "sourceDestCheck": lambda ctx, r: {"SourceDestCheck": _value(_source_dest_check(ctx, r))},
    "groupSet": lambda ctx, r: {"Groups": _groups(ctx, r)},
    "ebsOptimized": lambda ctx, r: {"EbsOptimized": _value(False)},
    "sriovNetSupport": lambda ctx, r: {"SriovNetSupport": {}},
    "enaSupport": lambda ctx, r: {"EnaSupport": _value(True)},
    "enclaveOptions": lambda ctx, r: {"EnclaveOptions": {"Enabled": False}},
    "disableApiStop": lambda ctx, r: {"DisableApiStop": _value(False)},
}


def describe_instance_attribute(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    attribute = params.get("Attribute")
    if not attribute:
        raise errors.MissingParameter(name="Attribute")
    row = repo.get_instance(ctx.session, ctx.account_id, params.get("InstanceId"))
    reader = _READERS.get(attribute)
    if reader is None:
        raise errors.InvalidParameterValue(
            value=attribute, name="attribute", reason="It is not a supported value."
        )
    _check_single_interface(ctx, row, attribute)
    return {"InstanceId": row.id, **reader(ctx, row)}


# --- ModifyInstanceAttribute --------------------------------------------------------------------

# Request member -> attribute name (the legacy form sends Attribute=name, Value=text).
_MEMBERS = {
    "InstanceType": "instanceType",
    "Kernel": "kernel",
    "Ramdisk": "ramdisk",
    "UserData": "userData",
    "DisableApiTermination": "disableApiTermination",
    "InstanceInitiatedShutdownBehavior": "instanceInitiatedShutdownBehavior",
    "SourceDestCheck": "sourceDestCheck",
    "Groups": "groupSet",
    "EbsOptimized": "ebsOptimized",
    "EnaSupport": "enaSupport",
    "SriovNetSupport": "sriovNetSupport",
    "BlockDeviceMappings": "blockDeviceMapping",
    "DisableApiStop": "disableApiStop",
    "EnclaveOptions": "enclaveOptions",
}
_STOPPED_ONLY = frozenset({"instanceType", "kernel", "ramdisk", "userData"})
_BOOLEAN = frozenset(
    {"disableApiTermination", "sourceDestCheck", "ebsOptimized", "enaSupport", "disableApiStop"}
)
_ATTRIBUTES = frozenset(_MEMBERS.values())
# Read-only attributes: the one value OCS always has is accepted, anything else is Unsupported.
_FIXED: dict[str, Any] = {
    "ebsOptimized": False,
    "enaSupport": True,
    "disableApiStop": False,
}


@dataclass(frozen=True)
class Change:
    attribute: str
    value: Any = field(default=None)


def _legacy_value(attribute: str, text: Any) -> Any:
    if attribute in _BOOLEAN:
        if str(text).lower() not in ("true", "false"):
            raise errors.InvalidParameterValue(
                value=text, name="value", reason="It must be 'true' or 'false'."
            )
        return str(text).lower() == "true"
    if attribute == "groupSet":
        return [text]
    return text


def requested_change(params: dict[str, Any]) -> Change:
    """The one attribute a ModifyInstanceAttribute request changes, with its new value."""
    found: list[Change] = []
    for member, attribute in _MEMBERS.items():
        given = params.get(member)
        if given is None or given == []:
            continue
        value = given.get("Value") if isinstance(given, dict) and member != "EnclaveOptions" else given
        if member == "EnclaveOptions":
            value = given.get("Enabled")
        if value is None:
            raise errors.MissingParameter(name=f"{member}.Value")
        found.append(Change(attribute, value))
    if params.get("Attribute"):
        if params["Attribute"] not in _ATTRIBUTES:
            raise errors.InvalidParameterValue(
                value=params["Attribute"], name="attribute", reason="It is not a supported value."
            )
        if params.get("Value") is None:
            raise errors.MissingParameter(name="Value")
        found.append(Change(params["Attribute"], _legacy_value(params["Attribute"], params["Value"])))
    if not found:
        raise errors.InvalidParameterCombination(reason="No attributes specified.")
    if len(found) > 1:
        raise errors.InvalidParameterCombination(reason="Only one attribute can be modified at a time.")
    return found[0]


def _new_type(ctx: RequestContext, row: Instance, name: Any) -> dict[str, Any]:
    itype = db_types.get_instance_type(ctx.session, str(name))
    compatible = {itype.architecture} | ({"i386"} if itype.architecture == "x86_64" else set())
    if row.architecture not in compatible:
        raise errors.InvalidParameterValue(
            f"The instance type '{itype.name}' does not support the '{row.architecture}' architecture "
            f"of instance '{row.id}'."
        )
    ebs_root = any(
        a.device == row.root_device_name for a in db_attachments.of_instances(ctx.session, [row.id])[row.id]
    )
    return {
        "instance_type": itype.name,
        "vcpus": itype.vcpus,
        "memory_mib": itype.memory_mib,
        "disk_gib": row.disk_gib
        if ebs_root
        else max(row.disk_gib, itype.root_disk_gib),  # a root volume is no local disk
    }


def _user_data(value: Any) -> dict[str, Any]:
    if isinstance(value, bytes):  # the SecureBlobAttributeValue member: decoded by the protocol
        return {"user_data": api.encode_user_data(value)}
    return {"user_data": api.normalize_user_data(str(value))}


def _boot_image(ctx: RequestContext, column: str, image_type: str, value: Any) -> dict[str, Any]:
    if not value:
        return {column: None}
    db_images.get_boot_image(ctx.session, ctx.account_id, str(value), image_type)
    return {column: str(value)}


def _new_groups(ctx: RequestContext, row: Instance, group_ids: Any) -> dict[str, Any]:
    wanted = [str(g) for g in (group_ids or [])]
    groups = db_secgroups.resolve_security_groups(
        ctx.session, ctx.account_id, row.vpc_id or "", wanted, subnet_id=row.subnet_id
    )
    if len(groups) > api.MAX_GROUPS_PER_INTERFACE:
        raise errors.LimitExceeded(
            "The maximum number of security groups per interface has been reached.",
            code="SecurityGroupsPerInterfaceLimitExceeded",
        )
    return {"security_group_ids": [g.id for g in groups]}


def changes_for(ctx: RequestContext, row: Instance, change: Change) -> dict[str, Any]:
    """The columns ``change`` sets on ``row``; EC2's error if the instance's state forbids it."""
    attribute, value = change.attribute, change.value
    if row.state == "terminated" or (attribute in _STOPPED_ONLY and row.state != "stopped"):
        raise errors.IncorrectInstanceState(f"The instance '{row.id}' is not in the 'stopped' state.")
    if attribute == "instanceType":
        return _new_type(ctx, row, value)
    if attribute == "userData":
        return _user_data(value)
    if attribute in ("kernel", "ramdisk"):
        return _boot_image(ctx, f"{attribute}_id", attribute, value)
    if attribute == "disableApiTermination":
        return {"disable_api_termination": bool(value)}
    if attribute == "instanceInitiatedShutdownBehavior":
        return {"shutdown_behavior": api.shutdown_behavior(str(value))}
    if attribute == "groupSet":
        return _new_groups(ctx, row, value)
    if attribute == "sourceDestCheck":
        return {}  # a column of the primary interface (see _on_primary_interface)
    if attribute == "blockDeviceMapping":
        return {}  # a column of the volume attachments (see _on_block_devices)
    if attribute in _FIXED and value == _FIXED[attribute]:
        return {}
    raise errors.Unsupported(reason=f"Changing the attribute {attribute} is not supported by this cloud.")


def modify_instance_attribute(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    change = requested_change(params)
    instance_id = params.get("InstanceId")
    if not instance_id:
        raise errors.MissingParameter(name="InstanceId")
    before = repo.get_instance(ctx.session, ctx.account_id, instance_id)
    _check_single_interface(ctx, before, change.attribute)
    old = db_hosts.Amount(before.vcpus, before.memory_mib, before.disk_gib)
    old_groups = list(before.security_group_ids or ())
    _apply_plans(ctx, [instance_id], lambda rows: [Plan(changes_for(ctx, r, change)) for r in rows])
    after = repo.get_instance(ctx.session, ctx.account_id, instance_id)
    _on_primary_interface(ctx, after, change)
    _on_block_devices(ctx, after, change)
    new = db_hosts.Amount(after.vcpus, after.memory_mib, after.disk_gib)
    if after.host and new != old:
        # A stopped instance keeps its claim on its host: the claim follows its new type.
        db_hosts.change_claim(ctx.session, after.host, old, new)
    if change.attribute == "groupSet":
        network.security_groups_changed(ctx, [*old_groups, *(after.security_group_ids or ())])
    return {}


def _on_block_devices(ctx: RequestContext, row: Instance, change: Change) -> None:
    """blockDeviceMapping: DeleteOnTermination of attached EBS volumes, by device name (the
    one thing EC2 lets it change on a running instance); anything else is Unsupported."""
    if change.attribute != "blockDeviceMapping":
        return
    for mapping in change.value or []:
        device, ebs = mapping.get("DeviceName"), mapping.get("Ebs") or {}
        if not device:
            raise errors.MissingParameter(name="BlockDeviceMapping.DeviceName")
        if (
            mapping.get("VirtualName")
            or mapping.get("NoDevice") is not None
            or set(ebs)
            - {
                "DeleteOnTermination",
                "VolumeId",
            }
        ):
            raise errors.Unsupported(
                reason="Only Ebs.DeleteOnTermination of attached volumes can be modified."
            )
        if ebs.get("DeleteOnTermination") is None:
            raise errors.MissingParameter(name="BlockDeviceMapping.Ebs.DeleteOnTermination")
        db_attachments.set_delete_on_termination(
            ctx.session, row, str(device), bool(ebs["DeleteOnTermination"]), ebs.get("VolumeId")
        )


def _on_primary_interface(ctx: RequestContext, row: Instance, change: Change) -> None:
    """groupSet and sourceDestCheck are the instance's primary interface's, as on EC2."""
    if change.attribute not in ("groupSet", "sourceDestCheck"):
        return
    primary = db_interfaces.primary_of(ctx.session, row.id)
    if primary is None:
        if change.attribute == "sourceDestCheck" and not change.value:
            raise errors.Unsupported(reason=f"The instance '{row.id}' has no network interface.")
        return
    if change.attribute == "groupSet":
        primary.security_group_ids = list(row.security_group_ids or [])
    else:
        primary.source_dest_check = bool(change.value)
    ctx.session.flush()


# --- ResetInstanceAttribute ----------------------------------------------------------------------

_RESETTABLE = ("kernel", "ramdisk", "sourceDestCheck")


def reset_instance_attribute(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """kernel and ramdisk go back to the image's (the instance must be stopped);
    sourceDestCheck back to true. EC2 resets nothing else."""
    attribute = params.get("Attribute")
    if not attribute:
        raise errors.MissingParameter(name="Attribute")
    if attribute not in _RESETTABLE:
        raise errors.InvalidParameterValue(
            value=attribute, name="attribute", reason="Only kernel, ramdisk and sourceDestCheck can be reset."
        )
    instance_id = params.get("InstanceId")
    if not instance_id:
        raise errors.MissingParameter(name="InstanceId")
    row = repo.get_instance(ctx.session, ctx.account_id, instance_id)
    _check_single_interface(ctx, row, attribute)
    if attribute == "sourceDestCheck":
        change = Change(attribute, True)
        _apply_plans(ctx, [row.id], lambda rows: [Plan(changes_for(ctx, r, change)) for r in rows])
        _on_primary_interface(ctx, repo.get_instance(ctx.session, ctx.account_id, row.id), change)
        return {}
    column = f"{attribute}_id"

    def decide(rows: list[Instance]) -> list[Plan]:
        plans = []
        for r in rows:
            if r.state != "stopped":
                raise errors.IncorrectInstanceState(f"The instance '{r.id}' is not in the 'stopped' state.")
            image = db_images.find_image(ctx.session, r.image_id) if r.image_id else None
            plans.append(Plan({column: getattr(image, column, None)}))
        return plans

    _apply_plans(ctx, [row.id], decide)
    return {}


ACTIONS = {
    "ResetInstanceAttribute": reset_instance_attribute,
    "StartInstances": start_instances,
    "StopInstances": stop_instances,
    "RebootInstances": reboot_instances,
    "TerminateInstances": terminate_instances,
    "GetConsoleOutput": get_console_output,
    "GetPasswordData": get_password_data,
    "DescribeInstanceAttribute": describe_instance_attribute,
    "ModifyInstanceAttribute": modify_instance_attribute,
}
