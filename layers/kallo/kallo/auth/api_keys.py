"""API keys: random secrets shown once, stored only as SHA-256 hashes (they carry 256 bits of entropy,
so a fast hash is enough: there is nothing to brute-force). App keys (`kallo.auth.app_keys`) are made
and hashed the same way, under their own prefix."""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "kallo_"


def generate(prefix: str = PREFIX) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_valid(key: str, prefix: str = PREFIX) -> bool:
    return key.startswith(prefix) and 16 <= len(key) <= 128
