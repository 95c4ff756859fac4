"""What every compatibility surface shares (`kallo.surfaces`): one error shape, bounded JSON input, Kallo
credentials counted like the authorizer counts them, event streams, and the Mangum entry point."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.routing import Route
from starlette.testclient import TestClient

from kallo import surfaces
from kallo.errors import NotFound, TooManyRequests
from kallo.settings import get_settings
from tests.support.api import call_surface
from tests.support.world import make_service_account

MODULE = "surface_under_test"
RESOURCE = "/demo/{proxy+}"


class Greeting(BaseModel):
    name: str = Field(min_length=1)
    times: int = 1


@surfaces.endpoint(body=Greeting)
def greet(request: Request, body: Greeting) -> dict[str, Any]:
    return {"hello": [body.name] * body.times}


@surfaces.endpoint()
def hidden(request: Request, body: None) -> dict[str, Any]:
    raise NotFound("conversation c1 not found")


@surfaces.endpoint()
def busy(request: Request, body: None) -> dict[str, Any]:
    raise TooManyRequests("slow down", retry_after=7)


@surfaces.endpoint()
def broken(request: Request, body: None) -> dict[str, Any]:
    raise RuntimeError("secret detail of a bug")


@surfaces.endpoint()
def who(request: Request, body: None) -> dict[str, Any]:
    return {"userId": surfaces.kallo_access(request).principal.user_id}


@surfaces.endpoint()
def stream(request: Request, body: None) -> Any:
    return surfaces.sse([{"n": 1}, ("done", {"n": 2})])


APP = surfaces.create_surface(
    [
        Route("/demo/greet", greet, methods=["POST"]),
        Route("/demo/hidden", hidden),
        Route("/demo/busy", busy),
        Route("/demo/broken", broken),
        Route("/demo/who", who),
        Route("/demo/stream", stream),
    ]
)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(APP, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def handler_module(monkeypatch: pytest.MonkeyPatch) -> str:
    module = types.ModuleType(MODULE)
    module.lambda_handler = surfaces.lambda_handler_for_asgi(APP)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, MODULE, module)
    return MODULE


def test_a_body_is_validated_and_the_answer_is_json(client: TestClient) -> None:
    response = client.post("/demo/greet", json={"name": "Ada", "times": 2})
    assert response.status_code == 200
    assert response.json() == {"hello": ["Ada", "Ada"]}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("{not json", 400, "malformed_json"),
        ("[" * 100 + "]" * 100, 400, "malformed_json"),
        ('{"name": ""}', 422, "validation_error"),
        ("", 422, "validation_error"),  # an empty body reads as {}: `name` is missing
    ],
)
def test_bad_bodies_are_4xx_in_the_one_error_shape(
    client: TestClient, body: str, status: int, code: str
) -> None:
    response = client.post("/demo/greet", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    answer = response.json()
    assert answer["code"] == code and answer["status"] == status and answer["message"]


def test_a_validation_error_names_the_field(client: TestClient) -> None:
    answer = client.post("/demo/greet", json={"name": "Ada", "times": "many"}).json()
    assert answer["message"].startswith("times:")
    assert answer["details"][0]["loc"] == ["times"]


def test_domain_errors_keep_their_status_and_code(client: TestClient) -> None:
    response = client.get("/demo/hidden")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "conversation c1 not found", "status": 404}
    response = client.get("/demo/busy")
    assert response.status_code == 429 and response.headers["retry-after"] == "7"


def test_unknown_paths_and_methods_are_404_and_405(client: TestClient) -> None:
    assert client.get("/demo/nothing").json() == {
        "code": "not_found",
        "message": "no such resource",
        "status": 404,
    }
    response = client.get("/demo/greet")
    assert response.status_code == 405 and response.json()["code"] == "method_not_allowed"


def test_a_bug_is_a_500_that_tells_nothing(client: TestClient) -> None:
    response = client.get("/demo/broken")
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "secret" not in response.text


def test_events_stream_as_server_sent_events(client: TestClient) -> None:
    with client.stream("GET", "/demo/stream") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    assert text == 'data: {"n":1}\n\nevent: done\ndata: {"n":2}\n\n'


def test_through_api_gateway_mangum_answers_the_same(handler_module: str) -> None:
    result = call_surface(handler_module, "POST", "/demo/greet", resource=RESOURCE, body={"name": "Ada"})
    assert result.status == 200 and result.json == {"hello": ["Ada"]}
    result = call_surface(handler_module, "GET", "/demo/hidden", resource=RESOURCE)
    assert result.status == 404 and result.json["status"] == 404
    result = call_surface(handler_module, "GET", "/demo/broken", resource=RESOURCE)
    assert result.status == 500 and "secret" not in result.body


def test_through_api_gateway_a_stream_is_buffered_whole(handler_module: str) -> None:
    result = call_surface(handler_module, "GET", "/demo/stream", resource=RESOURCE)
    assert result.status == 200
    assert result.headers["content-type"].startswith("text/event-stream")
    assert [json.loads(line[6:]) for line in result.body.splitlines() if line.startswith("data: ")] == [
        {"n": 1},
        {"n": 2},
    ]


def test_the_local_stack_can_serve_the_app_itself(handler_module: str) -> None:
    assert sys.modules[handler_module].lambda_handler.asgi_app is APP


# -- Kallo credentials ------------------------------------------------------------------------------------


def test_kallo_credentials_are_required(aws: Any, client: TestClient) -> None:
    response = client.get("/demo/who")
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"
    response = client.get("/demo/who", headers={"x-api-key": "not-a-key"})
    assert response.status_code == 401


def test_a_service_accounts_key_is_its_user(aws: Any, client: TestClient) -> None:
    principal, key = make_service_account()
    assert client.get("/demo/who", headers={"x-api-key": key}).json() == {"userId": principal.user_id}


def test_requests_are_counted_against_the_callers_rate(
    aws: Any, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALLO_REQUESTS_PER_MINUTE", "2")
    get_settings.cache_clear()
    _, key = make_service_account("busy")
    _, other = make_service_account("calm")
    assert [client.get("/demo/who", headers={"x-api-key": key}).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
    response = client.get("/demo/who", headers={"x-api-key": key})
    assert response.json()["code"] == "throttled" and int(response.headers["retry-after"]) > 0
    assert client.get("/demo/who", headers={"x-api-key": other}).status_code == 200


def test_surfaces_are_found_by_their_path_prefix() -> None:
    combined = surfaces.by_prefix({"/demo": APP, "/other": surfaces.create_surface([])})
    with TestClient(combined) as client:
        assert client.post("/demo/greet", json={"name": "Ada"}).json() == {"hello": ["Ada"]}
        assert client.get("/other/x").json()["code"] == "not_found"
        assert client.get("/demonstration").json() == {
            "code": "not_found",
            "message": "no such resource",
            "status": 404,
        }


def test_the_streaming_function_serves_every_surface() -> None:
    """compat.streaming is what the Function URL runs (uvicorn under the Lambda Web Adapter)."""
    from compat import streaming

    with TestClient(streaming.app) as client:
        for method, path in [
            ("GET", "/dify/v1/parameters?user=u"),
            ("POST", "/gloo/ai/v1/message/kallm"),
            ("GET", "/pieces/conversations/identifiers"),
        ]:
            answer = client.request(method, path, json={"query": "hi"} if method == "POST" else None).json()
            assert (answer["status"], answer["code"]) == (401, "unauthorized"), path
        assert client.get("/elsewhere").status_code == 404
