"""The REST gateway's translation of HTTP to API Gateway events and back, against fake functions that
record what they receive, with the real template's API configuration (CORS, binary media types,
authorizer, gateway responses)."""

from __future__ import annotations

import base64
import copy
import json
import logging
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.testclient import TestClient

from local import http_gateway, runtime, template
from local.http_gateway import RestGateway, authorizer_context, policy_allows, proxy_response
from tests.support.fakes import importable_module

FAKES = "local_gateway_fakes"
FAKE_FUNCTIONS = textwrap.dedent(
    '''
    """Fake functions for the gateway tests: each remembers the last event and context it got."""
    import json

    calls = {}


    def _remember(name, event, context):
        calls[name] = {"event": event, "context": context, "remaining": context.get_remaining_time_in_millis()}


    def authorizer(event, context):
        _remember("authorizer", event, context)
        mode = (event["headers"] or {}).get("x-test-auth", "allow")
        if mode == "refuse":
            raise Exception("Unauthorized")
        if mode == "crash":
            raise RuntimeError("the authorizer is broken")
        resource = event["methodArn"] if mode != "elsewhere" else "arn:aws:execute-api:*:*:*/v1/GET/elsewhere"
        context_ = {"scheme": "api_key", "isServiceAccount": True, "count": 3}
        if mode == "nested":
            context_["nested"] = {"not": "allowed"}
        effect = "Deny" if mode == "deny" else "Allow"
        return {
            "principalId": "user-1",
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
            },
            "context": context_,
        }


    def echo(event, context):
        _remember("echo", event, context)
        return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps({"ok": True})}


    def stats(event, context):
        _remember("stats", event, context)
        return {"statusCode": 204, "body": ""}


    def boom(event, context):
        raise ValueError("a bug")


    def malformed(event, context):
        return "not a proxy response"


    async def _surface_app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": f"asgi {scope['path']}".encode(), "more_body": True})
        await send({"type": "http.response.body", "body": b" streamed"})


    def surface(event, context):
        return {"statusCode": 200, "body": "buffered"}


    surface.asgi_app = _surface_app


    def binary(event, context):
        return {
            "statusCode": 200,
            "headers": {"content-type": "image/png", "set-cookie": "a=1"},
            "multiValueHeaders": {"set-cookie": ["a=1", "b=2"]},
            "body": "iVBORw0K",
            "isBase64Encoded": True,
        }
    '''
)


def _function(handler: str, path: str, method: str, *, public: bool = False) -> dict[str, Any]:
    event: dict[str, Any] = {"Path": path, "Method": method, "RestApiId": {"Ref": "RestApi"}}
    if public:
        event["Auth"] = {"Authorizer": "NONE"}
    return {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "Handler": f"{FAKES}.{handler}",
            "Events": {"Api": {"Type": "Api", "Properties": event}},
        },
    }


def fake_template() -> dict[str, Any]:
    real = template.load()
    return {
        "Parameters": real["Parameters"],
        "Globals": {"Function": {"CodeUri": "functions/", "Timeout": 10, "MemorySize": 256}},
        "Resources": {
            "RestApi": copy.deepcopy(real["Resources"]["RestApi"]),
            "AuthorizerFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"Handler": f"{FAKES}.authorizer"},
            },
            "EchoFunction": _function("echo", "/things/{thingId}", "post"),
            "StatsFunction": _function("stats", "/things/stats", "get"),
            "PublicFunction": _function("echo", "/public", "get", public=True),
            "BoomFunction": _function("boom", "/boom", "get"),
            "MalformedFunction": _function("malformed", "/malformed", "get"),
            "BinaryFunction": _function("binary", "/binary", "get"),
            "ProxyFunction": _function("echo", "/things/{thingId}/{proxy+}", "any"),
            "SurfaceFunction": _function("surface", "/surface/{proxy+}", "any", public=True),
            "PrivateSurfaceFunction": _function("surface", "/private-surface/{proxy+}", "any"),
        },
    }


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with importable_module(tmp_path_factory.mktemp("functions"), FAKES, FAKE_FUNCTIONS) as module:
        yield module


@pytest.fixture
def client(fakes: Any) -> Iterator[TestClient]:
    fakes.calls.clear()
    template_ = fake_template()
    gateway = RestGateway(template_, template.Resolver(template_, {}), runtime.load_functions(template_))
    app = Starlette(routes=gateway.routes(), middleware=[Middleware(http_gateway.AccessLog)])
    with TestClient(app, base_url="http://127.0.0.1:3000") as test_client:
        yield test_client


def test_proxy_event_is_what_api_gateway_sends(client: TestClient, fakes: Any) -> None:
    before = int(time.time() * 1000)
    response = client.post(
        "/things/abc?x=1&x=2&flag",
        content='{"name": "é"}',
        headers=[("content-type", "application/json"), ("x-multi", "a"), ("x-multi", "b")],
    )
    assert response.status_code == 200 and response.json() == {"ok": True}
    event = fakes.calls["echo"]["event"]
    assert event["resource"] == "/things/{thingId}"
    assert event["path"] == "/things/abc"
    assert event["httpMethod"] == "POST"
    assert event["pathParameters"] == {"thingId": "abc"}
    assert event["queryStringParameters"] == {"x": "2", "flag": ""}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "flag": [""]}
    assert event["headers"]["content-type"] == "application/json"
    assert event["headers"]["x-multi"] == "b"
    assert event["multiValueHeaders"]["x-multi"] == ["a", "b"]
    assert event["stageVariables"] is None
    assert event["body"] == '{"name": "é"}' and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["resourcePath"] == "/things/{thingId}"
    assert context["httpMethod"] == "POST"
    assert context["path"] == "/v1/things/abc" and context["stage"] == "v1"
    assert context["requestId"] == response.headers["x-amzn-requestid"]
    assert uuid.UUID(context["requestId"])
    assert before <= context["requestTimeEpoch"] <= int(time.time() * 1000)
    assert context["identity"]["sourceIp"]
    # Authorizer context values reach the function as strings, as API Gateway passes them.
    assert context["authorizer"] == {
        "principalId": "user-1",
        "scheme": "api_key",
        "isServiceAccount": "true",
        "count": "3",
    }


def test_the_function_gets_a_lambda_context(client: TestClient, fakes: Any) -> None:
    response = client.post("/things/abc")
    call = fakes.calls["echo"]
    context = call["context"]
    assert context.function_name == "EchoFunction"
    assert context.memory_limit_in_mb == 256
    assert context.invoked_function_arn.endswith(":function:kallo-local-EchoFunction")
    assert context.aws_request_id == response.headers["x-amzn-requestid"]
    assert 9_000 < call["remaining"] <= 10_000


def test_the_authorizer_gets_a_request_authorizer_event(client: TestClient, fakes: Any) -> None:
    client.post("/things/abc?q=1", headers={"x-api-key": "kallo_whatever_1234"})
    event = fakes.calls["authorizer"]["event"]
    assert event["type"] == "REQUEST"
    assert event["methodArn"] == "arn:aws:execute-api:us-east-1:123456789012:local/v1/POST/things/abc"
    assert event["resource"] == "/things/{thingId}" and event["path"] == "/things/abc"
    assert event["httpMethod"] == "POST"
    assert event["headers"]["x-api-key"] == "kallo_whatever_1234"
    assert event["queryStringParameters"] == {"q": "1"}
    assert event["pathParameters"] == {"thingId": "abc"}
    assert "authorizer" not in event["requestContext"]
    assert fakes.calls["authorizer"]["context"].function_name == "AuthorizerFunction"


def test_an_empty_request_has_null_body_query_and_no_authorizer_on_a_public_route(
    client: TestClient, fakes: Any
) -> None:
    client.get("/public")
    event = fakes.calls["echo"]["event"]
    assert event["body"] is None and event["isBase64Encoded"] is False
    assert event["queryStringParameters"] is None and event["multiValueQueryStringParameters"] is None
    assert event["pathParameters"] is None
    assert "authorizer" not in event["requestContext"]
    assert "authorizer" not in fakes.calls


def test_a_literal_path_wins_over_a_parameter(client: TestClient, fakes: Any) -> None:
    assert client.get("/things/stats").status_code == 204
    assert fakes.calls["stats"]["event"]["resource"] == "/things/stats"


@pytest.mark.parametrize("mode", ["refuse", "deny", "elsewhere"])
def test_refused_credentials_get_the_templates_401(client: TestClient, fakes: Any, mode: str) -> None:
    response = client.post("/things/abc", headers={"x-test-auth": mode})
    assert response.status_code == 401
    assert response.json() == {"code": "unauthorized", "message": "valid credentials are required"}
    assert response.headers["access-control-allow-origin"] == "*"
    assert "echo" not in fakes.calls


@pytest.mark.parametrize("mode", ["crash", "nested"])
def test_a_broken_authorizer_is_a_500(client: TestClient, mode: str) -> None:
    response = client.post("/things/abc", headers={"x-test-auth": mode})
    assert response.status_code == 500
    assert response.json() == {"code": "internal_error", "message": "internal error"}


@pytest.mark.parametrize("path", ["/boom", "/malformed"])
def test_a_failing_function_is_a_502(client: TestClient, path: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="local"):
        response = client.get(path)
    assert response.status_code == 502
    assert response.json() == {"code": "internal_error", "message": "internal error"}
    assert any(path.strip("/").capitalize() in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("method", "path"), [("GET", "/nowhere"), ("DELETE", "/things/abc"), ("GET", "/")])
def test_unknown_operations_are_the_templates_404(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "no such operation"}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_a_greedy_path_takes_any_method_and_the_rest_of_the_path(
    client: TestClient, fakes: Any, method: str
) -> None:
    response = client.request(method, "/things/t1/a/b/c", headers={"authorization": "Bearer x"})
    assert response.status_code == 200
    event = fakes.calls["echo"]["event"]
    assert event["resource"] == "/things/{thingId}/{proxy+}"
    assert event["httpMethod"] == method
    assert event["pathParameters"] == {"thingId": "t1", "proxy": "a/b/c"}


def test_a_path_of_its_own_wins_over_a_greedy_one(client: TestClient, fakes: Any) -> None:
    client.post("/things/t1", headers={"authorization": "Bearer x"})
    assert fakes.calls["echo"]["event"]["resource"] == "/things/{thingId}"


def test_a_public_asgi_function_is_served_by_its_app_streaming(client: TestClient, fakes: Any) -> None:
    response = client.post("/surface/x/y")
    assert response.status_code == 200
    assert response.text == "asgi /surface/x/y streamed"


def test_an_authorized_route_of_an_asgi_function_still_goes_through_the_authorizer(
    client: TestClient, fakes: Any
) -> None:
    response = client.get("/private-surface/x", headers={"x-test-auth": "refuse"})
    assert response.status_code == 401
    response = client.get("/private-surface/x", headers={"authorization": "Bearer x"})
    assert response.text == "buffered"


def test_cors_preflight_is_answered_from_the_template(client: TestClient, fakes: Any) -> None:
    response = client.options("/things/abc", headers={"origin": "https://app.example"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-methods"] == "GET,POST,PUT,PATCH,DELETE,OPTIONS"
    assert response.headers["access-control-allow-headers"] == "authorization,content-type,x-api-key"
    assert response.headers["access-control-max-age"] == "600"
    assert "authorizer" not in fakes.calls
    assert client.options("/nowhere").status_code == 404


def test_cors_without_allow_methods_lists_the_paths_methods() -> None:
    cors = http_gateway.Cors.from_api({"Cors": {"AllowOrigin": "'https://app.example'"}})
    assert cors is not None
    response = cors.preflight(["POST", "GET"])
    assert response.headers["access-control-allow-methods"] == "GET,OPTIONS,POST"
    assert response.headers["access-control-allow-origin"] == "https://app.example"


def test_a_binary_media_type_body_is_base64(client: TestClient, fakes: Any) -> None:
    raw = b"--x\r\ncontent-disposition: form-data; name=file\r\n\r\n\xff\xfe\r\n--x--\r\n"
    client.post("/things/abc", content=raw, headers={"content-type": "multipart/form-data; boundary=x"})
    event = fakes.calls["echo"]["event"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


def test_a_base64_response_is_sent_as_bytes_with_merged_headers(client: TestClient) -> None:
    response = client.get("/binary")
    assert response.content == base64.b64decode("iVBORw0K")
    assert response.headers["content-type"] == "image/png"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]


def test_a_body_over_the_quota_is_a_413(
    client: TestClient, fakes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_gateway, "MAX_PAYLOAD_BYTES", 16)
    response = client.post("/things/abc", content=b"x" * 17)
    assert response.status_code == 413
    assert response.json() == {"code": "payload_too_large", "message": "the request is too large"}
    assert client.post("/things/abc", content=b"x" * 16).status_code == 200


def test_each_request_is_logged_once(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="local"):
        client.post("/things/abc")
    lines = [r.getMessage() for r in caplog.records if r.name == "local.http_gateway"]
    assert len(lines) == 1
    assert lines[0].startswith("POST /things/abc 200 ") and lines[0].endswith("ms (EchoFunction)")


def test_the_access_log_never_writes_query_string_credentials(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="local"):
        client.post("/things/abc?token=secret-1&api_key=secret-2&x=1")
    # The gateway's lines (the test's own HTTP client logs the URL it called).
    lines = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("local"))
    assert "POST /things/abc 200" in lines
    assert "secret" not in lines


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/ws?convoId=c-1&token=secret", "/ws?convoId=c-1&token=[redacted]"),
        ("/ws/convos/c-1?token=secret", "/ws/convos/c-1?token=[redacted]"),
        (
            "GET /x?access_token=secret&api_key=secret HTTP/1.1",
            "GET /x?access_token=[redacted]&api_key=[redacted] HTTP/1.1",
        ),
        ('"WebSocket /ws?X-Api-Key=secret" 403', '"WebSocket /ws?X-Api-Key=[redacted]" 403'),
        ("/teams?nextToken=abc&limit=5", "/teams?nextToken=abc&limit=5"),
    ],
)
def test_query_string_credentials_are_redacted(line: str, expected: str) -> None:
    assert http_gateway.redact_credentials(line) == expected


@pytest.fixture
def redacting() -> Iterator[list[str]]:
    """The redaction installed as the stack installs it; what a handler of uvicorn's logger and one of
    the root logger write."""
    written: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            written.append(self.format(record))

    root, uvicorn_error = logging.getLogger(), logging.getLogger("uvicorn.error")
    root_handler, uvicorn_handler = Collect(), Collect()
    root.addHandler(root_handler)
    uvicorn_error.addHandler(uvicorn_handler)
    saved = uvicorn_error.level, uvicorn_error.propagate
    uvicorn_error.setLevel(logging.INFO)
    uvicorn_error.propagate = False
    http_gateway.redact_logged_credentials()
    yield written
    root.removeHandler(root_handler)
    uvicorn_error.removeHandler(uvicorn_handler)
    uvicorn_error.setLevel(saved[0])
    uvicorn_error.propagate = saved[1]
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).removeFilter(http_gateway._REDACT)


def test_the_stacks_log_lines_never_carry_a_token(redacting: list[str]) -> None:
    # uvicorn's own line for a socket (written at INFO, should the level ever be raised).
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]', "127.0.0.1:50000", "/ws?convoId=c-1&token=secret-1"
    )
    try:
        raise ValueError("cannot open /ws?token=secret-2")
    except ValueError:
        logging.getLogger("local.ws_gateway").exception("connect of %s failed", "/ws?token=secret-3")
    text = "\n".join(redacting)
    assert "/ws?convoId=c-1&token=[redacted]" in text and "ValueError" in text
    assert "secret" not in text


def test_policy_evaluation() -> None:
    arn = "arn:aws:execute-api:us-east-1:123456789012:local/v1/GET/teams/1"

    def policy(*statements: tuple[str, str]) -> dict[str, Any]:
        return {
            "Statement": [{"Action": "execute-api:Invoke", "Effect": e, "Resource": r} for e, r in statements]
        }

    assert policy_allows(policy(("Allow", arn)), arn)
    assert policy_allows(policy(("Allow", "arn:aws:execute-api:us-east-1:*:local/v1/*")), arn)
    assert policy_allows({"Statement": {"Action": "*", "Effect": "Allow", "Resource": ["*"]}}, arn)
    assert not policy_allows(policy(("Allow", "*"), ("Deny", "*/GET/teams/*")), arn)
    assert not policy_allows(policy(("Allow", "*/POST/*")), arn)
    assert not policy_allows(policy(), arn)


def test_authorizer_context_refuses_what_api_gateway_refuses() -> None:
    assert authorizer_context({"principalId": "p", "context": {"f": 1.5, "b": False}}) == {
        "f": "1.5",
        "b": "false",
        "principalId": "p",
    }
    with pytest.raises(ValueError):
        authorizer_context({"principalId": "p", "context": {"list": [1]}})
    with pytest.raises(KeyError):
        authorizer_context({"context": {}})


@pytest.mark.parametrize(
    "result",
    [
        None,
        "x",
        {},
        {"statusCode": "abc"},
        {"statusCode": 200, "body": {}},
        {"statusCode": 200, "body": "!", "isBase64Encoded": True},
    ],
)
def test_malformed_proxy_responses_are_refused(result: Any) -> None:
    with pytest.raises(ValueError):
        proxy_response(result)


def test_a_proxy_response_without_content_type_is_json() -> None:
    response = proxy_response({"statusCode": 200, "body": json.dumps([1])})
    assert response.headers["content-type"] == "application/json"
    assert proxy_response({"statusCode": 204}).headers.get("content-type") is None


def test_the_gateway_reads_the_real_template() -> None:
    real = template.load()
    gateway = RestGateway(real, template.Resolver(real, {}), runtime.load_functions(real))
    assert gateway.stage == "v1"
    assert gateway.binary_media_types == ["multipart/form-data"]
    assert gateway.authorizer is not None and gateway.authorizer.logical_id == "AuthorizerFunction"
    routes = template.rest_routes(real)
    assert sum(len(methods) for methods in gateway.operations.values()) == len(routes)
    assert Path(template.ROOT / "functions") in runtime.code_paths(real)
