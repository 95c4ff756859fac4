"""The local stack over real HTTP: the gateway, the authorizer and the functions together, as a client
of the deployed API would see them."""

from __future__ import annotations

import importlib
import re
import signal
import subprocess
import sys
import time
import uuid
from urllib.parse import urljoin, urlsplit

import pytest

from local import template
from tests.e2e.conftest import ROOT, OidcIssuer, RunningStack, start_stack

pytestmark = pytest.mark.e2e

UNAUTHORIZED = {"code": "unauthorized", "message": "valid credentials are required"}
NOT_FOUND = {"code": "not_found", "message": "no such operation"}


def api_key_headers(stack: RunningStack) -> dict[str, str]:
    return {"x-api-key": stack.api_key}


def test_health_needs_no_credentials(stack: RunningStack) -> None:
    response = stack.client.get("/health/core-api")
    assert response.status_code == 200
    assert response.json()["apiName"] == "core-api" and response.json()["status"] == "ok"
    assert uuid.UUID(response.headers["x-amzn-requestid"])


def test_health_of_an_unknown_api_is_a_client_error(stack: RunningStack) -> None:
    response = stack.client.get("/health/no-such-api")
    assert 400 <= response.status_code < 500
    assert {"code", "message"} <= set(response.json())


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-api-key": "kallo_not_a_key_we_issued"}, {"x-api-key": "short"}, {"authorization": "Basic abc"}],
    ids=["none", "unknown key", "malformed key", "not bearer"],
)
def test_bad_or_missing_credentials_get_the_gateway_401(stack: RunningStack, headers: dict[str, str]) -> None:
    response = stack.client.post("/teams", json={"name": "T"}, headers=headers)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert response.headers["access-control-allow-origin"] == "*"


def test_create_a_team_with_the_bootstrap_key(stack: RunningStack) -> None:
    response = stack.client.post("/teams", json={"name": "  E2E team "}, headers=api_key_headers(stack))
    assert response.status_code == 201, response.text
    team = response.json()
    assert team["name"] == "E2E team"
    assert uuid.UUID(team["id"]) and uuid.UUID(team["createdBy"])


def test_invalid_team_is_refused_with_a_json_error(stack: RunningStack) -> None:
    response = stack.client.post("/teams", json={"name": ""}, headers=api_key_headers(stack))
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


def test_malformed_json_is_a_400(stack: RunningStack) -> None:
    headers = {**api_key_headers(stack), "content-type": "application/json"}
    response = stack.client.post("/teams", content=b'{"name": ', headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


def test_an_oidc_id_token_reaches_the_function(stack: RunningStack) -> None:
    """A valid ID token passes the authorizer; the function then sees an identity with no user yet."""
    token = stack.mint_id_token(f"firebase-{uuid.uuid4()}")
    response = stack.client.post("/teams", json={"name": "T"}, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "user_not_registered"


@pytest.mark.parametrize(
    "claims",
    [{"aud": "someone-else"}, {"exp": int(time.time()) - 60}, {"iss": "https://unknown.example"}],
    ids=["wrong audience", "expired", "unknown issuer"],
)
def test_a_bad_id_token_is_refused(stack: RunningStack, claims: dict) -> None:
    token = stack.mint_id_token("someone", **claims)
    response = stack.client.post("/teams", json={"name": "T"}, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_cors_preflight_answers_with_the_template_headers(stack: RunningStack) -> None:
    cors = template.load()["Resources"]["RestApi"]["Properties"]["Cors"]
    response = stack.client.options(
        "/teams", headers={"origin": "https://app.example", "access-control-request-method": "POST"}
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == cors["AllowOrigin"].strip("'")
    assert response.headers["access-control-allow-methods"] == cors["AllowMethods"].strip("'")
    assert response.headers["access-control-allow-headers"] == cors["AllowHeaders"].strip("'")
    assert response.headers["access-control-max-age"] == cors["MaxAge"].strip("'")


@pytest.mark.parametrize(("method", "path"), [("GET", "/no/such/thing"), ("DELETE", "/health/core-api")])
def test_unknown_operations_are_404(stack: RunningStack, method: str, path: str) -> None:
    response = stack.client.request(method, path, headers=api_key_headers(stack))
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_a_body_over_10_mb_is_refused(stack: RunningStack) -> None:
    body = b'{"name": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    headers = {**api_key_headers(stack), "content-type": "application/json"}
    response = stack.client.post("/teams", content=body, headers=headers)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_openapi_lists_every_operation_whose_handler_exists(stack: RunningStack) -> None:
    document = stack.client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1") and document["info"]["title"] == "Kallo API"
    present = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    routes = template.rest_routes(template.load())
    # Other operations may be mid-way through being written: hold the stack to those that import. The
    # compatibility surfaces are peer APIs, documented in docs/COMPATIBILITY.md, not here; the documents'
    # own routes (docs.app) serve the document, and the console's (console.app) static files.
    servable = [
        r
        for r in routes
        if _importable(r.handler.rpartition(".")[0])
        and not r.handler.startswith(("compat.", "docs.", "console."))
    ]
    assert {"CreateTeamFunction", "HealthCheckFunction"} <= {r.function for r in servable}
    assert {(r.method, r.path) for r in servable} <= present
    health = document["paths"]["/health/{apiName}"]["get"]
    assert health["security"] == []
    assert "401" in document["paths"]["/teams"]["post"]["responses"]
    assert {"ApiKeyAuth", "AccessTokenAuth", "FirebaseAuth"} <= set(document["components"]["securitySchemes"])


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except Exception:
        return False
    return True


def test_the_docs_page_loads_nothing_from_another_origin(stack: RunningStack) -> None:
    """/docs is served by the documents' function through the gateway, as on a deployed stack: every
    src and href of the page is relative or on the stack's own origin, and each one answers."""
    response = stack.client.get("/docs")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page = f"{stack.base_url}/docs"
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", response.text)
    assert "docs/swagger-ui-bundle.js" in urls and "openapi.json" in urls
    for url in [u for u in urls if not u.startswith("data:")]:  # the empty icon: nothing to fetch
        resolved = urljoin(page, url)
        assert urlsplit(resolved)[:2] == urlsplit(stack.base_url)[:2], url
        assert stack.client.get(resolved).status_code == 200, url
    for name in ("openapi.json", "asyncapi.json"):
        assert stack.client.get(f"/{name}").text == (ROOT / "docs" / name).read_text()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_stack_cleanly(oidc_issuer: OidcIssuer, sig: signal.Signals) -> None:
    with start_stack(oidc_issuer, KALLO_API_KEY="kallo_e2e_second_stack_key") as second:
        assert (
            second.client.post("/teams", json={"name": "T"}, headers=api_key_headers(second)).status_code
            == 201
        )
        assert second.stop(sig) == 0
        assert "Kallo local stack stopped." in second.output()
        assert "Traceback" not in second.output()


def test_a_generated_key_is_printed_and_works(oidc_issuer: OidcIssuer) -> None:
    with start_stack(oidc_issuer, KALLO_API_KEY="") as third:
        # The banner is printed as the server starts accepting: give it a moment to land in the log.
        deadline = time.monotonic() + 5
        while "API key" not in third.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        printed = [
            line.split()[-1] for line in third.output().splitlines() if line.strip().startswith("API key")
        ]
        assert len(printed) == 1 and printed[0].startswith("kallo_")
        response = third.client.post("/teams", json={"name": "T"}, headers={"x-api-key": printed[0]})
        assert response.status_code == 201
        assert third.stop() == 0


def test_an_invalid_kallo_api_key_is_refused_at_start() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "local"],
        cwd=ROOT,
        env={"KALLO_API_KEY": "not-a-kallo-key", "PATH": "", "PORT": "0"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "KALLO_API_KEY" in result.stderr and "kallo_" in result.stderr
