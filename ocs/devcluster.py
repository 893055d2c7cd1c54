"""A development cluster on one machine: every service its own process, on the
machine's RabbitMQ and PostgreSQL (``ocs-manage devcluster up|status|down``).

What ``up`` does, in order:

- makes the state directory and writes the configuration files into it: ``ocs.conf``
  (shared by every process: database, bus, API, timings) and ``conf/<name>.conf`` per
  process (its ``[DEFAULT] host``, a compute host's availability zone, the network
  service's hosts);
- creates the database when it does not exist (PostgreSQL; it then counts as the
  cluster's own, which ``down --purge`` drops) and migrates it;
- creates the ``admin`` account with an access key and the demo image (as the
  all-in-one does);
- starts ``S`` ``ocs-scheduler``, one ``ocs-network`` (noop driver, serving every
  compute host through ``[network] hosts``), ``N`` ``ocs-compute-agent`` with the fake
  driver named ``host-1`` … ``host-N``, and ``ocs-api`` under gunicorn with ``W``
  workers on a free port of 127.0.0.1. Each is its own process in its own session
  (so its process group is its PID), logging to ``logs/<name>.log``, with
  ``run/<name>.pid``;
- waits until the API answers, every compute host has reported and every scheduler
  has beaten, then writes ``ocsrc`` (the credentials, to source).

The bus is the broker's default vhost with an exchange of the cluster's own
(``ocs-dev-<random>``): every queue name starts with it, so a dev cluster never hears
another one nor the tests. The cluster's processes are recorded in
``devcluster.json`` with their start times, and ``down`` signals exactly those:
SIGTERM to each process group, SIGKILL after a timeout to what is left; a PID that
now belongs to another process is left alone.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from oslo_config import cfg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from ocs import conf as ocs_conf
from ocs import errors
from ocs.db.engine import with_installed_driver

DEFAULT_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/ocs_devcluster"
DEFAULT_TRANSPORT_URL = "amqp://guest:guest@127.0.0.1:5672//"
STATE_FILE = "devcluster.json"

#: The entry point module of each kind of process.
MODULES = {
    "api": "ocs.cmd.api",
    "scheduler": "ocs.cmd.scheduler",
    "network": "ocs.cmd.network",
    "compute": "ocs.cmd.compute_agent",
}


class DevClusterError(errors.OcsError):
    """Something an operator must fix before the dev cluster can run."""

    code = "DevClusterError"
    message = "{detail}"


@dataclass(frozen=True)
class Options:
    """What ``devcluster up`` was asked for."""

    state_dir: Path
    hosts: int = 2
    api_workers: int = 2
    schedulers: int = 1
    database_url: str = DEFAULT_DATABASE_URL
    transport_url: str = DEFAULT_TRANSPORT_URL
    config_files: tuple[Path, ...] = ()  # the operator's own, passed to every process last
    wait: float = 90.0


@dataclass
class Process:
    """One process of the cluster as ``up`` started it."""

    name: str
    kind: str
    argv: list[str]
    pid: int = 0
    started: int = 0  # start time in clock ticks since boot (/proc/PID/stat field 22)
    log: str = ""


@dataclass
class State:
    """What ``devcluster.json`` records."""

    database_url: str
    transport_url: str
    exchange: str
    created_database: bool = False
    endpoint: str = ""
    hosts: list[str] = field(default_factory=list)
    config_files: list[str] = field(default_factory=list)  # ocs.conf, then the operator's
    processes: list[Process] = field(default_factory=list)

    @classmethod
    def load(cls, state_dir: Path) -> State | None:
        path = state_dir / STATE_FILE
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        procs = [Process(**p) for p in data.pop("processes", [])]
        return cls(**data, processes=procs)

    def save(self, state_dir: Path) -> None:
        tmp = state_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, state_dir / STATE_FILE)


# --- the plan (pure) ----------------------------------------------------------------------


def host_names(count: int) -> list[str]:
    return [f"host-{i}" for i in range(1, count + 1)]


def common_conf(options: Options, state: State, listen: str) -> str:
    """``ocs.conf``: what every process of the cluster shares."""
    return (
        "# Written by 'ocs-manage devcluster up'; pass your own settings to it with\n"
        "# 'ocs-manage --config-file FILE devcluster up' (they come after this file).\n"
        f"[DEFAULT]\nstate_dir = {options.state_dir}\n"
        f"\n[database]\nconnection = {options.database_url}\n"
        f"\n[bus]\ntransport_url = {options.transport_url}\nexchange = {state.exchange}\n"
        f"\n[api]\nlisten = {listen}\nworkers = {options.api_workers}\n"
        "\n[compute]\ndriver = fake\nheartbeat_interval = 2\n"
        "\n[scheduler]\nservice_down_time = 10\nperiodic_interval = 2\n"
        f"\n[network]\ndriver = noop\nstate_dir = {options.state_dir / 'network'}\n"
    )


def process_confs(options: Options, zones: Sequence[str]) -> dict[str, tuple[str, str]]:
    """``{name: (kind, text of conf/<name>.conf)}`` in start order."""
    out: dict[str, tuple[str, str]] = {}
    for i in range(1, options.schedulers + 1):
        out[f"scheduler-{i}"] = ("scheduler", f"[DEFAULT]\nhost = scheduler-{i}\n")
    hosts = host_names(options.hosts)
    out["network"] = ("network", f"[DEFAULT]\nhost = network\n\n[network]\nhosts = {','.join(hosts)}\n")
    for index, name in enumerate(hosts):
        zone = f"\n[compute]\navailability_zone = {zones[index % len(zones)]}\n" if zones else ""
        out[name] = ("compute", f"[DEFAULT]\nhost = {name}\n{zone}")
    out["api"] = ("api", "[DEFAULT]\nhost = api\n")
    return out


def argv_of(kind: str, files: Sequence[Path]) -> list[str]:
    argv = [sys.executable, "-m", MODULES[kind]]
    for path in files:
        argv += ["--config-file", str(path)]
    return argv


# --- processes ----------------------------------------------------------------------------


def start_time(pid: int) -> int | None:
    """The start time of process ``pid`` (clock ticks since boot), None if there is none."""
    fields = _stat(pid)
    return None if fields is None else int(fields[19])


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _group_of(pid: int) -> int | None:
    fields = _stat(pid)
    return None if fields is None or fields[0] == "Z" else int(fields[2])


def members(proc: Process) -> list[int]:
    """The live PIDs of ``proc``'s process group (it and its children, e.g. gunicorn's
    workers), or [] when it is gone or its PID now belongs to another process."""
    if not proc.pid:
        return []
    leader = start_time(proc.pid)
    if leader is not None and leader != proc.started:
        return []  # the PID was reused: not ours
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _group_of(int(entry.name)) == proc.pid:
            begun = start_time(int(entry.name))
            if begun is not None and begun >= proc.started:
                found.append(int(entry.name))
    return sorted(found)


def alive(proc: Process) -> bool:
    """Whether the process ``up`` started is still running (not a zombie)."""
    fields = _stat(proc.pid) if proc.pid else None
    return fields is not None and fields[0] != "Z" and int(fields[19]) == proc.started


def spawn(proc: Process, state_dir: Path) -> None:
    """Start ``proc`` in its own session, logging to logs/<name>.log."""
    log = state_dir / "logs" / f"{proc.name}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "ab") as out:
        child = subprocess.Popen(
            proc.argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=state_dir,
            env=env,
            start_new_session=True,
        )
    proc.pid, proc.log = child.pid, str(log)
    proc.started = start_time(child.pid) or 0
    (state_dir / "run" / f"{proc.name}.pid").write_text(f"{child.pid}\n")


def _signal_all(pids: Sequence[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def stop(procs: Sequence[Process], timeout: float = 15.0) -> dict[str, str]:
    """SIGTERM every process of ``procs`` (and its group), SIGKILL what is left after
    ``timeout`` seconds; ``{name: how it ended}``."""
    outcome: dict[str, str] = {}
    groups = {p.name: members(p) for p in procs}
    for proc in reversed(procs):  # the API first, the schedulers last
        pids = groups[proc.name]
        outcome[proc.name] = "stopped" if pids else "was not running"
        _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(members(p) for p in procs if groups[p.name]):
        time.sleep(0.1)
    for proc in procs:
        left = members(proc) if groups[proc.name] else []
        if left:
            _signal_all(left, signal.SIGKILL)
            outcome[proc.name] = "killed"
    return outcome


def log_tail(proc: Process, lines: int = 15) -> str:
    try:
        return "\n".join(Path(proc.log).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- database and bus ---------------------------------------------------------------------


def ensure_database(url: str) -> bool:
    """Create the database of ``url`` unless it exists (PostgreSQL); True if created."""
    parsed = with_installed_driver(make_url(url))  # postgresql:// names no driver
    engine = create_engine(parsed, poolclass=NullPool)
    try:
        with engine.connect():
            return False
    except OperationalError as exc:
        if parsed.get_backend_name() != "postgresql" or "does not exist" not in str(exc):
            raise
    finally:
        engine.dispose()
    name = parsed.database or ""
    if not name.replace("_", "").isalnum():
        raise DevClusterError(detail=f"refusing to create a database named {name!r}")
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return True


def drop_database(url: str) -> None:
    parsed = with_installed_driver(make_url(url))
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def delete_bus_topology(state: State) -> None:
    """Delete the cluster's queues and exchanges (with what they hold) from the broker."""
    from ocs.bus import Bus

    topics = ["scheduler", "network"]
    topics += [f"{kind}.{h}" for h in state.hosts for kind in ("compute", "network")]
    with Bus(state.transport_url, state.exchange) as bus:
        bus.delete_topology(topics=topics, services=("scheduler", "compute", "network"))


# --- up -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_conf(files: Sequence[Path]) -> cfg.ConfigOpts:
    conf = ocs_conf.make_conf()
    conf([], project="ocs", default_config_files=[str(f) for f in files])
    return conf


def write_confs(options: Options, state: State, listen: str) -> tuple[Path, dict[str, tuple[str, Path]]]:
    """Write ocs.conf and conf/<name>.conf; returns the first and ``{name: (kind, path)}``."""
    common = options.state_dir / "ocs.conf"
    common.write_text(common_conf(options, state, listen))
    conf = load_conf([common, *options.config_files])
    zones: list[str] = []
    if not conf.compute.availability_zone:  # else that zone, for every host
        zones = list(conf.ec2.availability_zones) or [f"{conf.ec2.region}a"]
    files: dict[str, tuple[str, Path]] = {}
    for name, (kind, body) in process_confs(options, zones).items():
        path = options.state_dir / "conf" / f"{name}.conf"
        path.write_text(body)
        files[name] = (kind, path)
    return common, files


def prepare(options: Options) -> State:
    """The state directory and the state of a cluster about to start (none of it running)."""
    d = options.state_dir
    for sub in ("", "logs", "run", "conf", "network"):
        (d / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    old = State.load(d)
    if old is not None:
        running = [p.name for p in old.processes if alive(p)]
        if running:
            raise DevClusterError(
                detail=f"a dev cluster runs in {d} ({', '.join(running)}): 'devcluster down' first"
            )
    same = old is not None and old.database_url == options.database_url
    return State(
        database_url=options.database_url,
        transport_url=options.transport_url,
        exchange=old.exchange if old is not None and same else f"ocs-dev-{secrets.token_hex(4)}",
        created_database=bool(same and old is not None and old.created_database),
        hosts=host_names(options.hosts),
    )


def up(options: Options, say: Callable[[str], None] = print) -> tuple[State, Any]:
    """Start the cluster; returns its state and the admin's credentials."""
    from ocs.allinone import bootstrap_admin, bootstrap_images, ocsrc_text, write_private
    from ocs.db import migration

    state = prepare(options)
    d = options.state_dir
    listen = f"127.0.0.1:{free_port()}"
    common, files = write_confs(options, state, listen)
    state.endpoint = f"http://{listen}"
    state.config_files = [str(common), *(str(f) for f in options.config_files)]
    if ensure_database(options.database_url):
        state.created_database = True
        say(f"created database {make_url(options.database_url).database}")
    state.save(d)
    migration.sync(options.database_url)
    conf = load_conf([common, *options.config_files])
    creds = bootstrap_admin(conf, None)
    bootstrap_images(conf)
    for name, (kind, path) in files.items():
        state.processes.append(Process(name, kind, argv_of(kind, [common, *options.config_files, path])))
    try:
        for proc in state.processes:
            spawn(proc, d)
            state.save(d)
        wait_ready(conf, state, options.wait)
    except BaseException:
        stop(state.processes)
        state.save(d)
        raise
    write_private(d / "ocsrc", ocsrc_text(creds, conf.ec2.region, state.endpoint))
    return state, creds


def wait_ready(conf: cfg.ConfigOpts, state: State, timeout: float) -> None:
    """Until the API answers, every host reported and every scheduler beat since now."""
    from ocs.allinone import wait_for_port
    from ocs.api_ec2.service import database_url
    from ocs.db import engine as db_engine
    from ocs.db import hosts as db_hosts
    from ocs.db.models.base import utcnow

    since = utcnow()
    schedulers = {p.name for p in state.processes if p.kind == "scheduler"}
    engine = db_engine.make_engine(database_url(conf), pool_size=1, max_overflow=0)
    deadline = time.monotonic() + timeout
    try:
        while True:
            dead = [p for p in state.processes if not alive(p)]
            if dead:
                raise DevClusterError(
                    detail=f"{dead[0].name} exited at start; the end of {dead[0].log}:\n{log_tail(dead[0])}"
                )
            with db_engine.transaction(db_engine.session_factory(engine)) as s:
                hosts = {
                    h.name for h in db_hosts.list_hosts(s) if h.last_heartbeat and h.last_heartbeat >= since
                }
                beat = {r.host for r in db_hosts.list_services(s, ["scheduler"]) if r.last_heartbeat >= since}
            missing = sorted((set(state.hosts) - hosts) | (schedulers - beat))
            if not missing:
                host, port = state.endpoint.removeprefix("http://").rsplit(":", 1)
                try:
                    wait_for_port(host, int(port), timeout=0.5)
                    return
                except OSError:
                    missing = ["api"]
            if time.monotonic() > deadline:
                raise DevClusterError(detail=f"not ready within {timeout:g} s: {', '.join(missing)}")
            time.sleep(0.25)
    finally:
        engine.dispose()


def down(state_dir: Path, *, purge: bool = False, timeout: float = 15.0) -> dict[str, str]:
    """Stop the processes ``up`` started in ``state_dir``; with ``purge`` also delete the
    cluster's queues and exchanges and, if ``up`` created it, its database."""
    state = State.load(state_dir)
    if state is None:
        raise DevClusterError(detail=f"no dev cluster in {state_dir}")
    outcome = stop(state.processes, timeout)
    for proc in state.processes:
        (state_dir / "run" / f"{proc.name}.pid").unlink(missing_ok=True)
    if purge:
        delete_bus_topology(state)
        if state.created_database:
            drop_database(state.database_url)
        (state_dir / STATE_FILE).unlink(missing_ok=True)
    return outcome
