"""Create a Convo: POST /convos[?topicId= | teamId= | userId=] → 201 convo."""

from uuid import uuid4

from kallo.store import grants, objects
from kallo.store.keys import Ref
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of


def create(principal, query=None, body=None, **kwargs):
    return invoke(
        "convos.create_convo", principal, query=query or {}, body={} if body is None else body, **kwargs
    )


def test_a_users_own_convo_costs_one_transaction(aws, aws_calls):
    alice = make_user()
    aws_calls.reset()
    result = create(alice, body={"name": " Trip planning "})
    assert result.status == 201, result.body
    convo = result.json
    assert convo["name"] == "Trip planning" and convo["createdBy"] == alice.user_id
    assert convo["createdAt"] == convo["updatedAt"]
    assert set(convo) == {"id", "name", "createdAt", "createdBy", "updatedAt"}
    # The write, and the creator's identifiers streams (none open) told of it.
    assert aws_calls.total == 2 and aws_calls["dynamodb:TransactWriteItems"] == 1
    assert aws_calls["dynamodb:Query"] == 1
    assert grants.get(Ref("convo", convo["id"]), ref_of(alice))["role"] == "owner"


def test_name_and_body_are_optional(aws):
    alice = make_user()
    result = create(alice)
    assert result.status == 201 and result.json["name"] == ""
    for raw in ("", "null"):
        bodiless = invoke("convos.create_convo", alice, query={}, raw_body=raw)
        assert bodiless.status == 201 and bodiless.json["name"] == "", bodiless.body


def test_in_a_topic_of_a_team(aws, aws_calls):
    owner, member = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    topic = make_object("topic", team)
    aws_calls.reset()
    result = create(member, query={"topicId": topic.id}, body={"name": "Q3 numbers"})
    assert result.status == 201, result.body
    # The check on the topic (its structural grants, the member's grants on topic and team), the write,
    # the creator's identifiers streams.
    assert aws_calls["dynamodb:Query"] == 2 and aws_calls["dynamodb:BatchGetItem"] == 1
    assert aws_calls["dynamodb:TransactWriteItems"] == 1 and aws_calls.total == 4
    assert result.json["topicId"] == topic.id and "teamId" not in result.json
    ref = Ref("convo", result.json["id"])
    assert grants.get(ref, topic)["role"] == "owner" and grants.get(ref, ref_of(member))["role"] == "admin"


def test_in_a_team(aws, aws_calls):
    owner, member = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    aws_calls.reset()
    result = create(member, query={"teamId": team.id})
    assert result.status == 201, result.body
    assert aws_calls.total == 3  # the member's grant on the team, the write, the creator's streams
    assert result.json["teamId"] == team.id
    assert grants.get(Ref("convo", result.json["id"]), team)["role"] == "owner"


def test_for_a_user_of_a_service_account(aws, aws_calls):
    service, _ = make_service_account()
    pat = make_user(admin=service)
    aws_calls.reset()
    result = create(service, query={"userId": pat.user_id})
    assert result.status == 201, result.body
    assert result.json["createdBy"] == pat.user_id
    assert aws_calls.total == 3  # the authority check, the write, the user's streams
    assert grants.get(Ref("convo", result.json["id"]), ref_of(pat))["role"] == "owner"


def test_ignored_fields(aws):
    alice = make_user()
    body = {
        "name": "Mine",
        "createdAt": "2019-08-24T14:15:22Z",
        "createdBy": str(uuid4()),
        "latestStep": {"id": str(uuid4()), "content": {"text": "ignored"}},
    }
    result = create(alice, body=body)
    assert result.status == 201, result.body
    convo_id = result.json["id"]
    assert result.json["createdBy"] == alice.user_id and result.json["createdAt"] != body["createdAt"]
    assert "latestStep" not in result.json and "latestStep" not in objects.get(Ref("convo", convo_id))


def test_who_may_create_where(aws):
    alice, viewer, stranger = make_user(), make_user(), make_user()
    topic = make_object("topic", ref_of(alice))
    team = make_object("team", ref_of(alice))
    grant(topic, viewer, "viewer")
    grant(team, viewer, "viewer")
    for query in ({"topicId": topic.id}, {"teamId": team.id}):
        denied = create(viewer, query=query)
        assert denied.status == 403 and denied.json["code"] == "permission_denied"
    # Another tenant's topic, team or user, and unknown ones, all read as missing.
    for query in (
        {"topicId": topic.id},
        {"teamId": team.id},
        {"userId": alice.user_id},
        {"topicId": str(uuid4())},
        {"teamId": str(uuid4())},
    ):
        hidden = create(stranger, query=query)
        assert hidden.status == 404 and hidden.json["code"] == "not_found", query


def test_bad_input(aws):
    alice = make_user()
    for raw in (
        "{bad",
        "[]",
        '"name"',
        '{"name": 1}',
        '{"name": ["a"]}',
        '{"name": "' + "x" * 300 + '"}',
        '{"id": "not-a-uuid"}',
        '{"id": 7}',
        '{"latestStep": "text"}',
        '{"name": "a", "owner": "me"}',
    ):
        result = invoke("convos.create_convo", alice, query={}, raw_body=raw)
        assert 400 <= result.status < 500, (raw, result.status)
        assert {"code", "message"} <= set(result.json), result.body
    for query in (
        {"topicId": str(uuid4()), "teamId": str(uuid4())},
        {"teamId": str(uuid4()), "userId": alice.user_id},
    ):
        ambiguous = create(alice, query=query)
        assert ambiguous.status == 400 and ambiguous.json["code"] == "ambiguous_owner"
    bad_id = create(alice, query={"topicId": "nope"})
    assert bad_id.status == 422 and bad_id.json["code"] == "validation_error"


def test_needs_credentials(aws):
    result = create(None)
    assert result.status == 401 and result.json["code"] == "unauthorized"
