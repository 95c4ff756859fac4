"""The glue every WebSocket handler shares (as `kallo.web` is for REST): `$connect`, `$disconnect`,
`$default`, and the frame around each client message.

A message handler module is a few lines:

    def convo_new_step(session: Session, payload: NewStep) -> None:
        steps.add_step(session.actor, session.convo_id, payload)

    lambda_handler = message_handler(NewStep, convo_new_step)

Events are API Gateway's WebSocket proxy events (`requestContext.routeKey`, `eventType`,
`connectionId`, ...; `headers` and `queryStringParameters` on `$connect`, `body` on messages).

- `$connect` authenticates the caller (Authorization bearer, `token` query parameter, x-api-key),
  needs `can_view` on the convo named by `convoId`, and stores the connection with the principal's
  context, so each message is evaluated with the same scheme and token scope. With
  `?stream=conversation-identifiers` instead of a convoId it opens an identifiers stream
  (`kallo.realtime.identifiers`), which hears and takes no convo messages. Refusals: 400 (no or bad
  convoId), 401 `unauthorized` (no or bad credentials, the reason logged only), 403 (an identity with
  no user), 404 `not_found` (unknown or hidden convo).
- I8 (live access): each message re-checks its connection as broadcasts do (`kallo.realtime.audience`);
  a connection that may no longer view its convo gets an `unauthorized` error and is closed. The
  connection's item (who opened it, with which credential: it never changes) is kept in the process for
  `CONNECTION_SECONDS`; what can change (credential, grants, the convo) is in the audience's check.

Costs in DynamoDB calls of a message (API Gateway's own are not counted): 1 GetItem (the connection,
when this process has not read it in the last minute) + the audience check when the connection's
verdict is older than 3 s (1 Query per object of the convo's chain that can inherit + 1 BatchGetItem)
+ 1 UpdateItem (the message counted against the rate) + the handler's own work (`kallo.services.steps`).
- A message is parsed (`{type, payload, requestId?}`), its connection read, its payload validated with
  the handler's model, and the handler run with permissions evaluated afresh. Each message counts
  against its user's request rate (I10, `kallo.quotas`; one UpdateItem): over it, or over a quota, the
  `error` carries `retryAfter` (seconds). Any failure becomes an
  `error` message `{code, message, details?, retryAfter?, requestId?}` to the sender only; the function still
  answers 200, so the socket lives on (API Gateway would otherwise tell the client "Internal server
  error" without its requestId).
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ValidationError

from kallo import json_input, quotas, realtime
from kallo.authz.access import Access, remembers
from kallo.authz.policy import ObjectType, Permission
from kallo.clock import epoch_seconds, iso, now, now_iso
from kallo.errors import Conflict, DomainError, PayloadTooLarge, TooManyRequests, Unprocessable
from kallo.models.ws import PAYLOAD_TOO_LARGE, Envelope, ErrorMessage
from kallo.realtime import audience, identifiers
from kallo.services import steps
from kallo.settings import get_settings
from kallo.store import connections
from kallo.store.keys import Ref

logger = Logger()
# How long a process keeps a connection's item (it never changes; see the module's docstring).
CONNECTION_SECONDS = 60.0
_MAX_CONNECTIONS_KEPT = 4096
# connectionId → (monotonic time read, the item)
_kept_connections: dict[str, tuple[float, dict[str, Any]]] = {}
_kept_lock = threading.Lock()
Payload = TypeVar("Payload", bound=BaseModel)
Event = dict[str, Any]
Response = dict[str, Any]
OK: Response = {"statusCode": 200}
# The client messages (API.md, WebSocket: PUB); anything else reaches `$default`.
CLIENT_MESSAGES = (
    "convoNewStep",
    "convoNewStepGroup",
    "convoStepDeletion",
    "convoStepGroupAddition",
    "convoStepRegen",
    "convoStepUpdate",
    "convoStopStep",
    "convoSync",
)
MAX_REQUEST_ID = 256


class MalformedMessage(DomainError):
    status, code = 400, "malformed_message"


class UnknownMessageType(DomainError):
    status, code = 400, "unknown_message_type"


class AccessEnded(DomainError):
    """The connection's principal may no longer view its convo (a revoked or expired token, a removed
    grant, a deleted convo): the message is refused and the connection dropped."""

    status, code = 401, "unauthorized"

    def __init__(self, connection: dict[str, Any]) -> None:
        super().__init__("this connection may no longer use the convo: reconnect with valid credentials")
        self.connection = connection


class ConnectionUnknown(DomainError):
    """The connection is not (or no longer) stored: it was dropped, its convo deleted, or its
    credentials revoked. The client should reconnect."""

    status, code = 410, "connection_unknown"


class StreamConnection(DomainError):
    """A message sent on an identifiers stream, which only listens."""

    status, code = 400, "stream_takes_no_messages"


@dataclass(frozen=True)
class Session:
    """One message on one connection: who sends it, on which convo, and the requestId to echo."""

    connection_id: str
    convo_id: str
    access: Access
    request_id: str | None = None

    @property
    def actor(self) -> steps.Actor:
        return steps.Actor(self.access, self.request_id)


# -- event helpers ------------------------------------------------------------------------------------


def _context(event: Event) -> dict[str, Any]:
    return event.get("requestContext") or {}


def connection_id_of(event: Event) -> str:
    return str(_context(event).get("connectionId") or "")


def _body(event: Event) -> str:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body).decode()
        except (binascii.Error, UnicodeDecodeError) as error:
            raise MalformedMessage("the message is not UTF-8 text") from error
    return body


def _frame(event: Event) -> dict[str, Any]:
    """The JSON object a message carries, parsed as REST bodies are (I11: bounded size and nesting)."""
    try:
        frame = json_input.parse(_body(event), what="the message")
    except json_input.MalformedJson as error:
        raise MalformedMessage(f"{error.message}: send {{type, payload, requestId?}}") from error
    if not isinstance(frame, dict):
        raise MalformedMessage("the message must be a JSON object: {type, payload, requestId?}")
    return frame


def _request_id(frame: dict[str, Any]) -> str | None:
    """The requestId to echo, read before anything else is validated so even errors carry it."""
    value = frame.get("requestId")
    return value if isinstance(value, str) and 0 < len(value) <= MAX_REQUEST_ID else None


def validation_error(error: ValidationError, where: str = "payload") -> DomainError:
    """A payload's validation errors as one domain error: `payload_too_large` when a step's text is
    over the limit, `validation_error` with pydantic's details otherwise."""
    errors = error.errors(include_url=False)
    details = [
        {"loc": [where, *(str(p) for p in e.get("loc", ()))], "type": e.get("type"), "msg": e.get("msg")}
        for e in errors
    ]
    too_large = next((e for e in errors if e.get("type") == PAYLOAD_TOO_LARGE), None)
    if too_large is not None:
        return PayloadTooLarge(str(too_large.get("msg")), details=details)
    first = details[0] if details else {"loc": [where], "msg": "invalid"}
    return Unprocessable(f"{'.'.join(first['loc'])}: {first['msg']}", details=details)


def _send_error(connection_id: str, error: DomainError, request_id: str | None) -> None:
    body = ErrorMessage(
        code=error.code,
        message=error.message,
        details=error.details or None,
        retry_after=error.retry_after if isinstance(error, TooManyRequests) else None,
        request_id=request_id or None,
    ).model_dump(by_alias=True, exclude_none=True)
    try:
        realtime.send(connection_id, "error", body, request_id)
    except Exception:
        # The sender may be unreachable for a moment; there is no one else to tell.
        logger.warning("could not send an error to the sender", exc_info=True)


def lambda_handler_for(handle: Callable[[Event], Response]) -> Callable[[Event, Any], Response]:
    """The Lambda entry point: structured logs carrying the route and the connection. The event is
    never logged, whatever POWERTOOLS_LOGGER_LOG_EVENT says: `$connect` carries the caller's
    credentials (a browser's `?token=`, or headers)."""

    @logger.inject_lambda_context(clear_state=True, log_event=False)
    def lambda_handler(event: Event, context: Any) -> Response:
        logger.append_keys(routeKey=_context(event).get("routeKey"), connectionId=connection_id_of(event))
        return handle(event)

    return lambda_handler


# -- $connect, $disconnect, $default ------------------------------------------------------------------


def _refuse(status: int, code: str, message: str) -> Response:
    """A refused handshake: the status, and a body saying why for clients that can read it."""
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"code": code, "message": message}),
    }


def _convo_id(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return str(UUID(value))
    except ValueError:
        return None


def _connected_at(event: Event) -> str:
    epoch_ms = _context(event).get("connectedAt")
    if isinstance(epoch_ms, int | float) and epoch_ms > 0:
        return iso(datetime.fromtimestamp(epoch_ms / 1000, UTC))
    return now_iso()


def connect(event: Event) -> Response:
    """`$connect`: 200 stores the connection; anything else refuses the handshake.

    A refusal says only `unauthorized` or `not_found` (and 400 for a malformed convoId): why a
    credential failed (an expired or forged JWT, an unknown key) is logged, never told to the client.
    The connection stores its principal, so broadcasts and messages re-check it (I8).

    DynamoDB calls: the credential's read (none while `kallo.auth.authenticate` keeps it, a minute) +
    the check + 1 TransactWriteItems (the connection's two items). The check, when the process
    remembers the convo's chain (a check in the last minute): 1 BatchGetItem (`Access.direct`: the
    caller's grants on all of the chain with the chain's edges, read live). Else 1 Query (the convo's
    structural grants and the caller's own grant on it, `Access.structural_with_own`; a topic's
    convo's owner grant names its topic's edges, `chainHint`), and the rest of the check rides in the
    write: the grants on the path to the chain's team that were not read (the topic's grant to the
    team, the caller's membership) become conditions of the connection's transaction
    (`Access.admission`), so the connection is stored only if they stand at that moment. So 2 for a
    caller who holds a grant on the convo, and for a team member, whether or not this process
    checked the convo's chain (a credential used in the last minute). More when a condition fails (a
    team left, a topic moved, a hint stale: the whole check, 1 Query more per object of the chain that
    can inherit + 1 BatchGetItem, then the write again; a refusal adds no write), and for a topic's
    convo whose owner grant has no hint (the whole check: 4), or a caller who is on the topic but not
    in the first team its hint names (5: a write refused, then the rest of the whole check and the
    write). A token scoped to the team costs 2 too: its scope follows the topic's grant to the team,
    which the write then requires to be an owner grant."""
    # Only $connect verifies credentials: the message routes need not pay for importing pyjwt.
    from kallo.auth import api_keys
    from kallo.auth.authenticate import authenticate, credential_from

    query = event.get("queryStringParameters") or {}
    try:
        principal = authenticate(event.get("headers") or {}, query)
    except DomainError as error:
        logger.info("connection refused: bad credentials", extra={"reason": error.message})
        return _refuse(401, "unauthorized", "unauthorized")
    if principal.user_id is None:
        return _refuse(
            403,
            "user_not_registered",
            "this identity has no Kallo user yet: create it with GET /users?firebaseId=<your id>",
        )
    if "stream" in query:
        return _connect_stream(event, principal, query)
    convo_id = _convo_id(query.get("convoId"))
    if convo_id is None:
        return _refuse(400, "invalid_convo_id", "connect with ?convoId=<the convo's UUID>")
    convo, access = Ref(ObjectType.convo.value, convo_id), Access(principal)
    try:
        checks = _admission(access, convo)
    except DomainError as error:
        logger.info("connection refused: convo not viewable", extra={"reason": error.message})
        return _refuse(404, "not_found", "not found")
    connection_id = connection_id_of(event)
    connection = {
        "connectionId": connection_id,
        "convoId": convo_id,
        "userId": principal.user_id,
        "principal": principal.to_context(),
        "connectedAt": _connected_at(event),
    }
    kind, value = credential_from(event.get("headers") or {}, query)
    if kind == "api_key":
        # Which key opened it (its hash, as stored): revoking the key ends the connection too (I8).
        connection["apiKeyHash"] = api_keys.hash_key(value)
    ttl = epoch_seconds(now()) + get_settings().ws_connection_ttl_seconds
    try:
        connections.put(connection, ttl=ttl, checks=checks)
    except Conflict:
        if not checks:
            raise
        # A grant the admission supposed is gone or lower: the whole check decides, reading the grants
        # the write supposed (what the Query read is this request's).
        try:
            access.require(convo, Permission.can_view)
        except DomainError as error:
            logger.info("connection refused: convo not viewable", extra={"reason": error.message})
            return _refuse(404, "not_found", "not found")
        connections.put(connection, ttl=ttl)
    return OK


def _admission(access: Access, convo: Ref) -> list[dict[str, Any]]:
    """`can_view` on the convo (I8), or the conditions its connection's write must carry
    (`Access.admission`); raises `NotFound` when the caller may not view it. With the convo's chain
    remembered, one BatchGetItem (`Access.direct`) or the whole check; else one Query, the convo's
    structural grants with the caller's own (its hint remembers the topic's edges), then the caller's
    own grant alone, or the path through the chain's team as conditions, or the whole check."""
    if not remembers(convo):
        access.structural_with_own(convo)
        checks = access.admission(convo, Permission.can_view)
        if checks is not None:
            return checks
    if not (remembers(convo) and access.direct(convo, Permission.can_view)):
        access.require(convo, Permission.can_view)
    return []


def _connect_stream(event: Event, principal: Any, query: dict[str, Any]) -> Response:
    """`?stream=conversation-identifiers` (and no convoId): a stream of the identifiers of the
    caller's convos (`kallo.realtime.identifiers`). It stores the principal as a convo connection
    does, so every announcement re-checks it (I8), and asks the stream worker for its first snapshot:
    API Gateway accepts posts to a connection only once `$connect` has returned."""
    from kallo.auth import api_keys
    from kallo.auth.authenticate import credential_from

    if query.get("stream") != identifiers.STREAM or query.get("convoId") is not None:
        return _refuse(400, "invalid_stream", f"connect with ?stream={identifiers.STREAM} (and no convoId)")
    connection_id = connection_id_of(event)
    connection = {
        "connectionId": connection_id,
        "stream": identifiers.STREAM,
        "userId": principal.user_id,
        "principal": principal.to_context(),
        "connectedAt": _connected_at(event),
    }
    kind, value = credential_from(event.get("headers") or {}, query)
    if kind == "api_key":
        connection["apiKeyHash"] = api_keys.hash_key(value)
    connections.put_stream(connection, ttl=epoch_seconds(now()) + get_settings().ws_connection_ttl_seconds)
    identifiers.request_greeting(connection_id)
    return OK


def _connection(connection_id: str) -> dict[str, Any] | None:
    """The connection's item, as this process read it in the last `CONNECTION_SECONDS`, else read now."""
    moment = time.monotonic()
    with _kept_lock:
        kept = _kept_connections.get(connection_id)
    if kept is not None and moment - kept[0] < CONNECTION_SECONDS:
        return kept[1]
    found = connections.get(connection_id)
    if found is not None:
        with _kept_lock:
            if len(_kept_connections) >= _MAX_CONNECTIONS_KEPT:
                _kept_connections.clear()
            _kept_connections[connection_id] = (moment, found)
    return found


def forget_connection(connection_id: str) -> None:
    """Stop keeping a connection's item (it was disconnected or dropped)."""
    with _kept_lock:
        _kept_connections.pop(connection_id, None)


def forget_connections() -> None:
    """Stop keeping any connection's item (tests, and a process pointed at another stack)."""
    with _kept_lock:
        _kept_connections.clear()


def disconnect(event: Event) -> Response:
    """`$disconnect`: forget the connection (both of its items). API Gateway ignores the answer."""
    connection_id = connection_id_of(event)
    forget_connection(connection_id)
    found = connections.get(connection_id)
    if found is not None and found.get("stream"):
        connections.delete_streams([found])
    elif found is not None:
        connections.delete(connection_id, found["convoId"])
    return OK


def default(event: Event) -> Response:
    """`$default`: frames that are not JSON, and messages of no known type, get an `error`."""
    connection_id, request_id = connection_id_of(event), None
    try:
        frame = _frame(event)
        request_id = _request_id(frame)
        kind = frame.get("type")
        if not isinstance(kind, str) or not kind:
            raise UnknownMessageType(f"a message needs a type, one of: {', '.join(CLIENT_MESSAGES)}")
        raise UnknownMessageType(
            f"unknown message type {kind[:64]!r}: the types are {', '.join(CLIENT_MESSAGES)}"
        )
    except DomainError as error:
        _send_error(connection_id, error, request_id)
    except Exception:
        _fault(connection_id, request_id)
    return OK


def _fault(connection_id: str, request_id: str | None) -> None:
    """A fault of ours (or of AWS): logged with its trace; the sender learns its request failed,
    without the details."""
    logger.exception("the message failed")
    failure = DomainError("the server could not process the message", code="internal_error")
    _send_error(connection_id, failure, request_id)


# -- messages -----------------------------------------------------------------------------------------


def _session(event: Event, request_id: str | None) -> Session:
    """The sender's session. I8 (live access): the connection is checked again as a broadcast checks
    it (`kallo.realtime.audience`, the same remembered verdicts): a revoked token, a removed grant or a
    deleted convo refuses the message, and the connection is then dropped."""
    connection_id = connection_id_of(event)
    connection = _connection(connection_id)
    if connection is None:
        raise ConnectionUnknown(
            "this connection is not known (it was closed or its convo deleted): reconnect"
        )
    if connection.get("stream") or not connection.get("convoId"):
        raise StreamConnection("this connection streams conversation identifiers: it takes no messages")
    (access,) = audience.admit(connection["convoId"], [connection])
    if access is None:
        raise AccessEnded(connection)
    return Session(connection_id, connection["convoId"], access, request_id)


def handle_message(event: Event, model: type[Payload], action: Callable[[Session, Payload], Any]) -> Response:
    """Run one client message; every failure becomes an `error` to the sender, and the answer is 200."""
    connection_id, request_id = connection_id_of(event), None
    try:
        frame = _frame(event)
        request_id = _request_id(frame)
        try:
            envelope = Envelope.model_validate(frame)
        except ValidationError as error:
            raise validation_error(error, where="message") from error
        session = _session(event, request_id)
        # I10 (cost): every client message writes; each counts against its user's rate (one UpdateItem).
        quotas.require_message_rate(session.access.principal.user_id or "")
        try:
            payload = model.model_validate(envelope.payload if envelope.payload is not None else {})
        except ValidationError as error:
            raise validation_error(error) from error
        action(session, payload)
    except AccessEnded as error:
        _send_error(connection_id, error, request_id)
        forget_connection(connection_id)
        realtime.drop([error.connection])  # after the error, so the client learns why it closes
    except DomainError as error:
        _send_error(connection_id, error, request_id)
    except Exception:
        _fault(connection_id, request_id)
    return OK


def message_handler(
    model: type[Payload], action: Callable[[Session, Payload], Any]
) -> Callable[[Event, Any], Response]:
    """The Lambda entry point of a client message route: `action(session, payload)`. Its
    `payload_model` is what docs/asyncapi.json documents as the message's payload (tools/asyncapi.py)."""
    handler = lambda_handler_for(lambda event: handle_message(event, model, action))
    handler.payload_model = model  # type: ignore[attr-defined]
    return handler
