"""The all-in-one cloud: every service in one process, state in one directory.

SQLite in the state directory, the in-memory bus, the fake hypervisor unless
told otherwise. On first start it creates the ``admin`` account; once the API
answers, it writes ``<state_dir>/ocsrc`` with the credentials to source.
Restarting on the same directory keeps every resource.

Services, in start order: the scheduler (with its periodic tasks), the volume
service (``[volume] backend``, by default files under ``<state_dir>/volumes``), then the
network service of every compute host (``ocs-network``'s host endpoint on
``network.<host>``, in-process: the ``noop`` driver with the fake hypervisor,
``linux`` with real ones, or ``[network] driver``), then the compute agents (``[compute] fake_hosts`` simulated hosts named ``fake-1`` …
``fake-N``, spread over the configured availability zones; one agent named
``[DEFAULT] host`` with another driver), then the EC2 API (and the Compute Engine API
beside it, :mod:`ocs.api_gce`), which answers only
once every host has reported. :meth:`AllInOne.stop` stops them in reverse
order and closes the bus, leaving no thread behind.

The memory bus of one all-in-one uses its own exchange name (the configured one
plus a random suffix), so that two clouds in one process (tests) never hear
each other. A restart starts with empty fake hypervisors: the agents' first
heartbeats make the scheduler stop the instances whose guests are gone (see
:mod:`ocs.scheduler.lifecycle`), and StartInstances builds them again.
"""

from __future__ import annotations

import logging
import os
import shlex
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oslo_config import cfg

from ocs.api_ec2.service import bus_clients, database_url
from ocs.api_gce.service import front_ends
from ocs.bus import Bus
from ocs.cmd.common import bus_from_conf
from ocs.cmd.compute_agent import agent_settings, availability_zone, driver_from_conf
from ocs.cmd.network import driver_from_conf as network_driver_from_conf
from ocs.cmd.network import settings_from_conf as network_settings
from ocs.cmd.scheduler import settings_from_conf
from ocs.cmd.volume import backend_from_conf
from ocs.cmd.volume import settings_from_conf as volume_settings
from ocs.compute_agent.service import ComputeAgent
from ocs.conf.images import store_path
from ocs.crypto import load_secret_box
from ocs.db import accounts as db_accounts
from ocs.db import engine as db_engine
from ocs.db import hosts as db_hosts
from ocs.db import images as db_images
from ocs.db import migration
from ocs.db.models.base import utcnow
from ocs.images.importer import ensure_default_image
from ocs.images.store import ImageStore
from ocs.network.service import NetworkHostEndpoint, NetworkService
from ocs.scheduler.service import SchedulerService
from ocs.volume.service import VolumeEndpoint, VolumeService
from ocs.wsgi_server import ThreadedWSGIServer, parse_listen

LOG = logging.getLogger(__name__)

ADMIN_ACCOUNT = "admin"


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def conf_text(conf: cfg.ConfigOpts, listen: str) -> str:
    return (
        "# Written by 'ocs-manage all-in-one' at every start; put your own settings\n"
        "# in another file and pass both with --config-file.\n"
        "[DEFAULT]\n"
        f"state_dir = {conf.state_dir}\n"
        "\n[database]\n"
        f"connection = {database_url(conf)}\n"
        "\n[bus]\n"
        f"transport_url = {conf.bus.transport_url}\n"
        "\n[api]\n"
        f"listen = {listen}\n"
        "\n[compute]\n"
        f"driver = {conf.compute.driver}\n"
        f"fake_hosts = {conf.compute.fake_hosts}\n"
        "\n[scheduler]\n"
        f"service_down_time = {conf.scheduler.service_down_time}\n"
    )


def ocsrc_text(creds: Credentials, region: str, endpoint: str) -> str:
    return (
        "# Source this file to use the OCS all-in-one with aws-cli or boto3.\n"
        f"export AWS_ACCESS_KEY_ID={creds.access_key_id}\n"
        f"export AWS_SECRET_ACCESS_KEY={creds.secret_access_key}\n"
        f"export AWS_DEFAULT_REGION={region}\n"
        f"export AWS_ENDPOINT_URL={endpoint}\n"
    )


def read_ocsrc(path: Path) -> dict[str, str]:
    """The ``export`` lines of an ocsrc file as a dict (empty if there is none)."""
    env: dict[str, str] = {}
    if not path.exists():
        return env
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key.strip()] = shlex.split(value)[0] if value.strip() else ""
    return env


def bootstrap_admin(conf: cfg.ConfigOpts, known: Credentials | None) -> Credentials:
    """The admin's credentials: ``known`` if still valid, else a fresh key.

    Creates the admin account on first start.
    """
    box = load_secret_box(conf.auth.encryption_key, conf.auth.encryption_key_file, conf.state_dir)
    engine = db_engine.make_engine(database_url(conf), pool_size=1, max_overflow=0)
    try:
        with db_engine.transaction(db_engine.session_factory(engine)) as s:
            try:
                account = db_accounts.get_account(s, ADMIN_ACCOUNT)
            except db_accounts.AccountNotFound:
                account = db_accounts.create_account(s, ADMIN_ACCOUNT)
                LOG.info("created account %s (%s)", account.name, account.id)
            if known is not None:
                found = db_accounts.lookup_secret(s, known.access_key_id, box)
                if found == (account.id, known.secret_access_key):
                    return known
            key, secret = db_accounts.create_access_key(s, account.id, box)
            LOG.info("created access key %s for %s", key.access_key_id, account.name)
            return Credentials(key.access_key_id, secret)
    finally:
        engine.dispose()


def bootstrap_images(conf: cfg.ConfigOpts) -> None:
    """Register the public default image on first start (if ``[images] default_image``)."""
    if not conf.images.default_image:
        return
    engine = db_engine.make_engine(database_url(conf), pool_size=1, max_overflow=0)
    try:
        with db_engine.transaction(db_engine.session_factory(engine)) as s:
            admin = db_accounts.get_account(s, ADMIN_ACCOUNT)
            ensure_default_image(s, ImageStore(store_path(conf)), admin.id)
    finally:
        engine.dispose()


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def host_names(conf: cfg.ConfigOpts) -> list[str]:
    """The compute hosts of the all-in-one: fake-1 … fake-N, or this host."""
    if conf.compute.driver == "fake":
        return [f"fake-{i}" for i in range(1, conf.compute.fake_hosts + 1)]
    return [str(conf.host)]


def wait_for_hosts(sessions: Any, names: list[str], since: Any, timeout: float = 15.0) -> None:
    """Wait until every host in ``names`` has reported since ``since``."""
    deadline = time.monotonic() + timeout
    while True:
        with db_engine.transaction(sessions) as s:
            seen = {h.name for h in db_hosts.list_hosts(s) if h.last_heartbeat and h.last_heartbeat >= since}
        missing = sorted(set(names) - seen)
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"compute hosts {', '.join(missing)} did not report within {timeout:g} s")
        time.sleep(0.01)


class AllInOne:
    """Start with :meth:`start`, stop with :meth:`stop` (or run :meth:`serve_forever`).

    ``agents`` (one per compute host) and ``scheduler`` are there for tests and
    demos: ``aio.agents[0].driver`` is that host's (fake) hypervisor, whose
    ``faults`` plan and ``simulate_shutdown``/``simulate_crash`` play failures.
    """

    def __init__(self, conf: cfg.ConfigOpts):
        self.conf = conf
        self.state_dir = Path(conf.state_dir).expanduser()
        self.server: ThreadedWSGIServer | None = None
        self.bus: Bus | None = None
        self.scheduler: SchedulerService | None = None
        self.volume: VolumeService | None = None
        self.agents: list[ComputeAgent] = []
        self.networks: list[NetworkService] = []
        self._engine: Any = None
        self._stopped = threading.Event()

    @property
    def ocsrc(self) -> Path:
        return self.state_dir / "ocsrc"

    @property
    def conf_file(self) -> Path:
        return self.state_dir / "ocs.conf"

    def agent(self, host: str) -> ComputeAgent:
        """The agent of compute host ``host``."""
        for agent in self.agents:
            if agent.settings.host == host:
                return agent
        raise KeyError(host)

    def network(self, host: str) -> NetworkService:
        """The network service of compute host ``host``."""
        for service in self.networks:
            if service.settings.host == host:
                return service
        raise KeyError(host)

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        migration.sync(database_url(self.conf))
        old = read_ocsrc(self.ocsrc)
        known = None
        if old.get("AWS_ACCESS_KEY_ID") and old.get("AWS_SECRET_ACCESS_KEY"):
            known = Credentials(old["AWS_ACCESS_KEY_ID"], old["AWS_SECRET_ACCESS_KEY"])
        creds = bootstrap_admin(self.conf, known)
        bootstrap_images(self.conf)
        self._start_services()
        host, port = parse_listen(self.conf.api.listen)
        self.server = ThreadedWSGIServer(None, host, port)
        host, port = self.server.address
        listen = f"{host}:{port}"
        self.conf.set_override("listen", listen, group="api")
        assert self.bus is not None
        self.server.set_app(front_ends(self.conf, bus_clients(self.bus)))
        self.server.start()
        write_private(self.conf_file, conf_text(self.conf, listen))
        wait_for_port(host, port)
        endpoint = self.conf.api.public_endpoint or f"http://{listen}"
        write_private(self.ocsrc, ocsrc_text(creds, self.conf.ec2.region, endpoint))
        LOG.info(
            "OCS all-in-one serves the EC2 API on http://%s (and Compute Engine under /compute/v1/)", listen
        )

    def _start_services(self) -> None:
        conf = self.conf
        if conf.bus.transport_url.startswith("memory:"):
            self.bus = Bus(
                "memory://", f"{conf.bus.exchange}-{uuid.uuid4().hex[:8]}", rpc_timeout=conf.bus.rpc_timeout
            )
        else:
            self.bus = bus_from_conf(conf)
        self._engine = db_engine.make_engine(
            database_url(conf), pool_size=conf.database.pool_size, max_overflow=conf.database.max_overflow
        )
        sessions = db_engine.session_factory(self._engine)
        self.scheduler = SchedulerService(self.bus, sessions, settings_from_conf(conf))
        self.scheduler.start()
        self.volume = VolumeService(
            self.bus, VolumeEndpoint(sessions, backend_from_conf(conf), volume_settings(conf))
        )
        self.volume.start()
        since = utcnow()
        names = host_names(conf)
        readers = db_engine.session_factory(self._engine, read_only=True)  # it mostly reads
        for index, name in enumerate(names):
            endpoint = NetworkHostEndpoint(
                readers, network_driver_from_conf(conf), network_settings(conf, name), writers=sessions
            )
            network = NetworkService(self.bus, endpoint, status=index == 0)
            network.start()
            self.networks.append(network)
        for index, name in enumerate(names):
            settings = agent_settings(conf, name, availability_zone(conf, index))
            agent = ComputeAgent(self.bus, driver_from_conf(conf, name), settings)
            agent.start()
            self.agents.append(agent)
        wait_for_hosts(sessions, names, since)
        LOG.info("scheduler and %d compute hosts running: %s", len(names), ", ".join(names))

    def has_bootable_image(self) -> bool:
        """Whether any machine image boots from a kernel image (what real VMs need here)."""
        engine = db_engine.make_engine(database_url(self.conf), pool_size=1, max_overflow=0)
        try:
            with db_engine.transaction(db_engine.session_factory(engine)) as s:
                return db_images.any_kernel_booted_image(s)
        finally:
            engine.dispose()

    def endpoint(self) -> str:
        assert self.server is not None
        return self.server.url

    def serve_forever(self) -> None:
        self._stopped.wait()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        for agent in reversed(self.agents):
            agent.stop()
        self.agents = []
        for network in reversed(self.networks):
            network.stop()
        self.networks = []
        if self.volume is not None:
            self.volume.stop()
            self.volume = None
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        if self.bus is not None:
            self.bus.close()
            self.bus = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        self._stopped.set()
