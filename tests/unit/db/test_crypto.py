"""SecretBox and the encryption key's precedence and file handling."""

from __future__ import annotations

import logging
import os
import pickle
import stat
import threading
from pathlib import Path

import pytest

from ocs import errors
from ocs.crypto import DecryptionError, InvalidEncryptionKey, SecretBox, load_secret_box


def test_round_trip() -> None:
    box = SecretBox.from_key(SecretBox.generate_key())
    token = box.encrypt("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    assert "wJalrXUtnFEMI" not in token
    assert box.decrypt(token) == "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert box.decrypt(box.encrypt("ünïcode")) == "ünïcode"


def test_wrong_key_is_a_clear_error() -> None:
    token = SecretBox.from_key(SecretBox.generate_key()).encrypt("s3cret")
    other = SecretBox.from_key(SecretBox.generate_key())
    with pytest.raises(DecryptionError) as info:
        other.decrypt(token)
    err = info.value
    assert isinstance(err, errors.OcsError)
    assert "encryption_key" in str(err) and other.fingerprint in str(err)
    assert err.__cause__ is None and err.__suppress_context__  # no cryptography traceback


@pytest.mark.parametrize("token", ["", "garbage", "gAAAAA" + "x" * 60, "ünïcode"])
def test_garbage_tokens_are_a_clear_error(token: str) -> None:
    with pytest.raises(DecryptionError):
        SecretBox.from_key(SecretBox.generate_key()).decrypt(token)


@pytest.mark.parametrize("key", ["", "short", "x" * 44, "é" * 44])
def test_invalid_key(key: str) -> None:
    with pytest.raises(InvalidEncryptionKey, match="not a valid Fernet key") as info:
        SecretBox.from_key(key)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_repr_never_shows_the_key() -> None:
    key = SecretBox.generate_key()
    box = SecretBox.from_key(key)
    assert key not in repr(box) and key not in str(box)
    assert box.fingerprint in repr(box)
    with pytest.raises(TypeError):
        pickle.dumps(box)


def test_key_file_is_created_0600_with_parents(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "secret.key"
    box = SecretBox.from_file(str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert os.listdir(path.parent) == ["secret.key"]  # no temporary file left behind
    again = SecretBox.from_file(str(path))
    assert again.decrypt(box.encrypt("x")) == "x"
    assert again.fingerprint == box.fingerprint


def test_key_file_is_created_0600_under_a_lax_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "secret.key"
        SecretBox.from_file(str(path))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_concurrent_creation_agrees_on_one_key(tmp_path: Path) -> None:
    path = str(tmp_path / "secret.key")
    boxes: list[SecretBox] = []
    barrier = threading.Barrier(8)

    def load() -> None:
        barrier.wait()
        boxes.append(SecretBox.from_file(path))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(boxes) == 8 and len({b.fingerprint for b in boxes}) == 1


def test_missing_key_file_without_create(tmp_path: Path) -> None:
    path = tmp_path / "absent.key"
    with pytest.raises(InvalidEncryptionKey, match="absent.key does not exist"):
        SecretBox.from_file(str(path), create=False)
    assert not path.exists()


def test_bad_key_file_names_the_file_not_its_content(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text("not-a-key-but-maybe-something-private\n")
    path.chmod(0o600)
    with pytest.raises(InvalidEncryptionKey) as info:
        SecretBox.from_file(str(path))
    assert str(path) in str(info.value)
    assert "something-private" not in str(info.value)


def test_exposed_key_file_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "secret.key"
    path.write_text(SecretBox.generate_key())
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="ocs.crypto"):
        SecretBox.from_file(str(path))
    assert "accessible to others" in caplog.text
    assert path.read_text() not in caplog.text


def test_precedence_key_then_file_then_state_dir(tmp_path: Path) -> None:
    key = SecretBox.generate_key()
    key_file = tmp_path / "configured.key"
    key_file.write_text(SecretBox.generate_key())
    state = tmp_path / "state"

    by_key = load_secret_box(key, str(key_file), str(state))
    assert by_key.fingerprint == SecretBox.from_key(key).fingerprint

    by_file = load_secret_box(None, str(key_file), str(state))
    assert by_file.fingerprint == SecretBox.from_file(str(key_file)).fingerprint

    by_state = load_secret_box("", None, str(state))
    assert (state / "secret.key").exists()
    assert by_state.fingerprint == SecretBox.from_file(str(state / "secret.key")).fingerprint
    assert len({by_key.fingerprint, by_file.fingerprint, by_state.fingerprint}) == 3


def test_configured_key_file_is_generated_when_missing(tmp_path: Path) -> None:
    box = load_secret_box(None, str(tmp_path / "etc" / "ocs.key"), str(tmp_path / "state"))
    assert SecretBox.from_file(str(tmp_path / "etc" / "ocs.key")).fingerprint == box.fingerprint
    assert not (tmp_path / "state").exists()


def test_invalid_configured_key_names_the_option() -> None:
    with pytest.raises(InvalidEncryptionKey, match=r"\[auth\] encryption_key"):
        load_secret_box("nope", None, "/nonexistent")
