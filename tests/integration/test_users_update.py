"""Update a User: PATCH /users/{userId} {displayName?, photoUrl?}."""

from uuid import uuid4

from kallo.store import users
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of

PATCH = "users.update_user"


def test_a_user_updates_its_profile(aws, aws_calls):
    pat = make_user(name="Pat")
    aws_calls.reset()
    body = {"displayName": " Patricia ", "photoUrl": "https://images.example.com/pat.png"}
    result = invoke(PATCH, pat, path={"userId": pat.user_id}, body=body)
    assert result.status == 200, result.body
    assert result.json["displayName"] == "Patricia"
    assert result.json["photoUrl"] == "https://images.example.com/pat.png"
    assert result.json["id"] == pat.user_id and "createdAt" in result.json
    # Authority over oneself is free: the update alone.
    assert aws_calls.total == 1 and aws_calls["dynamodb:UpdateItem"] == 1
    only_name = invoke(PATCH, pat, path={"userId": pat.user_id}, body={"displayName": "P"})
    assert only_name.json["photoUrl"] == "https://images.example.com/pat.png"


def test_the_creating_service_account_may_update_it(aws):
    account, _ = make_service_account()
    pat = make_user(admin=account)
    result = invoke(PATCH, account, path={"userId": pat.user_id}, body={"displayName": "Renamed"})
    assert result.status == 200 and result.json["displayName"] == "Renamed"


def test_others_get_404(aws):
    owner, _ = make_service_account()
    pat = make_user(name="Pat")
    grant(make_object("team", ref_of(owner)), pat, "member")
    for caller, user_id in ((make_user(), pat.user_id), (owner, pat.user_id), (pat, str(uuid4()))):
        result = invoke(PATCH, caller, path={"userId": user_id}, body={"displayName": "Hacked"})
        assert result.status == 404 and result.json["code"] == "not_found", result.body
    assert users.get(pat.user_id)["displayName"] == "Pat"


def test_bad_input(aws):
    pat = make_user()
    for raw in (
        "{bad",
        "[]",
        "{}",
        '{"displayName": null}',
        '{"displayName": 7}',
        '{"displayName": ""}',
        '{"displayName": "' + "x" * 300 + '"}',
        '{"photoUrl": "javascript:alert(1)"}',
        '{"photoUrl": "https://' + "x" * 3000 + '"}',
        '{"displayName": "a", "emailAddress": "a@b.test"}',
        '{"isServiceAccount": true}',
    ):
        result = invoke(PATCH, pat, path={"userId": pat.user_id}, raw_body=raw)
        assert 400 <= result.status < 500, (raw, result.body)
        assert {"code", "message"} <= set(result.json)
    malformed = invoke(PATCH, pat, path={"userId": pat.user_id}, raw_body="{bad")
    assert malformed.status == 400 and malformed.json["code"] == "malformed_json"


def test_bad_user_id(aws):
    result = invoke(PATCH, make_user(), path={"userId": "nope"}, body={"displayName": "x"})
    assert result.status == 422 and result.json["code"] == "validation_error"
