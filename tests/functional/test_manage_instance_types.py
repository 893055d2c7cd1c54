"""``ocs-manage instance-type`` as an operator runs it, and what EC2 clients then see."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

MANAGE = str(Path(sys.executable).with_name("ocs-manage"))


def manage(conf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MANAGE, "--config-file", str(conf), *args], capture_output=True, text=True, timeout=60
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ocs-manage: error:")
    return lines[0]


@pytest.fixture(scope="module")
def conf_file(tmp_path_factory):
    """One migrated database for the module (every test uses its own type names)."""
    tmp_path = tmp_path_factory.mktemp("manage")
    path = tmp_path / "ocs.conf"
    path.write_text(f"[DEFAULT]\nstate_dir = {tmp_path / 'state'}\n")
    synced = manage(path, "db", "sync")
    assert synced.returncode == 0, synced.stderr
    return path


def listed(conf: Path) -> dict[str, dict]:
    result = manage(conf, "instance-type", "list", "--json")
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)}


def test_a_new_database_has_the_default_set(conf_file):
    rows = listed(conf_file)
    assert {
        "t2.micro",
        "t3.nano",
        "t3.micro",
        "t3.small",
        "t3.medium",
        "t3.large",
        "t3.xlarge",
        "t3.2xlarge",
        "m5.large",
        "m5.xlarge",
        "m5.2xlarge",
        "c5.large",
        "c5.xlarge",
        "c5.2xlarge",
        "r5.large",
        "r5.xlarge",
    } <= set(rows)
    assert (rows["t3.micro"]["vcpus"], rows["t3.micro"]["memory_mib"], rows["t3.micro"]["root_disk_gib"]) == (
        2,
        1024,
        8,
    )
    assert rows["m5.2xlarge"]["architecture"] == "x86_64"
    table = manage(conf_file, "instance-type", "list")
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:2] == ["NAME", "VCPUS"]


def test_create_list_delete(conf_file):
    created = manage(
        conf_file,
        "instance-type",
        "create",
        "ocs1.large",
        "--vcpus",
        "4",
        "--memory-mib",
        "6144",
        "--root-disk-gib",
        "40",
        "--arch",
        "arm64",
        "--json",
    )
    assert created.returncode == 0, created.stderr
    out = json.loads(created.stdout)
    assert (out["name"], out["vcpus"], out["memory_mib"], out["root_disk_gib"], out["architecture"]) == (
        "ocs1.large",
        4,
        6144,
        40,
        "arm64",
    )
    assert listed(conf_file)["ocs1.large"]["vcpus"] == 4
    plain = manage(
        conf_file,
        "instance-type",
        "create",
        "ocs1.small",
        "--vcpus",
        "2",
        "--memory-mib",
        "2048",
        "--root-disk-gib",
        "10",
        "--threads-per-core",
        "2",
        "--burstable",
    )
    assert plain.returncode == 0 and "ocs1.small" in plain.stdout
    row = listed(conf_file)["ocs1.small"]
    assert row["threads_per_core"] == 2 and row["burstable"] is True
    deleted = manage(conf_file, "instance-type", "delete", "ocs1.large")
    assert deleted.returncode == 0, deleted.stderr
    assert "ocs1.large" not in listed(conf_file)


def test_duplicate_and_unknown_names(conf_file):
    line = one_error_line(
        manage(
            conf_file,
            "instance-type",
            "create",
            "t3.micro",
            "--vcpus",
            "2",
            "--memory-mib",
            "1024",
            "--root-disk-gib",
            "8",
        )
    )
    assert "t3.micro" in line and "already exists" in line
    line = one_error_line(manage(conf_file, "instance-type", "delete", "no.such"))
    assert "no.such" in line


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--vcpus", "0"),
        ("--vcpus", "-1"),
        ("--vcpus", "two"),
        ("--memory-mib", "0"),
        ("--memory-mib", "-512"),
        ("--root-disk-gib", "0"),
        ("--root-disk-gib", "1.5"),
        ("--threads-per-core", "3"),  # does not divide 4 vCPUs
    ],
)
def test_bad_numbers(conf_file, option, value):
    args = {"--vcpus": "4", "--memory-mib": "4096", "--root-disk-gib": "20"}
    args[option] = value
    flat = [part for pair in args.items() for part in pair]
    line = one_error_line(manage(conf_file, "instance-type", "create", "ocs1.bad", *flat))
    assert option in line
    assert "ocs1.bad" not in listed(conf_file)


@pytest.mark.parametrize("name", ["nodot", "UPPER.case", "a.b.c", "x" * 60 + ".large", "sp ace.x"])
def test_bad_names(conf_file, name):
    one_error_line(
        manage(
            conf_file,
            "instance-type",
            "create",
            name,
            "--vcpus",
            "1",
            "--memory-mib",
            "512",
            "--root-disk-gib",
            "8",
        )
    )


def test_operator_types_reach_ec2_clients(cloud, tmp_path):
    conf = tmp_path / "ocs.conf"
    conf.write_text(f"[DEFAULT]\nstate_dir = {cloud.state_dir}\n")
    created = manage(
        conf,
        "instance-type",
        "create",
        "ocs2.medium",
        "--vcpus",
        "2",
        "--memory-mib",
        "3072",
        "--root-disk-gib",
        "16",
    )
    assert created.returncode == 0, created.stderr
    ec2 = cloud.client()
    filters = [{"Name": "instance-type", "Values": ["ocs2.medium"]}]
    found = ec2.describe_instance_types(Filters=filters)["InstanceTypes"]
    assert [t["MemoryInfo"]["SizeInMiB"] for t in found] == [3072]
    assert manage(conf, "instance-type", "delete", "ocs2.medium").returncode == 0
    assert ec2.describe_instance_types(Filters=filters)["InstanceTypes"] == []
