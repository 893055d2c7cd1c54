"""``ocs-manage image ...`` as an operator runs it, against a running all-in-one."""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
import subprocess
import sys
from pathlib import Path

import pytest

MANAGE = str(Path(sys.executable).with_name("ocs-manage"))


def manage(cloud, *args: str) -> subprocess.CompletedProcess[str]:
    """ocs-manage with the configuration file the all-in-one wrote for its state directory."""
    return subprocess.run(
        [MANAGE, "--config-file", str(cloud.aio.conf_file), *args], capture_output=True, text=True, timeout=60
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ocs-manage: error:")
    return lines[0]


@pytest.fixture
def disk(tmp_path) -> Path:
    path = tmp_path / "disk.raw"
    path.write_bytes(secrets.token_bytes(64 * 1024))
    return path


def name() -> str:
    return f"imported-{secrets.token_hex(4)}"


def test_import_then_visible_through_boto3(cloud, ec2, disk):
    image_name = name()
    result = manage(cloud, "image", "import", str(disk), "--name", image_name, "--description", "from a file")
    assert result.returncode == 0, result.stderr
    image_id = result.stdout.strip()
    assert image_id.startswith("ami-") and len(image_id) == 21
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert image["Name"] == image_name
    assert image["OwnerId"] == cloud.admin.account_id
    assert image["Description"] == "from a file"
    assert image["Public"] is False
    assert image["State"] == "available"
    listed = json.loads(manage(cloud, "image", "list", "--json").stdout)
    row = next(r for r in listed if r["image_id"] == image_id)
    assert row["checksum"] == hashlib.sha256(disk.read_bytes()).hexdigest()
    assert row["size"] == disk.stat().st_size
    assert row["disk_format"] == "raw"
    stored = cloud.state_dir / "images" / row["location"]
    assert stored.read_bytes() == disk.read_bytes()


def test_import_kernel_ramdisk_and_machine_image(cloud, tmp_path):
    other = cloud.create_account(f"ops-{secrets.token_hex(3)}")
    (tmp_path / "vmlinuz").write_bytes(b"kernel")
    (tmp_path / "initrd").write_bytes(b"ramdisk")
    qcow2 = tmp_path / "disk.qcow2"
    qcow2.write_bytes(b"QFI\xfb" + struct.pack(">IQIIQ", 3, 0, 0, 16, 3 * 1024**3) + bytes(100))

    def imported(*args: str) -> dict:
        result = manage(cloud, "image", "import", *args, "--account", other.name, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    kernel = imported(str(tmp_path / "vmlinuz"), "--name", name(), "--type", "kernel")
    ramdisk = imported(str(tmp_path / "initrd"), "--name", name(), "--type", "ramdisk")
    assert kernel["image_id"].startswith("aki-") and ramdisk["image_id"].startswith("ari-")
    machine = imported(
        str(qcow2),
        "--name",
        name(),
        "--kernel",
        kernel["image_id"],
        "--ramdisk",
        ramdisk["image_id"],
        "--public",
        "--arch",
        "x86_64",
    )
    assert machine["disk_format"] == "qcow2"
    seen = cloud.client().describe_images(ImageIds=[machine["image_id"]])["Images"][0]
    assert seen["OwnerId"] == other.account_id
    assert seen["Public"] is True
    assert seen["KernelId"] == kernel["image_id"] and seen["RamdiskId"] == ramdisk["image_id"]
    assert seen["VirtualizationType"] == "paravirtual"
    assert seen["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 3


def test_delete_removes_unused_bytes(cloud, ec2, disk):
    first = manage(cloud, "image", "import", str(disk), "--name", name()).stdout.strip()
    second = manage(cloud, "image", "import", str(disk), "--name", name()).stdout.strip()
    key = hashlib.sha256(disk.read_bytes()).hexdigest()
    stored = cloud.state_dir / "images" / key
    result = manage(cloud, "image", "delete", first)
    assert result.returncode == 0, result.stderr
    assert stored.exists(), "still used by the second image"
    assert ec2.describe_images(ImageIds=[first])["Images"] == []
    ec2.deregister_image(ImageId=second)
    assert stored.exists(), "DeregisterImage leaves the bytes"
    result = manage(cloud, "image", "delete", second)
    assert result.returncode == 0, result.stderr
    assert "removed" in result.stdout
    assert not stored.exists()
    listed = json.loads(manage(cloud, "image", "list", "--all", "--json").stdout)
    assert {r["image_id"]: r["state"] for r in listed}[first] == "deregistered"


def test_bad_input_is_one_clear_line(cloud, disk, tmp_path):
    taken = name()
    assert manage(cloud, "image", "import", str(disk), "--name", taken).returncode == 0
    line = one_error_line(manage(cloud, "image", "import", str(tmp_path / "missing.img"), "--name", name()))
    assert "missing.img" in line
    line = one_error_line(
        manage(cloud, "image", "import", str(disk), "--name", name(), "--kernel", "aki-0123456789abcdef0")
    )
    assert "aki-0123456789abcdef0" in line
    line = one_error_line(manage(cloud, "image", "import", str(disk), "--name", taken))
    assert "already in use" in line
    one_error_line(manage(cloud, "image", "import", str(disk), "--name", "x"))
    one_error_line(manage(cloud, "image", "import", str(disk), "--name", name(), "--account", "nobody-here"))
    one_error_line(manage(cloud, "image", "delete", "ami-0123456789abcdef0"))
    images = cloud.state_dir / "images"
    assert not list(images.glob(".tmp-*"))


def test_list_table(cloud):
    result = manage(cloud, "image", "list")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split()[:3] == ["IMAGE", "ID", "NAME"]
    assert any("ocs-demo" in row for row in rows)
