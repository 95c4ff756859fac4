"""The WebSocket API gateway: sockets on `/ws?convoId=`, `/ws/convos/{convoId}` and the Pieces identifiers
stream `/pieces/conversations/stream/identifiers` (`?stream=conversation-identifiers`) become the API Gateway
WebSocket events of the template's routes (`$connect`, `$disconnect`, `$default` and one per message
type), and the `@connections` management API the functions post to is served on the same port, so
the very same broadcast code (`kallo.realtime`) reaches real sockets here as it does in the cloud.

Everything is read from the template's `AWS::ApiGatewayV2::Api` (protocol WEBSOCKET): its route
selection expression, its stage, and each `AWS::ApiGatewayV2::Route` → `Integration` → function.

What API Gateway does and this gateway does too:
- `$connect` runs before the handshake completes: a 2xx proxy response accepts the socket, any other
  status refuses it with that status (and the function's body and headers); a function that raises or
  answers a malformed response refuses it with 502. The connection can be posted to only once
  accepted: until then, and after it closes, `@connections` answers 410 GoneException.
- A text message is routed by the selection expression (`$request.body.type`): the route whose key
  the JSON body names, else `$default` (also for a body that is not JSON). With no route to take the
  sender gets `{"message": "Forbidden", ...}`; a function that raises gets it
  `{"message": "Internal server error", ...}`. Messages over 128 KB close the socket (1009), and so
  do binary frames (1003), which API Gateway WebSocket APIs do not take.
- `$disconnect` runs once the socket is closed by either side (the client, or `DELETE @connections`,
  which closes it with code 1000 "Connection deleted").
- An upgrade on any other path is refused with 404 `{"code": "not_found", ...}`, as the REST API
  answers an unknown path (API Gateway has no such path to route either).

Unlike API Gateway, which invokes a connection's message routes concurrently, this gateway runs one
connection's messages one at a time in the order they arrived, and its `$disconnect` after them: a
client then sees the effects of its messages in the order it sent them. Handlers run in worker
threads (`LocalFunction.invoke_async`), so the event loop keeps serving other sockets and the
`@connections` calls the handlers themselves make. Not emulated: the 10-minute idle and 2-hour
connection limits, route responses (two-way routes), and authorizers on `$connect` (the template's
routes use none: `$connect` authenticates the caller itself).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import string
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from local import template
from local.http_gateway import proxy_response, read_body
from local.parts import Stack
from local.runtime import LocalFunction

logger = logging.getLogger(__name__)

CONNECT_ROUTE = "$connect"
DISCONNECT_ROUTE = "$disconnect"
DEFAULT_ROUTE = "$default"
# Where the `@connections` API is served; `kallo.realtime` is pointed here (KALLO_WS_MANAGEMENT_ENDPOINT).
MANAGEMENT_PATH = "/_aws/ws"
MANAGEMENT_ENDPOINT_VARIABLE = "KALLO_WS_MANAGEMENT_ENDPOINT"
SOCKET_PATHS = ("/ws", "/ws/convos/{convoId}")
CONSOLE_WEBSOCKET_URL_VARIABLE = "KALLO_WEBSOCKET_URL"
# The Pieces surface's identifiers stream, the local spelling of `?stream=conversation-identifiers`
# (Pieces clients open `<host>/conversations/stream/identifiers`, with host `<stack>/pieces`).
STREAM_PATHS = {"/pieces/conversations/stream/identifiers": "conversation-identifiers"}
MAX_MESSAGE_BYTES = 128 * 1024  # API Gateway's WebSocket message quota, both ways
# What a client gets when API Gateway itself cannot route or run a message (the connection stays open).
NO_ROUTE_MESSAGE = "Forbidden"
FAILED_MESSAGE = "Internal server error"
_SELECTION_EXPRESSION = re.compile(r"\$request\.body\.([A-Za-z0-9_$-]+(?:\.[A-Za-z0-9_$-]+)*)")
_ID_ALPHABET = string.ascii_letters + string.digits


def api_gateway_id() -> str:
    """An id shaped like API Gateway's connection and request ids (e.g. `LqTh0cPKoAMCE8Q=`: 11 bytes
    in base64). Letters and digits only, as API Gateway's are: a `/` or `+` would need escaping in
    `@connections/{connectionId}`."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(15)) + "="


def iso_time(epoch: float) -> str:
    """RFC 3339 UTC with milliseconds, as the management API writes its timestamps."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def multi_valued(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Name → every value, in order: the `multiValue*` shape of an API Gateway event."""
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    return values


def _logical_ids(value: Any) -> Iterator[str]:
    """The logical ids an intrinsic names: `Ref`, `Fn::GetAtt`, and the `${Name}` / `${Name.Attr}` of
    a `Fn::Sub` (pseudo parameters such as `${AWS::Region}` are not logical ids)."""
    if isinstance(value, dict):
        for key, argument in value.items():
            if key == "Ref" and isinstance(argument, str):
                yield argument
            elif key == "Fn::GetAtt":
                yield argument[0]
            elif key == "Fn::Sub":
                text = argument[0] if isinstance(argument, list) else argument
                yield from re.findall(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}", text)
            else:
                yield from _logical_ids(argument)
    elif isinstance(value, list):
        for item in value:
            yield from _logical_ids(item)


@dataclass(frozen=True)
class WebSocketApi:
    """The template's WebSocket API: its ids, and the function behind each route key."""

    logical_id: str
    api_id: str
    stage: str
    selection_path: tuple[str, ...]  # `$request.body.type` → ("type",)
    routes: dict[str, str]  # route key → logical id of the function

    @classmethod
    def from_template(cls, template_: dict[str, Any], resolver: template.Resolver) -> WebSocketApi | None:
        """The template's WebSocket API (None when it has none); ValueError for a configuration this
        gateway cannot serve as API Gateway would."""
        resources = template_["Resources"]
        apis = [
            logical_id
            for logical_id, resource in resources.items()
            if resource["Type"] == "AWS::ApiGatewayV2::Api"
            and (resource.get("Properties") or {}).get("ProtocolType") == "WEBSOCKET"
        ]
        if not apis:
            return None
        if len(apis) > 1:
            raise ValueError(f"the local WebSocket gateway serves one WebSocket API, found {len(apis)}")
        logical_id = apis[0]
        expression = resources[logical_id]["Properties"].get("RouteSelectionExpression", "")
        selection = _SELECTION_EXPRESSION.fullmatch(expression)
        if selection is None:
            raise ValueError(
                f"{logical_id}: route selection expression {expression!r} is not of the form $request.body.<key>"
            )

        def of_api(kind: str) -> dict[str, dict[str, Any]]:
            return {
                name: resource.get("Properties") or {}
                for name, resource in resources.items()
                if resource["Type"] == kind
                and logical_id in _logical_ids((resource.get("Properties") or {}).get("ApiId"))
            }

        stages = of_api("AWS::ApiGatewayV2::Stage")
        if len(stages) != 1:
            raise ValueError(
                f"{logical_id}: the local WebSocket gateway needs one stage, found {len(stages)}"
            )
        (stage,) = stages.values()
        integrations = of_api("AWS::ApiGatewayV2::Integration")
        functions = template.functions(template_)
        routes: dict[str, str] = {}
        for name, route in of_api("AWS::ApiGatewayV2::Route").items():
            authorization = route.get("AuthorizationType", "NONE")
            if authorization != "NONE":
                raise ValueError(
                    f"{name}: the local WebSocket gateway runs routes with AuthorizationType NONE only"
                )
            targets = [i for i in _logical_ids(route.get("Target")) if i in integrations]
            if len(targets) != 1:
                raise ValueError(f"{name}: Target must name one integration of {logical_id}")
            integration = integrations[targets[0]]
            if integration.get("IntegrationType") != "AWS_PROXY":
                raise ValueError(
                    f"{targets[0]}: the local WebSocket gateway runs AWS_PROXY integrations only"
                )
            targeted = [f for f in _logical_ids(integration.get("IntegrationUri")) if f in functions]
            if len(targeted) != 1:
                raise ValueError(f"{targets[0]}: IntegrationUri must name one function of the template")
            routes[route["RouteKey"]] = targeted[0]
        return cls(
            logical_id=logical_id,
            api_id=resolver.ref(logical_id),
            stage=str(resolver.resolve(stage["StageName"])),
            selection_path=tuple(selection.group(1).split(".")),
            routes=routes,
        )

    def select_route(self, body: str) -> str | None:
        """The route key API Gateway picks for a message: the one the selection expression evaluates
        to, else `$default` (a body that is not JSON, lacks the key, or names no route); None when
        there is no route to take. Reserved keys (`$connect`, ...) are never selected by a body."""
        try:
            value: Any = json.loads(body)
        except ValueError:
            value = None
        for key in self.selection_path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and not value.startswith("$") and value in self.routes:
            return value
        return DEFAULT_ROUTE if DEFAULT_ROUTE in self.routes else None


@dataclass
class Connection:
    """One socket, as the management API knows it once `$connect` has accepted it."""

    connection_id: str
    websocket: WebSocket
    connected_at: float  # epoch seconds
    source_ip: str
    user_agent: str
    last_active_at: float = field(init=False)
    # Sends and closes go one at a time, so that a close never lands in the middle of a send and the
    # state checked before a send is still true when it happens.
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.last_active_at = self.connected_at

    @property
    def open(self) -> bool:
        return self.websocket.application_state == WebSocketState.CONNECTED

    async def send(self, data: bytes) -> bool:
        """Send one message (text when it is UTF-8, as API Gateway sends posted data); False when the
        socket has closed."""
        try:
            text: str | None = data.decode()
        except UnicodeDecodeError:
            text = None
        async with self._lock:
            if not self.open:
                return False
            try:
                if text is None:
                    await self.websocket.send_bytes(data)
                else:
                    await self.websocket.send_text(text)
            except WebSocketDisconnect:
                return False
        self.last_active_at = time.time()
        return True

    async def close(self, code: int, reason: str = "") -> None:
        async with self._lock:
            if self.open:
                await self.websocket.close(code, reason)

    def info(self) -> dict[str, Any]:
        """The GetConnection answer, with the management API's wire names."""
        return {
            "connectedAt": iso_time(self.connected_at),
            "identity": {"sourceIp": self.source_ip, "userAgent": self.user_agent},
            "lastActiveAt": iso_time(self.last_active_at),
        }


class _DenialFalseAlarm(logging.Filter):
    """uvicorn's websockets-sansio protocol logs "ASGI callable returned without completing handshake."
    after every denial response, though the client did get the response (Kludex/uvicorn#3138, open).
    Every socket of this gateway ends its handshake (accepted, refused with a response, or closed),
    so here the message is always that false alarm, which would read as a failure of ours."""

    MESSAGE = "ASGI callable returned without completing handshake."

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.MESSAGE


_DENIAL_FALSE_ALARM = _DenialFalseAlarm()


def management_error(status: int, error_type: str, message: str) -> Response:
    """An error of the management API as botocore reads it: the type in `x-amzn-errortype` (→
    `client.exceptions.<error_type>`), the text in `message`."""
    return JSONResponse({"message": message}, status_code=status, headers={"x-amzn-errortype": error_type})


class WebSocketGateway:
    """Serves one WebSocket API: the sockets, and the `@connections` API over them."""

    def __init__(self, api: WebSocketApi, functions: dict[str, LocalFunction]) -> None:
        self.api = api
        self.functions = functions
        self.connections: dict[str, Connection] = {}
        logging.getLogger("uvicorn.error").addFilter(_DENIAL_FALSE_ALARM)  # adds it once

    def routes(self) -> list[BaseRoute]:
        return [
            *(WebSocketRoute(path, self.serve) for path in (*SOCKET_PATHS, *STREAM_PATHS)),
            Route(
                f"{MANAGEMENT_PATH}/@connections/{{connectionId}}",
                self.manage,
                methods=["GET", "POST", "DELETE"],
            ),
            # Last of the WebSocket routes (HTTP requests never match it): any other upgrade.
            WebSocketRoute("/{path:path}", self.unknown_path),
        ]

    async def unknown_path(self, websocket: WebSocket) -> None:
        """An upgrade on a path with no socket: 404 with the body REST gives an unknown path (without
        this route, Starlette closes the handshake, which clients read as 403)."""
        await websocket.receive()
        body = {"code": "not_found", "message": f"no WebSocket here: connect to {' or '.join(SOCKET_PATHS)}"}
        await self._refuse(websocket, JSONResponse(body, status_code=404))

    # ------------------------------------------------------------------ events

    def request_context(self, connection: Connection, route_key: str, event_type: str) -> dict[str, Any]:
        """`requestContext` of every event of a connection (the caller adds what is specific)."""
        now = time.time()
        request_id = api_gateway_id()
        return {
            "routeKey": route_key,
            "eventType": event_type,
            "messageDirection": "IN",
            "extendedRequestId": request_id,
            "requestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "stage": self.api.stage,
            "connectedAt": int(connection.connected_at * 1000),
            "connectionId": connection.connection_id,
            "apiId": self.api.api_id,
            "domainName": connection.websocket.headers.get("host", ""),
            "identity": {
                "sourceIp": connection.source_ip,
                "userAgent": connection.websocket.headers.get("user-agent"),
            },
        }

    def connect_event(self, connection: Connection) -> dict[str, Any]:
        """The `$connect` event: the handshake's headers and query string (`/ws/convos/{convoId}` is
        the local spelling of `?convoId=`, so the path's id arrives as that query parameter)."""
        websocket = connection.websocket
        headers = multi_valued(websocket.headers.items())
        query = multi_valued(websocket.query_params.multi_items())
        if "convoId" in websocket.path_params:
            query["convoId"] = [websocket.path_params["convoId"]]
        if websocket.url.path in STREAM_PATHS:
            query["stream"] = [STREAM_PATHS[websocket.url.path]]
        return {
            "headers": {name: values[-1] for name, values in headers.items()},
            "multiValueHeaders": headers,
            "queryStringParameters": {name: values[-1] for name, values in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "requestContext": self.request_context(connection, CONNECT_ROUTE, "CONNECT"),
            "isBase64Encoded": False,
        }

    def message_event(self, connection: Connection, route_key: str, body: str) -> dict[str, Any]:
        context = self.request_context(connection, route_key, "MESSAGE")
        context["messageId"] = api_gateway_id()
        return {"requestContext": context, "body": body, "isBase64Encoded": False}

    def disconnect_event(self, connection: Connection, code: int, reason: str) -> dict[str, Any]:
        # API Gateway sends $disconnect with the Host header only, not the handshake's headers.
        host = connection.websocket.headers.get("host", "")
        context = self.request_context(connection, DISCONNECT_ROUTE, "DISCONNECT")
        context["disconnectStatusCode"] = code
        context["disconnectReason"] = reason
        return {
            "headers": {"host": host},
            "multiValueHeaders": {"host": [host]},
            "requestContext": context,
            "isBase64Encoded": False,
        }

    async def invoke(self, route_key: str, event: dict[str, Any]) -> Any:
        """Run the route's function off the event loop and return its result (exceptions propagate)."""
        function = self.functions[self.api.routes[route_key]]
        started = time.perf_counter()
        outcome = "raised"
        try:
            result = await function.invoke_async(event)
            status = result.get("statusCode") if isinstance(result, dict) else None
            outcome = str(status) if status is not None else "done"
            return result
        finally:
            logger.info(
                "WS %s %s %s %.0f ms (%s)",
                route_key,
                event["requestContext"]["connectionId"],
                outcome,
                (time.perf_counter() - started) * 1000,
                function.logical_id,
            )

    # ------------------------------------------------------------------ sockets

    async def serve(self, websocket: WebSocket) -> None:
        """One socket's life: `$connect`, its messages in order, `$disconnect`."""
        await websocket.receive()  # the ASGI `websocket.connect`: the client asks for the handshake
        connection = Connection(
            api_gateway_id(),
            websocket,
            time.time(),
            websocket.client.host if websocket.client else "127.0.0.1",
            websocket.headers.get("user-agent", ""),
        )
        refusal = await self._run_connect(self.connect_event(connection))
        if refusal is not None:
            await self._refuse(websocket, refusal)
            return
        try:
            await websocket.accept()
        except OSError:
            # The client left while $connect ran: what the function stored for it must go again.
            await self._run_disconnect(connection, 1006, "")
            return
        self.connections[connection.connection_id] = connection
        messages: asyncio.Queue[str | None] = asyncio.Queue()
        dispatcher = asyncio.create_task(self._dispatch(connection, messages))
        code, reason = 1006, ""
        try:
            code, reason = await self._receive(connection, messages)
        finally:
            self.connections.pop(connection.connection_id, None)
            messages.put_nowait(None)
        # Messages that arrived before the close still run, then $disconnect, as the last event.
        await dispatcher
        await self._run_disconnect(connection, code, reason)

    async def _run_disconnect(self, connection: Connection, code: int, reason: str) -> None:
        if DISCONNECT_ROUTE not in self.api.routes:
            return
        try:
            await self.invoke(DISCONNECT_ROUTE, self.disconnect_event(connection, code, reason))
        except Exception:
            logger.exception("the $disconnect function of %s raised", connection.connection_id)

    async def _run_connect(self, event: dict[str, Any]) -> Response | None:
        """None when `$connect` accepts the connection, else the HTTP response that refuses it."""
        if CONNECT_ROUTE not in self.api.routes:
            return None  # API Gateway accepts every connection of an API without a $connect route
        try:
            result = await self.invoke(CONNECT_ROUTE, event)
        except Exception:
            logger.exception("the $connect function raised: the connection is refused with 502")
            return JSONResponse({"message": FAILED_MESSAGE}, status_code=502)
        try:
            response = proxy_response(result)
        except ValueError as error:
            logger.error("the $connect function answered a malformed proxy response: %s", error)
            return JSONResponse({"message": FAILED_MESSAGE}, status_code=502)
        return None if 200 <= response.status_code < 300 else response

    @staticmethod
    async def _refuse(websocket: WebSocket, response: Response) -> None:
        """Answer the handshake with `response` where the server can (uvicorn implements the ASGI
        WebSocket denial response extension); otherwise a close before accepting, which servers turn
        into 403."""
        if "websocket.http.response" in websocket.scope.get("extensions", {}):
            await websocket.send_denial_response(response)
        else:
            await websocket.close()

    async def _receive(self, connection: Connection, messages: asyncio.Queue[str | None]) -> tuple[int, str]:
        """Queue the socket's messages until it closes; returns the close code and reason."""
        while True:
            message = await connection.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return int(message.get("code", 1005)), str(message.get("reason") or "")
            connection.last_active_at = time.time()
            text = message.get("text")
            if text is None:
                await connection.close(1003, "Binary frames are not supported")
            elif len(text.encode()) > MAX_MESSAGE_BYTES:
                await connection.close(1009, "Message too big")
            else:
                messages.put_nowait(text)

    async def _dispatch(self, connection: Connection, messages: asyncio.Queue[str | None]) -> None:
        while (body := await messages.get()) is not None:
            await self._on_message(connection, body)

    async def _on_message(self, connection: Connection, body: str) -> None:
        route_key = self.api.select_route(body)
        if route_key is None:
            await self._tell(connection, NO_ROUTE_MESSAGE, api_gateway_id())
            return
        event = self.message_event(connection, route_key, body)
        try:
            await self.invoke(route_key, event)
        except Exception:
            logger.exception("%s of %s raised", route_key, connection.connection_id)
            await self._tell(connection, FAILED_MESSAGE, event["requestContext"]["requestId"])

    @staticmethod
    async def _tell(connection: Connection, message: str, request_id: str) -> None:
        """API Gateway's own message to a client whose message it could not route or run."""
        body = {"message": message, "connectionId": connection.connection_id, "requestId": request_id}
        await connection.send(json.dumps(body).encode())

    # ------------------------------------------------------------------ @connections

    async def manage(self, request: Request) -> Response:
        """`POST` (send), `GET` (describe), `DELETE` (close) `@connections/{connectionId}`."""
        connection_id = request.path_params["connectionId"]
        if request.method == "POST":
            # Read to its end even when too large, so the caller reads the 413 rather than a reset.
            data = await read_body(request)
            if data is None or len(data) > MAX_MESSAGE_BYTES:
                return management_error(413, "PayloadTooLargeException", "Message too long")
            connection = self.connections.get(connection_id)
            if connection is not None and await connection.send(data):
                return Response(status_code=200)
        else:
            connection = self.connections.get(connection_id)
            if connection is not None and request.method == "GET":
                return JSONResponse(connection.info())
            if connection is not None:
                # Gone for the management API at once, as in API Gateway; $disconnect follows the close.
                self.connections.pop(connection_id, None)
                await connection.close(1000, "Connection deleted")
                return Response(status_code=204)
        return management_error(410, "GoneException", f"connection {connection_id} is gone")


def routes(stack: Stack) -> list[BaseRoute]:
    """The stack's route factory for the WebSocket API (before the REST gateway's catch-all). It also
    points the functions' management API client at this gateway. `kallo.settings` reads the variable
    once per process, so this factory must run before anything reads the settings: before the
    functions' first invocation, and before the documents' factory (which reads the API version)."""
    api = WebSocketApi.from_template(stack.template, stack.resolver)
    if api is None:
        return []
    os.environ[MANAGEMENT_ENDPOINT_VARIABLE] = f"{stack.base_url}{MANAGEMENT_PATH}"
    # The console's config.json tells the page where to connect: here, /ws on the host the page came
    # from (a path: the console resolves it against the request, so HOST=0.0.0.0 works from afar).
    os.environ[CONSOLE_WEBSOCKET_URL_VARIABLE] = SOCKET_PATHS[0]
    return WebSocketGateway(api, stack.functions).routes()
