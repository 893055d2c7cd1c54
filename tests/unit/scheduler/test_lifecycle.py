"""The scheduler service's pure rules: what an agent's event or heartbeat means."""

from __future__ import annotations

import datetime as dt

import pytest

from ocs.scheduler import lifecycle as lc
from ocs.scheduler.lifecycle import InstanceView, Observation

NOW = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)


def inst(state="running", task=None, host="h1", tried=(), behavior="stop", power="running") -> InstanceView:
    return InstanceView("i-1", state, task, host, tuple(tried), behavior, power)


def ev(event, host="h1", **kw) -> Observation:
    return Observation(host=host, event=event, **kw)


def on(i, o, max_attempts=3):
    return lc.on_event(i, o, NOW, max_attempts=max_attempts)


def test_spawned_makes_a_pending_instance_running():
    d = on(inst("pending", "spawning", power="nostate"), ev("spawned", power_state="running"))
    assert d.values["state"] == "running" and d.values["task"] is None
    assert d.values["state_reason_code"] is None and not d.release_claim


@pytest.mark.parametrize("state", ["shutting-down", "terminated"])
def test_a_guest_spawned_for_an_instance_being_terminated_is_destroyed(state):
    d = on(inst(state, "terminating" if state == "shutting-down" else None), ev("spawned"))
    assert d.destroy_on == "h1" and not d.values


def test_guests_of_unknown_or_misplaced_instances_are_destroyed():
    assert on(None, ev("spawned", host="h9")).destroy_on == "h9"
    assert on(inst(host="h2"), ev("started", host="h9")).destroy_on == "h9"
    # but old news about a guest that is gone anyway changes nothing
    assert on(None, ev("destroyed")).noop
    assert on(inst(host="h2"), ev("spawn_failed", host="h9", attempt=1)).noop


def test_duplicate_events_are_no_ops():
    assert on(inst("running"), ev("spawned")).noop
    assert on(inst("stopped", power="shutdown"), ev("stopped")).noop
    assert on(inst("terminated"), ev("destroyed")).noop


def test_retryable_spawn_failure_reschedules_until_max_attempts():
    pending = inst("pending", "spawning", power="nostate")
    assert on(pending, ev("spawn_failed", retryable=True, attempt=1)).reschedule
    second = inst("pending", "spawning", tried=("h0",), power="nostate")
    assert on(second, ev("spawn_failed", retryable=True, attempt=2)).reschedule
    third = inst("pending", "spawning", tried=("h0", "hx"), power="nostate")
    d = on(third, ev("spawn_failed", retryable=True, attempt=3, reason="disk on fire"))
    assert not d.reschedule and d.release_claim
    assert d.values["state"] == "terminated" and d.values["private_ip_address"] is None
    assert d.values["state_reason_code"] == "Server.InternalError"
    assert d.values["state_reason_message"].startswith("Server.InternalError: Internal error on launch")
    assert "disk on fire" in d.values["state_reason_message"]
    assert d.values["terminated_at"] == NOW


def test_a_failure_that_no_host_can_cure_is_not_retried():
    d = on(
        inst("pending", "spawning"), ev("spawn_failed", retryable=False, attempt=1, reason="bad user data")
    )
    assert d.values["state"] == "terminated" and not d.reschedule


def test_a_redelivered_spawn_failure_of_an_earlier_attempt_is_ignored():
    second = inst("pending", "spawning", tried=("h0",))
    assert on(second, ev("spawn_failed", retryable=True, attempt=1)).noop


def test_stopped_records_the_user_initiated_reason():
    d = on(inst("stopping", "stopping"), ev("stopped", power_state="shutdown"))
    assert d.values["state"] == "stopped" and not d.release_claim
    assert d.values["state_transition_reason"] == "User initiated (2026-03-04 05:06:07 GMT)"
    assert d.values["state_reason_code"] == "Client.UserInitiatedShutdown"


def test_started_and_rebooted():
    assert on(inst("pending", "starting", power="shutdown"), ev("started"))
    d = on(inst("pending", "starting", power="shutdown"), ev("started"))
    assert d.values["state"] == "running"
    assert on(inst("running", "rebooting"), ev("rebooted")).values == {"task": None, "power_state": "running"}
    assert on(inst("running"), ev("rebooted")).noop


def test_destroyed_terminates_and_releases():
    d = on(inst("shutting-down", "terminating"), ev("destroyed"))
    assert d.values["state"] == "terminated" and d.release_claim
    assert "state_reason_code" not in d.values  # the API's user-initiated reason stays


@pytest.mark.parametrize(
    ("behavior", "state", "code"),
    [
        ("stop", "stopped", "Client.InstanceInitiatedShutdown"),
        ("terminate", "shutting-down", "Client.InstanceInitiatedShutdown"),
    ],
)
def test_a_guest_that_powers_itself_off_follows_its_shutdown_behaviour(behavior, state, code):
    d = on(inst("running", behavior=behavior), ev("shutdown", power_state="shutdown"))
    assert d.values["state"] == state and d.values["state_reason_code"] == code
    assert (d.destroy_on == "h1") is (behavior == "terminate")


def test_a_crash_stops_the_instance_with_a_server_error():
    d = on(inst("running", behavior="terminate"), ev("crashed", power_state="crashed"))
    assert d.values["state"] == "stopped" and d.values["power_state"] == "crashed"
    assert d.values["state_reason_code"] == "Server.InternalError"


def test_an_operation_error_settles_on_the_guest_as_it_is():
    assert on(inst("stopping", "stopping"), ev("error", power_state="running")).values["state"] == "running"
    assert (
        on(inst("pending", "starting", power="shutdown"), ev("error", power_state="shutdown")).values["state"]
        == "stopped"
    )
    assert on(inst("running", "rebooting"), ev("error", power_state="running")).values == {
        "task": None,
        "power_state": "running",
    }


def test_a_start_that_finds_no_guest_builds_it_again():
    d = on(inst("pending", "starting", power="nostate"), ev("missing"))
    assert d.respawn and not d.values


def test_a_failed_rebuild_on_start_leaves_the_instance_stopped_on_its_host():
    d = on(inst("pending", "starting", power="nostate"), ev("spawn_failed", retryable=True, attempt=1))
    assert d.values["state"] == "stopped" and not d.release_claim and not d.reschedule


# --- heartbeats ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "task", "power", "expect"),
    [
        ("pending", "spawning", None, None),  # the Spawn message may still be queued
        ("pending", "spawning", "nostate", None),
        ("pending", "spawning", "running", "running"),  # the spawned event was lost
        ("pending", "starting", "running", "running"),
        ("running", None, "running", None),
        ("running", None, None, "stopped"),  # the host lost the guest
        ("running", None, "shutdown", "stopped"),
        ("stopping", "stopping", "shutdown", "stopped"),
        ("stopping", "stopping", "running", None),  # stop in progress
        ("stopped", None, None, None),  # StartInstances builds it again
        ("shutting-down", "terminating", None, "terminated"),
    ],
)
def test_heartbeat_rules(state, task, power, expect):
    d = lc.on_report(inst(state, task, power="running" if state == "running" else "nostate"), power, NOW)
    assert d.values.get("state") == expect


def test_heartbeat_sends_again_what_was_lost():
    assert lc.on_report(inst("shutting-down", "terminating"), "running", NOW).destroy_on == "h1"
    assert lc.on_report(inst("stopped", power="shutdown"), "running", NOW).stop_on == "h1"
    assert lc.on_report(inst("pending", "starting"), None, NOW).respawn


def test_a_vanished_guest_stops_its_instance_with_a_reason():
    d = lc.on_report(inst("running"), None, NOW)
    assert d.values["state_reason_code"] == "Server.InternalError"
    assert not d.release_claim  # it stays on its host, to be built again on start


def test_only_the_power_state_changes_for_a_paused_guest():
    assert lc.on_report(inst("running"), "paused", NOW).values == {"power_state": "paused"}


# --- timeouts -----------------------------------------------------------------------


def test_give_up_builds_starts_and_terminations_of_dead_hosts():
    d = lc.give_up(inst("pending", "spawning"), NOW)
    assert d.values["state"] == "terminated" and d.release_claim and d.destroy_on == "h1"
    assert "took too long" in d.values["state_reason_message"]
    assert lc.give_up(inst("pending", "scheduling", host=None), NOW).destroy_on is None
    assert lc.give_up(inst("pending", "starting"), NOW).values["state"] == "stopped"
    assert lc.give_up(inst("shutting-down", "terminating"), NOW).noop
    assert (
        lc.give_up(inst("shutting-down", "terminating"), NOW, host_alive=False).values["state"]
        == "terminated"
    )
    assert lc.give_up(inst("running"), NOW).noop


# --- hosts that went down -----------------------------------------------------------


def test_a_build_on_a_down_host_is_rescheduled_while_attempts_remain():
    d = lc.host_down(inst("pending", "spawning"), NOW, max_attempts=3)
    assert d.reschedule and not d.values
    d = lc.host_down(inst("pending", "spawning", tried=("h0",)), NOW, max_attempts=3)
    assert d.reschedule


def test_a_build_on_a_down_host_with_no_attempt_left_ends_terminated_with_a_reason():
    d = lc.host_down(inst("pending", "spawning", tried=("h0", "h2")), NOW, max_attempts=3)
    assert not d.reschedule and d.release_claim
    assert d.values["state"] == "terminated"
    assert d.values["state_reason_code"] == "Server.InternalError"
    assert "host h1 went down" in d.values["state_reason_message"]
    assert d.values["hosts_tried"] == ["h0", "h2", "h1"]
    assert not lc.host_down(inst("pending", "spawning"), NOW, max_attempts=1).reschedule


def test_a_start_on_a_down_host_fails_and_a_termination_there_finishes():
    d = lc.host_down(inst("pending", "starting"), NOW, max_attempts=3)
    assert d.values["state"] == "stopped" and not d.release_claim  # it keeps its place
    assert "host h1 is down" in d.values["state_reason_message"]
    d = lc.host_down(inst("shutting-down", "terminating"), NOW, max_attempts=3)
    assert d.values["state"] == "terminated" and d.release_claim


@pytest.mark.parametrize(
    ("state", "task"),
    [
        ("running", None),
        ("stopped", None),
        ("stopping", "stopping"),
        ("running", "rebooting"),
        ("pending", "scheduling"),
        ("terminated", None),
    ],
)
def test_a_down_host_leaves_everything_else_alone(state, task):
    assert lc.host_down(inst(state, task), NOW, max_attempts=3).noop


def test_host_down_acts_on_exactly_the_pairs_the_periodic_task_selects():
    for state, task in lc.HOST_DOWN_TASKS:
        assert not lc.host_down(inst(state, task), NOW, max_attempts=3).noop


def test_a_guest_held_off_for_create_image_is_not_judged_until_the_reboot_ends():
    imaging = inst("running", "rebooting")
    assert lc.on_report(imaging, "shutdown", NOW).noop  # CreateImage powered it off on purpose
    assert lc.on_report(inst("running"), "shutdown", NOW).values["state"] == "stopped"
    assert on(imaging, ev("rebooted")).values == {"task": None, "power_state": "running"}
    assert lc.on_report(imaging, None, NOW).values["state"] == "stopped"  # vanished is vanished
    late = lc.give_up(imaging, NOW)
    assert late.values == {"task": None} and not late.release_claim
