"""What an agent's observation means for an instance: the pure decisions of the
scheduler service.

The scheduler service records what the compute agents see (events after each
operation, and every heartbeat's list of guests). For each observation it
reads the instance, asks :func:`on_event` or :func:`on_report` what to do, and
applies the :class:`Decision` with a conditional update (the instance's
``version``), retrying on a conflict. Nothing here touches the database, the
bus or the clock (``now`` is passed in), so every rule below is unit-tested.

The EC2 states are ``pending running stopping stopped shutting-down
terminated``; ``task`` is the operation in flight (``scheduling``,
``spawning``, ``starting``, ``stopping``, ``rebooting``, ``terminating``).

Rules (``H`` is the host the observation comes from):

- A guest on ``H`` that the database does not place on ``H`` (unknown
  instance, placed elsewhere, or terminated) is destroyed.
- ``spawned``: pending → running. Terminated or shutting-down meanwhile: the
  new guest is destroyed.
- ``spawn_failed``: the claim on ``H`` is released and ``H`` is added to
  ``hosts_tried``; a retryable failure is rescheduled on another host while
  fewer than ``max_attempts`` hosts were tried, else the instance ends
  terminated with ``Server.InternalError`` (a failed *re*-spawn during
  StartInstances leaves it stopped instead, on its host).
- ``stopped``: stopping (or running) → stopped, ``User initiated (… GMT)``.
- ``started``: pending (starting) → running. ``rebooted``: the task ends.
- ``destroyed``: shutting-down → terminated, claim released, address freed.
- ``shutdown`` (the guest powered itself off): by its shutdown behaviour,
  shutting-down and destroyed, or stopped, with
  ``Client.InstanceInitiatedShutdown``. ``crashed``: stopped with
  ``Server.InternalError``.
- ``missing`` (an operation found no guest) and ``error`` (an operation
  failed; ``power_state`` says how the guest is) settle the instance on what
  the hypervisor has, as a heartbeat would.

Heartbeats (:func:`on_report`) repair lost events: a running guest of a
spawning instance makes it running; a guest that went off by itself stops it
(not while the instance is ``rebooting``: CreateImage holds its guest off while
the snapshots are copied, and a reboot that takes too long is given up by the
build timeout, after which the heartbeat judges again);
a stop that finished unseen stops it; a shutting-down instance whose guest is
gone is terminated (else destroy is sent again); a stopped instance whose
guest runs is stopped again (the database is the desired state).

A guest that **vanished** (its host has no trace of it: the fake hypervisor
after a restart, a host reinstalled) leaves a running instance *stopped* with
``Server.InternalError`` — what EC2 does with an EBS-backed instance whose
hardware failed — so nothing is lost from the account's view, and the next
StartInstances builds the guest again on the same host (its resources stay
claimed while it is stopped). An instance being spawned is never judged by a
heartbeat: its Spawn message may still be queued; the build timeout covers it.

A host that stopped reporting (:func:`host_down`: no heartbeat for the
scheduler's ``service_down_time``) is not waited for: a build there is
rescheduled on another host (it counts as one of ``max_attempts``; past them
the instance ends terminated with ``Server.InternalError``), a termination
there is finished without it, a start there fails (the instance stays
stopped). Should the host come back, the Spawn still queued for it builds a
guest of an instance placed elsewhere, and the rule above destroys it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

PENDING = "pending"
RUNNING = "running"
STOPPING = "stopping"
STOPPED = "stopped"
SHUTTING_DOWN = "shutting-down"
TERMINATED = "terminated"

SCHEDULING = "scheduling"
SPAWNING = "spawning"
STARTING = "starting"
TERMINATING = "terminating"
REBOOTING = "rebooting"

#: Power states an agent reports (``ocs.compute_agent.driver.PowerState`` values).
ON = ("running", "paused")
OFF = ("shutdown", "crashed")

#: EC2 StateReason codes and messages.
LAUNCH_ERROR = ("Server.InternalError", "Server.InternalError: Internal error on launch")
INSTANCE_SHUTDOWN = (
    "Client.InstanceInitiatedShutdown",
    "Client.InstanceInitiatedShutdown: Instance initiated shutdown",
)
USER_SHUTDOWN = ("Client.UserInitiatedShutdown", "Client.UserInitiatedShutdown: User initiated shutdown")
CRASHED = ("Server.InternalError", "Server.InternalError: The instance's operating system crashed")
VANISHED = ("Server.InternalError", "Server.InternalError: The instance's host lost its guest")
START_ERROR = ("Server.InternalError", "Server.InternalError: Internal error on start")
NO_CAPACITY = (
    "Server.InsufficientInstanceCapacity",
    "Server.InsufficientInstanceCapacity: Insufficient capacity to satisfy the launch request",
)

MAX_REASON = 255


@dataclass(frozen=True)
class InstanceView:
    """What the rules read of an instance."""

    id: str
    state: str
    task: str | None
    host: str | None
    hosts_tried: tuple[str, ...] = ()
    shutdown_behavior: str = "stop"
    power_state: str = "nostate"

    @property
    def attempt(self) -> int:
        """The number of the build in progress (1 for the first host)."""
        return len(self.hosts_tried) + 1


@dataclass(frozen=True)
class Observation:
    """One agent event (see ``ocs.scheduler.rpcapi.InstanceEvent``)."""

    host: str
    event: str
    power_state: str = "nostate"
    reason: str = ""
    retryable: bool = False
    attempt: int = 1


@dataclass(frozen=True)
class Decision:
    """What to do: column values to write (empty: nothing) and messages to send.

    ``release_claim``: give the instance's resources back to ``instance.host``
    in the same transaction. ``reschedule``: a failed build to place again.
    ``destroy_on``/``stop_on``: cast destroy / forced stop to that host after
    commit. ``respawn``: cast Spawn again to the instance's host.
    """

    values: dict[str, Any] = field(default_factory=dict)
    release_claim: bool = False
    reschedule: bool = False
    respawn: bool = False
    destroy_on: str | None = None
    stop_on: str | None = None
    why: str = ""

    @property
    def noop(self) -> bool:
        return not (self.values or self.reschedule or self.respawn or self.destroy_on or self.stop_on)


NOTHING = Decision()


def gmt(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S GMT")


def _reason(code_message: tuple[str, str], detail: str = "") -> dict[str, Any]:
    code, message = code_message
    if detail:
        message = f"{message} ({detail})"
    return {"state_reason_code": code, "state_reason_message": message[:MAX_REASON]}


def running(power_state: str = "running") -> dict[str, Any]:
    return {
        "state": RUNNING,
        "task": None,
        "power_state": power_state,
        "state_transition_reason": "",
        "state_reason_code": None,
        "state_reason_message": None,
    }


def stopped(
    now: dt.datetime, reason: tuple[str, str], transition: str, power_state: str = "shutdown"
) -> dict[str, Any]:
    return {
        "state": STOPPED,
        "task": None,
        "power_state": power_state,
        "state_transition_reason": f"{transition} ({gmt(now)})"[:MAX_REASON],
        **_reason(reason),
    }


def terminated(now: dt.datetime, reason: tuple[str, str] | None = None, detail: str = "") -> dict[str, Any]:
    """The values of a terminated instance; its address goes back to the subnet."""
    values: dict[str, Any] = {
        "state": TERMINATED,
        "task": None,
        "power_state": "nostate",
        "terminated_at": now,
        "private_ip_address": None,
    }
    if reason is not None:
        values.update(_reason(reason, detail))
        values["state_transition_reason"] = values["state_reason_message"]
    return values


def failed_launch(now: dt.datetime, detail: str = "") -> Decision:
    return Decision(terminated(now, LAUNCH_ERROR, detail), release_claim=True, why="launch failed")


def no_capacity(now: dt.datetime, detail: str = "") -> Decision:
    """A launch already answered that no host has room for any more."""
    return Decision(terminated(now, NO_CAPACITY, detail), release_claim=True, why="no host has room")


def _shutting_down(inst: InstanceView, now: dt.datetime) -> Decision:
    values = {
        "state": SHUTTING_DOWN,
        "task": TERMINATING,
        "state_transition_reason": f"User initiated ({gmt(now)})",
        **_reason(INSTANCE_SHUTDOWN),
    }
    return Decision(values, destroy_on=inst.host, why="instance-initiated shutdown, terminate behaviour")


def _went_off(inst: InstanceView, power_state: str, now: dt.datetime) -> Decision:
    """The guest of a running instance is off and nobody asked for it."""
    if power_state == "crashed":
        return Decision(stopped(now, CRASHED, "Server.InternalError", "crashed"), why="guest crashed")
    if inst.shutdown_behavior == "terminate":
        return _shutting_down(inst, now)
    return Decision(stopped(now, INSTANCE_SHUTDOWN, "User initiated"), why="instance-initiated shutdown")


def _user_stopped(now: dt.datetime, power_state: str = "shutdown") -> Decision:
    return Decision(stopped(now, USER_SHUTDOWN, "User initiated", power_state), why="stopped")


def _vanished(inst: InstanceView, now: dt.datetime) -> Decision:
    return Decision(stopped(now, VANISHED, "Server.InternalError", "nostate"), why="guest vanished")


def _alien(inst: InstanceView | None, host: str) -> bool:
    """Whether a guest on ``host`` has no business there."""
    return inst is None or inst.host != host or inst.state == TERMINATED


# --- events ----------------------------------------------------------------------


def on_event(inst: InstanceView | None, ob: Observation, now: dt.datetime, *, max_attempts: int) -> Decision:
    """What an agent's event means for the instance (None: not in the database)."""
    if ob.event in ("destroyed", "spawn_failed", "missing"):
        if inst is None or inst.host != ob.host or inst.state == TERMINATED:
            return NOTHING  # no guest left there, nothing placed there: old news
    elif _alien(inst, ob.host):
        return Decision(destroy_on=ob.host, why=f"{ob.event} guest of no live instance on {ob.host}")
    assert inst is not None
    handler = _EVENTS.get(ob.event)
    if handler is None:
        return NOTHING
    return handler(inst, ob, now, max_attempts)


def _spawned(inst: InstanceView, ob: Observation, now: dt.datetime, max_attempts: int) -> Decision:
    if inst.state == PENDING and inst.task in (SPAWNING, STARTING):
        return Decision(running(ob.power_state if ob.power_state in ON else "running"), why="spawned")
    if inst.state == SHUTTING_DOWN:
        return Decision(destroy_on=ob.host, why="terminated while spawning")
    return NOTHING


def _spawn_failed(inst: InstanceView, ob: Observation, now: dt.datetime, max_attempts: int) -> Decision:
    if inst.state == SHUTTING_DOWN:
        return Decision(terminated(now), release_claim=True, why="terminated while spawning")
    if inst.state != PENDING or inst.task not in (SPAWNING, STARTING) or ob.attempt != inst.attempt:
        return NOTHING
    if inst.task == STARTING:  # building a lost guest again for StartInstances
        values = stopped(now, START_ERROR, "Server.InternalError", "nostate")
        values["state_reason_message"] = f"{START_ERROR[1]} ({ob.reason})"[:MAX_REASON]
        return Decision(values, why="start failed")
    if ob.retryable and inst.attempt < max_attempts:
        return Decision(reschedule=True, why="spawn failed, rescheduling")
    decision = failed_launch(now, ob.reason)
    return replace(decision, values={**decision.values, "hosts_tried": [*inst.hosts_tried, ob.host]})


def _stopped(inst: InstanceView, ob: Observation, now: dt.datetime, max_attempts: int) -> Decision:
    if inst.state in (STOPPING, RUNNING):
        return _user_stopped(now, ob.power_state if ob.power_state in OFF else "shutdown")
    return NOTHING


def _started(inst: InstanceView, ob: Observation, now: dt.datetime, max_attempts: int) -> Decision:
    if inst.state == PENDING and inst.task == STARTING:
        return Decision(running(), why="started")
    if inst.state == STOPPED:
        return Decision(stop_on=inst.host, why="started a stopped instance's guest")
    return NOTHING


def _rebooted(inst: InstanceView, ob: Observation, now: dt.datetime, max_attempts: int) -> Decision:
    if inst.state == RUNNING and (inst.task is not None or inst.power_state != "running"):
        return Decision({"task": None, "power_state": "running"}, why="rebooted")
    return NOTHING


def _destroyed(inst: InstanceView, ob: Observation, now: dt.datetime, max_attempts: int) -> Decision:
    if inst.state == SHUTTING_DOWN:
        return Decision(terminated(now), release_claim=True, why="destroyed")
    return NOTHING


def _shutdown(inst: InstanceView, ob: Observation, now: dt.datetime, max_attempts: int) -> Decision:
    power = ob.power_state if ob.power_state in OFF else ("crashed" if ob.event == "crashed" else "shutdown")
    if inst.state == STOPPING:
        return _user_stopped(now, power)
    if inst.state == RUNNING:
        return _went_off(inst, power, now)
    return NOTHING


def _missing(inst: InstanceView, ob: Observation, now: dt.datetime, max_attempts: int) -> Decision:
    return settle(inst, None, now)


def _error(inst: InstanceView, ob: Observation, now: dt.datetime, max_attempts: int) -> Decision:
    """An operation failed; the guest is as the agent reports it."""
    power = ob.power_state
    if inst.state == STOPPING and power in ON:
        return Decision(running(power), why=f"stop failed: {ob.reason}")
    if inst.state == PENDING and inst.task == STARTING and power in OFF:
        values = stopped(now, START_ERROR, "Server.InternalError", power)
        return Decision(values, why=f"start failed: {ob.reason}")
    if inst.state == RUNNING and inst.task == REBOOTING:
        if power in ON:
            return Decision({"task": None, "power_state": power}, why=f"reboot failed: {ob.reason}")
        return _went_off(inst, power, now)
    return settle(inst, power, now)


_EVENTS = {
    "spawned": _spawned,
    "spawn_failed": _spawn_failed,
    "stopped": _stopped,
    "started": _started,
    "rebooted": _rebooted,
    "destroyed": _destroyed,
    "shutdown": _shutdown,
    "crashed": _shutdown,
    "missing": _missing,
    "error": _error,
}


# --- heartbeats ------------------------------------------------------------------


def settle(inst: InstanceView, power_state: str | None, now: dt.datetime) -> Decision:
    """Bring an instance placed on a host in line with its guest there.

    ``power_state`` is the guest's, None when the host has no such guest.
    Operations in flight are left alone unless their outcome is plain.
    """
    state, task = inst.state, inst.task
    if state == PENDING:
        if task == SPAWNING and power_state in ON:
            return Decision(running(power_state or "running"), why="spawned (event lost)")
        if task == STARTING and power_state in ON:
            return Decision(running(power_state or "running"), why="started (event lost)")
        if task == STARTING and power_state is None:
            return Decision(respawn=True, why="start of a guest the host lost: building it again")
        return NOTHING
    if state == SHUTTING_DOWN:
        if power_state is None:
            return Decision(terminated(now), release_claim=True, why="destroyed (event lost)")
        return Decision(destroy_on=inst.host, why="still shutting down: destroy again")
    if state == STOPPING:
        if power_state is None or power_state in OFF:
            return _user_stopped(now, power_state or "nostate")
        return NOTHING
    if state == RUNNING:
        if power_state is None:
            return _vanished(inst, now)
        if power_state in OFF and task == REBOOTING:
            return NOTHING  # off on purpose for now (CreateImage); the agent reports the end
        if power_state in OFF:
            return _went_off(inst, power_state, now)
        if power_state != inst.power_state:
            return Decision({"power_state": power_state}, why="power state")
        return NOTHING
    if state == STOPPED and power_state in ON:
        return Decision(stop_on=inst.host, why="guest of a stopped instance runs: stopping it")
    return NOTHING


def on_report(inst: InstanceView, power_state: str | None, now: dt.datetime) -> Decision:
    """What a heartbeat that lists (or lacks) the instance's guest means."""
    return settle(inst, power_state, now)


# --- timeouts --------------------------------------------------------------------


def give_up(inst: InstanceView, now: dt.datetime, *, host_alive: bool = True) -> Decision:
    """An operation that took longer than the build timeout.

    A build (``scheduling``/``spawning``) ends terminated with
    ``Server.InternalError`` (its guest, should it appear later, is destroyed);
    a start leaves the instance stopped; a termination whose host is down is
    finished without it (the host destroys the guest when it reports again); a
    reboot (CreateImage's) ends, and the guest is judged as it is.
    """
    if inst.state == PENDING and inst.task in (SCHEDULING, SPAWNING):
        decision = failed_launch(now, "the build took too long")
        return replace(decision, destroy_on=inst.host, why="build timed out")
    if inst.state == PENDING and inst.task == STARTING:
        return Decision(stopped(now, START_ERROR, "Server.InternalError", "nostate"), why="start timed out")
    if inst.state == SHUTTING_DOWN and not host_alive:
        return Decision(terminated(now), release_claim=True, why="terminated while its host is down")
    if inst.state == RUNNING and inst.task == REBOOTING:
        return Decision({"task": None}, why="reboot timed out: the next heartbeat judges the guest")
    return NOTHING


#: (state, task) pairs that :func:`host_down` acts on.
HOST_DOWN_TASKS = (
    (PENDING, SPAWNING),
    (PENDING, STARTING),
    (SHUTTING_DOWN, TERMINATING),
)


def host_down(inst: InstanceView, now: dt.datetime, *, max_attempts: int) -> Decision:
    """The instance's host stopped reporting while an operation on it is in flight."""
    if inst.state == PENDING and inst.task == SPAWNING:
        if inst.attempt < max_attempts:
            return Decision(reschedule=True, why=f"host {inst.host} is down, rescheduling the build")
        decision = failed_launch(now, f"host {inst.host} went down")
        tried = [*inst.hosts_tried, inst.host or ""]
        return replace(
            decision, values={**decision.values, "hosts_tried": tried}, why="host down, no attempt left"
        )
    if inst.state == PENDING and inst.task == STARTING:
        values = stopped(now, START_ERROR, "Server.InternalError", "nostate")
        values["state_reason_message"] = f"{START_ERROR[1]} (host {inst.host} is down)"[:MAX_REASON]
        return Decision(values, why="start failed: host down")
    if inst.state == SHUTTING_DOWN:
        return Decision(terminated(now), release_claim=True, why="terminated while its host is down")
    return NOTHING
