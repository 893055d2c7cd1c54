"""Config drives: NoCloud content, and an ISO9660 image that others can read.

The image is read back three ways: by a small reader here (independent of the
writer's code), by pycdlib and by blkid when they are installed. That Linux
mounts it and a guest finds its instance-id is shown by the QEMU tests
(``tests/integration/libvirt``).
"""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from ocs.compute_agent import configdrive
from ocs.compute_agent.driver import GuestSpec, ImageRef, NicSpec

SECTOR = 2048


def spec(**changes: object) -> GuestSpec:
    base = GuestSpec(
        instance_id="i-0123456789abcdef0",
        vcpus=1,
        memory_mib=128,
        disk_gib=1,
        image=ImageRef("ami-0123456789abcdef0", "ab" * 32),
        hostname="ip-10-0-0-5",
        user_data=base64.b64encode(b"#!/bin/sh\necho hello\n").decode(),
        public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOCS key #1",
        nics=(NicSpec("02:00:0A:00:00:05", "br0", "10.0.0.5", mtu=9001),),
    )
    return GuestSpec(**{**base.__dict__, **changes})  # type: ignore[arg-type]


# --- an independent reader ---------------------------------------------------------------


def read_root(image: bytes, descriptor_sector: int) -> tuple[str, dict[str, bytes]]:
    """(volume label, {name: data}) of the root directory seen through one volume descriptor."""
    vd = image[descriptor_sector * SECTOR : (descriptor_sector + 1) * SECTOR]
    joliet = vd[0] == 2
    label_raw = vd[40:72]
    label = (label_raw.decode("utf-16-be") if joliet else label_raw.decode("ascii")).strip()
    root = vd[156:190]
    extent, size = struct.unpack("<I", root[2:6])[0], struct.unpack("<I", root[10:14])[0]
    directory = image[extent * SECTOR : extent * SECTOR + size]
    files: dict[str, bytes] = {}
    offset = 0
    while offset < len(directory) and directory[offset]:
        length = directory[offset]
        record = directory[offset : offset + length]
        start, data_size = struct.unpack("<I", record[2:6])[0], struct.unpack("<I", record[10:14])[0]
        assert record[6:10] == struct.pack(">I", start), "both-endian extent"
        ident = record[33 : 33 + record[32]]
        if ident not in (b"\0", b"\1"):
            name = ident.decode("utf-16-be") if joliet else ident.decode("ascii")
            files[name] = image[start * SECTOR : start * SECTOR + data_size]
        offset += length
    return label, files


# --- content ---------------------------------------------------------------------------------


def test_meta_data_has_the_instance_id_hostname_and_key() -> None:
    text = configdrive.meta_data(spec()).decode()
    assert text.splitlines() == [
        'instance-id: "i-0123456789abcdef0"',
        'local-hostname: "ip-10-0-0-5"',
        "public-keys:",
        '  - "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOCS key #1"',  # quoted: '#' would start a comment
    ]


def test_meta_data_without_hostname_or_key() -> None:
    text = configdrive.meta_data(spec(hostname="", public_key="")).decode()
    assert text == 'instance-id: "i-0123456789abcdef0"\nlocal-hostname: "i-0123456789abcdef0"\n'


def test_network_config_matches_nics_by_mac() -> None:
    text = configdrive.network_config(spec())
    assert text is not None
    assert text.decode().splitlines() == [
        "version: 2",
        "ethernets:",
        "  nic0:",
        "    match:",
        '      macaddress: "02:00:0a:00:00:05"',
        "    set-name: eth0",
        "    dhcp4: true",
        "    mtu: 9001",
    ]
    assert configdrive.network_config(spec(nics=())) is None


def test_files_of_a_guest() -> None:
    files = configdrive.nocloud_files(spec())
    assert list(files) == ["meta-data", "user-data", "network-config"]
    assert files["user-data"] == b"#!/bin/sh\necho hello\n"
    assert configdrive.nocloud_files(spec(user_data="", nics=()))["user-data"] == b""


def test_user_data_that_is_not_base64_is_refused() -> None:
    with pytest.raises(ValueError, match="base64"):
        configdrive.nocloud_files(spec(user_data="not base64!"))


# --- the image --------------------------------------------------------------------------------


def test_both_directory_trees_name_the_nocloud_files() -> None:
    files = configdrive.nocloud_files(spec())
    image = configdrive.build_iso(files)
    assert len(image) % SECTOR == 0
    assert image[16 * SECTOR : 16 * SECTOR + 6] == b"\x01CD001"
    assert image[17 * SECTOR : 17 * SECTOR + 6] == b"\x02CD001"
    assert image[17 * SECTOR + 88 : 17 * SECTOR + 91] == b"%/E", "Joliet UCS-2 level 3"
    assert image[18 * SECTOR : 18 * SECTOR + 6] == b"\xffCD001"
    label, joliet = read_root(image, 17)
    assert label == "cidata" and joliet == files
    label, primary = read_root(image, 16)
    assert label == "cidata"
    assert primary == {f"{name.upper()}.;1": data for name, data in files.items()}


def test_large_and_empty_files() -> None:
    files = {"user-data": bytes(range(256)) * 64 + b"tail", "meta-data": b"", "x": b"1"}
    _, found = read_root(configdrive.build_iso(files), 17)
    assert found == files


def test_images_are_reproducible() -> None:
    files = configdrive.nocloud_files(spec())
    assert configdrive.build_iso(files) == configdrive.build_iso(files)
    later = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert configdrive.build_iso(files, when=later) != configdrive.build_iso(files)


@pytest.mark.parametrize("name", ["", "a/b", "x" * 65, "héllo"])
def test_bad_file_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        configdrive.build_iso({name: b"x"})


def test_a_long_label_is_refused() -> None:
    with pytest.raises(ValueError):
        configdrive.build_iso({}, label="x" * 17)


def test_write_config_drive(tmp_path: Path) -> None:
    path = configdrive.write_config_drive(spec(), tmp_path / "config.iso")
    assert path.read_bytes() == configdrive.build_iso(configdrive.nocloud_files(spec()))
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["config.iso"]


def test_pycdlib_reads_the_image(tmp_path: Path) -> None:
    pycdlib = pytest.importorskip("pycdlib", reason="pycdlib is not installed")
    path = configdrive.write_config_drive(spec(), tmp_path / "config.iso")
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        for name, data in configdrive.nocloud_files(spec()).items():
            for kwargs in ({"joliet_path": f"/{name}"}, {"iso_path": f"/{name.upper()}.;1"}):
                out = tmp_path / "out"
                iso.get_file_from_iso(str(out), **kwargs)
                assert out.read_bytes() == data, kwargs
        assert iso.pvd.volume_identifier.rstrip() == b"cidata"
    finally:
        iso.close()


@pytest.mark.skipif(shutil.which("blkid") is None, reason="blkid is not installed")
def test_blkid_sees_a_cidata_iso9660(tmp_path: Path) -> None:
    path = configdrive.write_config_drive(spec(), tmp_path / "config.iso")
    done = subprocess.run(["blkid", "-p", "-o", "export", str(path)], capture_output=True, text=True)
    fields = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert fields.get("TYPE") == "iso9660" and fields.get("LABEL") == "cidata", done.stdout + done.stderr
