from tests.support.api import invoke
from tests.support.world import make_user


def test_create_team_returns_team_and_makes_caller_owner(aws, aws_calls):
    alice = make_user(email="alice@example.com")
    aws_calls.reset()
    result = invoke("teams.create_team", alice, body={"name": "  Burt's Awesome Team "})
    assert result.status == 201, result.body
    team = result.json
    assert team["name"] == "Burt's Awesome Team"
    assert team["createdBy"] == alice.user_id
    assert aws_calls.total == 1 and aws_calls["dynamodb:TransactWriteItems"] == 1


def test_create_team_with_existing_id_conflicts(aws):
    alice = make_user()
    team_id = "6f1c2a4e-0000-4000-8000-000000000001"
    assert invoke("teams.create_team", alice, body={"id": team_id, "name": "A"}).status == 201
    again = invoke("teams.create_team", alice, body={"id": team_id, "name": "B"})
    assert again.status == 409 and again.json["code"] == "conflict"


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
