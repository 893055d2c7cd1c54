"""The service processes run on their own and answer on RabbitMQ; SIGTERM stops them."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from ocs import errors
from ocs.bus import Bus
from ocs.compute_agent.rpcapi import ComputeApi
from ocs.network.rpcapi import NetworkApi
from ocs.scheduler.rpcapi import SchedulerApi
from ocs.service import StatusRequest
from tests.services import require_rabbitmq

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
    bus = Bus(url, exchange, rpc_timeout=20.0)
    yield path, bus
    bus.delete_topology(topics=("scheduler", "network", "compute.host-a"), services=("scheduler", "network", "compute"))
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
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
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
