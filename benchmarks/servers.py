"""The servers under test, each started as a subprocess on 127.0.0.1.

Every server starts empty (a fresh state directory for OCS; moto keeps its
state in memory) and is stopped by its own PID. :class:`Target` is what the
client runner needs to reach one: endpoint, credentials and the PID whose
memory it reports.

- :class:`OcsAllInOne`: ``ocs-manage all-in-one`` with simulated hosts large
  enough for the populations measured and a quota that does not bind.
- :class:`Moto`: ``python -m moto.server`` (any credentials are accepted).
- :class:`OcsScaleOut`: the scale-out setup (``ocs-manage devcluster up``: API
  workers under gunicorn, schedulers, compute agents and the network service as
  processes of their own over this machine's RabbitMQ and PostgreSQL); skipped,
  saying why, when either is not reachable.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

HOST = "127.0.0.1"
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Target:
    """One running server, as the client runner sees it."""

    name: str  # "ocs", "moto", "ocs-scaleout"
    label: str
    endpoint: str
    access_key_id: str
    secret_access_key: str
    region: str
    pids: tuple[int, ...]  # the processes whose memory is reported

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Target:
        return cls(**{**data, "pids": tuple(data["pids"])})


class Server(Protocol):
    name: str
    label: str

    def available(self) -> tuple[bool, str]: ...

    def start(self) -> Target: ...

    def stop(self) -> None: ...


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int | None:
    """Resident memory of a process in KiB (Linux), None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    """SIGTERM this one process (by its PID), then SIGKILL if it does not go."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _wait_until(ready: Any, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} exited with {proc.returncode} while starting:\n{tail}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not start within {START_TIMEOUT:g} s (log: {log})")
        time.sleep(0.05)


def _read_ocsrc(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.startswith("export "):
                key, _, value = line[len("export ") :].partition("=")
                env[key.strip()] = value.strip()
    return env


class OcsAllInOne:
    """``ocs-manage all-in-one`` in a fresh state directory.

    ``instances`` sizes the simulated hosts and the admin's quota: the fake
    hosts together hold that many instances of up to 2 vCPUs, 2 GiB and 8 GiB
    of root disk (the workloads launch t3.micro and t3.small), with room to spare.
    Request throttling (``[api] throttling``, EC2's per-account token buckets) is
    off: it is a policy that caps one account at EC2's rates (20 Describe calls
    per second), not a measure of what the server can do, and moto has none.
    """

    name = "ocs"
    label = "OCS all-in-one"

    def __init__(self, workdir: Path, instances: int, hosts: int = 4):
        self.workdir = workdir
        self.instances = max(instances, 1_000)
        self.hosts = hosts
        self.proc: subprocess.Popen[bytes] | None = None
        self.state: Path | None = None

    def available(self) -> tuple[bool, str]:
        return True, ""

    def _manage(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "ocs.cmd.manage", *args]

    def _bench_conf(self, state: Path) -> Path:
        per_host = self.instances + 64  # each host holds them all: the hosts span several zones
        path = state.parent / "bench.conf"
        path.write_text(
            "[DEFAULT]\n"
            f"state_dir = {state}\n"
            "[compute]\n"
            f"fake_vcpus = {2 * per_host}\n"  # 2 vCPUs per instance, no overcommit in the fake
            f"fake_memory_mib = {2048 * per_host}\n"
            f"fake_disk_gib = {8 * per_host}\n"
            "fake_boot_delay = 0.0\n"
            "[api]\n"
            "throttling = false\n"  # EC2's per-account rate limits are policy, not capacity
        )
        return path

    def start(self) -> Target:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.state = Path(tempfile.mkdtemp(prefix="ocs-state-", dir=self.workdir))
        conf = self._bench_conf(self.state)
        log = self.state.parent / f"{self.state.name}.log"
        cmd = self._manage(
            "--config-file", str(conf), "all-in-one", "--state-dir", str(self.state),
            "--listen", f"{HOST}:0", "--fake-hosts", str(self.hosts),
        )  # fmt: skip
        with log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        ocsrc = self.state / "ocsrc"
        _wait_until(lambda: "AWS_ENDPOINT_URL" in _read_ocsrc(ocsrc), self.proc, log, "the OCS all-in-one")
        quota = [
            "--config-file", str(conf), "--config-file", str(self.state / "ocs.conf"),
            "quota", "set", "admin", "--instances", str(2 * self.instances), "--vcpus", str(8 * self.instances),
        ]  # fmt: skip
        subprocess.run(self._manage(*quota), check=True, capture_output=True, timeout=60)
        env = _read_ocsrc(ocsrc)
        return Target(
            name=self.name,
            label=self.label,
            endpoint=env["AWS_ENDPOINT_URL"],
            access_key_id=env["AWS_ACCESS_KEY_ID"],
            secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region=env["AWS_DEFAULT_REGION"],
            pids=(self.proc.pid,),
        )

    def stop(self) -> None:
        _stop_process(self.proc)
        self.proc = None
        if self.state is not None:
            shutil.rmtree(self.state, ignore_errors=True)
            self.state = None


class Moto:
    """moto's server (``python -m moto.server``) on a free port."""

    name = "moto"
    label = "moto server"

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def available(self) -> tuple[bool, str]:
        try:
            import moto.server  # noqa: F401
        except ImportError as exc:
            return False, f"moto[server] is not installed ({exc})"
        return True, ""

    def start(self) -> Target:
        self.workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        log = self.workdir / f"moto-{port}.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        url = f"http://{HOST}:{port}"

        def ready() -> bool:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1):
                    return True
            except OSError:
                return False

        _wait_until(ready, self.proc, log, "moto's server")
        return Target(
            name=self.name,
            label=self.label,
            endpoint=url,
            access_key_id="testing",
            secret_access_key="testing",
            region="us-east-1",
            pids=(self.proc.pid,),
        )

    def stop(self) -> None:
        _stop_process(self.proc)
        self.proc = None


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


class OcsScaleOut:
    """The scale-out setup: ``ocs-manage devcluster up`` (:mod:`ocs.devcluster`).

    Separate processes on this machine's PostgreSQL and RabbitMQ: ``schedulers``
    ``ocs-scheduler``, one ``ocs-network`` (noop driver), ``hosts`` fake compute
    agents and ``ocs-api`` under gunicorn with ``api_workers`` workers. Each start
    makes a database of its own (``ocs_bench_<random>``, dropped by :meth:`stop` with
    ``devcluster down --purge``, as are the cluster's queues and exchange). The fake
    hosts, the quota and throttling are set as for :class:`OcsAllInOne`. The PIDs
    reported are one API worker, the first scheduler and the first compute agent.
    """

    name = "ocs-scaleout"
    label = "OCS scale-out"

    def __init__(
        self,
        workdir: Path,
        instances: int,
        *,
        hosts: int = 4,
        api_workers: int = 4,
        schedulers: int = 2,
        database_host: str = HOST,
        database_port: int = 5432,
        broker_port: int = 5672,
    ):
        self.workdir = workdir
        self.instances = max(instances, 1_000)
        self.hosts, self.api_workers, self.schedulers = hosts, api_workers, schedulers
        self.database_host, self.database_port, self.broker_port = database_host, database_port, broker_port
        self.dir: Path | None = None

    def available(self) -> tuple[bool, str]:
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            return False, "psycopg2 is not installed (pip install 'ocs[postgres]')"
        if not _reachable(self.database_host, self.database_port):
            return False, f"no PostgreSQL on {self.database_host}:{self.database_port}"
        if not _reachable(HOST, self.broker_port):
            return False, f"no RabbitMQ on {HOST}:{self.broker_port}"
        return True, ""

    def _manage(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "ocs.cmd.manage", *args]

    def start(self) -> Target:
        from ocs import devcluster

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="ocs-scaleout-", dir=self.workdir))
        per_host = self.instances + 64
        conf = self.dir / "bench.conf"
        conf.write_text(
            "[compute]\n"
            f"fake_vcpus = {2 * per_host}\nfake_memory_mib = {2048 * per_host}\nfake_disk_gib = {8 * per_host}\n"
            "fake_boot_delay = 0.0\n"
            "[api]\nthrottling = false\n"
        )
        database = f"ocs_bench_{os.urandom(4).hex()}"
        url = f"postgresql+psycopg2://postgres@{self.database_host}:{self.database_port}/{database}"
        cluster = self.dir / "dc"
        up = self._manage(
            "--config-file", str(conf), "devcluster", "up", "--state-dir", str(cluster),
            "--hosts", str(self.hosts), "--schedulers", str(self.schedulers),
            "--api-workers", str(self.api_workers), "--database-url", url,
            "--transport-url", f"amqp://guest:guest@{HOST}:{self.broker_port}//",
        )  # fmt: skip
        log = self.dir / "devcluster-up.log"
        with log.open("wb") as out:
            done = subprocess.run(
                up, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=300
            )
        if done.returncode != 0:
            self.stop()
            raise RuntimeError(f"devcluster up failed:\n{log.read_text(errors='replace')[-2000:]}")
        state = devcluster.State.load(cluster)
        assert state is not None
        files = [a for f in state.config_files for a in ("--config-file", f)]
        quota = [
            "quota",
            "set",
            "admin",
            "--instances",
            str(2 * self.instances),
            "--vcpus",
            str(8 * self.instances),
        ]
        subprocess.run(self._manage(*files, *quota), check=True, capture_output=True, timeout=60)
        env = _read_ocsrc(cluster / "ocsrc")
        by_kind: dict[str, list[int]] = {}
        for proc in state.processes:
            pids = devcluster.members(proc)
            if proc.kind == "api":
                pids = [p for p in pids if p != proc.pid] or pids  # a worker, not gunicorn's arbiter
            by_kind.setdefault(proc.kind, []).extend(pids[:1])
        return Target(
            name=self.name,
            label=self.label,
            endpoint=env["AWS_ENDPOINT_URL"],
            access_key_id=env["AWS_ACCESS_KEY_ID"],
            secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region=env["AWS_DEFAULT_REGION"],
            pids=tuple(by_kind[k][0] for k in ("api", "scheduler", "compute") if by_kind.get(k)),
        )

    def stop(self) -> None:
        if self.dir is None:
            return
        cluster = self.dir / "dc"
        if (cluster / "devcluster.json").exists():
            down = self._manage("devcluster", "down", "--state-dir", str(cluster), "--purge")
            subprocess.run(down, capture_output=True, timeout=120, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
