"""Config drives: cloud-init's NoCloud data source on a small ISO9660 image.

A config drive carries what a guest needs before it has a network: its
instance-id and hostname, the key pair's public key, user-data and a network
config. cloud-init's NoCloud data source finds it by its volume label
``cidata`` and reads the files ``meta-data``, ``user-data`` and
``network-config`` from it (``vendor-data`` is optional and not written).

The ISO9660 image is written here, in Python, so no ``genisoimage``,
``xorriso`` or ``mkfs`` needs to be installed. It has a primary volume
descriptor and a Joliet supplementary one (what ``genisoimage -J`` makes):

- Joliet names are exact (``meta-data``); Linux, blkid and cloud-init use them.
- Primary names are ``META-DATA.;1``: plain ISO9660 allows neither lowercase
  nor ``-`` in a name, but Linux without Joliet (``mount -o nojoliet``) shows
  such names as ``meta-data`` anyway (it lowercases them and drops ``.;1``),
  so even a reader that ignores Joliet sees the names cloud-init expects.

Everything is a function of its arguments (the image has a fixed timestamp
unless one is given), so the same guest always gets the same bytes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path

from ocs.compute_agent.driver import GuestSpec

SECTOR = 2048
LABEL = "cidata"
#: A config drive's files, in the order they are written.
NOCLOUD_FILES = ("meta-data", "user-data", "network-config")
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_JOLIET_ESCAPE = b"%/E"  # UCS-2 level 3
_FIRST_FREE = 23  # sectors 0-15 system area, 16 PVD, 17 SVD, 18 terminator, 19-22 path tables


# --- the NoCloud content ---------------------------------------------------------


def _yaml_str(value: str) -> str:
    """A YAML scalar for any text: JSON strings are valid YAML."""
    return json.dumps(value)


def meta_data(spec: GuestSpec) -> bytes:
    """NoCloud ``meta-data``: instance-id, local-hostname and the public key."""
    lines = [
        f"instance-id: {_yaml_str(spec.instance_id)}",
        f"local-hostname: {_yaml_str(spec.hostname or spec.instance_id)}",
    ]
    if spec.public_key:
        lines += ["public-keys:", f"  - {_yaml_str(spec.public_key.strip())}"]
    return ("\n".join(lines) + "\n").encode()


def network_config(spec: GuestSpec) -> bytes | None:
    """Netplan-style version 2 network config: DHCP on every NIC, matched by MAC.

    None when the guest has no NIC (cloud-init then falls back to its default).
    """
    if not spec.nics:
        return None
    lines = ["version: 2", "ethernets:"]
    for n, nic in enumerate(sorted(spec.nics, key=lambda x: x.device_index)):
        lines += [
            f"  nic{n}:",
            "    match:",
            f"      macaddress: {_yaml_str(nic.mac.lower())}",
            f"    set-name: eth{nic.device_index}",
            "    dhcp4: true",
        ]
        if nic.mtu and nic.mtu != 1500:
            lines.append(f"    mtu: {nic.mtu}")
    return ("\n".join(lines) + "\n").encode()


def nocloud_files(spec: GuestSpec) -> dict[str, bytes]:
    """The files of ``spec``'s config drive, by name.

    ``user-data`` is always there (empty when the instance has none: NoCloud
    wants the file). Raises ``ValueError`` if the user-data is not base64.
    """
    files = {"meta-data": meta_data(spec), "user-data": spec.user_data_bytes()}
    network = network_config(spec)
    if network is not None:
        files["network-config"] = network
    return files


# --- ISO9660 with Joliet --------------------------------------------------------------


def _both16(value: int) -> bytes:
    return struct.pack("<H", value) + struct.pack(">H", value)


def _both32(value: int) -> bytes:
    return struct.pack("<I", value) + struct.pack(">I", value)


def _sectors(size: int) -> int:
    return max(1, -(-size // SECTOR))


def _text(value: str, size: int, joliet: bool) -> bytes:
    """A fixed-size identifier field: ASCII or UCS-2BE, padded with spaces."""
    raw = value.encode("utf-16-be") if joliet else value.encode("ascii")
    pad = ("\0 " if joliet else " ").encode("latin-1")
    return (raw + pad * size)[:size]


def _dir_time(when: dt.datetime) -> bytes:
    """The 7-byte recording time of a directory record (UTC)."""
    t = when.astimezone(dt.UTC)
    return bytes([t.year - 1900, t.month, t.day, t.hour, t.minute, t.second, 0])


def _volume_time(when: dt.datetime) -> bytes:
    """The 17-byte time of a volume descriptor (UTC)."""
    t = when.astimezone(dt.UTC)
    return t.strftime("%Y%m%d%H%M%S").encode() + b"00\0"


def _record(ident: bytes, extent: int, size: int, is_dir: bool, when: dt.datetime) -> bytes:
    length = 33 + len(ident) + (1 - len(ident) % 2)
    record = (
        bytes([length, 0])
        + _both32(extent)
        + _both32(size)
        + _dir_time(when)
        + bytes([2 if is_dir else 0, 0, 0])
        + _both16(1)
        + bytes([len(ident)])
        + ident
    )
    return record.ljust(length, b"\0")


def _file_id(name: str, joliet: bool) -> bytes:
    if joliet:
        return name.encode("utf-16-be")
    return (name.upper() + ("" if "." in name else ".") + ";1").encode("ascii")


def _directory(files: list[tuple[str, int, int]], own: int, joliet: bool, when: dt.datetime) -> bytes:
    """The root directory's sector(s): ``.``, ``..`` and ``(name, extent, size)`` files."""
    size = SECTOR  # one sector holds a config drive's few records
    records = [_record(b"\0", own, size, True, when), _record(b"\1", own, size, True, when)]
    entries = sorted((_file_id(name, joliet), extent, length) for name, extent, length in files)
    records += [_record(ident, extent, length, False, when) for ident, extent, length in entries]
    data = b"".join(records)
    if len(data) > size:
        raise ValueError("too many files for a one-sector config drive directory")
    return data.ljust(size, b"\0")


def _path_table(root_extent: int, little: bool) -> bytes:
    location = struct.pack("<I" if little else ">I", root_extent)
    parent = struct.pack("<H" if little else ">H", 1)
    return bytes([1, 0]) + location + parent + b"\0\0"  # the root only, padded to even


def _descriptor(
    kind: int, label: str, total: int, tables: tuple[int, int], root: bytes, when: dt.datetime
) -> bytes:
    """A primary (1) or Joliet supplementary (2) volume descriptor."""
    joliet = kind == 2
    stamp = _volume_time(when)
    head = (
        bytes([kind])
        + b"CD001\x01\0"
        + _text("LINUX", 32, joliet)
        + _text(label, 32, joliet)
        + b"\0" * 8
        + _both32(total)
        + (_JOLIET_ESCAPE if joliet else b"").ljust(32, b"\0")
        + _both16(1)
        + _both16(1)
        + _both16(SECTOR)
        + _both32(10)  # path table size: the root's one record
        + struct.pack("<I", tables[0])
        + b"\0" * 4
        + struct.pack(">I", tables[1])
        + b"\0" * 4
        + root
        + _text("", 128, joliet)
        + _text("", 128, joliet)
        + _text("", 128, joliet)
        + _text("OCS CONFIG DRIVE", 128, joliet)
        + _text("", 37, joliet)
        + _text("", 37, joliet)
        + _text("", 37, joliet)
        + stamp
        + stamp
        + b"0" * 16
        + b"\0"
        + b"0" * 16
        + b"\0"
        + b"\x01\0"
    )
    return head.ljust(SECTOR, b"\0")


def build_iso(files: Mapping[str, bytes], label: str = LABEL, *, when: dt.datetime | None = None) -> bytes:
    """An ISO9660 image (with Joliet) holding ``files`` in its root directory.

    Names must be plain file names of at most 64 characters (Joliet's limit);
    ``label`` is the volume identifier (at most 16 characters for Joliet).
    """
    when = when or _EPOCH
    if len(label) > 16:
        raise ValueError(f"volume label {label!r} is longer than 16 characters")
    for name in files:
        if not name or "/" in name or len(name) > 64 or not name.isascii():
            raise ValueError(f"not a config drive file name: {name!r}")
    primary_root, joliet_root = _FIRST_FREE, _FIRST_FREE + 1
    extent = _FIRST_FREE + 2
    placed: list[tuple[str, int, int]] = []
    for name, data in files.items():
        placed.append((name, extent if data else 0, len(data)))
        extent += _sectors(len(data)) if data else 0
    total = extent
    p_dir = _directory(placed, primary_root, False, when)
    j_dir = _directory(placed, joliet_root, True, when)
    p_root = _record(b"\0", primary_root, SECTOR, True, when)
    j_root = _record(b"\0", joliet_root, SECTOR, True, when)
    image = bytearray(16 * SECTOR)
    image += _descriptor(1, label, total, (19, 20), p_root, when)
    image += _descriptor(2, label, total, (21, 22), j_root, when)
    image += (b"\xffCD001\x01").ljust(SECTOR, b"\0")
    for root, little in (
        (primary_root, True),
        (primary_root, False),
        (joliet_root, True),
        (joliet_root, False),
    ):
        image += _path_table(root, little).ljust(SECTOR, b"\0")
    image += p_dir + j_dir
    for data in files.values():
        if data:
            image += data.ljust(_sectors(len(data)) * SECTOR, b"\0")
    assert len(image) == total * SECTOR
    return bytes(image)


def write_config_drive(spec: GuestSpec, path: str | os.PathLike[str]) -> Path:
    """Write ``spec``'s NoCloud config drive to ``path`` (atomically); return the path.

    Raises ``ValueError`` if the user-data is not base64.
    """
    target = Path(path)
    data = build_iso(nocloud_files(spec))
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    return target
