"""The Users operations over the local stack's real HTTP: an OpenID Connect identity registers itself,
works as a user, and stays invisible to those without authority over it."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e


def bearer(stack: RunningStack, sub: str) -> dict[str, str]:
    return {"authorization": f"Bearer {stack.mint_id_token(sub, email=f'{sub}@example.com')}"}


def test_an_identity_registers_and_uses_its_user(stack: RunningStack) -> None:
    sub = f"e2e-{uuid.uuid4()}"
    me = bearer(stack, sub)
    client = stack.client
    # Before registering, nothing else is allowed.
    refused = client.post("/teams", json={"name": "T"}, headers=me)
    assert refused.status_code == 403 and refused.json()["code"] == "user_not_registered"

    created = client.get("/users", params={"firebaseId": sub}, headers=me)
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["firebaseId"] == sub and user["emailAddress"] == f"{sub}@example.com"
    again = client.get("/users", params={"firebaseId": sub}, headers=me)
    assert again.status_code == 200 and again.json() == user

    team = client.post("/teams", json={"name": "Mine"}, headers=me)
    assert team.status_code == 201, team.text
    stats = client.get("/users/stats", headers=me)
    assert stats.status_code == 200 and stats.json() == {"convos": 0, "teams": 1, "sources": 0}

    patched = client.patch(f"/users/{user['id']}", json={"displayName": "E2E Pat"}, headers=me)
    assert patched.status_code == 200 and patched.json()["displayName"] == "E2E Pat"
    related = client.get(f"/users/{user['id']}/related", headers=me)
    assert related.status_code == 200 and related.json() == []

    team_query = {"objectType": "team", "objectId": team.json()["id"]}
    invitations = client.get("/invitations", params=team_query, headers=me)
    assert invitations.status_code == 200 and invitations.json() == []
    missing = client.delete("/invitations", params={**team_query, "inviteEmail": "x@example.com"}, headers=me)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_a_service_account_sees_only_users_it_created(stack: RunningStack) -> None:
    key = {"x-api-key": stack.api_key}
    client = stack.client
    sub = f"e2e-{uuid.uuid4()}"
    registered = client.get("/users", params={"firebaseId": sub}, headers=bearer(stack, sub)).json()
    # A self-registered user is none of the bootstrap account's business.
    assert client.get("/users", params={"userId": registered["id"]}, headers=key).status_code == 404
    hidden = client.patch(f"/users/{registered['id']}", json={"displayName": "x"}, headers=key)
    assert hidden.status_code == 404

    email = f"made-{uuid.uuid4()}@example.com"
    made = client.get("/users", params={"email": email}, headers=key)
    assert made.status_code == 201 and made.json()["emailAddress"] == email
    found = client.get("/users", params={"userId": made.json()["id"]}, headers=key)
    assert found.status_code == 200 and found.json() == made.json()
    stats = client.get("/users/stats", params={"userId": made.json()["id"]}, headers=key)
    assert stats.status_code == 200 and stats.json() == {"convos": 0, "teams": 0, "sources": 0}


@pytest.mark.parametrize(
    "params, status",
    [
        ({}, 400),
        ({"email": "nope"}, 422),
        ({"userId": "nope"}, 422),
        ({"email": "a@b.test", "userId": "x"}, 422),
    ],
)
def test_bad_queries_are_client_errors(stack: RunningStack, params: dict[str, str], status: int) -> None:
    response = stack.client.get("/users", params=params, headers={"x-api-key": stack.api_key})
    assert response.status_code == status, response.text
    assert {"code", "message"} <= set(response.json())
