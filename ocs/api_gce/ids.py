"""Compute Engine's numeric resource IDs (decimal uint64 strings), derived stably (pure).

An OCS resource keeps its own ID (``i-0123...``); its Compute Engine ``id`` is the
first 63 bits of SHA-256 of its kind and OCS ID, so every API process answers the
same number without storing it, and the number never needs the 64th bit (clients
that read it as a signed int64 are safe too).
"""

from __future__ import annotations

import hashlib
import re

NAME = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$")
NAME_REGEX = "(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)"


def numeric_id(kind: str, key: str) -> str:
    digest = hashlib.sha256(f"{kind}:{key}".encode()).digest()
    return str(int.from_bytes(digest[:8], "big") >> 1)


def valid_name(name: object) -> bool:
    return isinstance(name, str) and bool(NAME.match(name))
