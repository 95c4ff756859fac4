"""Update Topic: PATCH /topics/{topicId}."""

from uuid import uuid4

from kallo.authz.access import Access
from kallo.models.topics import TopicCreate
from kallo.services import topics
from kallo.store import keys
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of


def test_update_topic_changes_only_the_given_fields(aws, aws_calls):
    alice = make_user()
    created = topics.create_topic(
        Access(alice),
        TopicCreate.model_validate(
            {"name": "Trees", "description": "Antarctic", "config": {"defaults": {"temperature": 1}}}
        ),
    )
    aws_calls.reset()
    result = invoke(
        "topics.update_topic",
        alice,
        path={"topicId": created["id"]},
        # The seed's sample puts a uuid in `name`: any text is a name.
        body={"name": "9ffa9185-7453-4fb2-aa6a-3105a6ae83a8"},
    )
    assert result.status == 200, result.body
    topic = result.json
    assert topic["name"] == "9ffa9185-7453-4fb2-aa6a-3105a6ae83a8"
    assert topic["description"] == "Antarctic" and topic["config"] == {"defaults": {"temperature": 1.0}}
    assert topic["dataSourceIds"] == [] and topic["updatedAt"] >= topic["createdAt"]
    # The permission check (Query + BatchGetItem), then one UpdateItem returning the new topic.
    assert aws_calls.total == 3 and aws_calls["dynamodb:UpdateItem"] == 1

    # The config is a JSON merge patch (RFC 7396): given keys change, a null removes one, others stay.
    aws_calls.reset()
    merged = invoke(
        "topics.update_topic",
        alice,
        path={"topicId": created["id"]},
        body={"config": {"defaults": {"model": "bedrock:amazon.nova-micro-v1:0", "reply": True}}},
    )
    assert merged.json["config"] == {
        "defaults": {"model": "bedrock:amazon.nova-micro-v1:0", "reply": True, "temperature": 1.0}
    }
    # The check, the stored config (GetItem), the conditional UpdateItem.
    assert aws_calls.calls == {
        "dynamodb:Query": 1,
        "dynamodb:BatchGetItem": 1,
        "dynamodb:GetItem": 1,
        "dynamodb:UpdateItem": 1,
    }
    removed = invoke(
        "topics.update_topic",
        alice,
        path={"topicId": created["id"]},
        body={"config": {"defaults": {"model": None, "temperature": 0.5}}, "name": "Trees"},
    )
    assert removed.json["config"] == {"defaults": {"reply": True, "temperature": 0.5}}
    assert removed.json["name"] == "Trees"
    emptied = invoke(
        "topics.update_topic", alice, path={"topicId": created["id"]}, body={"config": {"defaults": None}}
    )
    assert emptied.json["config"] == {"defaults": {}}


def test_a_merged_config_is_checked_as_a_whole(aws):
    """maxTokens is capped for the model the merged config names, even when only one of them changes;
    a merge that makes an invalid config is 422 and changes nothing."""
    alice = make_user()
    path = {"topicId": topics.create_topic(Access(alice), TopicCreate(name="T", description=""))["id"]}
    assert (
        invoke(
            "topics.update_topic", alice, path=path, body={"config": {"defaults": {"maxTokens": 4000}}}
        ).status
        == 200
    )
    for patch, code in (
        # nova-micro answers with at most 2048 tokens: the stored 4000 is too many for it.
        ({"defaults": {"model": "bedrock:amazon.nova-micro-v1:0"}}, "max_tokens_too_large"),
        ({"defaults": {"temperature": "hot"}}, "validation_error"),
        ({"defaults": 5}, "validation_error"),
        ({"extra": True}, "validation_error"),
    ):
        result = invoke("topics.update_topic", alice, path=path, body={"config": patch})
        assert (result.status, result.json["code"]) == (422, code), result.body
    [topic] = invoke("topics.query_topics", alice, query={"topicIds": path["topicId"]}).json
    assert topic["config"] == {"defaults": {"maxTokens": 4000}}


def test_a_config_patch_over_a_concurrent_change_is_a_conflict(aws, monkeypatch):
    """The merge reads the stored config: a change written between that read and the update is not lost
    (409), and the caller reads the topic again."""
    alice = make_user()
    topic_id = topics.create_topic(Access(alice), TopicCreate(name="T", description=""))["id"]
    reading = topics.require_existing

    def read_then_someone_writes(ref):
        found = reading(ref)
        table().update(keys.object_key(ref), {"updatedAt": "2099-01-01T00:00:00.000Z"})
        return found

    monkeypatch.setattr(topics, "require_existing", read_then_someone_writes)
    result = invoke(
        "topics.update_topic",
        alice,
        path={"topicId": topic_id},
        body={"config": {"defaults": {"reply": True}}},
    )
    assert (result.status, result.json["code"]) == (409, "conflict"), result.body


def test_team_admins_edit_team_topics_members_do_not(aws):
    owner, admin, member, outsider = make_user(), make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, admin, "admin")
    grant(team, member, "member")
    topic_id = topics.create_topic(Access(owner), TopicCreate(name="T", description=""), team_id=team.id)[
        "id"
    ]
    path = {"topicId": topic_id}
    assert invoke("topics.update_topic", admin, path=path, body={"description": "by admin"}).status == 200
    denied = invoke("topics.update_topic", member, path=path, body={"description": "by member"})
    assert denied.status == 403 and denied.json["code"] == "permission_denied"
    hidden = invoke("topics.update_topic", outsider, path=path, body={"description": "by outsider"})
    assert hidden.status == 404 and hidden.json["code"] == "not_found"
    unknown = invoke("topics.update_topic", owner, path={"topicId": str(uuid4())}, body={"name": "x"})
    assert unknown.status == 404


def test_update_of_a_deleted_topic_is_not_found(aws):
    alice = make_user()
    topic_id = topics.create_topic(Access(alice), TopicCreate(name="T", description=""))["id"]
    # Its owner grant is still there (as while the purge worker has not run for a member's grant).
    table().delete(keys.object_key(Ref("topic", topic_id)))
    result = invoke("topics.update_topic", alice, path={"topicId": topic_id}, body={"name": "x"})
    assert result.status == 404 and result.json["code"] == "not_found"


def test_update_topic_bad_input(aws):
    alice = make_user()
    topic_id = topics.create_topic(Access(alice), TopicCreate(name="T", description=""))["id"]
    path = {"topicId": topic_id}
    for raw in (
        "{bad",
        "{}",
        "[]",
        '{"name": null}',
        '{"name": ""}',
        '{"name": "' + "x" * 257 + '"}',
        '{"description": 5}',
        '{"config": {"defaults": {"temperature": -0.1}}}',
        '{"config": {"defaults": {}, "extra": true}}',
        '{"config": null}',
        '{"config": []}',
        '{"config": {"defaults": {"model": ""}}}',
        '{"dataSourceIds": ["x"]}',
        '{"dataSourceIds": []}',
        '{"promptId": "' + str(uuid4()) + '"}',
        '{"createdBy": "' + str(uuid4()) + '"}',
    ):
        result = invoke("topics.update_topic", alice, path=path, raw_body=raw)
        assert 400 <= result.status < 500, (raw[:60], result.status)
        assert {"code", "message"} <= set(result.json), result.body
    bad_id = invoke("topics.update_topic", alice, path={"topicId": "nope"}, body={"name": "x"})
    assert bad_id.status == 422


def test_an_update_naming_another_tenants_data_source_or_model_is_refused(aws):
    """I6 and I10, attacked from tenant A: the defaults of A's own topic may not name B's data source,
    a model off the allow-list or more tokens than the cap; the topic keeps its config."""
    tenant_a, _ = make_service_account("a")
    tenant_b, _ = make_service_account("b")
    alice, bob = make_user(admin=tenant_a), make_user(admin=tenant_b)
    theirs = make_object("data_source", ref_of(bob))
    created = topics.create_topic(Access(alice), TopicCreate(name="T", description=""))
    path = {"topicId": created["id"]}
    for defaults, status, code in (
        ({"dataSourceIds": [theirs.id]}, 404, "not_found"),
        ({"model": "bedrock:anthropic.claude-3-opus-20240229-v1:0"}, 422, "unknown_model"),
        ({"maxTokens": 32768}, 422, "max_tokens_too_large"),
    ):
        result = invoke("topics.update_topic", alice, path=path, body={"config": {"defaults": defaults}})
        assert (result.status, result.json["code"]) == (status, code), result.body
    [topic] = invoke("topics.query_topics", alice, query={"topicIds": created["id"]}).json
    assert topic["config"] == {"defaults": {}}
    # Someone who cannot see the topic learns nothing about the data source either.
    hidden = invoke(
        "topics.update_topic", bob, path=path, body={"config": {"defaults": {"dataSourceIds": [theirs.id]}}}
    )
    assert hidden.status == 404 and created["id"] in hidden.json["message"]


def test_another_tenants_data_source_cannot_be_put_in_a_topics_list(aws):
    """I5/I6, attacked from tenant B: B's own topic's `dataSourceIds` cannot be set to A's data source
    (only linking writes it, after checking the data source); the topic keeps its list."""
    tenant_a, _ = make_service_account("tenant A")
    tenant_b, _ = make_service_account("tenant B")
    alice, bob = make_user(admin=tenant_a), make_user(admin=tenant_b)
    theirs = make_object("data_source", ref_of(alice))
    created = topics.create_topic(Access(bob), TopicCreate(name="T", description=""))
    for body in ({"dataSourceIds": [theirs.id]}, {"name": "x", "dataSourceIds": [theirs.id]}):
        result = invoke("topics.update_topic", bob, path={"topicId": created["id"]}, body=body)
        assert result.status == 422 and result.json["code"] == "validation_error", result.body
        assert "PUT /topics/{topicId}/data-sources/{dataSourceId}" in result.json["message"]
    [topic] = invoke("topics.query_topics", bob, query={"topicIds": created["id"]}).json
    assert topic["dataSourceIds"] == [] and topic["name"] == "T"
