"""The adversarial suite: attacks on the invariants of SECURITY.md (I1-I11), over the real local stack
(`python -m local` in a subprocess, real HTTP and WebSockets), written from the attacker's side.

The world, one stack for the session (`stack`):
- the stack trusts two OpenID Connect issuers (`issuer_one`, `issuer_two`, `tests.support.oidc`), so
  an attacker can present the same `sub` at both, and `email_verified` as a string;
- two tenants, A and B (`tenant_a`, `tenant_b`; `make_tenant` makes more), each a service account
  made with `tools.admin` against the stack's embedded AWS, with its own user (by email), team, topic,
  convo with a step, prompt, uploaded document (a secret word in it), a pending invitation, and
  tokens: whole-user, convo-scoped and topic-scoped;
- the credential cache is 1 s, so a revocation is due within a second or two;
- `openai:` models are answered by a failing provider on loopback (`FailingProvider`), whose 500s carry
  internal details that no step error may repeat.

Modules: `test_invariants.py` (one attack or more per invariant and each numbered finding of the
issue, `test_i<N>_...`), `test_cross_tenant_matrix.py` (every id-taking REST operation of
docs/openapi.json and every WebSocket message naming an id, called by tenant B with A's ids),
`test_quotas.py` (a stack of its own with low limits), `test_fuzz.py` (schemathesis, bounded and
seeded; `bench/fuzz.py` is the long run). Every test is marked `e2e` and `security`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.e2e import Connect, WsClient, start_stack, ws_opener
from tests.support.local_stack import RunningStack
from tests.support.oidc import OidcIssuer
from tests.support.tenants import SHARED_WORD, Api, Tenant, bearer, make_tenant, mint, until, write_step

__all__ = [
    "SHARED_WORD",
    "UPSTREAM_DETAIL",
    "Api",
    "Connect",
    "Tenant",
    "WsClient",
    "bearer",
    "make_tenant",
    "mint",
    "until",
    "write_step",
]

AUDIENCE = "kallo-security"
# Requests a principal may make in a minute (the cost settings' KALLO_REQUESTS_PER_MINUTE): high on the
# session's stack, whose tests make hundreds of calls as one principal; test_quotas lowers it.
SESSION_ENVIRONMENT = {"KALLO_CREDENTIAL_CACHE_SECONDS": "1", "KALLO_REQUESTS_PER_MINUTE": "100000"}
# What the failing LLM provider (`failing_provider`) puts in its answers: no step error may repeat it.
UPSTREAM_DETAIL = "upstream-internal-detail-7f3a"


class FailingProvider:
    """An OpenAI-compatible endpoint on loopback that answers every request with a 500 whose body holds
    internal details, so a step answered by `openai:<model>` fails the way a broken provider fails."""

    def __init__(self) -> None:
        body = f'{{"error": {{"message": "{UPSTREAM_DETAIL}: shard db-7 at 10.0.0.7 is down"}}}}'.encode()

        class Failing(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.send_response(500)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def issuer_one() -> Iterator[OidcIssuer]:
    issuer = OidcIssuer("https://one.issuer.security.kallo.test", AUDIENCE, "one-key-1")
    yield issuer
    issuer.close()


@pytest.fixture(scope="session")
def issuer_two() -> Iterator[OidcIssuer]:
    issuer = OidcIssuer("https://two.issuer.security.kallo.test", AUDIENCE, "two-key-1")
    yield issuer
    issuer.close()


@pytest.fixture(scope="session")
def failing_provider() -> Iterator[FailingProvider]:
    provider = FailingProvider()
    yield provider
    provider.close()


@pytest.fixture(scope="session")
def stack(
    issuer_one: OidcIssuer, issuer_two: OidcIssuer, failing_provider: FailingProvider
) -> Iterator[RunningStack]:
    """The suite's stack, trusting both issuers, its `openai:` models answered by `failing_provider`; it
    must stop on SIGTERM with exit code 0."""
    environment = {
        **SESSION_ENVIRONMENT,
        "KALLO_OPENAI_BASE_URL": failing_provider.base_url,
        "KALLO_OPENAI_API_KEY": "sk-local-test-key",
    }
    with start_stack(issuer_one, more_issuers=(issuer_two,), **environment) as running:
        yield running
        code = running.stop(signal.SIGTERM)
        assert code == 0, f"the stack exited with {code} on SIGTERM:\n{running.output()}"


@pytest.fixture(scope="session")
def tenant_a(stack: RunningStack) -> Tenant:
    return make_tenant(stack, "a")


@pytest.fixture(scope="session")
def tenant_b(stack: RunningStack) -> Tenant:
    return make_tenant(stack, "b")


@pytest.fixture
def ws_connect(stack: RunningStack) -> Iterator[Connect]:
    """Opens WebSocket connections to the suite's stack; every one is closed at the end of the test."""
    with ws_opener(stack) as open_:
        yield open_
