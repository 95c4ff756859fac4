"""Access tokens over the local stack's real HTTP: a service account mints a token for a user it created,
a browser-style client calls the API with it (CORS included), and the token stops working once revoked."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.e2e.conftest import OidcIssuer, RunningStack, start_stack

pytestmark = pytest.mark.e2e

ORIGIN = "https://myapp.foo.com"
# A short cache bound, so that the revocation is seen within the test (the default is 60 s).
CACHE_SECONDS = 1


@pytest.fixture(scope="module")
def fast_revocation_stack(oidc_issuer: OidcIssuer) -> Iterator[RunningStack]:
    with start_stack(oidc_issuer, KALLO_CREDENTIAL_CACHE_SECONDS=str(CACHE_SECONDS)) as running:
        yield running


def api_key(stack: RunningStack) -> dict[str, str]:
    return {"x-api-key": stack.api_key}


def new_user(stack: RunningStack) -> str:
    """A user created by the bootstrap service account (which thereby has authority over it)."""
    response = stack.client.get(
        "/users", params={"email": f"e2e-{uuid.uuid4()}@example.com"}, headers=api_key(stack)
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def mint(stack: RunningStack, user_id: str, **fields: object) -> httpx.Response:
    body = {
        "userId": user_id,
        "scopeObjects": [{"type": "user", "id": user_id}],
        "allowOrigin": ORIGIN,
        "expiresAt": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        **fields,
    }
    return stack.client.post("/auth/access-tokens", json=body, headers=api_key(stack))


def create_team(stack: RunningStack, token: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}", "origin": ORIGIN}
    return stack.client.post("/teams", json={"name": "Made with a token"}, headers=headers)


def test_a_token_acts_for_its_user_until_revoked(fast_revocation_stack: RunningStack) -> None:
    stack = fast_revocation_stack
    user_id = new_user(stack)
    minted = mint(stack, user_id)
    assert minted.status_code == 201, minted.text
    token = minted.json()

    team = create_team(stack, token["jwt"])
    assert team.status_code == 201, team.text
    assert team.json()["createdBy"] == user_id
    assert team.headers["access-control-allow-origin"] == ORIGIN

    revoked = stack.client.delete(f"/auth/access-tokens/{token['id']}", headers=api_key(stack))
    assert revoked.status_code == 204 and revoked.content == b""
    revoked_at = time.monotonic()
    # Refused once the authorizer's cache entry (at most CACHE_SECONDS old) is gone.
    while (refused := create_team(stack, token["jwt"])).status_code != 401:
        assert refused.status_code == 201, refused.text
        assert time.monotonic() - revoked_at < CACHE_SECONDS + 2, "the revoked token still works"
        time.sleep(0.1)
    assert refused.json() == {"code": "unauthorized", "message": "valid credentials are required"}
    # Revoking again is fine.
    again = stack.client.delete(f"/auth/access-tokens/{token['id']}", headers=api_key(stack))
    assert again.status_code == 204


def test_only_the_service_accounts_own_users_and_api_keys(stack: RunningStack) -> None:
    user_id = new_user(stack)
    token = mint(stack, user_id).json()
    # A token cannot mint or revoke tokens.
    with_token = {"authorization": f"Bearer {token['jwt']}"}
    body = {
        "userId": user_id,
        "scopeObjects": [{"type": "user", "id": user_id}],
        "expiresAt": "2030-01-01T00:00:00Z",
    }
    for response in (
        stack.client.post("/auth/access-tokens", json=body, headers=with_token),
        stack.client.delete(f"/auth/access-tokens/{token['id']}", headers=with_token),
    ):
        assert response.status_code == 403 and response.json()["code"] == "api_key_required"
    # A user the service account has no authority over is unknown to it.
    unknown = mint(stack, str(uuid.uuid4()))
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    bad = mint(stack, user_id, expiresAt="2020-01-01T00:00:00Z")
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"
    missing = stack.client.delete(f"/auth/access-tokens/{uuid.uuid4()}", headers=api_key(stack))
    assert missing.status_code == 404
