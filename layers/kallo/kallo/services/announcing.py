"""Broadcasting an answer's messages (`kallo.services.replies`, `kallo.services.naming`) without ever
failing the answer, to its WebSocket connections and to the listener of an answer run in process
(`kallo.services.answering`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from kallo import realtime

logger = Logger(child=True)

Listener = Callable[[str, dict[str, Any]], None]


def announce(
    convo_id: str,
    message_type: str,
    payload: dict[str, Any],
    listener: Listener | None = None,
    *,
    delta: bool = False,
) -> None:
    """Broadcast without ever failing the answer: a lost message shows as a `seq` gap or a stale
    status, which a client repairs by reading the convo over REST, while raising would throw the answer
    away (the post to each connection is already best-effort in `realtime`). The `listener` of an
    answer run in process hears the message first, as it is broadcast. A `delta` may reach the
    connections of a list read in the last second (`kallo.realtime`); every other message reads it."""
    if listener is not None:
        try:
            listener(message_type, payload)
        except Exception:
            logger.warning("an answer's listener failed", extra={"type": message_type}, exc_info=True)
    try:
        realtime.broadcast(convo_id, message_type, payload, reuse_connections=delta)
    except Exception:
        logger.warning("broadcast failed", extra={"convoId": convo_id, "type": message_type}, exc_info=True)
