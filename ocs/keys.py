"""SSH key pairs as EC2 makes, reads and fingerprints them (a pure core: no I/O).

Making a key pair (CreateKeyPair):

* ``rsa`` is a 2048-bit key with exponent 65537, returned as an unencrypted PKCS#1
  PEM (``-----BEGIN RSA PRIVATE KEY-----``), as EC2 returns it;
* ``ed25519`` is returned in the OpenSSH private key format
  (``-----BEGIN OPENSSH PRIVATE KEY-----``), as EC2 returns it (ED25519 has no
  PKCS#1 form);
* with ``KeyFormat=ppk`` either key is returned as an unencrypted PuTTY private
  key file, version 2 (``PuTTY-User-Key-File-2``), which every PuTTY since 0.52
  reads (version 3 needs PuTTY 0.75 or later).

The private key always ends with a newline: OpenSSH refuses an OpenSSH-format key
without one ("error in libcrypto").

Fingerprints, as the EC2 user guide ("Verify the fingerprint of your key pair")
and the ``KeyPairInfo`` reference compute them:

=========  ============================================  ==========================
key type   created by EC2                                imported
=========  ============================================  ==========================
rsa        SHA-1 of the DER PKCS#8 private key, hex      MD5 of the DER public key
           pairs joined by ``:``                          (SubjectPublicKeyInfo),
                                                          hex pairs joined by ``:``
ed25519    base64 (with ``=`` padding) of the SHA-256    the same
           of the public key's SSH wire blob
=========  ============================================  ==========================

The ED25519 form is what ``ssh-keygen -l`` prints after ``SHA256:``, plus the
padding EC2 appends ("Amazon EC2 might append padding to the fingerprint with =
characters. Other tools, such as ssh-keygen, might omit this padding").

Reading a public key (ImportKeyPair) accepts what EC2 documents: the OpenSSH
format (``ssh-rsa AAAA... comment``, as in ``authorized_keys``), the SSH2 format of
RFC 4716 (``---- BEGIN SSH2 PUBLIC KEY ----``) and, for RSA, the base64 DER of the
public key, bare or PEM-armoured (``-----BEGIN PUBLIC KEY-----`` or ``-----BEGIN RSA
PUBLIC KEY-----``). Only RSA (1024 to 4096 bits) and ED25519 keys are accepted; DSA,
ECDSA and security-key types are refused like malformed material, with EC2's
``InvalidKey.Format``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from ocs import errors

RSA: Final = "rsa"
ED25519: Final = "ed25519"
KEY_TYPES: Final = (RSA, ED25519)
PEM: Final = "pem"
PPK: Final = "ppk"
KEY_FORMATS: Final = (PEM, PPK)

RSA_BITS: Final = 2048
"""Size of the RSA keys CreateKeyPair makes (EC2: "2048-bit SSH-2 RSA keys")."""
RSA_IMPORT_BITS: Final = (1024, 4096)
"""Smallest and largest RSA modulus ImportKeyPair takes (EC2: 1024, 2048 and 4096)."""

_SSH_NAMES: Final = {"ssh-rsa": RSA, "ssh-ed25519": ED25519}
FORMAT_MESSAGE: Final = "Key is not in valid OpenSSH public key format"

PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def invalid_format(message: str = FORMAT_MESSAGE) -> errors.OcsError:
    """EC2's error for public key material it cannot use."""
    return errors.InvalidParameterValue(message, code="InvalidKey.Format")


@dataclass(frozen=True)
class ImportedKey:
    """A public key read from ImportKeyPair's material."""

    key_type: str  # rsa | ed25519
    public_key: PublicKey
    comment: str  # the comment of the OpenSSH line or of the RFC 4716 file, else ""

    @property
    def fingerprint(self) -> str:
        return imported_fingerprint(self.public_key)

    def openssh(self, comment: str) -> str:
        """``ssh-rsa AAAA... comment``: the key as one ``authorized_keys`` line."""
        return openssh_public_key(self.public_key, self.comment or comment)


@dataclass(frozen=True)
class CreatedKey:
    """A key pair made for CreateKeyPair: everything EC2 answers and stores."""

    key_type: str
    key_material: str  # the private key, unencrypted, in the requested format
    fingerprint: str
    public_key: str  # OpenSSH ``authorized_keys`` line


# --- fingerprints ----------------------------------------------------------------------


def _colon_hex(digest: bytes) -> str:
    return ":".join(f"{b:02x}" for b in digest)


def _sha256_b64(public_key: ed25519.Ed25519PublicKey) -> str:
    return base64.b64encode(hashlib.sha256(ssh_blob(public_key)).digest()).decode("ascii")


def created_fingerprint(private_key: PrivateKey) -> str:
    """The fingerprint EC2 shows for a key pair it created."""
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return _sha256_b64(private_key.public_key())
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return _colon_hex(hashlib.sha1(der).digest())  # EC2's definition, not for security


def imported_fingerprint(public_key: PublicKey) -> str:
    """The fingerprint EC2 shows for an imported public key."""
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return _sha256_b64(public_key)
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _colon_hex(hashlib.md5(der).digest())  # EC2's definition, not for security


# --- SSH wire format -------------------------------------------------------------------------


def ssh_blob(public_key: PublicKey) -> bytes:
    """The public key in the SSH wire format (RFC 4253 section 6.6)."""
    line = public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return base64.b64decode(line.split()[1])


def openssh_public_key(public_key: PublicKey, comment: str = "") -> str:
    """``<type> <base64 blob>[ <comment>]``."""
    line = public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    text = line.decode("ascii")
    comment = " ".join(comment.split())
    return f"{text} {comment}" if comment else text


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _ssh_mpint(value: int) -> bytes:
    """An SSH mpint (RFC 4251): big-endian two's complement, minimal length."""
    if value == 0:
        return _ssh_string(b"")
    raw = value.to_bytes((value.bit_length() + 8) // 8, "big")
    return _ssh_string(raw)


def _blob_key_type(blob: bytes) -> str:
    """The key type name at the head of an SSH wire blob."""
    if len(blob) < 4:
        raise invalid_format()
    (length,) = struct.unpack(">I", blob[:4])
    if length > 64 or len(blob) < 4 + length:
        raise invalid_format()
    return blob[4 : 4 + length].decode("ascii", errors="replace")


# --- reading public keys -----------------------------------------------------------------------


def parse_public_key(material: bytes | str) -> ImportedKey:
    """The RSA or ED25519 public key in ``material``; ``InvalidKey.Format`` otherwise."""
    if isinstance(material, bytes):
        try:
            text = material.decode("ascii")
        except UnicodeDecodeError:
            raise invalid_format() from None
    else:
        text = material
    text = text.strip()
    if not text:
        raise invalid_format()
    if text.startswith("---- BEGIN SSH2 PUBLIC KEY ----"):
        key = _parse_rfc4716(text)
    elif text.startswith("-----BEGIN "):
        key = _parse_pem(text)
    elif text.split(None, 1)[0] in _SSH_NAMES or text.split(None, 1)[0].startswith(("ssh-", "ecdsa-", "sk-")):
        key = _parse_openssh(text)
    else:
        key = _parse_der(text)
    _check_size(key.public_key)
    return key


def _from_blob(blob: bytes, comment: str) -> ImportedKey:
    name = _blob_key_type(blob)
    if name not in _SSH_NAMES:
        raise invalid_format()
    line = name.encode("ascii") + b" " + base64.b64encode(blob)
    try:
        key = serialization.load_ssh_public_key(line)
    except (ValueError, UnsupportedAlgorithm):
        raise invalid_format() from None
    if not isinstance(key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise invalid_format()
    if ssh_blob(key) != blob:  # trailing garbage or a non-canonical encoding
        raise invalid_format()
    return ImportedKey(_SSH_NAMES[name], key, comment)


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise invalid_format() from None


def _parse_openssh(text: str) -> ImportedKey:
    """``type base64 [comment]`` on one line (leading options are not accepted)."""
    if "\n" in text or "\r" in text:
        raise invalid_format()
    parts = text.split(None, 2)
    if len(parts) < 2 or parts[0] not in _SSH_NAMES:
        raise invalid_format()
    blob = _b64(parts[1])
    if _blob_key_type(blob) != parts[0]:
        raise invalid_format()
    return _from_blob(blob, parts[2].strip() if len(parts) > 2 else "")


_RFC4716_HEADER = re.compile(r"^([\x21-\x39\x3b-\x7e]{1,64}):\s?(.*)$")


def _parse_rfc4716(text: str) -> ImportedKey:
    """RFC 4716: BEGIN line, headers (``Tag: value``, ``\\`` continues a line), base64 body, END line."""
    lines = [line.rstrip("\r") for line in text.splitlines()]
    if lines[-1].strip() != "---- END SSH2 PUBLIC KEY ----":
        raise invalid_format()
    body = lines[1:-1]
    headers: dict[str, str] = {}
    i = 0
    while i < len(body) and ":" in body[i]:
        line = body[i]
        while line.endswith("\\") and i + 1 < len(body):
            i += 1
            line = line[:-1] + body[i]
        match = _RFC4716_HEADER.match(line)
        if match is None:
            raise invalid_format()
        headers[match.group(1).lower()] = match.group(2)
        i += 1
    comment = headers.get("comment", "").strip()
    if len(comment) >= 2 and comment[0] == comment[-1] == '"':
        comment = comment[1:-1]
    return _from_blob(_b64("".join(body[i:])), comment)


def _rsa_only(key: object) -> ImportedKey:
    if not isinstance(key, rsa.RSAPublicKey):
        raise invalid_format()
    return ImportedKey(RSA, key, "")


def _parse_pem(text: str) -> ImportedKey:
    try:
        key = serialization.load_pem_public_key(text.encode("ascii") + b"\n")
    except (ValueError, UnsupportedAlgorithm):
        raise invalid_format() from None
    return _rsa_only(key)


def _parse_der(text: str) -> ImportedKey:
    der = _b64(text)
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm):
        raise invalid_format() from None
    return _rsa_only(key)


def _check_size(key: PublicKey) -> None:
    if isinstance(key, rsa.RSAPublicKey):
        low, high = RSA_IMPORT_BITS
        if not low <= key.key_size <= high:
            raise invalid_format(
                f"{FORMAT_MESSAGE}: RSA keys must be {low} to {high} bits long, this one has {key.key_size}."
            )


# --- making key pairs ------------------------------------------------------------------------


def generate(key_type: str = RSA, key_format: str = PEM, comment: str = "") -> CreatedKey:
    """A fresh key pair of ``key_type``; the private key in ``key_format``.

    ``comment`` (the key name) goes into the public key line and the PPK file.
    """
    private: PrivateKey
    if key_type == RSA:
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    elif key_type == ED25519:
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        raise errors.InvalidParameterValue(
            value=key_type, name="KeyType", reason="Valid values: rsa, ed25519."
        )
    if key_format == PEM:
        material = private_pem(private)
    elif key_format == PPK:
        material = to_ppk(private, comment)
    else:
        raise errors.InvalidParameterValue(
            value=key_format, name="KeyFormat", reason="Valid values: pem, ppk."
        )
    return CreatedKey(
        key_type=key_type,
        key_material=material,
        fingerprint=created_fingerprint(private),
        public_key=openssh_public_key(private.public_key(), comment),
    )


def private_pem(private: PrivateKey) -> str:
    """PKCS#1 PEM for RSA, the OpenSSH format for ED25519; unencrypted."""
    fmt = (
        serialization.PrivateFormat.TraditionalOpenSSL
        if isinstance(private, rsa.RSAPrivateKey)
        else serialization.PrivateFormat.OpenSSH
    )
    pem = private.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
    return pem.decode("ascii")


# --- PuTTY ----------------------------------------------------------------------------------------

_PPK_MAC_KEY_PREFIX = b"putty-private-key-file-mac-key"


def _ppk_private_blob(private: PrivateKey) -> bytes:
    if isinstance(private, rsa.RSAPrivateKey):
        n = private.private_numbers()
        # PuTTY's order: d, p, q, iqmp = q^-1 mod p (cryptography's iqmp is exactly that).
        return b"".join(_ssh_mpint(v) for v in (n.d, n.p, n.q, n.iqmp))
    seed = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    # PuTTY keeps the ED25519 secret as an unsigned little-endian integer, in the fewest bytes.
    return _ssh_string(seed.rstrip(b"\x00"))


def _lines(data: bytes) -> list[str]:
    text = base64.b64encode(data).decode("ascii")
    return [text[i : i + 64] for i in range(0, len(text), 64)]


def to_ppk(private: PrivateKey, comment: str = "") -> str:
    """An unencrypted ``PuTTY-User-Key-File-2`` file for ``private``."""
    algorithm = "ssh-rsa" if isinstance(private, rsa.RSAPrivateKey) else "ssh-ed25519"
    encryption = "none"
    comment = " ".join(comment.split())
    public_blob = ssh_blob(private.public_key())
    private_blob = _ppk_private_blob(private)
    mac_data = b"".join(
        _ssh_string(part)
        for part in (
            algorithm.encode(),
            encryption.encode(),
            comment.encode("utf-8"),
            public_blob,
            private_blob,
        )
    )
    mac_key = hashlib.sha1(_PPK_MAC_KEY_PREFIX).digest()  # the PPK v2 format's definition
    mac = hmac.new(mac_key, mac_data, hashlib.sha1).hexdigest()
    public_lines, private_lines = _lines(public_blob), _lines(private_blob)
    out = [
        f"PuTTY-User-Key-File-2: {algorithm}",
        f"Encryption: {encryption}",
        f"Comment: {comment}",
        f"Public-Lines: {len(public_lines)}",
        *public_lines,
        f"Private-Lines: {len(private_lines)}",
        *private_lines,
        f"Private-MAC: {mac}",
    ]
    return "\n".join(out) + "\n"


# --- key names ----------------------------------------------------------------------------------

MAX_KEY_NAME: Final = 255


def validate_key_name(name: object, parameter: str = "KeyName") -> str:
    """``name`` if EC2 takes it as a key pair name: 1 to 255 ASCII characters, no
    leading or trailing spaces (EC2 user guide, "Create a key pair")."""
    if name is None or name == "":
        raise errors.MissingParameter(name=parameter)
    if not isinstance(name, str):
        raise errors.InvalidParameterValue(value=name, name=parameter, reason="It must be a string.")
    if len(name) > MAX_KEY_NAME:
        reason = f"Length exceeds maximum of {MAX_KEY_NAME} characters."
    elif not name.isascii() or not name.isprintable():
        reason = "Only printable ASCII characters are allowed."
    elif name != name.strip():
        reason = "It cannot have leading or trailing spaces."
    else:
        return name
    shown = name if len(name) <= 64 else name[:64] + "..."
    raise errors.InvalidParameterValue(value=shown, name=parameter, reason=reason)
