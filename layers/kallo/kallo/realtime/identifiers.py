"""The identifiers stream: WebSocket connections that hear the identifiers of their user's convos (the
Pieces surface's `/conversations/stream/identifiers`), and the fan-out that tells them of a change.

A stream connection is opened with `?stream=conversation-identifiers` (no convoId; `$connect`,
`kallo.websocket`) and stored per user (`kallo.store.connections`, `STREAMS#<userId>`). Its frames are
Pieces' `StreamedIdentifiers` JSON, not Kallo's envelope: `{"iterable": [{"conversation": {"id"}}, ...]}`,
newest first, with `{"conversation": {"id"}, "deleted": true}` for a convo that just went away.

Who hears a change to convo C (`announce`): the stream connections of the users who hold a grant on C
(its direct user grantees: the creator, the people it was shared with; exactly the users whose listing,
Query Convos, can hold C), read with one Query per user. Each connection is then re-checked from the
principal stored on it, never trusted from the moment it connected:
- I8 (live access): its credential must still stand (`audience.live_credentials`: the access token
  unrevoked and unexpired, the API key on record); a connection that fails is forgotten and closed;
- I3/I4 (scope, tenants): the snapshot it is sent is its principal's own listing (`listing(access)`,
  scope included), and it is sent only when C is in that listing or was in the last one it was sent
  (`sent`, kept on the connection), or, for a deletion, when the principal has its user's whole
  authority (the user held a grant on C until it went). So a stream never lists, nor hears of, a convo
  its principal cannot list: another tenant's convo is never in it, and a narrow token hears nothing of
  convos outside its scope, not even that one changed.
A deleted convo is left out of the listing it is sent (its grants may still be in the index for a
moment); a created one is put in when the index has not caught up yet and the principal may view it.

Costs in AWS calls, for `u` users holding a grant on the convo and `s` live stream connections among
them: `u` Queries (their streams; in parallel) and, only when `s` > 0, 1 BatchGetItem (the credentials,
when some use one) + per connection its listing (Query + BatchGetItem; + Query + BatchGetItem for a
created convo the index has not shown yet) + 1 PostToConnection (+ 1 UpdateItem when its identifiers
changed).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from kallo import jobs, realtime
from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.authz.policy import ObjectType, Permission
from kallo.clock import now
from kallo.realtime import audience
from kallo.store import connections
from kallo.store.keys import Ref

STREAM = "conversation-identifiers"
CREATED, RENAMED, DELETED = "created", "renamed", "deleted"
Listing = Callable[[Access], list[str]]
# How long the stream worker waits for a new connection to open, and how often it tries.
GREETING_SECONDS = 5.0
GREETING_RETRY_SECONDS = 0.1
logger = logging.getLogger(__name__)


def frame(identifiers: Iterable[str], deleted: Iterable[str] = ()) -> bytes:
    """A `StreamedIdentifiers` frame: the listing, then the convos that went away."""
    items: list[dict[str, Any]] = [{"conversation": {"id": i}} for i in identifiers]
    items += [{"conversation": {"id": i}, "deleted": True} for i in deleted]
    return json.dumps({"iterable": items}, separators=(",", ":")).encode()


def principal_of(connection: dict[str, Any]) -> Principal | None:
    """The principal stored on a stream connection; None when it has none (or it does not parse, or
    names another user than the item), which refuses the connection."""
    context = connection.get("principal")
    if connection.get("stream") != STREAM or not isinstance(context, dict):
        return None
    try:
        principal = Principal.from_context(context)
    except (KeyError, TypeError, ValueError, json.JSONDecodeError):
        return None
    if not principal.user_id or principal.user_id != connection.get("userId"):
        return None
    return principal


def _admitted(streams: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Access]]:
    """The streams whose principal's credential still stands, with its access; the others are
    forgotten and their sockets closed (I8)."""
    parsed = [(s, principal_of(s)) for s in streams]
    candidates = [(s, p) for s, p in parsed if p is not None]
    live = audience.live_credentials([(p, s) for s, p in candidates]) if candidates else []
    admitted = [(s, Access(p)) for (s, p), ok in zip(candidates, live, strict=True) if ok]
    kept = {s["connectionId"] for s, _ in admitted}
    refused = [s for s in streams if s["connectionId"] not in kept]
    if refused:
        logger.info("stream connections refused", extra={"refused": len(refused)})
        drop(refused)
    return admitted


def drop(streams: list[dict[str, Any]]) -> None:
    connections.delete_streams(streams)
    realtime.close_all([s["connectionId"] for s in streams])


def _opening(stream: dict[str, Any]) -> bool:
    """Whether a stream connected so recently that its socket may not be open yet (its greeting is
    still being tried): a post it refuses does not mean it is gone."""
    try:
        connected = datetime.fromisoformat(str(stream.get("connectedAt")).replace("Z", "+00:00"))
    except ValueError:
        return False
    return (now() - connected).total_seconds() < GREETING_SECONDS


def _send(stream: dict[str, Any], identifiers: list[str], deleted: list[str]) -> bool:
    """Post a snapshot and remember it; False when its socket is gone (the stream is then forgotten,
    unless it is still opening)."""
    if not realtime.post(stream["connectionId"], frame(identifiers, deleted)):
        if not _opening(stream):
            connections.delete_streams([stream])
        return False
    if identifiers != list(stream.get("sent") or []):
        connections.set_sent(stream, identifiers)
    return True


def request_greeting(connection_id: str) -> None:
    """Ask the stream worker to send a new stream its first snapshot (`$connect` cannot: API Gateway
    takes posts to a connection only once `$connect` has returned)."""
    jobs.send(jobs.GreetingJob(type="greet", connectionId=connection_id))


def greet_when_open(connection_id: str, listing: Listing, *, seconds: float = GREETING_SECONDS) -> bool:
    """The stream worker's job: send a new stream its first snapshot, trying again while its socket is
    not open yet (the job may run before API Gateway has finished the handshake). False when the
    stream is not (or no longer) stored, is refused (I8), or never opened (it is then forgotten)."""
    stored = connections.get(connection_id)
    if stored is None or stored.get("stream") != STREAM:
        return False
    admitted = _admitted([stored])
    if not admitted:
        return False
    ((stream, access),) = admitted
    identifiers = listing(access)
    data = frame(identifiers)
    deadline = time.monotonic() + seconds
    while not realtime.post(connection_id, data):
        if time.monotonic() >= deadline:
            connections.delete_streams([stream])  # the client left before it opened
            return False
        time.sleep(GREETING_RETRY_SECONDS)
    connections.set_sent(stream, identifiers)
    return True


def announce(convo_id: str, change: str, users: Iterable[str], listing: Listing) -> int:
    """Tell the streams of `users` (the convo's user grantees, read before a deletion) that the convo
    was created, renamed or deleted; returns how many streams were sent a snapshot. See the module
    docstring for who hears it and why."""
    wanted = sorted({u for u in users if u})
    if not wanted:
        return 0
    pool = realtime.executor()
    streams = [s for found in pool.map(connections.streams_of, wanted) for s in found]
    if not streams:
        return 0
    admitted = _admitted(streams)
    return sum(pool.map(lambda pair: _tell(pair[0], pair[1], convo_id, change, listing), admitted))


def _whole_user(access: Access) -> bool:
    scope = access.principal.scope
    return scope is None or Ref(ObjectType.user.value, access.principal.user_id or "") in scope


def _tell(stream: dict[str, Any], access: Access, convo_id: str, change: str, listing: Listing) -> bool:
    try:
        identifiers = listing(access)
        if change == DELETED:
            identifiers = [i for i in identifiers if i != convo_id]
        elif (
            change == CREATED
            and convo_id not in identifiers
            # The index may not show a grant written a moment ago: the principal's own check decides.
            and access.can(Ref(ObjectType.convo.value, convo_id), Permission.can_view)
        ):
            identifiers = [convo_id, *identifiers]
        sent = list(stream.get("sent") or [])
        # A deleted convo cannot be checked any more (its grants went with it): a principal with its
        # user's whole authority hears of it (the user held a grant on it), a narrow token only when
        # it had been sent it.
        heard_before = convo_id in sent or (change == DELETED and _whole_user(access))
        if convo_id not in identifiers and not heard_before:
            return False  # not in this principal's listing (a narrow token's scope): nothing to hear
        gone = [convo_id] if change == DELETED else []
        return _send(stream, identifiers, gone)
    except Exception:
        # One stream failing must not keep the others (or the request that made the change) from going on.
        logger.warning(
            "telling a stream failed", extra={"connectionId": stream.get("connectionId")}, exc_info=True
        )
        return False
