"""ocs-manage devcluster's plan and its process handling (real child processes, no services)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocs import devcluster as dc
from ocs.cmd.manage import build_parser


def options(tmp_path: Path, **kw) -> dc.Options:
    return dc.Options(state_dir=tmp_path, **kw)


def test_the_plan_names_every_process_and_spreads_the_hosts_over_the_zones(tmp_path):
    confs = dc.process_confs(options(tmp_path, hosts=4, schedulers=2), ["za", "zb"])
    assert list(confs) == [
        "scheduler-1",
        "scheduler-2",
        "network",
        "host-1",
        "host-2",
        "host-3",
        "host-4",
        "api",
    ]
    assert confs["network"] == (
        "network",
        "[DEFAULT]\nhost = network\n\n[network]\nhosts = host-1,host-2,host-3,host-4\n",
    )
    assert "availability_zone = zb" in confs["host-4"][1]
    assert "availability_zone" not in dc.process_confs(options(tmp_path, hosts=1), [])["host-1"][1]
    state = dc.State("postgresql://x/db", "amqp://y//", "ocs-dev-1234")
    text = dc.common_conf(options(tmp_path, api_workers=3), state, "127.0.0.1:9")
    conf = tmp_path / "ocs.conf"
    conf.write_text(text)
    loaded = dc.load_conf([conf])
    assert (loaded.bus.exchange, loaded.api.workers, loaded.api.listen) == ("ocs-dev-1234", 3, "127.0.0.1:9")
    assert (loaded.compute.driver, loaded.network.driver) == ("fake", "noop")


def test_state_round_trips(tmp_path):
    state = dc.State("db", "mq", "ex", True, "http://e", ["host-1"], ["/etc/a.conf"])
    state.processes.append(dc.Process("a", "api", ["x"], 5, 7, "l"))
    state.save(tmp_path)
    assert dc.State.load(tmp_path) == state
    assert dc.State.load(tmp_path / "nothing") is None


def _sleeper(tmp_path: Path, name: str, script: str = "import time; time.sleep(60)") -> dc.Process:
    proc = dc.Process(name, "api", [sys.executable, "-c", script])
    for sub in ("logs", "run"):
        (tmp_path / sub).mkdir(exist_ok=True)
    dc.spawn(proc, tmp_path)
    return proc


def test_stop_ends_exactly_the_recorded_processes_and_their_children(tmp_path):
    child = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    parent = _sleeper(tmp_path, "parent", child)
    plain = _sleeper(tmp_path, "plain")
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        deadline = time.monotonic() + 10
        while len(dc.members(parent)) < 2:
            assert time.monotonic() < deadline, "the child did not start"
            time.sleep(0.05)
        assert (tmp_path / "run" / "parent.pid").read_text().strip() == str(parent.pid)
        assert dc.alive(parent) and dc.alive(plain)
        assert dc.stop([parent, plain], timeout=5) == {"parent": "stopped", "plain": "stopped"}
        assert not dc.alive(parent) and dc.members(parent) == [] and not dc.alive(plain)
        assert bystander.poll() is None  # not ours: untouched
        assert dc.stop([parent], timeout=1) == {"parent": "was not running"}
    finally:
        bystander.kill()
        bystander.wait()


def test_a_process_ignoring_sigterm_is_killed_and_a_reused_pid_is_left_alone(tmp_path):
    stubborn = _sleeper(
        tmp_path,
        "stubborn",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)",
    )
    time.sleep(0.3)  # until it ignores SIGTERM
    assert dc.stop([stubborn], timeout=0.5) == {"stubborn": "killed"}
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        impostor = dc.Process("x", "api", [], pid=other.pid, started=(dc.start_time(other.pid) or 0) - 1)
        assert not dc.alive(impostor) and dc.members(impostor) == []
        assert dc.stop([impostor], timeout=0.5) == {"x": "was not running"}
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize(
    "argv",
    [
        ["devcluster", "up", "--hosts", "0"],
        ["devcluster", "up", "--hosts", "many"],
        ["devcluster", "up", "--api-workers", "99"],
        ["devcluster", "down", "--timeout", "-1"],
        ["devcluster", "frobnicate"],
    ],
)
def test_bad_arguments_are_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2


def test_down_without_a_cluster_says_so(tmp_path):
    with pytest.raises(dc.DevClusterError, match="no dev cluster"):
        dc.down(tmp_path)


def test_a_database_url_naming_no_driver_is_created_and_dropped():
    """``postgresql://`` (what an operator types) works like ``postgresql+psycopg2://``."""
    import secrets

    from sqlalchemy.engine import make_url

    from ocs import devcluster as dc
    from tests import services

    url = make_url(services.require_postgres()).set(drivername="postgresql")
    url = url.set(database=f"ocs_test_plain_{secrets.token_hex(4)}").render_as_string(hide_password=False)
    assert url.startswith("postgresql://")
    try:
        assert dc.ensure_database(url) is True
        assert dc.ensure_database(url) is False  # there now
    finally:
        dc.drop_database(url)
