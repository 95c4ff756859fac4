"""Create New Topic: POST /topics[?userId= | teamId=]."""

from uuid import uuid4

from kallo.auth.principal import Principal
from kallo.store import grants
from kallo.store.keys import Ref
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of

BODY = {"name": "The Trees of Antarctica", "description": "Lichens, mosses and two flowering plants"}


def test_create_topic_owned_by_the_caller(aws, aws_calls):
    alice = make_user()
    aws_calls.reset()
    result = invoke(
        "topics.create_topic",
        alice,
        query={},
        body={
            **BODY,
            "config": {
                "defaults": {"model": "bedrock:amazon.nova-lite-v1:0", "temperature": 0.2, "maxTokens": 512}
            },
            "dataSourceIds": [],
            "createdBy": str(uuid4()),
            "createdAt": "2019-08-24T14:15:22Z",
        },
    )
    assert result.status == 201, result.body
    topic = result.json
    assert topic["name"] == BODY["name"] and topic["description"] == BODY["description"]
    assert topic["config"] == {
        "defaults": {"model": "bedrock:amazon.nova-lite-v1:0", "temperature": 0.2, "maxTokens": 512}
    }
    assert topic["dataSourceIds"] == []
    # The server sets the creator and the time, whatever the body says.
    assert topic["createdBy"] == alice.user_id and topic["createdAt"] != "2019-08-24T14:15:22Z"
    assert "promptId" not in topic and "teamId" not in topic
    assert aws_calls.total == 1 and aws_calls["dynamodb:TransactWriteItems"] == 1
    owner = grants.get(Ref("topic", topic["id"]), ref_of(alice))
    assert owner is not None and owner["role"] == "owner"


def test_create_topic_defaults(aws):
    result = invoke("topics.create_topic", make_user(), query={}, body=BODY)
    assert result.status == 201, result.body
    assert result.json["config"] == {"defaults": {}} and result.json["dataSourceIds"] == []


def test_team_admins_create_the_teams_topics(aws, aws_calls):
    owner, admin, member, outsider = make_user(), make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, admin, "admin")
    grant(team, member, "member")
    aws_calls.reset()
    result = invoke("topics.create_topic", admin, query={"teamId": team.id}, body=BODY)
    assert result.status == 201, result.body
    assert result.json["teamId"] == team.id and result.json["createdBy"] == admin.user_id
    # The caller's role on the team (1 BatchGetItem), then the topic with its owner grant.
    assert aws_calls.total == 2 and aws_calls["dynamodb:TransactWriteItems"] == 1
    assert grants.get(Ref("topic", result.json["id"]), team)["role"] == "owner"

    denied = invoke("topics.create_topic", member, query={"teamId": team.id}, body=BODY)
    assert denied.status == 403 and denied.json["code"] == "permission_denied"
    hidden = invoke("topics.create_topic", outsider, query={"teamId": team.id}, body=BODY)
    assert hidden.status == 404 and hidden.json["code"] == "not_found"
    unknown = invoke("topics.create_topic", owner, query={"teamId": str(uuid4())}, body=BODY)
    assert unknown.status == 404


def test_service_account_creates_for_its_users(aws):
    service, _ = make_service_account()
    pat = make_user(admin=service)
    stranger = make_user()
    result = invoke("topics.create_topic", service, query={"userId": pat.user_id}, body=BODY)
    assert result.status == 201, result.body
    # It acts as the user: the user owns the topic and is its creator.
    assert result.json["createdBy"] == pat.user_id
    assert grants.get(Ref("topic", result.json["id"]), ref_of(pat))["role"] == "owner"

    probe = invoke("topics.create_topic", service, query={"userId": stranger.user_id}, body=BODY)
    assert probe.status == 404
    # A plain user cannot create topics for another one.
    assert invoke("topics.create_topic", pat, query={"userId": stranger.user_id}, body=BODY).status == 404


def test_scoped_token_cannot_create_for_a_user(aws):
    alice = make_user()
    team = make_object("team", ref_of(alice))
    scoped = Principal(user_id=alice.user_id, scheme="access_token", scope=(team,))
    mine = invoke("topics.create_topic", scoped, query={}, body=BODY)
    assert mine.status == 403 and mine.json["code"] == "out_of_scope"
    for_team = invoke("topics.create_topic", scoped, query={"teamId": team.id}, body=BODY)
    assert for_team.status == 201, for_team.body


def test_create_topic_bad_input(aws):
    alice = make_user()
    team = make_object("team", ref_of(alice))
    bodies = [
        "{bad",
        "[]",
        "null",
        '{"name": 1, "description": "d"}',
        '{"name": "n"}',
        '{"description": "d"}',
        '{"name": "   ", "description": "d"}',
        '{"name": "' + "x" * 300 + '", "description": "d"}',
        '{"name": "n", "description": "' + "x" * 5000 + '"}',
        '{"name": "n", "description": "d", "id": "nope"}',
        '{"name": "n", "description": "d", "config": {"defaults": {}, "theme": "dark"}}',
        '{"name": "n", "description": "d", "config": {"defaults": {"temperature": 2.5}}}',
        '{"name": "n", "description": "d", "config": {"defaults": {"temperature": NaN}}}',
        '{"name": "n", "description": "d", "config": {"defaults": {"maxTokens": 0}}}',
        '{"name": "n", "description": "d", "config": {"defaults": {"model": 3}}}',
        '{"name": "n", "description": "d", "config": []}',
        '{"name": "n", "description": "d", "dataSourceIds": ["nope"]}',
        '{"name": "n", "description": "d", "dataSourceIds": "e39ea5f2-2188-47f8-add0-f1976630af5e"}',
        '{"name": "n", "description": "d", "dataSourceIds": ["e39ea5f2-2188-47f8-add0-f1976630af5e",'
        ' "e39ea5f2-2188-47f8-add0-f1976630af5e"]}',
        '{"name": "n", "description": "d", "dataSourceIds": ['
        + ",".join(f'"{uuid4()}"' for _ in range(501))
        + "]}",
        '{"name": "n", "description": "d", "unknown": 1}',
    ]
    for raw in bodies:
        result = invoke("topics.create_topic", alice, query={}, raw_body=raw)
        assert 400 <= result.status < 500, (raw[:80], result.status)
        assert {"code", "message"} <= set(result.json), result.body
    queries = [{"teamId": team.id, "userId": alice.user_id}, {"teamId": "nope"}, {"userId": "1"}]
    for query in queries:
        result = invoke("topics.create_topic", alice, query=query, body=BODY)
        assert 400 <= result.status < 500, (query, result.status)
        assert {"code", "message"} <= set(result.json)
    both = invoke("topics.create_topic", alice, query=queries[0], body=BODY)
    assert both.status == 400 and both.json["code"] == "ambiguous_owner"


def test_create_topic_needs_credentials(aws):
    result = invoke("topics.create_topic", None, query={}, body=BODY)
    assert result.status == 401 and result.json["code"] == "unauthorized"


def test_defaults_naming_another_tenants_data_source_are_not_found(aws, aws_calls):
    """I6, attacked from tenant A: a topic's defaults naming B's data source would ground A's answers
    on it. Refused as if the data source did not exist; A's own one is accepted (acting for A's user)."""
    tenant_a, _ = make_service_account("a")
    tenant_b, _ = make_service_account("b")
    alice, bob = make_user(admin=tenant_a), make_user(admin=tenant_b)
    theirs = make_object("data_source", ref_of(bob))
    mine = make_object("data_source", ref_of(alice))
    for caller, query in ((alice, {}), (tenant_a, {"userId": alice.user_id})):
        config = {"defaults": {"dataSourceIds": [mine.id, theirs.id]}}
        refused = invoke("topics.create_topic", caller, query=query, body={**BODY, "config": config})
        assert refused.status == 404 and refused.json["code"] == "not_found", refused.body
        assert theirs.id in refused.json["message"]
    aws_calls.reset()
    config = {"defaults": {"dataSourceIds": [mine.id]}}
    created = invoke("topics.create_topic", alice, query={}, body={**BODY, "config": config})
    assert created.status == 201 and created.json["config"] == config
    # The data source's check (its structural grants, the caller's grant), then the topic.
    assert aws_calls.calls == {
        "dynamodb:Query": 1,
        "dynamodb:BatchGetItem": 1,
        "dynamodb:TransactWriteItems": 1,
    }


def test_defaults_off_the_model_allow_list_or_over_the_cap_are_refused(aws):
    """I10: the most expensive model, or 32768 tokens an answer, cannot be made a topic's default."""
    alice = make_user()
    for defaults, code in (
        ({"model": "bedrock:anthropic.claude-3-opus-20240229-v1:0"}, "unknown_model"),
        ({"model": "bedrock:amazon.nova-lite-v1:0", "maxTokens": 32768}, "max_tokens_too_large"),
        ({"maxTokens": 32768}, "max_tokens_too_large"),
    ):
        result = invoke(
            "topics.create_topic", alice, query={}, body={**BODY, "config": {"defaults": defaults}}
        )
        assert (result.status, result.json["code"]) == (422, code), result.body
    assert invoke("topics.query_topics", alice, query={}).json == []


def test_another_tenants_data_source_cannot_be_listed_on_a_topic(aws):
    """I5/I6, attacked from tenant B: B's new topic cannot list A's data source in its `dataSourceIds`
    (only linking does, which checks it); the refusal points at the link operation and tells nothing
    about the data source, which stays unlinked."""
    tenant_a, _ = make_service_account("tenant A")
    tenant_b, _ = make_service_account("tenant B")
    alice, bob = make_user(admin=tenant_a), make_user(admin=tenant_b)
    theirs = make_object("data_source", ref_of(alice))
    missing = str(uuid4())
    answers = []
    for ids in ([theirs.id], [{"id": theirs.id, "name": "a.pdf"}], [missing]):
        result = invoke(
            "topics.create_topic",
            tenant_b,
            query={"userId": bob.user_id},
            body={**BODY, "dataSourceIds": ids},
        )
        assert result.status == 422 and result.json["code"] == "validation_error", result.body
        assert "PUT /topics/{topicId}/data-sources/{dataSourceId}" in result.json["message"]
        answers.append(result.json["message"].replace(missing, theirs.id))
    assert answers[0] == answers[2]  # A's data source and a missing one: the same answer
    assert [g["role"] for g in grants.all_of_object(theirs)] == ["owner"]
    assert invoke("topics.query_topics", bob, query={}).json == []
