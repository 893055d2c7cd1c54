"""The agent's cephx keys: found in the host's keyring, never in a message."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ocs.compute_agent.libvirt.ceph_secrets import KeyMissing, find_key, keyring_key, secret_xml

KEY = "AQBVbBNrcVXYGRAAn14FpfwyA1jmouabkqLNkg=="
KEYRING = f"""[client.admin]
\tkey = AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==
\tcaps mon = "allow *"
[client.ocs]
\tkey = {KEY}
\tcaps mon = "profile rbd"
\tcaps osd = "profile rbd pool=ocs"
"""


def test_the_key_of_the_named_client_only() -> None:
    assert keyring_key(KEYRING, "client.ocs") == KEY
    assert keyring_key(KEYRING, "client.other") is None
    assert keyring_key("", "client.ocs") is None


def test_find_key_in_the_configured_keyring(tmp_path: Path) -> None:
    keyring = tmp_path / "ceph.keyring"
    keyring.write_text(KEYRING)
    assert find_key("ocs", str(keyring)) == KEY
    per_user = tmp_path / "ceph.client.{user}.keyring"
    (tmp_path / "ceph.client.ocs.keyring").write_text(KEYRING)
    assert find_key("ocs", str(per_user)) == KEY
    with pytest.raises(KeyMissing, match="no key for client.nobody"):
        find_key("nobody", str(keyring))
    with pytest.raises(KeyMissing, match="rbd_keyring"):
        find_key("ocs", str(tmp_path / "missing.keyring"))
    keyring.write_text("[client.ocs]\n\tkey = not*base64\n")
    with pytest.raises(KeyMissing, match="not base64") as bad:
        find_key("ocs", str(keyring))
    assert "not*base64" not in str(bad.value)  # a key is never repeated in an error


def test_the_secret_is_private_persistent_and_of_usage_ceph() -> None:
    root = ET.fromstring(secret_xml("5e3c0d55-0c5a-4e0e-9c1c-9a7d6a3a2b11", "ocs"))
    assert (root.get("ephemeral"), root.get("private")) == ("no", "yes")
    assert root.findtext("uuid") == "5e3c0d55-0c5a-4e0e-9c1c-9a7d6a3a2b11"
    usage = root.find("usage")
    assert usage is not None and usage.get("type") == "ceph"
    assert usage.findtext("name") == "ocs client.ocs 5e3c0d55-0c5a-4e0e-9c1c-9a7d6a3a2b11"
