"""App keys: the credential of the compatibility surfaces (Dify's "app API key"). An app key stands for
one topic; it is shown once, when made, and stored only as its SHA-256 hash (256 random bits: nothing to
brute-force, so a fast hash is enough).

An app key is valid on the compatibility surfaces only: the REST authorizer and the WebSocket accept
`kallo_` API keys and JWTs, and refuse an `app-` key as they refuse any other string (401).

`authenticate` remembers a verified key in the container for at most `credential_cache_seconds` (60 by
default), so a revoked key, or a key of a deleted topic, is refused within a minute. It records
`lastUsedAt` on the key at most once a minute (only when it reads the key, and only when the stored
time is a minute old), so a busy key costs no write per request.

Costs in AWS calls: a cached key, none; otherwise 1 GetItem (the key, by its hash) + 1 GetItem (its
topic, which must still exist) + 1 UpdateItem when `lastUsedAt` is a minute old.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kallo.auth import api_keys
from kallo.clock import iso
from kallo.errors import Unauthorized
from kallo.settings import get_settings
from kallo.store import app_keys as store
from kallo.store import objects
from kallo.store.keys import Ref

PREFIX = "app-"
# How often `lastUsedAt` may be written for one key.
TOUCH_SECONDS = 60
_MAX_CACHE_ENTRIES = 1024
_cache: dict[str, tuple[float, AppKey]] = {}


@dataclass(frozen=True)
class AppKey:
    """A verified app key: its id, the topic it stands for, and its tenant, the user whose authority
    makes and owns the key's end users (`authority.tenant_of` the key's creator, I1)."""

    id: str
    topic_id: str
    tenant_id: str


def generate() -> str:
    return api_keys.generate(PREFIX)


hash_key = api_keys.hash_key


def looks_valid(key: str) -> bool:
    return api_keys.looks_valid(key, PREFIX)


def shown_prefix(key: str) -> str:
    """What listings show of a key so its owner can tell keys apart: the prefix and 4 characters."""
    return key[: len(PREFIX) + 4]


def authenticate(key: str) -> AppKey:
    """The app key `key` is, or 401 (unknown, revoked, malformed, or its topic deleted)."""
    if not looks_valid(key):
        raise Unauthorized("the app key is not valid")
    key_hash = hash_key(key)
    moment = time.time()
    cached = _cache.get(key_hash)
    if cached and cached[0] > moment:
        return cached[1]
    record = store.get(key_hash)
    if record is None or objects.get(Ref("topic", record["topicId"])) is None:
        _cache.pop(key_hash, None)
        raise Unauthorized("the app key is not valid")
    app_key = AppKey(id=record["id"], topic_id=record["topicId"], tenant_id=record["tenantId"])
    _touch(key_hash, record.get("lastUsedAt"), datetime.fromtimestamp(moment, UTC))
    if len(_cache) >= _MAX_CACHE_ENTRIES:
        _cache.clear()
    _cache[key_hash] = (moment + get_settings().credential_cache_seconds, app_key)
    return app_key


def _touch(key_hash: str, last_used_at: str | None, moment: datetime) -> None:
    """Record the use, unless it was recorded less than a minute ago."""
    if last_used_at and last_used_at > iso(moment - timedelta(seconds=TOUCH_SECONDS)):
        return
    store.touch(key_hash, iso(moment))


def forget(key_hash: str) -> None:
    """Forget a key this container verified (it was just revoked here)."""
    _cache.pop(key_hash, None)


def forget_cached_app_keys() -> None:
    _cache.clear()
