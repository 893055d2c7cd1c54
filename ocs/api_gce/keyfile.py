"""Service-account key files (pure): what ``ocs-manage account gce-key`` hands out.

The file is the JSON Google's console downloads (``type: service_account``), with
``token_uri`` pointing at this cloud's token endpoint, so that google-auth's
``service_account.Credentials.from_service_account_info`` works unchanged.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_BITS = 2048


def generate() -> tuple[str, str]:
    """A new RSA key pair: (private key PEM, PKCS#8; public key PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    return private, public


def client_email(project: str, key_id: str) -> str:
    return f"ocs-{key_id[:8]}@{project}.iam.gserviceaccount.com"


def client_id(key_id: str) -> str:
    """A 21-digit client id, stable for the key (as Google's are numeric)."""
    return str(int.from_bytes(hashlib.sha256(key_id.encode()).digest()[:9], "big"))[:21].rjust(21, "1")


def key_file(*, project: str, key_id: str, private_key_pem: str, email: str, endpoint: str) -> dict[str, Any]:
    base = endpoint.rstrip("/")
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": key_id,
        "private_key": private_key_pem,
        "client_email": email,
        "client_id": client_id(key_id),
        "auth_uri": f"{base}/auth",
        "token_uri": f"{base}/token",
        "auth_provider_x509_cert_url": f"{base}/certs",
        "client_x509_cert_url": f"{base}/certs/{email}",
        "universe_domain": "googleapis.com",
    }
