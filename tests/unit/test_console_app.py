"""The console's function (sites/console/console/app.py): static files, config.json with the WebSocket
URL, the headers every response carries, and the same answers through Lambda (Mangum) for API
Gateway's proxy events."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest
from console import app as console
from starlette.testclient import TestClient

from tests.support.api import LambdaContext

EVENT = json.loads((Path(__file__).parents[2] / "events" / "console" / "app.json").read_text())
DEPLOYED = "wss://abc123.execute-api.eu-west-1.amazonaws.com/v1"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv(console.WEBSOCKET_URL_VARIABLE, DEPLOYED)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return TestClient(console.app, base_url="https://api.example.com")


def test_config_names_the_websocket_api(client: TestClient) -> None:
    response = client.get("/console/config.json")
    assert response.status_code == 200 and response.json() == {"webSocketUrl": DEPLOYED}


def test_a_path_is_resolved_on_the_pages_own_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(console.WEBSOCKET_URL_VARIABLE, "/ws")
    local = TestClient(console.app, base_url="http://192.0.2.7:3000")
    assert local.get("/console/config.json").json() == {"webSocketUrl": "ws://192.0.2.7:3000/ws"}
    secure = TestClient(console.app, base_url="https://console.example.com")
    assert secure.get("/console/config.json").json() == {"webSocketUrl": "wss://console.example.com/ws"}


def test_the_page_and_its_modules_are_served_with_a_strict_policy(client: TestClient) -> None:
    page = client.get("/console/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="js/main.js">' in page.text
    policy = page.headers["content-security-policy"]
    assert (
        "script-src 'self';" in policy and "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    )
    assert f"connect-src 'self' {DEPLOYED} https:;" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    for path in ("js/main.js", "js/api.js", "js/markdown.js", "vendor/marked.min.js", "vendor/purify.min.js"):
        module = client.get(f"/console/{path}")
        assert module.status_code == 200 and "javascript" in module.headers["content-type"], path


def test_the_folder_without_its_slash_redirects_relatively(client: TestClient) -> None:
    # Relative: behind a stage (/prod/console) the browser lands on /prod/console/.
    response = client.get("/console", follow_redirects=False)
    assert response.status_code == 301 and response.headers["location"] == "console/"


@pytest.mark.parametrize("path", ["/console/missing.js", "/console/../app.py", "/console/%2e%2e/app.py"])
def test_only_the_static_folder_is_served(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_through_lambda_a_proxy_event_gets_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(console.WEBSOCKET_URL_VARIABLE, DEPLOYED)
    result = console.lambda_handler(copy.deepcopy(EVENT), LambdaContext())
    assert result["statusCode"] == 200
    body = base64.b64decode(result["body"]) if result["isBase64Encoded"] else result["body"].encode()
    assert json.loads(body) == {"webSocketUrl": DEPLOYED}
    event = {**copy.deepcopy(EVENT), "path": "/console/js/main.js", "pathParameters": {"proxy": "js/main.js"}}
    script = console.lambda_handler(event, LambdaContext())
    assert script["statusCode"] == 200 and "javascript" in script["headers"]["content-type"]
    assert "content-security-policy" in script["headers"]
