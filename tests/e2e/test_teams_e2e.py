"""The Teams operations over the local stack's real HTTP: the bootstrap service account runs a team's
life (create, rename, members, deletion), a member works with an access token, and bad or hidden
requests get JSON client errors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e


def api_key(stack: RunningStack) -> dict[str, str]:
    return {"x-api-key": stack.api_key}


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert {"code", "message"} <= set(response.json())
    if code:
        assert response.json()["code"] == code


def new_user(stack: RunningStack) -> str:
    """A user created by the bootstrap service account, which thereby has authority over it."""
    response = stack.client.get(
        "/users", params={"email": f"team-e2e-{uuid.uuid4()}@example.com"}, headers=api_key(stack)
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def bearer_for(stack: RunningStack, user_id: str) -> dict[str, str]:
    """An access token for `user_id` covering everything the user may access."""
    minted = stack.client.post(
        "/auth/access-tokens",
        json={
            "userId": user_id,
            "scopeObjects": [{"type": "user", "id": user_id}],
            "expiresAt": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        },
        headers=api_key(stack),
    )
    assert minted.status_code == 201, minted.text
    return {"authorization": f"Bearer {minted.json()['jwt']}"}


def create_team(stack: RunningStack, name: str = "Teams e2e") -> dict:
    response = stack.client.post("/teams", json={"name": name}, headers=api_key(stack))
    assert response.status_code == 201, response.text
    return response.json()


def team_ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [t["id"] for t in response.json()]


def test_a_teams_life(stack: RunningStack) -> None:
    client, key = stack.client, api_key(stack)
    team = create_team(stack, "Before")
    users_path = f"/teams/{team['id']}/users"
    assert team["id"] in team_ids(client.get("/teams", params={"limit": 100}, headers=key))

    renamed = client.patch(f"/teams/{team['id']}", json={"name": "  After "}, headers=key)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json() == {**team, "name": "After"}

    member_id = new_user(stack)
    added = client.put(f"{users_path}/{member_id}", headers=key)
    assert added.status_code == 200, added.text
    assert added.json()["isOwner"] is False and added.json()["userId"] == member_id
    assert client.put(f"{users_path}/{member_id}", headers=key).json() == added.json()
    # The service account acts for a user it created.
    assert team_ids(client.get("/teams", params={"userId": member_id}, headers=key)) == [team["id"]]

    first = client.get(users_path, params={"limit": 1}, headers=key)
    assert first.status_code == 200 and len(first.json()) == 1, first.text
    rest = client.get(users_path, params={"nextToken": first.headers["x-next-token"]}, headers=key)
    assert rest.status_code == 200 and "x-next-token" not in rest.headers
    listed = first.json() + rest.json()
    assert {u["userId"]: u["isOwner"] for u in listed} == {team["createdBy"]: True, member_id: False}

    assert_error(
        client.delete(f"{users_path}/{team['createdBy']}", headers=key), 409, "owner_cannot_be_removed"
    )
    removed = client.delete(f"{users_path}/{member_id}", headers=key)
    assert removed.status_code == 204 and removed.content == b""
    assert_error(client.delete(f"{users_path}/{member_id}", headers=key), 404, "not_found")

    # A team that owns a topic is not deleted; once the topic is gone, it is.
    topic = client.post(
        "/topics", params={"teamId": team["id"]}, json={"name": "T", "description": ""}, headers=key
    )
    assert topic.status_code == 201, topic.text
    assert_error(client.delete(f"/teams/{team['id']}", headers=key), 409, "team_not_empty")
    assert client.delete(f"/topics/{topic.json()['id']}", headers=key).status_code == 204
    deleted = client.delete(f"/teams/{team['id']}", headers=key)
    assert deleted.status_code == 204, deleted.text
    assert_error(client.get(users_path, headers=key), 404, "not_found")
    assert team["id"] not in team_ids(client.get("/teams", headers=key))


def test_a_member_with_an_access_token(stack: RunningStack) -> None:
    client, key = stack.client, api_key(stack)
    team = create_team(stack)
    member_id = new_user(stack)
    member = bearer_for(stack, member_id)
    # Not a member yet: the team is invisible.
    assert_error(client.get(f"/teams/{team['id']}/users", headers=member), 404, "not_found")
    assert client.put(f"/teams/{team['id']}/users/{member_id}", headers=key).status_code == 200

    assert team_ids(client.get("/teams", headers=member)) == [team["id"]]
    assert_error(client.patch(f"/teams/{team['id']}", json={"name": "Mine"}, headers=member), 403)
    assert_error(client.delete(f"/teams/{team['id']}", headers=member), 403, "permission_denied")
    assert_error(client.put(f"/teams/{team['id']}/users/{new_user(stack)}", headers=member), 403)
    # A member may leave.
    left = client.delete(f"/teams/{team['id']}/users/{member_id}", headers=member)
    assert left.status_code == 204, left.text
    assert client.get("/teams", headers=member).json() == []


def test_bad_and_hidden_requests_are_json_client_errors(stack: RunningStack) -> None:
    client, key = stack.client, api_key(stack)
    team = create_team(stack, "Kept")
    raw = {**key, "content-type": "application/json"}
    assert_error(
        client.patch(f"/teams/{team['id']}", content=b'{"name": ', headers=raw), 400, "malformed_json"
    )
    assert_error(client.patch(f"/teams/{team['id']}", json={"name": 7}, headers=key), 422)
    assert_error(client.patch(f"/teams/{team['id']}", json={"name": "x" * 100_000}, headers=key), 422)
    assert_error(client.patch("/teams/not-a-uuid", json={"name": "x"}, headers=key), 422)
    assert_error(client.put(f"/teams/{team['id']}/users/1234", headers=key), 422)
    assert_error(client.get("/teams", params={"limit": 0}, headers=key), 422)
    assert_error(
        client.get("/teams", params={"nextToken": "garbage"}, headers=key), 400, "invalid_next_token"
    )
    assert_error(client.get("/teams", params={"userId": str(uuid.uuid4())}, headers=key), 404)
    hidden = str(uuid.uuid4())
    assert_error(client.delete(f"/teams/{hidden}", headers=key), 404, "not_found")
    assert_error(client.put(f"/teams/{team['id']}/users/{uuid.uuid4()}", headers=key), 404, "not_found")
    assert_error(client.get("/teams"), 401)
    assert client.get(f"/teams/{team['id']}/users", headers=key).status_code == 200
