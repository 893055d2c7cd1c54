"""ocs-manage as an operator runs it: a subprocess, one clear line on bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocs.allinone import read_ocsrc

MANAGE = str(Path(sys.executable).with_name("ocs-manage"))


def manage(conf: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MANAGE, "--config-file", str(conf), *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def conf_file(tmp_path):
    path = tmp_path / "ocs.conf"
    path.write_text(f"[DEFAULT]\nstate_dir = {tmp_path / 'state'}\n")
    assert manage(path, "db", "sync").returncode == 0
    return path


def test_db_sync_is_safe_twice(conf_file):
    again = manage(conf_file, "db", "sync")
    assert again.returncode == 0, again.stderr
    version = manage(conf_file, "db", "version")
    assert "head" in version.stdout


def test_account_create_json_and_list(conf_file):
    created = manage(conf_file, "account", "create", "team-a", "--json")
    assert created.returncode == 0, created.stderr
    out = json.loads(created.stdout)
    assert out["access_key_id"].startswith("AKIA") and len(out["access_key_id"]) == 20
    assert len(out["secret_access_key"]) == 40
    assert len(out["account_id"]) == 12 and out["account_id"].isdigit()
    listed = json.loads(manage(conf_file, "account", "list", "--json").stdout)
    assert [a["name"] for a in listed] == ["team-a"]
    keys = manage(conf_file, "access-key", "list", "--account", "team-a", "--json")
    assert out["access_key_id"] in keys.stdout
    assert out["secret_access_key"] not in keys.stdout


def test_access_key_create_and_revoke(conf_file):
    manage(conf_file, "account", "create", "team-b")
    key = json.loads(manage(conf_file, "access-key", "create", "team-b", "--json").stdout)
    revoked = manage(conf_file, "access-key", "revoke", key["access_key_id"])
    assert revoked.returncode == 0, revoked.stderr
    keys = json.loads(manage(conf_file, "access-key", "list", "--json").stdout)
    status = {k["access_key_id"]: k["status"] for k in keys}
    assert status[key["access_key_id"]] == "Inactive"


@pytest.mark.parametrize(
    "args",
    [
        ("account", "create", "dup"),  # second creation of the same name
        ("access-key", "create", "no-such-account"),
        ("access-key", "revoke", "AKIAAAAAAAAAAAAAAAAA"),
    ],
)
def test_bad_input_is_one_clear_line(conf_file, args):
    manage(conf_file, "account", "create", "dup")
    result = manage(conf_file, *args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ocs-manage: error:")


def test_unreachable_database_is_one_clear_line(tmp_path):
    path = tmp_path / "ocs.conf"
    path.write_text("[database]\nconnection = postgresql+psycopg2://nobody@127.0.0.1:1/none\n")
    result = manage(path, "account", "list")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "database" in result.stderr


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"all-in-one exited early: {proc.stdout.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.1)


def start_all_in_one(state: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [MANAGE, "all-in-one", "--state-dir", str(state), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
    )


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    return out


def test_all_in_one_end_to_end(tmp_path):
    """The README's flow: start it, source ocsrc, use aws-cli; restart keeps everything."""
    state = tmp_path / "state"
    proc = start_all_in_one(state)
    try:
        _wait_for(state / "ocsrc", proc)
        assert oct((state / "ocsrc").stat().st_mode & 0o777) == "0o600"
        aws = Path(sys.executable).with_name("aws")
        shell = subprocess.run(
            ["bash", "-c", f"source {state}/ocsrc && {aws} ec2 describe-regions --output json"],
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        )
        assert shell.returncode == 0, shell.stderr
        assert json.loads(shell.stdout)["Regions"][0]["RegionName"] == "us-east-1"
        listed = manage(state / "ocs.conf", "account", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        admin_id = json.loads(listed.stdout)[0]["account_id"]
        first = read_ocsrc(state / "ocsrc")
    finally:
        out = stop(proc)
    assert "ocsrc" in out and "running at" in out
    assert first["AWS_SECRET_ACCESS_KEY"] not in out, "the secret access key must never be logged"

    proc = start_all_in_one(state)
    try:
        deadline = time.monotonic() + 60
        while "running at" not in (line := proc.stdout.readline()):
            assert time.monotonic() < deadline and line, "all-in-one did not start again"
        assert read_ocsrc(state / "ocsrc")["AWS_ACCESS_KEY_ID"] == first["AWS_ACCESS_KEY_ID"]
        listed = json.loads(manage(state / "ocs.conf", "account", "list", "--json").stdout)
        assert [a["account_id"] for a in listed] == [admin_id]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(read_ocsrc(state / "ocsrc"))
        assert env["AWS_ENDPOINT_URL"] == line.split("running at", 1)[1].strip()
        again = subprocess.run(
            [str(Path(sys.executable).with_name("aws")), "ec2", "describe-regions", "--output", "json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert again.returncode == 0, again.stderr
    finally:
        stop(proc)


def test_config_file_from_the_environment(conf_file):
    created = subprocess.run(
        [MANAGE, "account", "create", "from-env", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "OCS_CONFIG_FILE": str(conf_file)},
    )
    assert created.returncode == 0, created.stderr
    listed = json.loads(manage(conf_file, "account", "list", "--json").stdout)
    assert [a["name"] for a in listed] == ["from-env"]


def test_all_in_one_with_libvirt_explains_how_to_get_a_bootable_image(tmp_path):
    from ocs.allinone import AllInOne
    from ocs.conf import make_conf

    conf = make_conf()
    conf([])
    conf.set_override("state_dir", str(tmp_path / "state"))
    conf.set_override("listen", "127.0.0.1:0", group="api")
    cloud = AllInOne(conf)
    cloud.start()  # the fake driver; only the image check matters here
    try:
        assert cloud.has_bootable_image() is False  # the demo image is a blank disk
    finally:
        cloud.stop()
