"""Tenants over a running local stack, as an operator and a customer make them: a service account and
its API key made with `tools.admin` against the stack's embedded AWS, the account's user, and that
user's objects and tokens. Used by the security suite (tests/security) and `bench/fuzz.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.e2e import ws_opener
from tests.support.local_stack import ROOT, TABLE_NAME, RunningStack

# Every tenant's step has this word, so a search by one tenant matches the other's steps in the index.
SHARED_WORD = "kallosharedword"
# What the embedded AWS accepts (it checks nothing); set here too so that the benchmarks, which run
# outside pytest's conftest, reach it.
EMBEDDED_AWS_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
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
    environment = {**os.environ, **EMBEDDED_AWS_CREDENTIALS, "AWS_ENDPOINT_URL": stack.aws_endpoint}
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


def service_account(stack: RunningStack, label: str) -> tuple[str, str]:
    """A service account made with tools.admin, and an API key for it: (its id, the key)."""
    account = admin(stack, "create-service-account", "--name", f"tenant-{label}")
    key = admin(stack, "create-key", "--user-id", account["id"], "--name", "security-suite")["key"]
    return account["id"], key


def credentials(stack: RunningStack, label: str) -> dict[str, dict[str, str]]:
    """The headers of a new tenant's two kinds of callers: its service account's key ("key") and a
    whole-user token of a user it made ("token")."""
    _, key = service_account(stack, label)
    sa = Api(stack.client, {"x-api-key": key})
    user_id = sa.ok("GET", "/users", 201, params={"email": f"{label}-{uuid.uuid4().hex[:8]}@corp.example"})[
        "id"
    ]
    token = mint(sa, user_id, [{"type": "user", "id": user_id}])
    return {"key": sa.headers, "token": bearer(token["jwt"])}


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

    def path_ids(self) -> dict[str, str]:
        """This tenant's objects by the name of the path parameter that takes them (for fuzzing)."""
        return {
            "convoId": self.convo_id,
            "topicId": self.topic_id,
            "teamId": self.team_id,
            "promptId": self.prompt_id,
            "dataSourceId": self.data_source_id,
            "stepId": self.step_id,
            "userId": self.user_id,
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
    account_id, key = service_account(stack, label)
    sa = Api(stack.client, {"x-api-key": key})
    tag = uuid.uuid4().hex[:10]
    email = f"{label}-owner-{tag}@corp-{label}.example"
    user_id = sa.ok("GET", "/users", 201, params={"email": email})["id"]
    tenant = Tenant(
        label, stack, account_id, key, user_id, email, mint(sa, user_id, [{"type": "user", "id": user_id}])
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
