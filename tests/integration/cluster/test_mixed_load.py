"""Mixed load on a real multi-process cluster (``ocs-manage devcluster``: ocs-api under
gunicorn with 2 workers, 2 schedulers, ocs-network, 3 fake hosts; RabbitMQ,
PostgreSQL): concurrent clients running, stopping, starting, terminating and
describing their own instances get no server fault, and afterwards no instance is
stuck in a transition or missing. ``python -m benchmarks.load`` is the long version
(200 clients for 60 s) whose figures the closing notes report.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.load import print_summary, run_load
from tests.framework.devcluster import dev_cluster

CONFIG = """
[api]
throttling = false

[compute]
fake_vcpus = 1024
fake_boot_delay = 0.2
fake_shutdown_delay = 0.2
"""


def test_concurrent_clients_get_no_server_fault_and_leave_nothing_stuck(tmp_path: Path) -> None:
    with dev_cluster(
        tmp_path / "dc", "--hosts", "3", "--schedulers", "2", "--api-workers", "2", config_text=CONFIG
    ) as cluster:
        cluster.manage("quota", "set", "admin", "--instances", "1000", "--vcpus", "4000")
        image = cluster.ec2().describe_images(Filters=[{"Name": "name", "Values": ["ocs-demo"]}])["Images"][
            0
        ]["ImageId"]
        result = run_load(cluster.ec2, image, clients=24, seconds=15, per_client=2, settle=60)
        summary = result.summary()
        print_summary(summary)
        if result.server_faults or result.unsettled or result.missing:
            print(cluster.log_tails(60))
        assert result.requests > 100, summary  # it did load the cluster
        assert not result.server_faults, result.server_faults[:20]
        assert result.launched and not result.missing, summary
        assert not result.unsettled, summary["unsettled"]
        for action in ("RunInstances", "StopInstances", "StartInstances", "TerminateInstances"):
            assert summary["latency_ms"].get(action, {}).get("count", 0) > 0, (action, summary)
