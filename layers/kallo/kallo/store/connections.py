"""WebSocket connections (access patterns 14, 15 and 23).

A connection is written twice: under its own key, so `$disconnect` (which only knows the connection
id) finds its convo, and in the convo's partition, so a broadcast reads every connection of a convo
with one query. Both expire through TTL after API Gateway's 2-hour connection limit.

A stream connection (`stream` set, no convo: the identifiers stream) is written the same way, its
second item in its user's `STREAMS#` partition instead; that copy also keeps `sent`, the identifiers
the stream was last sent, so an announcement reaches only streams whose listing holds the convo.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kallo.errors import Conflict
from kallo.store import keys
from kallo.store.keys import Ref
from kallo.store.table import table


def put(connection: dict[str, Any], *, ttl: int, checks: Iterable[dict[str, Any]] = ()) -> None:
    """Store a convo connection (both of its items), in one transaction with `checks` (conditions on
    other items, e.g. the grants the connection is admitted on): if one fails, nothing is stored and
    `Conflict` is raised."""
    convo = Ref("convo", connection["convoId"])
    own = {
        **keys.connection_key(connection["connectionId"]),
        "entity": "connection",
        "ttl": ttl,
        **connection,
    }
    in_convo = {
        **keys.convo_connection_key(convo, connection["connectionId"]),
        "entity": "connection",
        "ttl": ttl,
    }
    table().transact([{"put": own}, {"put": {**in_convo, **connection}}, *checks])


def put_stream(connection: dict[str, Any], *, ttl: int) -> None:
    """A new stream connection (`connectionId`, `userId`, `stream`, principal...), both of its items."""
    own = {
        **keys.connection_key(connection["connectionId"]),
        "entity": "connection",
        "ttl": ttl,
        **connection,
    }
    of_user = {
        **keys.stream_connection_key(connection["userId"], connection["connectionId"]),
        "entity": "connection",
        "ttl": ttl,
        **connection,
    }
    table().transact([{"put": own}, {"put": of_user}])


def streams_of(user_id: str) -> list[dict[str, Any]]:
    """A user's stream connections (with their `sent` identifiers)."""
    return table().query_all(keys.streams_pk(user_id), prefix=keys.CONNECTION_PREFIX)


def set_sent(connection: dict[str, Any], identifiers: list[str]) -> None:
    """Remember what a stream was last sent (a stream gone meanwhile is left alone)."""
    key = keys.stream_connection_key(connection["userId"], connection["connectionId"])
    try:
        table().update(key, {"sent": identifiers})
    except Conflict:  # its $disconnect deleted it meanwhile
        return


def delete_streams(connections: Iterable[dict[str, Any]]) -> None:
    """Forget stream connections (both items of each)."""
    table().batch_delete(
        key
        for c in connections
        for key in (
            keys.connection_key(c["connectionId"]),
            keys.stream_connection_key(c["userId"], c["connectionId"]),
        )
    )


def get(connection_id: str) -> dict[str, Any] | None:
    return table().get(keys.connection_key(connection_id))


def of_convo(convo_id: str) -> list[dict[str, Any]]:
    return table().query_all(keys.object_pk(Ref("convo", convo_id)), prefix=keys.CONNECTION_PREFIX)


def delete(connection_id: str, convo_id: str) -> None:
    delete_many([(connection_id, convo_id)])


def delete_many(pairs: Iterable[tuple[str, str]]) -> None:
    """Forget connections, given as (connectionId, convoId) pairs: both items of each, 25 items per
    BatchWriteItem."""
    table().batch_delete(
        key
        for connection_id, convo_id in pairs
        for key in (
            keys.connection_key(connection_id),
            keys.convo_connection_key(Ref("convo", convo_id), connection_id),
        )
    )
