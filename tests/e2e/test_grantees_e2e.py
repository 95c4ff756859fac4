"""Grantees and permissions over the local stack's real HTTP, as the bootstrap service account."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e


def headers(stack: RunningStack) -> dict[str, str]:
    return {"x-api-key": stack.api_key}


def assert_error(response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert {"code", "message"} <= set(response.json())
    if code:
        assert response.json()["code"] == code


@pytest.fixture
def team(stack: RunningStack) -> dict:
    response = stack.client.post("/teams", json={"name": "Grantees e2e"}, headers=headers(stack))
    assert response.status_code == 201, response.text
    return response.json()


def test_a_teams_grantees_and_the_owners_permissions(stack: RunningStack, team: dict) -> None:
    on = {"objectType": "team", "objectId": team["id"]}
    owner = {"id": team["createdBy"], "type": "user", "role": "owner"}
    listed = stack.client.get("/auth/grantees", params={**on, "limit": 1}, headers=headers(stack))
    assert listed.status_code == 200, listed.text
    assert listed.json() == [owner]

    asked = {**on, "permissions": ["can_delete", "can_chat", "can_add_prompt", "can_view"]}
    answer = stack.client.post("/auth/permissions", json=asked, headers=headers(stack))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        **asked,
        "userId": team["createdBy"],
        "permissions": ["can_delete", "can_chat", "can_view"],
    }
    unknown = {**asked, "objectId": str(uuid.uuid4())}
    assert (
        stack.client.post("/auth/permissions", json=unknown, headers=headers(stack)).json()["permissions"]
        == []
    )

    replaced = stack.client.put("/auth/grantees", params=on, json=[owner], headers=headers(stack))
    assert replaced.status_code == 200 and replaced.json() == [owner]


def test_inviting_and_refusals(stack: RunningStack, team: dict) -> None:
    on = {"objectType": "team", "objectId": team["id"]}
    email = f"invitee-{uuid.uuid4().hex[:8]}@example.com"
    invited = stack.client.post(
        "/auth/grantees",
        params={**on, "inviteEmail": email},
        json={"type": "user", "role": "member"},
        headers=headers(stack),
    )
    assert invited.status_code == 201, invited.text
    assert invited.json()["inviteEmail"] == email and invited.json()["role"] == "member"

    stranger = {"id": str(uuid.uuid4()), "type": "user", "role": "member"}
    assert_error(
        stack.client.post("/auth/grantees", params=on, json=stranger, headers=headers(stack)),
        404,
        "not_found",
    )
    owner_again = {**stranger, "id": team["createdBy"], "role": "owner"}
    assert_error(
        stack.client.post("/auth/grantees", params=on, json=owner_again, headers=headers(stack)),
        400,
        "use_put_for_owner",
    )
    removal = {**on, "granteeId": stranger["id"], "granteeType": "user", "granteeRole": "member"}
    assert_error(stack.client.delete("/auth/grantees", params=removal, headers=headers(stack)), 404)
    assert_error(
        stack.client.put("/auth/grantees", params=on, json=[], headers=headers(stack)),
        400,
        "exactly_one_owner",
    )


def test_bad_input_is_a_json_client_error(stack: RunningStack, team: dict) -> None:
    assert_error(
        stack.client.get("/auth/grantees", params={"objectType": "team"}, headers=headers(stack)), 422
    )
    bad_type = {"objectType": "spaceship", "objectId": team["id"]}
    assert_error(stack.client.get("/auth/grantees", params=bad_type, headers=headers(stack)), 422)
    raw = {**headers(stack), "content-type": "application/json"}
    on = {"objectType": "team", "objectId": team["id"]}
    assert_error(
        stack.client.put("/auth/grantees", params=on, content=b"[{", headers=raw), 400, "malformed_json"
    )
    assert_error(
        stack.client.post("/auth/permissions", json={"permissions": ["can_fly"]}, headers=headers(stack)), 422
    )
    hidden = {"objectType": "team", "objectId": str(uuid.uuid4())}
    assert_error(stack.client.get("/auth/grantees", params=hidden, headers=headers(stack)), 404)
    assert_error(stack.client.get("/auth/grantees", params=on), 401)
