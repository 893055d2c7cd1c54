"""Cephx keys for Ceph RBD volumes: read from this host's keyring, kept in libvirt secrets.

QEMU authenticates to Ceph with a key it gets from libvirt: the volume's
``<auth username='ocs'><secret type='ceph' uuid='…'/></auth>`` names a libvirt
secret, which :func:`ensure_secret` defines (idempotently) before a guest with
such a volume starts or the volume is hot-plugged. The UUID travels with the
volume's export (the volume service derives it from the cluster's fsid and the
user, so every host agrees on it); the key never does: it comes from this
host's keyring (``[libvirt] rbd_keyring``), as with any Ceph client, and is
stored ``private`` (libvirt never hands it out again) and persistent (guests
restarted by libvirt alone still find it). Keys are never logged.
"""

from __future__ import annotations

import base64
import binascii
import threading
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

DEFAULT_KEYRINGS = ("/etc/ceph/ceph.client.{user}.keyring", "/etc/ceph/keyring")


class KeyMissing(Exception):
    """No key for the Ceph user in the keyrings this host has."""


def keyring_key(text: str, entity: str) -> str | None:
    """The ``key`` of ``[entity]`` (``client.ocs``) in a Ceph keyring's text, or None."""
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section == entity:
            name, sep, value = line.partition("=")
            if sep and name.strip() == "key":
                return value.strip()
    return None


def find_key(user: str, keyring: str = "") -> str:
    """``client.<user>``'s cephx key from ``keyring`` (or Ceph's default keyrings); KeyMissing."""
    paths = [keyring.format(user=user)] if keyring else [p.format(user=user) for p in DEFAULT_KEYRINGS]
    for path in paths:
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        key = keyring_key(text, f"client.{user}")
        if key:
            try:
                base64.b64decode(key, validate=True)
            except binascii.Error:
                raise KeyMissing(f"the key of client.{user} in {path} is not base64") from None
            return key
    raise KeyMissing(
        f"no key for client.{user} in {' or '.join(paths)} on this host (set [libvirt] rbd_keyring)"
    )


def secret_xml(uuid: str, user: str) -> str:
    """A persistent, private libvirt secret of usage ``ceph`` for ``client.<user>``."""
    return (
        "<secret ephemeral='no' private='yes'>"
        f"<uuid>{escape(uuid)}</uuid>"
        f"<description>OCS: cephx key of client.{escape(user)}</description>"
        f"<usage type='ceph'><name>ocs client.{escape(user)} {escape(uuid)}</name></usage>"
        "</secret>"
    )


_LOCK = threading.Lock()


def ensure_secret(virconn: Any, uuid: str, user: str, key: str) -> None:
    """Define the secret ``uuid`` holding ``key`` (defining it again changes nothing else)."""
    with _LOCK:  # one definition at a time: two attaches of one user race otherwise
        secret = virconn.secretDefineXML(secret_xml(uuid, user), 0)
        secret.setValue(base64.b64decode(key), 0)
