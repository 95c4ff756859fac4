"""The adversarial suite: attacks on the invariants of SECURITY.md (I1-I11), over the real local stack
(`python -m local` in a subprocess, real HTTP and WebSockets), written from the attacker's side.

The world, one stack for the session (`stack`):
- the stack trusts two OpenID Connect issuers (`issuer_one`, `issuer_two`, `tests.support.oidc`), so
  an attacker can present the same `sub` at both, and `email_verified` as a string;
- two tenants, A and B (`tenant_a`, `tenant_b`; `make_tenant` makes more), each a service account
  made with `tools.admin` against the stack's embedded AWS, with its own user (by email), team, topic,
  convo with a step, prompt, uploaded document (a secret word in it), a pending invitation, and
  tokens: whole-user, convo-scoped and topic-scoped;
- the credential cache is 1 s, so a revocation is due within a second or two.

Modules: `test_invariants.py` (one attack or more per invariant and each numbered finding of the
issue, `test_i<N>_...`), `test_cross_tenant_matrix.py` (every id-taking REST operation of
docs/openapi.json and every WebSocket message naming an id, called by tenant B with A's ids),
`test_quotas.py` (a stack of its own with low limits), `test_fuzz.py` (schemathesis, bounded and
seeded; `bench/fuzz.py` is the long run). Every test is marked `e2e` and `security`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.e2e import Connect, WsClient, start_stack, ws_opener
from tests.support.local_stack import ROOT, TABLE_NAME, RunningStack
from tests.support.oidc import OidcIssuer

__all__ = ["Api", "Connect", "Tenant", "WsClient", "bearer", "make_tenant", "mint", "until", "write_step"]

AUDIENCE = "kallo-security"
# Requests a principal may make in a minute (the cost settings' KALLO_REQUESTS_PER_MINUTE): high on the
# session's stack, whose tests make hundreds of calls as one principal; test_quotas lowers it.
SESSION_ENVIRONMENT = {"KALLO_CREDENTIAL_CACHE_SECONDS": "1", "KALLO_REQUESTS_PER_MINUTE": "100000"}
# Every tenant's step has this word, so a search by one tenant matches the other's steps in the index.
SHARED_WORD = "kallosharedword"
POLL_SECONDS = 60


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def until(what: str, attempt: Callable[[], Any], seconds: float = POLL_SECONDS) -> Any:
    """Call `attempt` until it returns something truthy; fail with `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not (found := attempt()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {seconds} s")
        time.sleep(0.2)
    return found


@dataclass
class Api:
    """Calls to the stack with one set of credentials."""

    client: httpx.Client
    headers: dict[str, str]

    def call(self, method: str, path: str, **options: Any) -> httpx.Response:
        headers = {**self.headers, **options.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **options)

    def ok(self, method: str, path: str, status: int = 200, **options: Any) -> Any:
        response = self.call(method, path, **options)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None


def admin(stack: RunningStack, *arguments: str) -> Any:
    """`python -m tools.admin --table <the stack's table> ...` against the stack's embedded AWS, as the
    README says an operator does; its JSON output."""
    environment = {**os.environ, "AWS_ENDPOINT_URL": stack.aws_endpoint, "AWS_DEFAULT_REGION": "us-east-1"}
    done = subprocess.run(
        [sys.executable, "-m", "tools.admin", "--table", TABLE_NAME, *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"tools.admin {arguments}: {done.stderr}"
    return json.loads(done.stdout)


def mint(api: Api, user_id: str, scope: list[dict[str, str]]) -> dict[str, Any]:
    """An access token `{id, jwt}` for `user_id`, limited to `scope`, minted by `api`'s service account."""
    body = {
        "userId": user_id,
        "scopeObjects": scope,
        "expiresAt": (datetime.now(UTC) + timedelta(hours=2)).isoformat(),
    }
    return api.ok("POST", "/auth/access-tokens", 201, json=body)


@dataclass
class Tenant:
    """A service account and what it made: one user and that user's objects and tokens."""

    label: str
    stack: RunningStack
    account_id: str
    key: str
    user_id: str
    email: str
    user_token: dict[str, Any]  # whole-user scope
    team_id: str = ""
    topic_id: str = ""
    convo_id: str = ""
    prompt_id: str = ""
    data_source_id: str = ""
    step_id: str = ""
    secret: str = ""  # a word only this tenant's document and step contain
    invited_email: str = ""  # a pending invitation to the team
    convo_token: dict[str, Any] = field(default_factory=dict)
    topic_token: dict[str, Any] = field(default_factory=dict)

    @property
    def sa(self) -> Api:
        """As the service account (x-api-key)."""
        return Api(self.stack.client, {"x-api-key": self.key})

    @property
    def user(self) -> Api:
        """As the tenant's user, with a whole-user token."""
        return Api(self.stack.client, bearer(self.user_token["jwt"]))

    def new_user(self, prefix: str = "user") -> tuple[str, dict[str, Any]]:
        """Another user made by this tenant's service account: (its id, a whole-user token)."""
        email = f"{prefix}-{uuid.uuid4().hex[:8]}@corp-{self.label}.example"
        user_id = self.sa.ok("GET", "/users", 201, params={"email": email})["id"]
        return user_id, mint(self.sa, user_id, [{"type": "user", "id": user_id}])

    def ids(self) -> dict[str, str]:
        """Every id of this tenant's world, by what it names."""
        return {
            "account": self.account_id,
            "user": self.user_id,
            "team": self.team_id,
            "topic": self.topic_id,
            "convo": self.convo_id,
            "prompt": self.prompt_id,
            "data_source": self.data_source_id,
            "step": self.step_id,
            "user_token": self.user_token["id"],
            "convo_token": self.convo_token["id"],
            "topic_token": self.topic_token["id"],
        }

    def secrets(self) -> set[str]:
        """What must never reach another tenant: its ids, its secret word, its emails."""
        return {*self.ids().values(), self.secret, self.email, self.invited_email}


def write_step(stack: RunningStack, convo_id: str, headers: dict[str, str], text: str) -> str:
    """A user step written over the WebSocket; its id."""
    with ws_opener(stack) as connect:
        client = connect(convo_id, headers=headers)
        client.send("convoNewStep", {"content": {"text": text}}, request_id="write")
        return client.expect("convoNewStep")["payload"]["id"]


def make_tenant(stack: RunningStack, label: str) -> Tenant:
    """A tenant: a service account made with tools.admin, its user and the user's objects."""
    account = admin(stack, "create-service-account", "--name", f"tenant-{label}")
    key = admin(stack, "create-key", "--user-id", account["id"], "--name", "security-suite")["key"]
    sa = Api(stack.client, {"x-api-key": key})
    tag = uuid.uuid4().hex[:10]
    email = f"{label}-owner-{tag}@corp-{label}.example"
    user_id = sa.ok("GET", "/users", 201, params={"email": email})["id"]
    tenant = Tenant(
        label, stack, account["id"], key, user_id, email, mint(sa, user_id, [{"type": "user", "id": user_id}])
    )
    tenant.secret = f"secret{label}{tag}"
    user = tenant.user
    tenant.team_id = user.ok("POST", "/teams", 201, json={"name": f"Team {label}"})["id"]
    tenant.topic_id = user.ok(
        "POST",
        "/topics",
        201,
        params={"teamId": tenant.team_id},
        json={"name": f"Topic {label}", "description": "the tenant's bot"},
    )["id"]
    tenant.convo_id = user.ok(
        "POST", "/convos", 201, params={"topicId": tenant.topic_id}, json={"name": f"Convo {label}"}
    )["id"]
    tenant.prompt_id = user.ok(
        "POST", "/prompts", 201, params={"teamId": tenant.team_id}, json={"text": f"Prompt {label}"}
    )["id"]
    document = f"The vault code of tenant {label} is {tenant.secret}. Only {label} may read it.\n".encode()
    files = {"file": (f"{label}-notes.md", document, "text/markdown")}
    tenant.data_source_id = user.ok("POST", "/data-sources/uploads", 201, files=files)["id"]

    def processed() -> bool:
        status = user.ok("GET", f"/data-sources/{tenant.data_source_id}")["status"]
        assert status != "failed"
        return status == "ready"

    until(f"tenant {label}'s document to be processed", processed)
    user.ok("PUT", f"/topics/{tenant.topic_id}/data-sources/{tenant.data_source_id}", 204)
    user.ok("PUT", f"/topics/{tenant.topic_id}/prompts/{tenant.prompt_id}", 204)
    tenant.step_id = write_step(
        stack, tenant.convo_id, user.headers, f"{SHARED_WORD} {tenant.secret} notes of tenant {label}"
    )
    tenant.invited_email = f"invitee-{tag}@corp-{label}.example"
    user.ok(
        "POST",
        "/auth/grantees",
        201,
        params={"objectType": "team", "objectId": tenant.team_id, "inviteEmail": tenant.invited_email},
        json={"type": "user", "role": "member"},
    )
    tenant.convo_token = mint(sa, user_id, [{"type": "convo", "id": tenant.convo_id}])
    tenant.topic_token = mint(sa, user_id, [{"type": "topic", "id": tenant.topic_id}])
    return tenant


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
def stack(issuer_one: OidcIssuer, issuer_two: OidcIssuer) -> Iterator[RunningStack]:
    """The suite's stack, trusting both issuers; it must stop on SIGTERM with exit code 0."""
    with start_stack(issuer_one, more_issuers=(issuer_two,), **SESSION_ENVIRONMENT) as running:
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
