"""The WebSocket gateway over a real server on loopback: sockets become API Gateway WebSocket events
for fake functions that record them and answer through the `@connections` API with a real boto3
`apigatewaymanagementapi` client, as `kallo.realtime` does."""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import socket
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import uvicorn
from starlette.applications import Starlette
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from kallo import realtime
from kallo.settings import get_settings
from local import runtime, template, ws_gateway
from local.parts import Stack
from local.ws_gateway import MAX_MESSAGE_BYTES, WebSocketApi, WebSocketGateway
from tests.support.fakes import importable_module

FAKES = "local_ws_gateway_fakes"
FAKE_FUNCTIONS = textwrap.dedent(
    '''
    """Fake WebSocket functions: each records its event; message functions answer the sender through
    the management API, as the real ones do."""
    import json
    import time

    import boto3

    events = []
    accepted = []  # the connection ids `connect` accepted
    endpoint = None  # the gateway's management endpoint, set by the test fixture


    def _reply(event, payload):
        client = boto3.session.Session(region_name="us-east-1").client(
            "apigatewaymanagementapi", endpoint_url=endpoint
        )
        client.post_to_connection(
            ConnectionId=event["requestContext"]["connectionId"], Data=json.dumps(payload).encode()
        )


    def connect(event, context):
        events.append(event)
        query = event["queryStringParameters"] or {}
        if "refuse" in query:
            return {
                "statusCode": int(query["refuse"]),
                "headers": {"x-reason": "test"},
                "body": json.dumps({"code": "forbidden", "message": "not for you"}),
            }
        if "crash" in query:
            raise RuntimeError("the connect function is broken")
        if "malformed" in query:
            return "not a proxy response"
        time.sleep(float(query.get("sleep", 0)))
        accepted.append(event["requestContext"]["connectionId"])
        return {"statusCode": 200}


    def disconnect(event, context):
        events.append(event)
        return {"statusCode": 200}


    def echo(event, context):
        events.append(event)
        try:
            time.sleep(json.loads(event["body"]).get("sleep", 0))
        except (ValueError, AttributeError):
            pass
        _reply(event, {"route": event["requestContext"]["routeKey"], "body": event["body"]})
        return {"statusCode": 200}


    def boom(event, context):
        raise RuntimeError("a bug")
    '''
)


def _function(handler: str) -> dict[str, Any]:
    return {"Type": "AWS::Serverless::Function", "Properties": {"Handler": f"{FAKES}.{handler}"}}


def _route(key: str, function: str) -> dict[str, dict[str, Any]]:
    """A route, its integration and its function, spelled as template.yaml spells them."""
    name = re.sub(r"\W", "", key.title())
    return {
        f"{name}Function": _function(function),
        f"{name}Integration": {
            "Type": "AWS::ApiGatewayV2::Integration",
            "Properties": {
                "ApiId": {"Ref": "Api"},
                "IntegrationType": "AWS_PROXY",
                "IntegrationUri": {
                    "Fn::Sub": f"arn:aws:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/"
                    f"${{{name}Function.Arn}}/invocations"
                },
            },
        },
        f"{name}Route": {
            "Type": "AWS::ApiGatewayV2::Route",
            "Properties": {
                "ApiId": {"Ref": "Api"},
                "RouteKey": key,
                "AuthorizationType": "NONE",
                "Target": {"Fn::Sub": f"integrations/${{{name}Integration}}"},
            },
        },
    }


ROUTES = {
    "$connect": "connect",
    "$disconnect": "disconnect",
    "$default": "echo",
    "echo": "echo",
    "slow": "echo",
    "boom": "boom",
}


def fake_template(routes: dict[str, str] = ROUTES) -> dict[str, Any]:
    real = template.load()
    resources: dict[str, Any] = {
        "Api": {
            "Type": "AWS::ApiGatewayV2::Api",
            "Properties": {
                "Name": "fake",
                "ProtocolType": "WEBSOCKET",
                "RouteSelectionExpression": "$request.body.type",
            },
        },
        "Stage": {
            "Type": "AWS::ApiGatewayV2::Stage",
            "Properties": {"ApiId": {"Ref": "Api"}, "StageName": {"Ref": "StageName"}},
        },
    }
    for key, function in routes.items():
        resources.update(_route(key, function))
    return {
        "Parameters": copy.deepcopy(real["Parameters"]),
        "Globals": {"Function": {"CodeUri": "functions/", "Timeout": 10, "MemorySize": 256}},
        "Resources": resources,
    }


PHYSICAL = {"Api": {"Ref": "fakeapi123"}}


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with importable_module(tmp_path_factory.mktemp("functions"), FAKES, FAKE_FUNCTIONS) as module:
        yield module


@dataclass
class Served:
    base_url: str
    gateway: WebSocketGateway
    fakes: Any

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1)

    def management(self) -> Any:
        return boto3.session.Session(region_name="us-east-1").client(
            "apigatewaymanagementapi", endpoint_url=f"{self.base_url}{ws_gateway.MANAGEMENT_PATH}"
        )

    def events(self, route_key: str) -> list[dict[str, Any]]:
        return [e for e in self.fakes.events if e["requestContext"]["routeKey"] == route_key]

    def settle(self, timeout: float = 5) -> None:
        """Wait until every accepted connection is closed and has had its `$disconnect`, so that no
        event of one test lands in the next one's."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            disconnected = {e["requestContext"]["connectionId"] for e in self.events("$disconnect")}
            if not self.gateway.connections and set(self.fakes.accepted) <= disconnected:
                return
            time.sleep(0.01)
        raise AssertionError("connections were left open or without their $disconnect")

    def wait_for(self, route_key: str, connection_id: str, timeout: float = 5) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events(route_key):
                if event["requestContext"]["connectionId"] == connection_id:
                    return event
            time.sleep(0.01)
        raise AssertionError(f"no {route_key} event for {connection_id}")


@contextmanager
def serve(fakes: Any, template_: dict[str, Any]) -> Iterator[Served]:
    """The gateway alone in a uvicorn server on a free loopback port, in a thread."""
    api = WebSocketApi.from_template(template_, template.Resolver(template_, PHYSICAL))
    assert api is not None
    gateway = WebSocketGateway(api, runtime.load_functions(template_))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(Starlette(routes=gateway.routes()), log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    fakes.endpoint = f"{base_url}{ws_gateway.MANAGEMENT_PATH}"
    try:
        yield Served(base_url, gateway, fakes)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def module_server(fakes: Any) -> Iterator[Served]:
    with serve(fakes, fake_template()) as served:
        yield served


@pytest.fixture
def served(module_server: Served) -> Iterator[Served]:
    module_server.fakes.events.clear()
    module_server.fakes.accepted.clear()
    yield module_server
    module_server.settle()


@pytest.fixture
def open_socket(served: Served) -> Iterator[Callable[..., ClientConnection]]:
    """Opens sockets to the gateway (`path` and headers as given); closes them at the end."""
    opened: list[ClientConnection] = []

    def open_(path: str = "/ws?convoId=c-1", **options: Any) -> ClientConnection:
        connection = connect(f"{served.ws_url}{path}", open_timeout=5, **options)
        opened.append(connection)
        return connection

    yield open_
    for connection in opened:
        connection.close()


def connection_id_of(served: Served, before: int = 0) -> str:
    """The connection id the gateway gave the newest accepted socket."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if len(served.gateway.connections) > before:
            return list(served.gateway.connections)[-1]
        time.sleep(0.01)
    raise AssertionError("no connection was registered")


def send(connection: ClientConnection, message_type: str, **payload: Any) -> None:
    connection.send(json.dumps({"type": message_type, **payload}))


def receive(connection: ClientConnection) -> dict[str, Any]:
    return json.loads(connection.recv(timeout=5))


# ---------------------------------------------------------------------- the template


def test_the_real_templates_api_is_read_route_by_route() -> None:
    real = template.load()
    api = WebSocketApi.from_template(real, template.Resolver(real, {"WebSocketApi": {"Ref": "abc123"}}))
    assert api is not None
    assert api.api_id == "abc123" and api.stage == "v1" and api.selection_path == ("type",)
    declared = {
        resource["Properties"]["RouteKey"]
        for resource in real["Resources"].values()
        if resource["Type"] == "AWS::ApiGatewayV2::Route"
    }
    assert set(api.routes) == declared
    assert {"$connect", "$disconnect", "$default", "convoNewStep"} <= declared
    assert api.routes["$connect"] == "WsConnectFunction"
    assert api.routes["convoNewStep"] == "WsConvoNewStepFunction"
    assert all(function in template.functions(real) for function in api.routes.values())


def test_a_template_without_a_websocket_api_has_no_socket_routes() -> None:
    template_ = fake_template()
    del template_["Resources"]["Api"]
    assert WebSocketApi.from_template(template_, template.Resolver(template_, {})) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["EchoRoute"]["Properties"].update(AuthorizationType="CUSTOM"), "AuthorizationType"),
        (lambda r: r["Api"]["Properties"].update(RouteSelectionExpression="$request.header.x"), "selection"),
        (lambda r: r["EchoIntegration"]["Properties"].update(IntegrationType="HTTP_PROXY"), "AWS_PROXY"),
        (lambda r: r.pop("Stage"), "stage"),
    ],
    ids=["authorizer", "selection expression", "integration type", "no stage"],
)
def test_configurations_the_gateway_cannot_serve_fail_at_start(
    change: Callable[[dict[str, Any]], Any], message: str
) -> None:
    template_ = fake_template()
    change(template_["Resources"])
    with pytest.raises(ValueError, match=message):
        WebSocketApi.from_template(template_, template.Resolver(template_, PHYSICAL))


def test_route_selection_follows_the_expression() -> None:
    api = WebSocketApi("Api", "x", "v1", ("type",), {"$default": "D", "echo": "E", "$connect": "C"})
    assert api.select_route('{"type": "echo", "payload": {}}') == "echo"
    assert api.select_route('{"type": "unknown"}') == "$default"
    assert api.select_route('{"payload": {}}') == "$default"
    assert api.select_route('{"type": 3}') == "$default"
    assert api.select_route('["echo"]') == "$default"
    assert api.select_route("not json") == "$default"
    assert api.select_route('{"type": "$connect"}') == "$default"  # reserved keys are not selectable
    nested = WebSocketApi("Api", "x", "v1", ("action", "name"), {"echo": "E"})
    assert nested.select_route('{"action": {"name": "echo"}}') == "echo"
    assert nested.select_route('{"action": "echo"}') is None  # no $default: nowhere to go


def test_the_factory_points_the_functions_at_its_management_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ws_gateway.MANAGEMENT_ENDPOINT_VARIABLE, "https://x.execute-api.amazonaws.com/v1")
    template_ = fake_template()
    resolver = template.Resolver(template_, PHYSICAL)
    stack = Stack(template_, resolver, runtime.load_functions(template_), "http://127.0.0.1:3999")
    paths = {route.path for route in ws_gateway.routes(stack)}  # type: ignore[attr-defined]
    assert paths == {
        "/ws",
        "/ws/convos/{convoId}",
        "/pieces/conversations/stream/identifiers",
        "/_aws/ws/@connections/{connectionId}",
        "/{path:path}",  # every other upgrade: 404
    }
    assert os.environ[ws_gateway.MANAGEMENT_ENDPOINT_VARIABLE] == "http://127.0.0.1:3999/_aws/ws"


# ---------------------------------------------------------------------- $connect


def test_the_connect_event_is_what_api_gateway_sends(
    served: Served, open_socket: Callable[..., ClientConnection]
) -> None:
    before = int(time.time() * 1000)
    open_socket(
        "/ws?convoId=c-1&token=t&x=1&x=2",
        additional_headers={"authorization": "Bearer abc", "x-multi": "a"},
        user_agent_header="kallo-test/1",
    )
    connection_id = connection_id_of(served)
    event = served.wait_for("$connect", connection_id)
    assert re.fullmatch(r"[A-Za-z0-9]{15}=", connection_id)
    context = event["requestContext"]
    assert context["routeKey"] == "$connect" and context["eventType"] == "CONNECT"
    assert context["connectionId"] == connection_id
    assert context["stage"] == "v1" and context["apiId"] == "fakeapi123"
    assert context["domainName"] == served.base_url.removeprefix("http://")
    assert context["identity"] == {"sourceIp": "127.0.0.1", "userAgent": "kallo-test/1"}
    assert before <= context["connectedAt"] <= context["requestTimeEpoch"] <= int(time.time() * 1000)
    assert re.fullmatch(r"[A-Za-z0-9]{15}=", context["requestId"])
    assert event["headers"]["authorization"] == "Bearer abc"
    assert event["multiValueHeaders"]["x-multi"] == ["a"]
    assert event["queryStringParameters"] == {"convoId": "c-1", "token": "t", "x": "2"}
    assert event["multiValueQueryStringParameters"]["x"] == ["1", "2"]
    assert event["isBase64Encoded"] is False
    assert "body" not in event


def test_the_path_form_passes_the_convo_id_as_the_query_parameter(
    served: Served, open_socket: Callable[..., ClientConnection]
) -> None:
    open_socket("/ws/convos/c-42?token=t")
    event = served.wait_for("$connect", connection_id_of(served))
    assert event["queryStringParameters"] == {"token": "t", "convoId": "c-42"}


def test_the_identifiers_stream_path_passes_the_stream_as_the_query_parameter(
    served: Served, open_socket: Callable[..., ClientConnection]
) -> None:
    open_socket("/pieces/conversations/stream/identifiers?token=t")
    event = served.wait_for("$connect", connection_id_of(served))
    assert event["queryStringParameters"] == {"token": "t", "stream": "conversation-identifiers"}


def test_the_gateways_log_lines_never_carry_the_sockets_token(
    served: Served, open_socket: Callable[..., ClientConnection], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="local"):
        connection = open_socket("/ws?convoId=c-1&token=secret-token-1")
        connection_id = connection_id_of(served)
        served.wait_for("$connect", connection_id)
        connection.close()
        served.wait_for("$disconnect", connection_id)
    lines = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("local"))
    assert f"WS $connect {connection_id} 200" in lines
    assert "secret-token-1" not in lines


@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_refused_connection_gets_the_functions_status_and_body(
    served: Served, open_socket: Callable[..., ClientConnection], status: int
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        open_socket(f"/ws?convoId=c-1&refuse={status}")
    response = refused.value.response
    assert response.status_code == status
    assert response.headers["x-reason"] == "test"
    assert json.loads(response.body) == {"code": "forbidden", "message": "not for you"}
    (refused_id,) = [e["requestContext"]["connectionId"] for e in served.events("$connect")]
    assert refused_id not in served.gateway.connections
    time.sleep(0.2)  # API Gateway sends $disconnect for accepted sockets only: none must come
    assert [
        e for e in served.events("$disconnect") if e["requestContext"]["connectionId"] == refused_id
    ] == []


def test_a_refusal_is_not_reported_as_a_broken_handshake(
    served: Served, open_socket: Callable[..., ClientConnection]
) -> None:
    """uvicorn logs a false "without completing handshake" error after a denial response."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    uvicorn_errors = logging.getLogger("uvicorn.error")
    uvicorn_errors.addHandler(handler)
    try:
        with pytest.raises(InvalidStatus):
            open_socket("/ws?convoId=c-1&refuse=403")
        time.sleep(0.2)  # uvicorn logs once the app has returned
    finally:
        uvicorn_errors.removeHandler(handler)
    assert [r.getMessage() for r in records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("mode", ["crash", "malformed"])
def test_a_failing_connect_function_refuses_with_502(
    served: Served, open_socket: Callable[..., ClientConnection], mode: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        open_socket(f"/ws?convoId=c-1&{mode}=1")
    assert refused.value.response.status_code == 502
    (refused_id,) = [e["requestContext"]["connectionId"] for e in served.events("$connect")]
    assert refused_id not in served.gateway.connections


def test_a_client_that_leaves_during_connect_gets_its_disconnect(served: Served) -> None:
    with pytest.raises(TimeoutError):
        connect(f"{served.ws_url}/ws?convoId=c-1&sleep=0.5", open_timeout=0.1)
    (connect_event,) = served.events("$connect")
    connection_id = connect_event["requestContext"]["connectionId"]
    event = served.wait_for("$disconnect", connection_id)
    assert event["requestContext"]["disconnectStatusCode"] == 1006
    assert connection_id not in served.gateway.connections


@pytest.mark.parametrize("path", ["/elsewhere", "/", "/ws/convos", "/ws/convos/c-1/more", "/wss?convoId=c-1"])
def test_an_unknown_socket_path_is_not_found(
    served: Served, open_socket: Callable[..., ClientConnection], path: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        open_socket(path)
    assert refused.value.response.status_code == 404
    assert json.loads(refused.value.response.body)["code"] == "not_found"
    assert served.events("$connect") == []  # no function ran


# ---------------------------------------------------------------------- messages


def test_messages_are_routed_by_their_type(
    served: Served, open_socket: Callable[..., ClientConnection]
) -> None:
    socket_ = open_socket()
    connection_id = connection_id_of(served)
    frames = [
        ('{"type": "echo", "payload": {"n": 1}}', "echo"),
        ('{"type": "nothing-like-it"}', "$default"),
        ("not json at all", "$default"),
        ('{"type": "$disconnect"}', "$default"),
    ]
    for frame, route in frames:
        socket_.send(frame)
        assert receive(socket_) == {"route": route, "body": frame}
    message = served.events("echo")[0]
    context = message["requestContext"]
    assert context["eventType"] == "MESSAGE" and context["routeKey"] == "echo"
    assert context["connectionId"] == connection_id and context["messageId"] != context["requestId"]
    assert message["body"] == frames[0][0] and message["isBase64Encoded"] is False


def test_a_connections_messages_run_one_at_a_time_in_order(
    served: Served, open_socket: Callable[..., ClientConnection]
) -> None:
    socket_ = open_socket()
    # A slow message on one function, then quick ones on another: the quick ones wait their turn.
    send(socket_, "slow", sleep=0.3, n=0)
    for n in range(1, 20):
        send(socket_, "echo" if n % 2 else "slow", n=n)
    received = [json.loads(receive(socket_)["body"])["n"] for _ in range(20)]
    assert received == list(range(20))


def test_a_slow_handler_does_not_hold_up_other_connections(
    served: Served, open_socket: Callable[..., ClientConnection]
) -> None:
    slow, quick = open_socket(), open_socket()
    send(slow, "slow", sleep=2.0)
    send(quick, "echo")
    assert receive(quick)["route"] == "echo"
    with pytest.raises(TimeoutError):
        slow.recv(timeout=0)  # still running
    assert receive(slow)["route"] == "slow"


def test_a_failing_function_gets_api_gateways_error_and_the_socket_lives_on(
    served: Served, open_socket: Callable[..., ClientConnection]
) -> None:
    socket_ = open_socket()
    connection_id = connection_id_of(served)
    send(socket_, "boom")
    error = receive(socket_)
    assert error["message"] == "Internal server error" and error["connectionId"] == connection_id
    assert error["requestId"]
    send(socket_, "echo")
    assert receive(socket_)["route"] == "echo"


def test_without_a_default_route_an_unknown_type_is_forbidden(fakes: Any) -> None:
    routes = {key: function for key, function in ROUTES.items() if key != "$default"}
    with serve(fakes, fake_template(routes)) as served, connect(f"{served.ws_url}/ws?convoId=c") as socket_:
        connection_id = connection_id_of(served)
        send(socket_, "unknown")
        answer = receive(socket_)
        assert answer.pop("message") == "Forbidden" and answer.pop("connectionId") == connection_id
        assert re.fullmatch(r"[A-Za-z0-9]{15}=", answer.pop("requestId")) and answer == {}
        send(socket_, "echo")
        assert receive(socket_)["route"] == "echo"


@pytest.mark.parametrize(
    ("frame", "code"),
    [(b"\x00binary", 1003), ("x" * (MAX_MESSAGE_BYTES + 1), 1009)],
    ids=["binary frame", "over 128 KB"],
)
def test_frames_api_gateway_does_not_take_close_the_socket(
    served: Served, open_socket: Callable[..., ClientConnection], frame: str | bytes, code: int
) -> None:
    socket_ = open_socket(max_size=None)
    connection_id = connection_id_of(served)
    socket_.send(frame)
    with pytest.raises(ConnectionClosed) as closed:
        socket_.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code
    assert served.wait_for("$disconnect", connection_id)["requestContext"]["disconnectStatusCode"] == code
    assert served.events("$default") == []


# ---------------------------------------------------------------------- $disconnect


def test_closing_the_socket_sends_disconnect_after_the_messages_before_it(
    served: Served, open_socket: Callable[..., ClientConnection]
) -> None:
    socket_ = open_socket()
    connection_id = connection_id_of(served)
    send(socket_, "slow", sleep=0.3)
    socket_.close(code=4000, reason="bye")
    event = served.wait_for("$disconnect", connection_id)
    context = event["requestContext"]
    assert context["eventType"] == "DISCONNECT" and context["connectionId"] == connection_id
    assert context["disconnectStatusCode"] == 4000 and context["disconnectReason"] == "bye"
    assert set(event["headers"]) == {"host"}
    routes_in_order = [
        e["requestContext"]["routeKey"]
        for e in served.fakes.events
        if e["requestContext"]["connectionId"] == connection_id
    ]
    assert routes_in_order == ["$connect", "slow", "$disconnect"]
    assert connection_id not in served.gateway.connections


# ---------------------------------------------------------------------- @connections


def test_post_to_connection_sends_the_data_as_a_frame(
    served: Served, open_socket: Callable[..., ClientConnection]
) -> None:
    socket_ = open_socket()
    client, connection_id = served.management(), connection_id_of(served)
    client.post_to_connection(ConnectionId=connection_id, Data=b'{"type": "hello"}')
    assert socket_.recv(timeout=5) == '{"type": "hello"}'
    client.post_to_connection(ConnectionId=connection_id, Data='{"text": "héllo 日本"}'.encode())
    assert socket_.recv(timeout=5) == '{"text": "héllo 日本"}'
    # Data that is not UTF-8 cannot be a text frame: it goes as it is, in a binary one.
    client.post_to_connection(ConnectionId=connection_id, Data=b"\xff\x00")
    assert socket_.recv(timeout=5) == b"\xff\x00"


def test_get_connection_describes_it(served: Served, open_socket: Callable[..., ClientConnection]) -> None:
    before = time.time()
    open_socket(user_agent_header="kallo-test/2")
    info = served.management().get_connection(ConnectionId=connection_id_of(served))
    assert info["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "kallo-test/2"}
    assert before - 1 <= info["ConnectedAt"].timestamp() <= info["LastActiveAt"].timestamp() <= time.time()


def test_delete_connection_closes_the_socket(
    served: Served, open_socket: Callable[..., ClientConnection]
) -> None:
    socket_ = open_socket()
    connection_id = connection_id_of(served)
    client = served.management()
    client.delete_connection(ConnectionId=connection_id)
    with pytest.raises(ConnectionClosed):
        socket_.recv(timeout=5)
    assert served.wait_for("$disconnect", connection_id)["requestContext"]["disconnectStatusCode"] == 1000
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId=connection_id, Data=b"late")


@pytest.mark.parametrize("operation", ["post_to_connection", "get_connection", "delete_connection"])
def test_an_unknown_connection_is_gone(served: Served, operation: str) -> None:
    client = served.management()
    arguments: dict[str, Any] = {"ConnectionId": "LqTh0cPKoAMCE8Q="}
    if operation == "post_to_connection":
        arguments["Data"] = b"{}"
    with pytest.raises(client.exceptions.GoneException) as gone:
        getattr(client, operation)(**arguments)
    assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410
    assert "LqTh0cPKoAMCE8Q=" in gone.value.response["Error"]["Message"]


def test_a_closed_connection_is_gone(served: Served, open_socket: Callable[..., ClientConnection]) -> None:
    socket_ = open_socket()
    connection_id = connection_id_of(served)
    socket_.close()
    served.wait_for("$disconnect", connection_id)
    client = served.management()
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId=connection_id, Data=b"{}")


def test_data_over_128_kb_is_payload_too_large(
    served: Served, open_socket: Callable[..., ClientConnection]
) -> None:
    socket_ = open_socket(max_size=None)
    connection_id = connection_id_of(served)
    client = served.management()
    with pytest.raises(client.exceptions.PayloadTooLargeException) as too_large:
        client.post_to_connection(ConnectionId=connection_id, Data=b"x" * (MAX_MESSAGE_BYTES + 1))
    assert too_large.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    client.post_to_connection(ConnectionId=connection_id, Data=b"y" * MAX_MESSAGE_BYTES)
    assert socket_.recv(timeout=5) == "y" * MAX_MESSAGE_BYTES


def test_kallo_realtime_reaches_the_sockets_through_the_gateway(
    served: Served, open_socket: Callable[..., ClientConnection], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The functions' own broadcast code, pointed at the gateway the way the local stack points it."""
    monkeypatch.setenv(
        ws_gateway.MANAGEMENT_ENDPOINT_VARIABLE, f"{served.base_url}{ws_gateway.MANAGEMENT_PATH}"
    )
    get_settings.cache_clear()
    realtime.reset()
    try:
        socket_ = open_socket()
        connection_id = connection_id_of(served)
        assert realtime.send(connection_id, "convoStatus", {"status": "idle"}, "r-1") is True
        assert receive(socket_) == {"type": "convoStatus", "payload": {"status": "idle"}, "requestId": "r-1"}
        assert realtime.send("LqTh0cPKoAMCE8Q=", "convoStatus", {"status": "idle"}) is False
    finally:
        get_settings.cache_clear()
        realtime.reset()
