"""Query Permissions: POST /auth/permissions, through the handler."""

import json
from uuid import uuid4

import pytest

from kallo.auth.principal import Principal
from kallo.authz.policy import ObjectType, Permission, Role, permissions_of
from kallo.store import keys
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of

ALL = [p.value for p in Permission]


def ask(obj: Ref, permissions: list[str], user: Principal | None = None) -> dict:
    body = {"objectId": obj.id, "objectType": obj.type, "permissions": permissions}
    if user is not None:
        body["userId"] = user.user_id
    return body


def held(caller: Principal, obj: Ref, permissions: list[str], user: Principal | None = None) -> list[str]:
    result = invoke("auth.query_permissions", caller, body=ask(obj, permissions, user))
    assert result.status == 200, result.body
    return result.json["permissions"]


def assert_client_error(result, status: int | None = None) -> None:
    assert 400 <= result.status < 500, (result.status, result.body)
    assert {"code", "message"} <= set(result.json), result.body
    if status is not None:
        assert result.status == status, result.body


def test_the_callers_own_permissions_in_the_order_asked(aws, aws_calls):
    alice = make_user()
    team = make_object("team", ref_of(alice))
    asked = ["can_delete", "can_remove_owner", "can_delete_steps", "can_view", "can_add_prompt", "can_edit"]
    aws_calls.reset()
    result = invoke("auth.query_permissions", alice, body=ask(team, asked))
    assert result.status == 200, result.body
    assert result.json == {
        "userId": alice.user_id,
        "objectId": team.id,
        "objectType": "team",
        "permissions": ["can_delete", "can_remove_owner", "can_view", "can_edit"],
    }
    # The team check (1 BatchGetItem) and the team's existence (1 GetItem).
    assert aws_calls["dynamodb:BatchGetItem"] == 1 and aws_calls["dynamodb:GetItem"] == 1
    assert aws_calls.total == 2


def test_inherited_permissions_on_a_convo(aws, aws_calls):
    owner, mate = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, mate, "member")
    topic = make_object("topic", team)
    convo = make_object("convo", topic, createdBy=owner.user_id)
    aws_calls.reset()
    assert held(mate, convo, ALL) == ["can_chat", "can_view"]
    # A Query per inheriting object (convo, topic), 1 BatchGetItem, 1 GetItem.
    assert aws_calls["dynamodb:Query"] == 2 and aws_calls.total == 4
    assert set(held(owner, convo, ALL)) >= {"can_delete", "can_add_owner", "can_delete_steps", "can_edit"}


def test_hidden_unknown_or_deleted_objects_hold_nothing(aws, aws_calls):
    alice, mallory = make_user(), make_user()
    team = make_object("team", ref_of(alice))
    aws_calls.reset()
    assert held(mallory, team, ALL) == []
    # Nothing held: no existence read.
    assert aws_calls.total == 1
    assert held(alice, Ref("topic", str(uuid4())), ALL) == []
    table().delete(keys.object_key(team))  # its grants wait for the purge worker
    assert held(alice, team, ["can_view"]) == []


def test_a_token_answers_within_its_scope(aws):
    alice = make_user()
    team, other = make_object("team", ref_of(alice)), make_object("team", ref_of(alice))
    scoped = Principal(user_id=alice.user_id, scheme="access_token", scope=(other,))
    assert held(scoped, team, ["can_view"]) == []
    assert held(scoped, other, ["can_view"]) == ["can_view"]


def test_a_service_account_asks_about_its_users(aws, aws_calls):
    service, _ = make_service_account()
    pat = make_user(admin=service)
    team = make_object("team", ref_of(service))
    grant(team, pat, "viewer")
    aws_calls.reset()
    result = invoke("auth.query_permissions", service, body=ask(team, ["can_edit", "can_view"], pat))
    assert result.status == 200, result.body
    assert result.json["userId"] == pat.user_id and result.json["permissions"] == ["can_view"]
    # Authority over pat (1 GetItem, the user item), the account's check and pat's role on the team
    # (1 BatchGetItem each), the team's existence (1 GetItem).
    assert aws_calls["dynamodb:BatchGetItem"] == 2 and aws_calls["dynamodb:GetItem"] == 2
    assert aws_calls.total == 4


def test_another_users_permissions_need_authority_and_sight(aws):
    service, _ = make_service_account()
    alice, pat, bob = make_user(), make_user(admin=service), make_user()
    team = make_object("team", ref_of(alice))
    grant(team, pat, "member")
    grant(team, bob, "member")
    # No authority over bob: 404, as if bob were unknown (even to a fellow member).
    assert_client_error(invoke("auth.query_permissions", alice, body=ask(team, ["can_view"], bob)), 404)
    assert_client_error(invoke("auth.query_permissions", service, body=ask(team, ["can_view"], bob)), 404)
    # Authority over pat, but the account cannot view alice's team: 404.
    assert_client_error(invoke("auth.query_permissions", service, body=ask(team, ["can_view"], pat)), 404)
    own = make_object("team", ref_of(service))
    assert held(service, own, ["can_view"], pat) == []
    # Naming oneself is asking about oneself.
    assert held(alice, team, ["can_view"], alice) == ["can_view"]


def test_a_scoped_token_asks_about_a_user_it_administers(aws):
    service, _ = make_service_account()
    pat = make_user(admin=service)
    team = make_object("team", ref_of(service))
    grant(team, pat, "admin")
    elsewhere = make_object("team", ref_of(service))
    scoped = Principal(user_id=service.user_id, scheme="access_token", scope=(team, ref_of(pat)))
    # Pat's permissions are pat's, not narrowed by the token, once the token covers the team.
    assert held(scoped, team, ["can_edit", "can_delete"], pat) == ["can_edit"]
    assert_client_error(invoke("auth.query_permissions", scoped, body=ask(elsewhere, ["can_view"], pat)), 404)


@pytest.mark.parametrize(
    "body",
    [
        "{bad",
        "[]",
        "{}",
        json.dumps({"objectType": "team", "permissions": ["can_view"]}),
        json.dumps({"objectId": "nope", "objectType": "team", "permissions": ["can_view"]}),
        json.dumps({"objectId": str(uuid4()), "objectType": "planet", "permissions": ["can_view"]}),
        json.dumps({"objectId": str(uuid4()), "objectType": "team", "permissions": []}),
        json.dumps({"objectId": str(uuid4()), "objectType": "team", "permissions": ["can_fly"]}),
        json.dumps({"objectId": str(uuid4()), "objectType": "team", "permissions": ["can_view", "can_view"]}),
        json.dumps({"objectId": str(uuid4()), "objectType": "team", "permissions": [*ALL, "can_view"]}),
        json.dumps({"objectId": str(uuid4()), "objectType": "team", "permissions": "can_view"}),
        json.dumps({"objectId": str(uuid4()), "objectType": "team", "permissions": ["can_view"], "x": 1}),
        json.dumps(
            {
                "userId": "u" * 70000,
                "objectId": str(uuid4()),
                "objectType": "team",
                "permissions": ["can_view"],
            }
        ),
        json.dumps(
            {"userId": 7, "objectId": str(uuid4()), "objectType": "team", "permissions": ["can_view"]}
        ),
    ],
)
def test_query_permissions_bad_input(aws, body):
    alice = make_user()
    assert_client_error(invoke("auth.query_permissions", alice, raw_body=body))


def test_all_permissions_may_be_asked_at_once(aws):
    alice = make_user()
    topic = make_object("topic", ref_of(alice))
    # A topic's owner holds every permission there is.
    assert permissions_of(ObjectType.topic, Role.owner) == set(Permission)
    assert held(alice, topic, ALL) == ALL
    assert held(alice, topic, ALL[::-1]) == ALL[::-1]
