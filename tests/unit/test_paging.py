"""Cursors (I7): opaque, authenticated, bound to their listing and to the caller, and short-lived."""

import base64
import re
from datetime import timedelta
from uuid import uuid4

import pytest

from kallo import paging
from kallo.auth.principal import Principal
from kallo.clock import now
from kallo.errors import BadRequest

USER, OTHER = str(uuid4()), str(uuid4())
# What a raw DynamoDB key of the word index looks like (a posting of some tenant's step).
KEY = {
    "PK": f"OBJ#convo#{uuid4()}",
    "SK": f"TERM#{uuid4()}#harbour",
    "GSI1PK": "TERM#harbour",
    "GSI1SK": f"2026-11-22T10:00:00.000Z#{uuid4()}",
}
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def refused(token: str, *, kind: str = "step-search/harbour", principal: str = USER) -> bool:
    with pytest.raises(BadRequest) as error:
        paging.decode_cursor(token, kind=kind, principal=principal)
    return error.value.code == "invalid_next_token" and error.value.status == 400


def test_a_cursor_round_trips_for_its_kind_and_holder(aws):
    token = paging.encode_cursor({"key": KEY}, kind="step-search/harbour", principal=USER)
    assert paging.decode_cursor(token, kind="step-search/harbour", principal=USER) == {"key": KEY}
    # URL-safe base64 without padding: it goes into a query string as it is.
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token) and len(token) < paging.MAX_CURSOR_CHARS


def test_a_cursor_shows_no_key_or_id(aws):
    token = paging.encode_cursor({"key": KEY}, kind="step-search/harbour", principal=USER)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert not UUID.search(raw) and not UUID.search(token.encode())
    for clear in (b"TERM#", b"OBJ#", b"harbour", b"convo", USER.encode()):
        assert clear not in raw
    # A random nonce: the same position never gives the same cursor twice.
    assert token != paging.encode_cursor({"key": KEY}, kind="step-search/harbour", principal=USER)


def test_another_callers_cursor_is_refused(aws):
    token = paging.encode_cursor({"key": KEY}, kind="step-search/harbour", principal=USER)
    assert refused(token, principal=OTHER)


def test_a_cursor_of_another_listing_is_refused(aws):
    token = paging.encode_cursor({"key": KEY}, kind="step-search/harbour", principal=USER)
    assert refused(token, kind="step-search/lisbon")
    assert refused(token, kind="grantees/team#" + str(uuid4()))


def test_every_tampered_byte_is_refused(aws):
    token = paging.encode_cursor({"after": USER}, kind="step-search/harbour", principal=USER)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    for at in range(len(raw)):
        changed = bytearray(raw)
        changed[at] ^= 0x01
        assert refused(base64.urlsafe_b64encode(bytes(changed)).decode().rstrip("="))
    assert refused(token[:-2])  # truncated


def test_garbage_is_refused(aws):
    for bad in ("", "x", "%%%", "Zm9v", "eA", "x" * 2000, base64.urlsafe_b64encode(b'{"PK":"x"}').decode()):
        assert refused(bad)


def test_an_expired_cursor_is_refused(aws, monkeypatch):
    token = paging.encode_cursor({"after": USER}, kind="step-search/harbour", principal=USER)
    issued = now()
    monkeypatch.setattr(paging, "now", lambda: issued + timedelta(seconds=paging.CURSOR_TTL_SECONDS - 5))
    assert paging.decode_cursor(token, kind="step-search/harbour", principal=USER) == {"after": USER}
    monkeypatch.setattr(paging, "now", lambda: issued + timedelta(seconds=paging.CURSOR_TTL_SECONDS + 5))
    assert refused(token)
    # Nor one from the future (a clock that went back, or a key that was never ours).
    monkeypatch.setattr(paging, "now", lambda: issued - timedelta(hours=1))
    assert refused(token)


def test_a_cursor_is_bound_to_the_calling_user_even_when_acting_for_another(aws):
    service_account = Principal(user_id=USER, scheme="api_key", is_service_account=True)
    acting = service_account.acting_as(OTHER)
    own = Principal(user_id=OTHER, scheme="access_token", token_id=str(uuid4()))
    token = paging.cursor({"after": OTHER}, kind="teams", principal=acting)
    assert token and paging.position(token, kind="teams", principal=service_account) == {"after": OTHER}
    with pytest.raises(BadRequest):
        paging.position(token, kind="teams", principal=own)
    # No position, no cursor; no cursor, the first page.
    assert paging.cursor(None, kind="teams", principal=own) is None
    assert paging.position(None, kind="teams", principal=own) is None
