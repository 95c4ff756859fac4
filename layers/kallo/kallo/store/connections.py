"""WebSocket connections (access patterns 14 and 15).

A connection is written twice: under its own key, so `$disconnect` (which only knows the connection
id) finds its convo, and in the convo's partition, so a broadcast reads every connection of a convo
with one query. Both expire through TTL after API Gateway's 2-hour connection limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kallo.store import keys
from kallo.store.keys import Ref
from kallo.store.table import table


def put(connection: dict[str, Any], *, ttl: int) -> None:
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
    table().transact([{"put": own}, {"put": {**in_convo, **connection}}])


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
