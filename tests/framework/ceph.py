"""A private single-node Ceph cluster for tests: one monitor, one manager, one OSD.

:func:`start_cluster` builds it in a scratch directory from Debian's Ceph
packages (``ceph-mon ceph-mgr ceph-osd ceph-common``), without systemd: the
keyrings, the monitor map and every daemon's data, run, log and pid files live
under that directory, and every daemon runs in the foreground as a child of the
test process, so it is stopped by its own PID (OSD, then manager, then monitor)
and nothing else on the machine is touched (a test process that is killed takes them
with it: they get SIGTERM when it dies). The monitor listens on two free
ports of 127.0.0.1 (msgr2 and legacy), never the default 3300/6789, so test
runs in parallel do not collide; the OSD and the manager take free ports of
Ceph's own range. The OSD keeps its objects in memory (``memstore``): a cluster
is ready about 4 s after the start and leaves no large file behind (memstore
loses its data when the OSD restarts, which no test here does).

The cluster has one pool, initialised for RBD, and a client (``client.ocs``)
with the ``profile rbd`` capabilities on it, as an operator would give OCS.

The :func:`ceph_cluster` fixture starts one per test session, on first use. It
skips the test, saying why, when Ceph is not installed; with
``OCS_TEST_REQUIRE_SERVICES=1`` (CI) it fails instead. Every wait is bounded:
Ceph clients hang rather than fail while PGs are unavailable.
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.services import services_required

PROGRAMS = ("ceph-mon", "ceph-mgr", "ceph-osd", "ceph", "rbd", "monmaptool")
PACKAGES = "ceph-mon ceph-mgr ceph-osd ceph-common"
POOL = "ocs-test"
CLIENT = "ocs"
CALL_TIMEOUT = 30.0  # seconds any one CLI call may take
READY_TIMEOUT = float(
    os.environ.get("OCS_TEST_CEPH_READY", "60")
)  # seconds the cluster may take to become healthy
STOP_TIMEOUT = 15.0  # seconds a daemon may take to end after SIGTERM


class CephUnavailable(RuntimeError):
    """Ceph cannot run here (not installed, or the cluster did not come up)."""


def cephx_key() -> str:
    """A new cephx secret as keyrings hold it (what ``ceph-authtool --gen-print-key`` prints)."""
    now = time.time()
    header = struct.pack("<HIIH", 1, int(now), int((now % 1) * 1e9), 16)  # AES, created, length
    return base64.b64encode(header + os.urandom(16)).decode()


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now (never Ceph's defaults)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in (3300, 6789):
            return port


@dataclass
class CephCluster:
    """A running test cluster: what a client needs to reach it, and its daemons."""

    directory: Path
    fsid: str
    mon_v2: int
    mon_v1: int
    pool: str = POOL
    client: str = CLIENT
    daemons: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.directory / "ceph.conf"

    @property
    def admin_keyring(self) -> Path:
        return self.directory / "client.admin.keyring"

    @property
    def client_keyring(self) -> Path:
        """The keyring of ``client.ocs`` (the key OCS's backend and agents use)."""
        return self.directory / f"client.{self.client}.keyring"

    @property
    def client_key(self) -> str:
        for line in self.client_keyring.read_text().splitlines():
            name, _, value = line.partition("=")
            if name.strip() == "key":
                return value.strip()
        raise CephUnavailable(f"no key in {self.client_keyring}")

    @property
    def monitors(self) -> str:
        """The monitor's legacy (v1) address: what QEMU's librbd is given by libvirt."""
        return f"127.0.0.1:{self.mon_v1}"

    def backend_settings(self) -> dict[str, Any]:
        """The keywords of the ``rbd`` volume backend for this cluster, as ``client.ocs``."""
        return {
            "pool": self.pool,
            "ceph_conf": str(self.conf),
            "user": self.client,
            "keyring": str(self.client_keyring),
            "timeout": CALL_TIMEOUT,
        }

    # --- the CLI, as the administrator ----------------------------------------------------

    def _base(self) -> list[str]:
        return [
            "--conf",
            str(self.conf),
            "--name",
            "client.admin",
            "--keyring",
            str(self.admin_keyring),
            "--client-mount-timeout",
            "10",
            "--rados-mon-op-timeout",
            "10",
            "--rados-osd-op-timeout",
            "10",
        ]

    def run(self, program: str, *args: str, stdin: str | None = None, timeout: float = CALL_TIMEOUT) -> str:
        """Run ``ceph`` or ``rbd`` as ``client.admin``; its stdout (CephUnavailable on failure)."""
        cmd = [program, *self._base(), *args]
        try:
            done = subprocess.run(
                cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise CephUnavailable(f"{' '.join([program, *args])} took longer than {timeout:g} s") from None
        if done.returncode != 0:
            raise CephUnavailable(f"{' '.join([program, *args])} failed: {done.stderr.strip()}")
        return done.stdout

    def ceph(self, *args: str, **kw: Any) -> str:
        return self.run("ceph", *args, **kw)

    def rbd(self, *args: str, **kw: Any) -> str:
        return self.run("rbd", *args, **kw)

    def images(self) -> set[str]:
        """The names of the RBD images in the pool."""
        return set(json.loads(self.rbd("ls", "--pool", self.pool, "--format", "json") or "[]"))

    def images_and_snapshots(self) -> set[str]:
        """Every image of the pool and every RBD snapshot (``image@snap``) in it."""
        out = self.rbd("ls", "--long", "--pool", self.pool, "--format", "json")
        return {
            e["image"] + (f"@{e['snapshot']}" if e.get("snapshot") else "") for e in json.loads(out or "[]")
        }

    def wipe_pool(self) -> None:
        """Remove every image of the pool (clones flattened, snapshots unprotected)."""
        for _ in range(3):  # a parent goes only once its clones are flattened
            entries = json.loads(self.rbd("ls", "--long", "--pool", self.pool, "--format", "json") or "[]")
            if not entries:
                return
            for e in entries:
                spec = f"{self.pool}/{e['image']}"
                if e.get("parent"):
                    self.rbd("flatten", spec)
            for e in entries:
                spec = f"{self.pool}/{e['image']}"
                if e.get("snapshot") and e.get("protected") == "true":
                    self.rbd("snap", "unprotect", f"{spec}@{e['snapshot']}")
            for image in {e["image"] for e in entries}:
                spec = f"{self.pool}/{image}"
                self.rbd("snap", "purge", spec)
                self.rbd("rm", spec)

    def objects(self) -> list[str]:
        """The RADOS objects of the pool (what really holds bytes)."""
        out = self.run("rados", "--pool", self.pool, "ls")
        return [line for line in out.splitlines() if line]

    def healthy(self) -> bool:
        try:
            health = json.loads(self.ceph("health", "--format", "json", timeout=10))
            mgr = json.loads(self.ceph("mgr", "stat", "--format", "json", timeout=10))
        except (CephUnavailable, ValueError):
            return False
        return health.get("status") == "HEALTH_OK" and bool(mgr.get("available"))

    def log_tail(self, limit: int = 4000) -> str:
        """The end of every daemon's log (for a failure report)."""
        parts = []
        for log in sorted((self.directory / "log").glob("*.log")):
            parts.append(f"--- {log.name}\n" + log.read_text(errors="replace")[-limit:])
        return "\n".join(parts)

    # --- daemons ------------------------------------------------------------------------------

    def _spawn(self, name: str, program: str, *args: str) -> None:
        with (self.directory / "log" / f"{name}.out").open("ab") as out:
            self.daemons[name] = subprocess.Popen(
                [program, "--conf", str(self.conf), "-f", *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a test's Ctrl-C does not reach the daemons first
                preexec_fn=_die_with_parent,
            )

    def _check_alive(self) -> None:
        for name, proc in self.daemons.items():
            if proc.poll() is not None:
                raise CephUnavailable(f"{name} exited with {proc.returncode}:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the daemons this cluster started, OSD, then manager, then monitor, by PID."""
        for name in ("osd.0", "mgr.x", "mon.a"):
            proc = self.daemons.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT)


def _die_with_parent() -> None:
    """In the daemon's child process: SIGTERM it when the test process dies (even by
    SIGKILL), so that a killed test run leaves no Ceph daemons behind."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def missing_programs() -> list[str]:
    return [p for p in PROGRAMS if shutil.which(p) is None]


_CONF = """\
[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{v2},v1:127.0.0.1:{v1}]
mon initial members = a
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
ms bind ipv6 = false
ms bind ipv4 = true
public addr = 127.0.0.1
cluster addr = 127.0.0.1
run dir = {d}/run
pid file = {d}/run/$name.pid
log file = {d}/log/$name.log
log to stderr = false
err to stderr = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = 2147483648
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0

[mon]
mon data = {d}/mon/$cluster-$id
keyring = {d}/mon/$cluster-$id/keyring

[mgr]
mgr data = {d}/mgr/$cluster-$id
keyring = {d}/mgr/$cluster-$id/keyring
mgr initial modules =
mgr module path = {d}/mgr-modules

[osd]
osd data = {d}/osd/$cluster-$id
keyring = {d}/osd/$cluster-$id/keyring
osd journal size = 100

[client]
keyring = {d}/client.admin.keyring
"""


def _keyring(path: Path, entity: str, key: str, **caps: str) -> None:
    lines = [f"[{entity}]", f"\tkey = {key}"]
    lines += [f'\tcaps {kind} = "{cap}"' for kind, cap in caps.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def _tool(*cmd: str, timeout: float = CALL_TIMEOUT) -> None:
    try:
        done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise CephUnavailable(f"{cmd[0]} took longer than {timeout:g} s") from None
    if done.returncode != 0:
        raise CephUnavailable(f"{' '.join(cmd)} failed: {done.stderr.strip() or done.stdout.strip()}")


def _answers(cluster: CephCluster) -> bool:
    try:
        cluster.ceph("mon", "stat", timeout=5)
    except CephUnavailable:
        return False
    return True


def _wait(what: str, cluster: CephCluster, ready: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        cluster._check_alive()
        if time.monotonic() > deadline:
            raise CephUnavailable(f"{what} within {timeout:g} s:\n{cluster.log_tail()}")
        time.sleep(0.2)


def start_cluster(directory: Path) -> CephCluster:
    """Make and start a cluster in ``directory`` (empty or new); CephUnavailable on failure,
    after stopping whatever was started."""
    missing = missing_programs()
    if missing:
        raise CephUnavailable(
            f"Ceph is not installed ({', '.join(missing)} missing; apt-get install {PACKAGES})"
        )
    d = directory
    for sub in ("run", "log", "mon", "mgr/ceph-x", "osd/ceph-0"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    cluster = CephCluster(d, str(uuid.uuid4()), free_port(), free_port())
    (d / "ceph.conf").write_text(_CONF.format(fsid=cluster.fsid, v2=cluster.mon_v2, v1=cluster.mon_v1, d=d))
    try:
        _bootstrap(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


#: The manager's modules that are always on (pacific): the only ones the test manager
#: loads. Loading each of the others takes about a second of Python at start.
MGR_MODULES = (
    "balancer", "crash", "devicehealth", "orchestrator", "pg_autoscaler", "progress",
    "rbd_support", "status", "telemetry", "volumes",
)  # fmt: skip
MGR_MODULE_PATH = Path("/usr/share/ceph/mgr")


def _mgr_modules(target: Path) -> None:
    target.mkdir(exist_ok=True)
    for entry in MGR_MODULE_PATH.iterdir():
        if entry.is_file() or entry.name in MGR_MODULES:
            (target / entry.name).symlink_to(entry)


def _bootstrap(cluster: CephCluster) -> None:
    d, conf = cluster.directory, str(cluster.conf)
    admin_key = cephx_key()
    _keyring(
        cluster.admin_keyring,
        "client.admin",
        admin_key,
        mon="allow *",
        osd="allow *",
        mds="allow *",
        mgr="allow *",
    )
    mon_keyring = d / "mon.keyring"  # ceph-mon --mkfs copies it into its (new) data directory
    _keyring(mon_keyring, "mon.", cephx_key(), mon="allow *")
    with mon_keyring.open("a") as f:
        f.write(cluster.admin_keyring.read_text())
    monmap = d / "monmap"
    addrs = f"[v2:127.0.0.1:{cluster.mon_v2},v1:127.0.0.1:{cluster.mon_v1}]"
    _tool("monmaptool", "--create", "--clobber", "--fsid", cluster.fsid, "--addv", "a", addrs, str(monmap))
    _tool(
        "ceph-mon",
        "--conf",
        conf,
        "--mkfs",
        "-i",
        "a",
        "--monmap",
        str(monmap),
        "--keyring",
        str(mon_keyring),
    )
    cluster._spawn("mon.a", "ceph-mon", "-i", "a")
    _wait("the monitor did not answer", cluster, lambda: _answers(cluster), READY_TIMEOUT)

    _mgr_modules(d / "mgr-modules")
    mgr_key = cephx_key()
    _keyring(d / "mgr" / "ceph-x" / "keyring", "mgr.x", mgr_key)
    cluster.ceph(
        "auth", "add", "mgr.x", "mon", "allow profile mgr", "osd", "allow *", "mds", "allow *",
        "-i", str(d / "mgr" / "ceph-x" / "keyring"),
    )  # fmt: skip
    cluster._spawn("mgr.x", "ceph-mgr", "-i", "x")

    osd_uuid, osd_key = str(uuid.uuid4()), cephx_key()
    osd_id = cluster.ceph(
        "osd", "new", osd_uuid, "-i", "-", stdin=json.dumps({"cephx_secret": osd_key})
    ).strip()
    if osd_id != "0":
        raise CephUnavailable(f"the new OSD got id {osd_id!r}, not 0")
    _keyring(d / "osd" / "ceph-0" / "keyring", "osd.0", osd_key)
    _tool("ceph-osd", "--conf", conf, "-i", "0", "--mkfs", "--osd-uuid", osd_uuid, timeout=60)
    cluster._spawn("osd.0", "ceph-osd", "-i", "0")

    cluster.ceph("osd", "pool", "create", cluster.pool, "8", "8", "--autoscale-mode", "off")
    cluster.rbd("pool", "init", cluster.pool, timeout=READY_TIMEOUT)
    cluster.ceph(
        "auth", "get-or-create", f"client.{cluster.client}",
        "mon", "profile rbd", "osd", f"profile rbd pool={cluster.pool}", "mgr", f"profile rbd pool={cluster.pool}",
        "-o", str(cluster.client_keyring),
    )  # fmt: skip
    _wait("the cluster was not HEALTH_OK with an active manager", cluster, cluster.healthy, READY_TIMEOUT)


@pytest.fixture(scope="session")
def ceph_cluster() -> Iterator[CephCluster]:
    """A running single-node cluster for the session (skip, or fail on CI, without Ceph)."""
    directory = Path(tempfile.mkdtemp(prefix="ocs-ceph-"))
    try:
        cluster = start_cluster(directory)
    except CephUnavailable as exc:
        shutil.rmtree(directory, ignore_errors=True)
        if services_required():
            pytest.fail(f"{exc} and OCS_TEST_REQUIRE_SERVICES is set", pytrace=False)
        pytest.skip(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)
