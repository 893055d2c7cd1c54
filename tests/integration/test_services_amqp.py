"""The service processes run on their own and answer on RabbitMQ; SIGTERM stops them."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from ocs import errors
from ocs.bus import Bus
from ocs.compute_agent.rpcapi import ComputeApi
from ocs.crypto import load_secret_box
from ocs.db import accounts as db_accounts
from ocs.db import hosts as db_hosts
from ocs.db import instance_events as db_events
from ocs.db import migration
from ocs.db.engine import default_url, make_engine, session_factory, transaction
from ocs.images.importer import ensure_default_image
from ocs.images.store import ImageStore
from ocs.network.rpcapi import NetworkApi
from ocs.scheduler.rpcapi import SchedulerApi
from ocs.service import StatusRequest
from tests.dbfixtures import throwaway_database
from tests.services import port_open, require_rabbitmq

BIN = Path(sys.executable).parent


@pytest.fixture
def amqp_conf(tmp_path):
    url = require_rabbitmq()
    exchange = f"ocs-test-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "ocs.conf"
    path.write_text(
        f"[DEFAULT]\nhost = host-a\nstate_dir = {tmp_path}\n"
        f"[bus]\ntransport_url = {url}\nexchange = {exchange}\n"
    )
    migration.sync(default_url(str(tmp_path)))  # the scheduler keeps its heartbeat there
    bus = Bus(url, exchange, rpc_timeout=20.0)
    yield path, bus
    bus.delete_topology(
        topics=("scheduler", "network", "compute.host-a"), services=("scheduler", "network", "compute")
    )
    bus.close()


def wait_for_status(client, topic, proc, seconds: float = 60.0):
    """Ask until the freshly started process has bound its queue and answers."""
    deadline = time.monotonic() + seconds
    while True:
        assert proc.poll() is None, proc.stdout.read()
        try:
            return client.status(StatusRequest(), timeout=1.0, topic=topic or client.default_topic())
        except errors.BusTimeout:
            if time.monotonic() > deadline:
                raise


@pytest.mark.parametrize(
    ("command", "api", "topic", "service"),
    [
        ("ocs-scheduler", SchedulerApi, None, "scheduler"),
        ("ocs-network", NetworkApi, None, "network"),
        ("ocs-compute-agent", ComputeApi, "compute.host-a", "compute"),
    ],
)
def test_service_process_answers_and_stops(amqp_conf, command, api, topic, service):
    conf, bus = amqp_conf
    proc = subprocess.Popen(
        [str(BIN / command), "--config-file", str(conf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        status = wait_for_status(api(bus), topic, proc)
        assert status.service == service
        assert status.host == "host-a"
        assert status.pid == proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "Traceback" not in out


# --- the whole path as separate processes ------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spawn(command: str, *conf_files: Path) -> subprocess.Popen[str]:
    args = [str(BIN / command)]
    for conf in conf_files:
        args += ["--config-file", str(conf)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _end(procs: dict[str, subprocess.Popen[str]]) -> dict[str, tuple[int | None, str]]:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    results = {}
    for name, proc in procs.items():
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        results[name] = (proc.returncode, out)
    return results


def _bootstrap(url: str, state: Path) -> tuple[str, str]:
    """The admin account with an access key, and the default image (as the all-in-one does)."""
    engine = make_engine(url, pool_size=1)
    try:
        with transaction(session_factory(engine)) as s:
            admin = db_accounts.create_account(s, "admin")
            key, secret = db_accounts.create_access_key(s, admin.id, load_secret_box(None, None, str(state)))
            ensure_default_image(s, ImageStore(state / "images"), admin.id)
            return key.access_key_id, secret
    finally:
        engine.dispose()


def _wait(what, seconds: float, procs: dict[str, subprocess.Popen[str]], message: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while True:
        for name, proc in procs.items():
            assert proc.poll() is None, f"{name} exited: {proc.stdout.read() if proc.stdout else ''}"
        value = what()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {message}"
        time.sleep(0.1)


def test_instances_end_to_end_across_processes(tmp_path):
    """ocs-api (gunicorn, 2 workers) + ocs-scheduler + 2 ocs-compute-agent, each with
    its ocs-network (noop driver: the fake hypervisor), over RabbitMQ and PostgreSQL:
    boto3 runs instances to running, then terminates them."""
    amqp = require_rabbitmq()
    exchange = f"ocs-test-{uuid.uuid4().hex[:8]}"
    port = _free_port()
    with throwaway_database("postgres") as url:
        key, secret = _bootstrap(url, tmp_path)
        common = tmp_path / "ocs.conf"
        common.write_text(
            f"[DEFAULT]\nhost = ctl\nstate_dir = {tmp_path}\n"
            f"[database]\nconnection = {url}\n"
            f"[bus]\ntransport_url = {amqp}\nexchange = {exchange}\n"
            f"[api]\nlisten = 127.0.0.1:{port}\nworkers = 2\n"
            "[compute]\nheartbeat_interval = 1\n"
        )
        hosts = {}
        for name in ("host-a", "host-b"):
            hosts[name] = tmp_path / f"{name}.conf"
            hosts[name].write_text(f"[DEFAULT]\nhost = {name}\n")
        procs = {
            "scheduler": _spawn("ocs-scheduler", common),
            "host-a": _spawn("ocs-compute-agent", common, hosts["host-a"]),
            "host-b": _spawn("ocs-compute-agent", common, hosts["host-b"]),
            "network-a": _spawn("ocs-network", common, hosts["host-a"]),
            "network-b": _spawn("ocs-network", common, hosts["host-b"]),
            "api": _spawn("ocs-api", common),
        }
        engine = make_engine(url, pool_size=1)
        sessions = session_factory(engine)
        try:
            _wait(lambda: port_open("127.0.0.1", port), 60, procs, "the API")

            def reported() -> bool:
                with transaction(sessions) as s:
                    return {h.name for h in db_hosts.list_hosts(s)} == {"host-a", "host-b"}

            _wait(reported, 60, procs, "both hosts to report")
            ec2 = boto3.client(
                "ec2",
                endpoint_url=f"http://127.0.0.1:{port}",
                region_name="us-east-1",
                aws_access_key_id=key,
                aws_secret_access_key=secret,
                config=Config(retries={"max_attempts": 0}),
            )
            image = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"][0][
                "ImageId"
            ]
            out = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=2, MaxCount=2)
            ids = [i["InstanceId"] for i in out["Instances"]]
            assert {i["State"]["Name"] for i in out["Instances"]} <= {"pending", "running"}

            def state_is(name: str) -> bool:
                pages = ec2.describe_instances(InstanceIds=ids)["Reservations"]
                return {i["State"]["Name"] for r in pages for i in r["Instances"]} == {name}

            _wait(lambda: state_is("running"), 30, procs, "running")
            with transaction(sessions) as s:
                placed = {i.host for i in db_events.load_instances(s, ids)}
            assert placed == {"host-a", "host-b"}  # spread over both hosts
            console = ec2.get_console_output(InstanceId=ids[0])
            assert f"instance-id: {ids[0]}" in console["Output"]
            ec2.terminate_instances(InstanceIds=ids)
            _wait(lambda: state_is("terminated"), 30, procs, "terminated")
            with transaction(sessions) as s:
                assert all(h.instance_count == 0 and h.vcpus_used == 0 for h in db_hosts.list_hosts(s))
        finally:
            results = _end(procs)
            engine.dispose()
            bus = Bus(amqp, exchange)
            bus.delete_topology(
                topics=(
                    "scheduler",
                    "network",
                    "compute.host-a",
                    "compute.host-b",
                    "network.host-a",
                    "network.host-b",
                ),
                services=("scheduler", "compute", "network"),
            )
            bus.close()
    for name, (code, out) in results.items():
        assert code == 0, f"{name}: {out}"
        assert "Traceback" not in out, f"{name}: {out}"
