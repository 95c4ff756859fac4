"""Create a Team: POST /teams → 201 team, the caller its owner, in one AWS call."""

from dataclasses import replace
from uuid import uuid4

import pytest

from kallo.auth.principal import Principal
from kallo.store import grants
from kallo.store.keys import Ref
from tests.support.api import invoke
from tests.support.world import make_object, make_user, ref_of


def test_create_team_returns_team_and_makes_caller_owner(aws, aws_calls):
    alice = make_user(email="alice@example.com")
    aws_calls.reset()
    result = invoke("teams.create_team", alice, body={"name": "  Burt's Awesome Team "})
    assert result.status == 201, result.body
    team = result.json
    assert team["name"] == "Burt's Awesome Team"
    assert team["createdBy"] == alice.user_id
    assert aws_calls.total == 1 and aws_calls["dynamodb:TransactWriteItems"] == 1


def test_create_team_bad_input(aws):
    alice = make_user()
    for raw in (
        "{bad",
        "[]",
        '{"name": 1}',
        '{"name": ""}',
        '{"name": "' + "x" * 300 + '"}',
        '{"name":"a","x":1}',
    ):
        result = invoke("teams.create_team", alice, raw_body=raw)
        assert 400 <= result.status < 500, (raw, result.status)
        assert {"code", "message"} <= set(result.json), result.body


def test_health(aws):
    result = invoke("health.health_check", None, path={"apiName": "core-api"})
    assert result.status == 200 and result.json["status"] == "ok"
    assert invoke("health.health_check", None, path={"apiName": "nope"}).status == 422


def test_create_team_sets_its_own_creator_and_time(aws):
    alice = make_user()
    sample = {"name": "A", "createdBy": str(uuid4()), "createdAt": "2019-08-24T14:15:22Z"}
    result = invoke("teams.create_team", alice, body=sample)
    assert result.status == 201, result.body
    team_id = result.json["id"]
    assert result.json["createdBy"] == alice.user_id
    assert result.json["createdAt"] != sample["createdAt"]
    assert grants.get(Ref("team", team_id), ref_of(alice))["role"] == "owner"


def test_create_team_needs_the_whole_user_scope(aws):
    alice = make_user()
    team = make_object("team", ref_of(alice))
    scoped = Principal(user_id=alice.user_id, scheme="access_token", scope=(team,))
    refused = invoke("teams.create_team", scoped, body={"name": "Out of scope"})
    assert refused.status == 403 and refused.json["code"] == "out_of_scope"
    whole = replace(scoped, scope=(ref_of(alice),))
    assert invoke("teams.create_team", whole, body={"name": "Mine"}).status == 201


def test_create_team_refuses_the_unauthenticated_and_unregistered(aws):
    assert invoke("teams.create_team", None, body={"name": "A"}).status == 401
    unregistered = Principal(user_id=None, scheme="oidc", firebase_id="new-identity")
    result = invoke("teams.create_team", unregistered, body={"name": "A"})
    assert result.status == 403 and result.json["code"] == "user_not_registered"


@pytest.mark.parametrize(
    "bad_id", ["not-a-uuid", "x" * 5000, 42, str(uuid4())], ids=["word", "huge", "number", "uuid"]
)
def test_create_team_ids_are_422(aws, bad_id):
    result = invoke("teams.create_team", make_user(), body={"id": bad_id, "name": "A"})
    assert result.status == 422 and result.json["code"] == "validation_error"
