"""IMDSv2 session tokens: issued for one instance, checked without any stored state.

A token is ``base64url(version | expiry | nonce | mac)`` where ``expiry`` is in
milliseconds since the epoch, ``nonce`` makes every token unique, and ``mac`` is
HMAC-SHA256 under the service's secret over the instance id and the rest of the
token. So:

- a token is valid only for the instance it was issued to (EC2: "The token is
  not valid on other EC2 instances"): checking it for another instance id fails;
- it expires at ``issue time + TTL`` and nobody can extend it without the secret;
- nothing is stored: every ``ocs-network`` process sharing the secret accepts the
  tokens of the others, and changing the secret invalidates all tokens at once
  (clients answer a 401 by asking for a new token, as the AWS SDKs do).

The TTL header must be a whole number of seconds from 1 to 21600 (six hours).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct
from collections.abc import Callable

MIN_TTL = 1
MAX_TTL = 21600
MIN_SECRET_BYTES = 16

_VERSION = 1
_HEAD = struct.Struct(">BQ12s")  # version, expiry (ms), nonce
_MAC_BYTES = 32
_CONTEXT = b"ocs-imds-token\0"
_DIGITS = re.compile(r"[0-9]{1,6}")


def parse_ttl(value: str | None) -> int | None:
    """The token TTL a ``X-aws-ec2-metadata-token-ttl-seconds`` header asks for, or ``None`` (400)."""
    if value is None or not _DIGITS.fullmatch(value.strip()):
        return None
    ttl = int(value)
    return ttl if MIN_TTL <= ttl <= MAX_TTL else None


class TokenAuthority:
    """Issues and checks IMDSv2 tokens; ``clock`` returns seconds since the epoch."""

    def __init__(
        self,
        secret: bytes,
        clock: Callable[[], float],
        nonce: Callable[[int], bytes] = secrets.token_bytes,
    ):
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the token secret must have at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self._clock = clock
        self._nonce = nonce

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _mac(self, instance_id: str, head: bytes) -> bytes:
        message = _CONTEXT + instance_id.encode() + b"\0" + head
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def issue(self, instance_id: str, ttl: int) -> str:
        """A token for ``instance_id`` valid for ``ttl`` seconds from now."""
        if not MIN_TTL <= ttl <= MAX_TTL:
            raise ValueError(f"ttl must be {MIN_TTL}..{MAX_TTL} seconds")
        head = _HEAD.pack(_VERSION, self._now_ms() + ttl * 1000, self._nonce(12))
        return base64.urlsafe_b64encode(head + self._mac(instance_id, head)).decode().rstrip("=")

    def is_valid(self, token: str, instance_id: str) -> bool:
        """Whether ``token`` was issued to ``instance_id`` by this secret and has not expired."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            return False
        if len(raw) != _HEAD.size + _MAC_BYTES:
            return False
        head, mac = raw[: _HEAD.size], raw[_HEAD.size :]
        version, expiry_ms, _nonce = _HEAD.unpack(head)
        expiry_ms = int(expiry_ms)
        if version != _VERSION or not hmac.compare_digest(mac, self._mac(instance_id, head)):
            return False
        return self._now_ms() < expiry_ms
