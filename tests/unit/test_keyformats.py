"""ocs.keys: key pairs made, read and fingerprinted as EC2 does, checked against
independent tools (openssl, ssh-keygen, puttygen) where they are installed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ocs import errors, keys

OPENSSL = shutil.which("openssl")
SSH_KEYGEN = shutil.which("ssh-keygen")
PUTTYGEN = shutil.which("puttygen")

needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
needs_ssh_keygen = pytest.mark.skipif(SSH_KEYGEN is None, reason="ssh-keygen is not installed")
needs_puttygen = pytest.mark.skipif(PUTTYGEN is None, reason="puttygen is not installed")


def run(*args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(args, input=stdin, capture_output=True, check=True, timeout=60).stdout


def openssl_digest(algorithm: str, data: bytes) -> str:
    """``openssl <alg> -c`` output without its ``(stdin)= `` prefix."""
    out = run(str(OPENSSL), algorithm, "-c", stdin=data).decode().strip()
    return out.split("= ", 1)[1]


def ssh_keygen_key(tmp_path: Path, key_type: str, bits: int | None = None) -> Path:
    path = tmp_path / f"id_{key_type}"
    args = [str(SSH_KEYGEN), "-q", "-t", key_type, "-N", "", "-C", "me@laptop", "-f", str(path)]
    if bits:
        args += ["-b", str(bits)]
    run(*args)
    return path


# --- fingerprints of keys EC2 makes -------------------------------------------------------


@needs_openssl
def test_created_rsa_fingerprint_is_openssl_pkcs8_sha1(tmp_path):
    made = keys.generate(keys.RSA, keys.PEM, "k")
    pem = tmp_path / "k.pem"
    pem.write_text(made.key_material)
    # The EC2 user guide's command for keys EC2 created.
    der = run(
        str(OPENSSL), "pkcs8", "-in", str(pem), "-inform", "PEM", "-outform", "DER", "-topk8", "-nocrypt"
    )
    assert made.fingerprint == openssl_digest("sha1", der)
    assert made.fingerprint == ":".join(f"{b:02x}" for b in hashlib.sha1(der).digest())
    assert len(made.fingerprint) == 59


@needs_ssh_keygen
def test_created_ed25519_fingerprint_is_ssh_keygen_sha256_with_padding(tmp_path):
    made = keys.generate(keys.ED25519, keys.PEM, "k")
    pem = tmp_path / "k.pem"
    pem.write_text(made.key_material)
    pem.chmod(0o600)
    out = run(str(SSH_KEYGEN), "-l", "-E", "sha256", "-f", str(pem)).decode()
    bits, fingerprint = out.split()[:2]
    assert bits == "256"
    assert fingerprint.startswith("SHA256:")
    assert made.fingerprint == fingerprint.removeprefix("SHA256:") + "="
    assert len(made.fingerprint) == 44


# --- the private keys returned ----------------------------------------------------------------


def test_rsa_private_key_is_pkcs1_pem_of_2048_bits_matching_the_public_key():
    made = keys.generate(keys.RSA, keys.PEM, "my-key")
    assert made.key_material.startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    assert made.key_material.endswith("-----END RSA PRIVATE KEY-----\n")
    private = serialization.load_pem_private_key(made.key_material.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    assert private.public_key().public_numbers().e == 65537
    assert made.public_key == keys.openssh_public_key(private.public_key(), "my-key")
    assert made.public_key.startswith("ssh-rsa AAAAB3NzaC1yc2E") and made.public_key.endswith(" my-key")
    assert made.fingerprint == keys.created_fingerprint(private)


def test_ed25519_private_key_is_openssh_format_matching_the_public_key():
    made = keys.generate(keys.ED25519, keys.PEM, "my-key")
    assert made.key_material.startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    assert made.key_material.endswith("-----END OPENSSH PRIVATE KEY-----\n")
    private = serialization.load_ssh_private_key(made.key_material.encode(), password=None)
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    assert made.public_key == keys.openssh_public_key(private.public_key(), "my-key")
    digest = hashlib.sha256(keys.ssh_blob(private.public_key())).digest()
    assert made.fingerprint == base64.b64encode(digest).decode()


def test_every_new_key_is_different():
    assert len({keys.generate(keys.ED25519).fingerprint for _ in range(5)}) == 5


@needs_ssh_keygen
@pytest.mark.parametrize("key_type", [keys.RSA, keys.ED25519])
def test_ssh_keygen_reads_the_private_key(tmp_path, key_type):
    made = keys.generate(key_type, keys.PEM, "k")
    pem = tmp_path / "k.pem"
    pem.write_text(made.key_material)
    pem.chmod(0o600)
    derived = run(str(SSH_KEYGEN), "-y", "-f", str(pem)).decode().split()[:2]
    assert derived == made.public_key.split()[:2]


# --- PuTTY ------------------------------------------------------------------------------------


def _ppk_fields(text: str) -> dict[str, str]:
    return {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in text.splitlines() if ": " in line}


@pytest.mark.parametrize("key_type", [keys.RSA, keys.ED25519])
def test_ppk_v2_layout_and_mac(key_type):
    made = keys.generate(key_type, keys.PPK, "my key")
    lines = made.key_material.splitlines()
    algorithm = "ssh-rsa" if key_type == keys.RSA else "ssh-ed25519"
    assert lines[:3] == [f"PuTTY-User-Key-File-2: {algorithm}", "Encryption: none", "Comment: my key"]
    fields = _ppk_fields(made.key_material)
    n_pub = int(fields["Public-Lines"])
    public = base64.b64decode("".join(lines[4 : 4 + n_pub]))
    assert made.public_key.split()[1] == base64.b64encode(public).decode()
    n_priv = int(lines[4 + n_pub].split(": ")[1])
    private = base64.b64decode("".join(lines[5 + n_pub : 5 + n_pub + n_priv]))

    # Recompute the MAC as PuTTY's documentation (Appendix C) defines it for version 2.
    def string(b: bytes) -> bytes:
        return len(b).to_bytes(4, "big") + b

    data = b"".join(string(x) for x in (algorithm.encode(), b"none", b"my key", public, private))
    key = hashlib.sha1(b"putty-private-key-file-mac-key").digest()
    assert fields["Private-MAC"] == hmac.new(key, data, hashlib.sha1).hexdigest()
    assert made.key_material.endswith("\n")


@needs_puttygen
@needs_ssh_keygen
@pytest.mark.parametrize("key_type", [keys.RSA, keys.ED25519])
def test_puttygen_reads_the_ppk(tmp_path, key_type):
    made = keys.generate(key_type, keys.PPK, "k")
    ppk = tmp_path / "k.ppk"
    ppk.write_text(made.key_material)
    converted = tmp_path / "k.openssh"
    run(str(PUTTYGEN), str(ppk), "-O", "private-openssh", "-o", str(converted))
    converted.chmod(0o600)
    derived = run(str(SSH_KEYGEN), "-y", "-f", str(converted)).decode().split()[:2]
    assert derived == made.public_key.split()[:2]


# --- imported keys --------------------------------------------------------------------------------


@needs_ssh_keygen
@needs_openssl
def test_imported_rsa_fingerprint_is_md5_of_der_public_key(tmp_path):
    path = ssh_keygen_key(tmp_path, "rsa", 2048)
    key = keys.parse_public_key(path.with_suffix(".pub").read_bytes())
    assert key.key_type == keys.RSA and key.comment == "me@laptop"
    # The EC2 user guide's command for keys made with OpenSSH 7.8 or later.
    pem = run(str(SSH_KEYGEN), "-e", "-f", str(path), "-m", "PEM")
    der = run(str(OPENSSL), "rsa", "-RSAPublicKey_in", "-outform", "DER", stdin=pem)
    assert key.fingerprint == openssl_digest("md5", der)
    assert len(key.fingerprint) == 47


@needs_ssh_keygen
def test_imported_ed25519_fingerprint_is_ssh_keygen_sha256(tmp_path):
    path = ssh_keygen_key(tmp_path, "ed25519")
    key = keys.parse_public_key(path.with_suffix(".pub").read_bytes())
    out = run(str(SSH_KEYGEN), "-l", "-E", "sha256", "-f", str(path.with_suffix(".pub"))).decode()
    assert key.key_type == keys.ED25519
    assert key.fingerprint == out.split()[1].removeprefix("SHA256:") + "="
    assert key.openssh("ignored") == path.with_suffix(".pub").read_text().strip()


@needs_ssh_keygen
@pytest.mark.parametrize(
    "export", [("-m", "RFC4716"), ("-m", "PKCS8"), ("-m", "PEM")], ids=["rfc4716", "pkcs8-pem", "pkcs1-pem"]
)
def test_every_documented_rsa_format_gives_the_same_key(tmp_path, export):
    path = ssh_keygen_key(tmp_path, "rsa", 3072)
    reference = keys.parse_public_key(path.with_suffix(".pub").read_bytes())
    text = run(str(SSH_KEYGEN), "-e", "-f", str(path.with_suffix(".pub")), *export)
    key = keys.parse_public_key(text)
    assert key.fingerprint == reference.fingerprint
    assert key.openssh("x").split()[:2] == reference.openssh("x").split()[:2]


@needs_ssh_keygen
def test_rfc4716_ed25519_keeps_its_comment(tmp_path):
    path = ssh_keygen_key(tmp_path, "ed25519")
    text = run(str(SSH_KEYGEN), "-e", "-f", str(path.with_suffix(".pub")))
    assert text.startswith(b"---- BEGIN SSH2 PUBLIC KEY ----")
    key = keys.parse_public_key(text)
    assert key.key_type == keys.ED25519
    assert key.comment.startswith("256-bit ED25519")


def test_base64_der_rsa_public_key():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key = keys.parse_public_key(base64.b64encode(der))
    assert key.fingerprint == ":".join(f"{b:02x}" for b in hashlib.md5(der).digest())
    assert key.openssh("name").endswith(" name")


def test_openssh_line_without_comment_takes_the_key_name():
    private = ed25519.Ed25519PrivateKey.generate()
    line = keys.openssh_public_key(private.public_key())
    key = keys.parse_public_key(line.encode() + b"\n")
    assert key.openssh("my-key") == line + " my-key"


def _ecdsa_line() -> bytes:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    return public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)


def _rsa_line(bits: int) -> bytes:
    n = (1 << (bits - 1)) | 1 | (12345 << 8)  # a public key only needs a modulus of the right size
    public = rsa.RSAPublicNumbers(65537, n).public_key()
    return public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)


_ED = keys.openssh_public_key(ed25519.Ed25519PrivateKey.generate().public_key()).encode()


@pytest.mark.parametrize(
    "material",
    [
        b"",
        b"   \n",
        b"not a key",
        b"ssh-rsa",
        b"ssh-rsa !!!notbase64",
        b"ssh-rsa AAAA",
        _ED.replace(b"ssh-ed25519", b"ssh-rsa", 1),  # type name and blob disagree
        _ED + b"\n" + _ED,  # two keys
        base64.b64encode(_ED),  # encoded twice (aws-cli v1 file:// pitfall)
        _ecdsa_line(),
        b"ssh-dss AAAAB3NzaC1kc3MAAACBAP",
        b"\xff\xfe binary",
        _rsa_line(768),
        _rsa_line(8192),
        b"-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----",
        b"---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n",
    ],
    ids=lambda m: repr(m[:24]),
)
def test_unusable_material_is_invalid_key_format(material):
    with pytest.raises(errors.OcsError) as exc:
        keys.parse_public_key(material)
    assert exc.value.code == "InvalidKey.Format"
    assert exc.value.status == 400


@pytest.mark.parametrize("bits", [1024, 2048, 4096])
def test_supported_rsa_sizes(bits):
    assert keys.parse_public_key(_rsa_line(bits)).key_type == keys.RSA


def test_ecdsa_pem_is_refused():
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(errors.OcsError, match="OpenSSH public key format"):
        keys.parse_public_key(pem)


# --- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "my key", "x" * 255, "with/slash:colon@at", "UPPER"])
def test_valid_key_names(name):
    assert keys.validate_key_name(name) == name


@pytest.mark.parametrize("name", ["x" * 256, " lead", "trail ", "tab\there", "é"])
def test_invalid_key_names(name):
    with pytest.raises(errors.InvalidParameterValue) as exc:
        keys.validate_key_name(name)
    assert exc.value.code == "InvalidParameterValue"


def test_missing_key_name():
    with pytest.raises(errors.MissingParameter):
        keys.validate_key_name("")
