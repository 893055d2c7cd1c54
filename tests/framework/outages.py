"""Private PostgreSQL and RabbitMQ servers that a test owns, to stop and start at will.

The machine's own PostgreSQL (5432) and RabbitMQ (5672) are shared with CI and other
engineers: a fault test never touches them. It starts its own instead, on free ports,
in a temporary directory, and ends every process it started by PID:

- :class:`PrivatePostgres`: ``initdb`` (trust auth) and ``postgres`` run as the
  ``postgres`` OS user (PostgreSQL refuses to run as root) on 127.0.0.1 and a socket
  directory of its own. ``stop()`` is a fast shutdown (SIGINT: open sessions are cut,
  as when an operator restarts the server), ``stop(crash=True)`` a SIGKILL of every
  process of the server; ``start()`` again on the same data directory.
- :class:`PrivateRabbit`: a second RabbitMQ node (``ocs-fault-<random>@localhost``)
  as the ``rabbitmq`` OS user, with its own AMQP and distribution ports, its own
  mnesia directory (durable queues and persistent messages survive ``stop()`` and
  ``start()``, as on a real broker restart), no plugins, and its own ``epmd`` on a
  private port (``ERL_EPMD_PORT``), so nothing registers with, or is left behind in,
  the shared broker's epmd.

Every server process is started in a session of its own, so its process group is its
PID; stopping signals exactly the members of that group that began after it (see
:func:`ocs.devcluster.members`), and :meth:`close` (also on ``with`` exit) SIGKILLs
whatever is left and removes the directory.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from ocs import devcluster as dc

PG_BIN = Path(os.environ.get("OCS_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
EPMD = shutil.which("epmd") or "/usr/bin/epmd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(port: int, timeout: float, proc: dc.Process | None = None) -> float:
    """Seconds until 127.0.0.1:``port`` accepts connections (raises after ``timeout``)."""
    started = time.monotonic()
    while not port_open(port):
        if proc is not None and not dc.alive(proc):
            raise RuntimeError(f"{proc.name} exited before it listened on {port}:\n{dc.log_tail(proc, 30)}")
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:g} s")
        time.sleep(0.05)
    return time.monotonic() - started


def missing_prerequisites(kind: str) -> str | None:
    """Why a private ``kind`` ("postgres" or "rabbitmq") cannot run here, or None."""
    if os.geteuid() != 0:
        return "private servers are started as their own OS users, which needs root"
    if kind == "postgres":
        if not (PG_BIN / "initdb").exists():
            return f"no PostgreSQL server binaries in {PG_BIN}"
        user = "postgres"
    else:
        if not RABBITMQ_SERVER.exists() or not Path(EPMD).exists():
            return "no rabbitmq-server or epmd"
        user = "rabbitmq"
    try:
        pwd.getpwnam(user)
    except KeyError:
        return f"no {user} OS user"
    return None


class _Server:
    """A server process group run as ``user``, logging to a file in ``root``."""

    user = ""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.server: dc.Process | None = None  # the main process (postmaster, beam)
        self.procs: list[dc.Process] = []
        self.starts: list[float] = []  # seconds each start() took until the port answered

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> dc.Process:
        entry = pwd.getpwnam(self.user)
        log = self.root / f"{name}.log"
        with open(log, "ab") as out:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": entry.pw_dir, **(env or {})},
                user=entry.pw_uid,
                group=entry.pw_gid,
                extra_groups=[],
                start_new_session=True,
            )
        proc = dc.Process(name, self.user, argv, pid=child.pid, log=str(log))
        proc.started = dc.start_time(child.pid) or 0
        self._children = getattr(self, "_children", []) + [child]
        self.procs.append(proc)
        return proc

    def _reap(self) -> None:
        for child in getattr(self, "_children", []):
            child.poll()  # no zombie left of what ended

    def _kill_all(self) -> None:
        """SIGKILL every process still alive in the groups this server started."""
        for proc in self.procs:
            self._signal(proc, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(dc.members(p) for p in self.procs) and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.05)
        self._reap()

    def _signal(self, proc: dc.Process, signum: int) -> None:
        for pid in dc.members(proc):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def alive_pids(self) -> list[int]:
        return [pid for p in self.procs for pid in dc.members(p)]

    def _wait_stopped(self, began: float, timeout: float) -> float:
        """Wait until the server's processes are gone (SIGKILL past ``timeout``); seconds since ``began``."""
        assert self.server is not None
        while dc.members(self.server):
            self._reap()
            if time.monotonic() - began > timeout:
                self._signal(self.server, signal.SIGKILL)
            time.sleep(0.02)
        self._reap()
        return time.monotonic() - began

    def close(self) -> None:
        self._kill_all()
        shutil.rmtree(self.root, ignore_errors=True)

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(f"--- {p.name}\n{dc.log_tail(p, lines)}" for p in self.procs[-2:])


class PrivatePostgres(_Server):
    """A PostgreSQL server of the test's own (see the module's docstring)."""

    user = "postgres"

    def __init__(self, root: Path | None = None, port: int | None = None) -> None:
        base = Path(tempfile.mkdtemp(prefix="ocs-fault-pg-")) if root is None else root
        super().__init__(base)
        os.chown(self.root, pwd.getpwnam(self.user).pw_uid, -1)
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.port = port or free_port()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        entry = pwd.getpwnam(self.user)
        self.sockets.mkdir(exist_ok=True)
        os.chown(self.sockets, entry.pw_uid, entry.pw_gid)
        init = self._spawn(
            "initdb",
            [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
             "--no-sync"],
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while dc.alive(init):
            if time.monotonic() > deadline:
                raise TimeoutError("initdb did not finish in 60 s")
            time.sleep(0.05)
        self._reap()
        if not (self.data / "PG_VERSION").exists():
            raise RuntimeError(f"initdb failed:\n{dc.log_tail(init, 30)}")

    def start(self, timeout: float = 30.0) -> float:
        """Start the server (initialising the data directory first if needed)."""
        if not (self.data / "PG_VERSION").exists():
            self.init()
        began = time.monotonic()
        self.server = self._spawn(
            "postgres",
            [str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.sockets),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=300",
             "-c", "full_page_writes=off"],
        )  # fmt: skip
        wait_port(self.port, timeout, self.server)
        self._wait_accepting(began + timeout)
        took = time.monotonic() - began
        self.starts.append(took)
        return took

    def _wait_accepting(self, deadline: float) -> None:
        """Until the server takes connections: its port opens while it still recovers
        ("the database system is starting up")."""
        import psycopg2  # the PostgreSQL extra's driver

        while True:
            try:
                psycopg2.connect(
                    host="127.0.0.1", port=self.port, user=self.user, dbname="postgres", connect_timeout=2
                ).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self, *, crash: bool = False, timeout: float = 30.0) -> float:
        """Fast shutdown (SIGINT to the postmaster), or SIGKILL of every server process."""
        assert self.server is not None, "not started"
        began = time.monotonic()
        if crash:
            self._signal(self.server, signal.SIGKILL)
        elif dc.alive(self.server):
            os.kill(self.server.pid, signal.SIGINT)
        return self._wait_stopped(began, timeout)

    def __enter__(self) -> PrivatePostgres:
        return self


class PrivateRabbit(_Server):
    """A RabbitMQ node of the test's own (see the module's docstring)."""

    user = "rabbitmq"

    def __init__(self, root: Path | None = None) -> None:
        base = Path(tempfile.mkdtemp(prefix="ocs-fault-rmq-")) if root is None else root
        super().__init__(base)
        entry = pwd.getpwnam(self.user)
        os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.node = f"ocs-fault-{secrets.token_hex(4)}@localhost"
        self.port, self.dist_port, self.epmd_port = free_port(), free_port(), free_port()
        plugins, config = self.root / "enabled_plugins", self.root / "rabbitmq.conf"
        plugins.write_text("[].\n")
        config.write_text("loopback_users.guest = true\n")
        for path in (plugins, config):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        self.epmd: dc.Process | None = None
        self.env = {
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_PID_FILE": str(self.root / "rabbit.pid"),
            "RABBITMQ_CONFIG_FILE": str(config),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
            "RABBITMQ_LOGS": "-",  # to the node's own log file (its standard output)
        }

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def start(self, timeout: float = 60.0) -> float:
        began = time.monotonic()
        if self.epmd is None or not dc.alive(self.epmd):
            self.epmd = self._spawn("epmd", [EPMD, "-port", str(self.epmd_port), "-address", "127.0.0.1"])
            wait_port(self.epmd_port, 10, self.epmd)
        self.server = self._spawn("rabbitmq", [str(RABBITMQ_SERVER)], env=self.env)
        wait_port(self.port, timeout, self.server)
        took = time.monotonic() - began
        self.starts.append(took)
        return took

    def stop(self, *, crash: bool = False, timeout: float = 30.0) -> float:
        """A clean node stop (SIGTERM to the node's processes), or SIGKILL of them all."""
        assert self.server is not None, "not started"
        began = time.monotonic()
        self._signal(self.server, signal.SIGKILL if crash else signal.SIGTERM)
        return self._wait_stopped(began, timeout)

    def __enter__(self) -> PrivateRabbit:
        return self
