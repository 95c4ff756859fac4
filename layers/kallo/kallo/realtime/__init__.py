"""WebSocket fan-out through the API Gateway management API (`@connections`).

Every message uses the envelope of API.md, `{"type", "payload", "requestId"?}`. A broadcast posts to
the connections of a convo in parallel; a connection API Gateway reports gone (410 GoneException) is
deleted: the *target* connection, never the sender.

I8 (live access): a broadcast posts only to the connections whose principal may still view the convo
(`kallo.realtime.audience`, re-checked at most every few seconds per connection); the others are
dropped: deleted from the store and closed through the management API (`DeleteConnection`).

Cost of a broadcast to `c` connections: 1 Query (the convo's connections) + `c` PostToConnection, plus
the audience check of the connections not checked in the last few seconds (see `audience`), plus for
`r` refused ones 1 BatchWriteItem and `r` DeleteConnection.

Connection list reuse: the deltas of a streaming answer (`reuse_connections=True`) may reuse the
convo's connections as the last broadcast read them, for `CONNECTIONS_REUSE_SECONDS` (1 s): an answer
sending several deltas a second Queries about once a second instead of once per delta. Every other
message (convoNewStep, the final convoStepUpdate, convoStatus, convoUpdate, convoDeleted) Queries afresh
and refreshes the list, so a connection opened during an answer always gets those, and its `seq` gap
(`convoSync`) repairs any delta it missed in the meantime. Reuse skips only the Query: each target is
still admitted by `audience` (I8).

A convo's end (Delete Convo): `listeners` reads who may hear it before the deletion (1 Query + the
audience check), then `farewell` sends the last message (`convoDeleted`) to those and closes every
socket: 1 BatchWriteItem (per 12 connections) + `c` PostToConnection + (`c` + `r`) DeleteConnection.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any

from kallo import metrics
from kallo.realtime import audience
from kallo.settings import get_settings
from kallo.store import connections

# Posting is network-bound: threads give the parallelism, the cap keeps a huge convo from opening
# hundreds of sockets at once.
MAX_PARALLEL_POSTS = 32
CONNECTIONS_REUSE_SECONDS = 1.0
_MAX_REUSED_CONVOS = 1024
logger = logging.getLogger(__name__)
# convoId → (monotonic time read, the convo's connections then)
_read_connections: dict[str, tuple[float, list[dict[str, Any]]]] = {}
_read_lock = threading.Lock()


@dataclass
class Delivery:
    delivered: int
    gone: int
    failed: int
    refused: int = 0


@cache
def _management_client() -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 2},
        connect_timeout=2,
        read_timeout=5,
        max_pool_connections=MAX_PARALLEL_POSTS,
    )
    return boto3.session.Session().client(
        "apigatewaymanagementapi", endpoint_url=get_settings().ws_management_endpoint, config=config
    )


@cache
def executor() -> ThreadPoolExecutor:
    """The fan-out's threads (posting, and reading the streams of many users at once)."""
    return ThreadPoolExecutor(max_workers=MAX_PARALLEL_POSTS, thread_name_prefix="fanout")


def reset() -> None:
    """Forget the cached client and the remembered verdicts (tests and the local stack point them
    elsewhere)."""
    _management_client.cache_clear()
    audience.forget()
    with _read_lock:
        _read_connections.clear()


def envelope(message_type: str, payload: Any, request_id: str | None = None) -> bytes:
    message: dict[str, Any] = {"type": message_type, "payload": payload}
    if request_id:
        message["requestId"] = request_id
    # ensure_ascii=False: escaping non-ASCII text as \uXXXX would triple a CJK step past the 128 KB frame cap.
    return json.dumps(message, separators=(",", ":"), default=str, ensure_ascii=False).encode()


def post(connection_id: str, data: bytes) -> bool:
    """Send one frame; False when the connection is gone. Any other failure counts one
    `WebSocketSendFailures` (a gone connection is routine: its client left) and is raised."""
    client = _management_client()
    try:
        client.post_to_connection(ConnectionId=connection_id, Data=data)
    except client.exceptions.GoneException:
        return False
    except Exception:
        metrics.count(metrics.WEBSOCKET_SEND_FAILURES)
        raise
    return True


def send(connection_id: str, message_type: str, payload: Any, request_id: str | None = None) -> bool:
    return post(connection_id, envelope(message_type, payload, request_id))


def close(connection_id: str) -> bool:
    """Close a socket (the client sees it closed; API Gateway then runs `$disconnect`). False when it
    was gone already."""
    client = _management_client()
    try:
        client.delete_connection(ConnectionId=connection_id)
    except client.exceptions.GoneException:
        return False
    return True


def close_all(connection_ids: list[str]) -> None:
    """Close sockets, each failure logged: a socket that cannot be closed now hears nothing anyway,
    once it is no longer stored (and it would be refused)."""
    for connection_id in connection_ids:
        try:
            close(connection_id)
        except Exception:
            logger.warning(
                "closing a connection failed", extra={"connectionId": connection_id}, exc_info=True
            )


def drop(targets: list[dict[str, Any]]) -> None:
    """Forget connections that may no longer hear their convo (both items of each), and close their
    sockets."""
    connections.delete_many((t["connectionId"], t["convoId"]) for t in targets)
    close_all([t["connectionId"] for t in targets])


def _connections_of(convo_id: str, *, reuse: bool) -> list[dict[str, Any]]:
    """The convo's connections: as read within `CONNECTIONS_REUSE_SECONDS` when `reuse` allows it,
    else Queried now (and remembered for the deltas that follow)."""
    moment = time.monotonic()
    if reuse:
        with _read_lock:
            remembered = _read_connections.get(convo_id)
        if remembered is not None and moment - remembered[0] < CONNECTIONS_REUSE_SECONDS:
            return remembered[1]
    stored = connections.of_convo(convo_id)
    with _read_lock:
        if len(_read_connections) >= _MAX_REUSED_CONVOS:
            _read_connections.clear()
        _read_connections[convo_id] = (moment, stored)
    return stored


def _forget_connections(convo_id: str, gone: list[dict[str, Any]]) -> None:
    """Take connections just dropped or found gone out of the remembered list, so the next delta does
    not post to them again."""
    ids = {c["connectionId"] for c in gone}
    with _read_lock:
        remembered = _read_connections.get(convo_id)
        if remembered is not None:
            kept = [c for c in remembered[1] if c["connectionId"] not in ids]
            _read_connections[convo_id] = (remembered[0], kept)


def broadcast(
    convo_id: str,
    message_type: str,
    payload: Any,
    request_id: str | None = None,
    *,
    reuse_connections: bool = False,
) -> Delivery:
    """Send a message, in parallel, to every connection on the convo that may still view it; drop
    the others (I8). `reuse_connections`: only for an answer's deltas (see the module's docstring)."""
    stored = _connections_of(convo_id, reuse=reuse_connections)
    if not stored:
        return Delivery(0, 0, 0)
    verdicts = audience.admit(convo_id, stored)
    targets = [t for t, access in zip(stored, verdicts, strict=True) if access is not None]
    refused = [
        {**t, "convoId": convo_id} for t, access in zip(stored, verdicts, strict=True) if access is None
    ]
    if refused:
        logger.info("connections refused", extra={"convoId": convo_id, "refused": len(refused)})
        drop(refused)
    data = envelope(message_type, payload, request_id)
    outcomes = list(executor().map(lambda c: _deliver(c["connectionId"], data), targets))
    gone = [t for t, outcome in zip(targets, outcomes, strict=True) if outcome == "gone"]
    connections.delete_many((t["connectionId"], convo_id) for t in gone)
    if refused or gone:
        _forget_connections(convo_id, refused + gone)
    return Delivery(outcomes.count("delivered"), len(gone), outcomes.count("failed"), len(refused))


@dataclass(frozen=True)
class Listeners:
    """A convo's stored connections, split by whether their principal may still view it (I8)."""

    admitted: list[dict[str, Any]]
    refused: list[dict[str, Any]]


def listeners(convo_id: str) -> Listeners:
    """Who hears the convo now: read before a change that ends it (a deletion takes the grants the
    check reads). 1 Query, + the audience check when there are connections."""
    stored = connections.of_convo(convo_id)
    if not stored:
        return Listeners([], [])
    verdicts = audience.admit(convo_id, stored)
    pairs = list(zip(stored, verdicts, strict=True))
    return Listeners(
        [t for t, access in pairs if access is not None],
        [{**t, "convoId": convo_id} for t, access in pairs if access is None],
    )


def farewell(convo_id: str, heard: Listeners, message_type: str, payload: Any) -> Delivery:
    """A convo's last message: sent to the admitted connections, then every connection is forgotten
    and its socket closed (`DeleteConnection`; API Gateway closes it with 1000, and `$disconnect`
    follows). Each connection's close comes after its message, so a client reads why it closes."""
    data = envelope(message_type, payload)

    def send_then_close(target: dict[str, Any]) -> str:
        outcome = _deliver(target["connectionId"], data)
        close_all([target["connectionId"]])
        return outcome

    everyone = [*heard.admitted, *heard.refused]
    if not everyone:
        return Delivery(0, 0, 0)
    connections.delete_many((t["connectionId"], convo_id) for t in everyone)
    outcomes = list(executor().map(send_then_close, heard.admitted))
    close_all([t["connectionId"] for t in heard.refused])
    return Delivery(
        outcomes.count("delivered"), outcomes.count("gone"), outcomes.count("failed"), len(heard.refused)
    )


def _deliver(connection_id: str, data: bytes) -> str:
    try:
        return "delivered" if post(connection_id, data) else "gone"
    except Exception:
        # One unreachable connection must not stop the others; it is retried by nobody, so say so.
        logger.warning("post to connection failed", extra={"connectionId": connection_id}, exc_info=True)
        return "failed"
