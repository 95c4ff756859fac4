"""Paging: the page-size and cursor parameters of every paged list, and the one codec of every
`x-next-token` the API hands out and takes back.

A paged list takes `limit` (1..`PAGE_LIMIT`; Query Convo Steps 1..`STEP_PAGE_MAX`) and `nextToken`, the
opaque cursor of the previous page's `x-next-token` (at most `MAX_CURSOR_CHARS`).

I7 (cursors): a cursor is opaque and authenticated. Its payload (a DynamoDB start key, the last id of
a page, ...) is encrypted with AES-GCM under a key derived with HKDF-SHA256 from the access-token
signing secret; the cursor's kind (which listing, and of what) and the caller it was issued to are the
associated data, and it carries the time it was issued. So a cursor reveals no key or id, and one that
was altered, made for another listing or another caller, or issued more than `CURSOR_TTL_SECONDS`
ago is refused with 400 `invalid_next_token`, all alike.

Layout, URL-safe base64 without padding: version (1 byte) | nonce (12 random bytes) | ciphertext of
`{"t": issued at (epoch seconds), "p": payload}` with its 16-byte tag.

The store pages with raw keys (`kallo.store.table.Page.last_key`, `Table.query(start_key=...)`) and
never sees a cursor; the services that answer a paged request turn positions into cursors and back.

Costs in AWS calls: the key needs the signing secret, one Secrets Manager GetSecretValue per container
(cached with it), and only when a request takes or returns a cursor.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, StringConstraints

from kallo.clock import epoch_seconds, now
from kallo.errors import BadRequest

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from kallo.auth.principal import Principal

VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16
CURSOR_TTL_SECONDS = 24 * 3600
# The models bound `nextToken` to 1024 characters; a cursor this module makes stays well below.
MAX_CURSOR_CHARS = 1024
_INFO = b"kallo/paging/cursor/v1"

PAGE_LIMIT = 100
PageLimit = Annotated[int, Field(ge=1, le=PAGE_LIMIT)]
PageToken = Annotated[str, StringConstraints(max_length=MAX_CURSOR_CHARS)]
# Query Convo Steps pages are larger than other lists: a client usually loads a whole convo.
STEP_PAGE_LIMIT = 100
STEP_PAGE_MAX = 500
StepPageLimit = Annotated[int, Field(ge=1, le=STEP_PAGE_MAX)]


def invalid() -> BadRequest:
    return BadRequest("nextToken is not a cursor this API issued to you", code="invalid_next_token")


@lru_cache(maxsize=4)
def _cipher_for(secret: bytes) -> AESGCM:
    # Imported here: every function imports the services, but only paged requests need the cipher.
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret)
    return AESGCM(key)


def _cipher() -> AESGCM:
    # The signing secret is cached per container; the derived key is cached per secret, so a rotated
    # secret (a new container) derives a new key.
    from kallo.auth.tokens import signing_key

    return _cipher_for(signing_key())


def _associated_data(kind: str, principal: str) -> bytes:
    return json.dumps([VERSION, kind, principal], separators=(",", ":")).encode()


def encode_cursor(payload: dict[str, Any], *, kind: str, principal: str) -> str:
    """An opaque cursor for `payload` (JSON-serialisable), valid only for `kind` and `principal`."""
    plain = json.dumps({"t": epoch_seconds(now()), "p": payload}, separators=(",", ":")).encode()
    nonce = os.urandom(NONCE_BYTES)
    sealed = _cipher().encrypt(nonce, plain, _associated_data(kind, principal))
    return base64.urlsafe_b64encode(bytes([VERSION]) + nonce + sealed).decode().rstrip("=")


def decode_cursor(token: str, *, kind: str, principal: str) -> dict[str, Any]:
    """The payload of a cursor `encode_cursor` made for this `kind` and `principal` less than
    `CURSOR_TTL_SECONDS` ago; anything else raises `BadRequest` (`invalid_next_token`)."""
    from cryptography.exceptions import InvalidTag

    if not isinstance(token, str) or not token or len(token) > MAX_CURSOR_CHARS:
        raise invalid()
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as error:
        raise invalid() from error
    if len(raw) < 1 + NONCE_BYTES + TAG_BYTES or raw[0] != VERSION:
        raise invalid()
    nonce, sealed = raw[1 : 1 + NONCE_BYTES], raw[1 + NONCE_BYTES :]
    try:
        opened = json.loads(_cipher().decrypt(nonce, sealed, _associated_data(kind, principal)))
    except (InvalidTag, ValueError) as error:
        raise invalid() from error
    issued, payload = (opened.get("t"), opened.get("p")) if isinstance(opened, dict) else (None, None)
    if not isinstance(issued, int) or not isinstance(payload, dict):
        raise invalid()
    age = epoch_seconds(now()) - issued
    if not 0 <= age <= CURSOR_TTL_SECONDS:
        raise invalid()
    return payload


def holder(principal: Principal) -> str:
    """Who a cursor is bound to: the calling user (a service account is one), also when it acts for a
    user it has authority over. Tokens of one user share its cursors: a cursor is only a position, and
    every page is filtered by the token's scope again."""
    return principal.caller_id or principal.user_id or f"oidc:{principal.firebase_id or ''}"


def cursor(position: dict[str, Any] | None, *, kind: str, principal: Principal) -> str | None:
    """The cursor of the next page, or None on the last one (`position` None or empty)."""
    return encode_cursor(position, kind=kind, principal=holder(principal)) if position else None


def position(token: str | None, *, kind: str, principal: Principal) -> dict[str, Any] | None:
    """Where the page a cursor names starts (None for the first page, without a cursor)."""
    return decode_cursor(token, kind=kind, principal=holder(principal)) if token else None
