"""Secrets at rest: a small box around Fernet that never shows what it holds.

Secret access keys are stored encrypted with one Fernet key per cloud (every API
process of a cloud must use the same key). :func:`load_secret_box` finds the key
as ``[auth]`` documents it: ``encryption_key``, else the file
``encryption_key_file``, else ``<state_dir>/secret.key``, generated with mode 0600
on first use.

Errors are :class:`ocs.errors.ConfigError` subclasses with a sentence an operator
can act on; neither keys nor plaintexts ever appear in messages, logs or reprs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile

from cryptography.fernet import Fernet, InvalidToken

from ocs import errors

LOG = logging.getLogger(__name__)

KEY_FILE_NAME = "secret.key"


class InvalidEncryptionKey(errors.ConfigError):
    """The configured key is not a Fernet key (or its file is missing/unreadable)."""

    message = "The encryption key {source} is not a valid Fernet key."


class DecryptionError(errors.ConfigError):
    """A stored secret cannot be decrypted with the configured key."""

    message = (
        "A stored secret cannot be decrypted with the configured encryption key "
        "(key fingerprint {fingerprint}). Every process of a cloud must use the key "
        "the secrets were stored with: check [auth] encryption_key and "
        "encryption_key_file."
    )


class SecretBox:
    """Encrypts and decrypts short strings with one Fernet key.

    Build one with :meth:`from_key`, :meth:`from_file` or :func:`load_secret_box`.
    ``fingerprint`` (8 hex digits of the key's SHA-256) tells two keys apart in
    logs without revealing either.
    """

    __slots__ = ("_fernet", "fingerprint")

    def __init__(self, key: str | bytes) -> None:
        raw = key.encode("ascii", "replace") if isinstance(key, str) else key
        raw = raw.strip()
        try:
            self._fernet = Fernet(raw)
        except (ValueError, TypeError):
            raise InvalidEncryptionKey(source="given") from None
        self.fingerprint = hashlib.sha256(raw).hexdigest()[:8]

    @classmethod
    def from_key(cls, key: str | bytes) -> SecretBox:
        """A box for ``key`` (32 url-safe base64-encoded bytes)."""
        return cls(key)

    @classmethod
    def from_file(cls, path: str, *, create: bool = True) -> SecretBox:
        """A box for the key in ``path``; with ``create``, a new key is written
        there (mode 0600, parent directories 0700) when the file is missing."""
        path = os.path.abspath(os.path.expanduser(path))
        if create and not os.path.exists(path):
            _write_new_key(path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise InvalidEncryptionKey(f"The encryption key file {path} does not exist.") from None
        except OSError as exc:
            raise InvalidEncryptionKey(
                f"The encryption key file {path} cannot be read: {exc.strerror}."
            ) from None
        _warn_if_exposed(path)
        try:
            return cls(data)
        except InvalidEncryptionKey:
            raise InvalidEncryptionKey(source=f"in {path}") from None

    @staticmethod
    def generate_key() -> str:
        """A fresh random Fernet key."""
        return Fernet.generate_key().decode("ascii")

    def encrypt(self, plaintext: str) -> str:
        """The Fernet token of ``plaintext`` (ASCII, safe to store as text)."""
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The plaintext of ``token``; :class:`DecryptionError` when this key
        did not make it (or it was altered)."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError, TypeError):
            raise DecryptionError(fingerprint=self.fingerprint) from None

    def __repr__(self) -> str:
        return f"SecretBox(fingerprint={self.fingerprint!r})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a SecretBox cannot be pickled")


def _write_new_key(path: str) -> None:
    """Write a new key to ``path`` atomically; a concurrent writer's key wins."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".secret-", dir=directory)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(SecretBox.generate_key().encode("ascii") + b"\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails if another process got there first
        except FileExistsError:
            return
        LOG.info("Generated a new encryption key in %s", path)
    finally:
        os.unlink(tmp)


def _warn_if_exposed(path: str) -> None:
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        LOG.warning("Encryption key file %s is accessible to others (mode %04o); use 0600", path, mode)


def load_secret_box(encryption_key: str | None, key_file: str | None, state_dir: str) -> SecretBox:
    """The cloud's box, from ``[auth] encryption_key``, else ``encryption_key_file``,
    else ``<state_dir>/secret.key``; a missing key file is generated."""
    if encryption_key:
        try:
            return SecretBox.from_key(encryption_key)
        except InvalidEncryptionKey:
            raise InvalidEncryptionKey(source="[auth] encryption_key") from None
    path = key_file or os.path.join(os.path.expanduser(state_dir), KEY_FILE_NAME)
    return SecretBox.from_file(path, create=True)
