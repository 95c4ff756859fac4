"""Patch a Convo: PATCH /convos/{convoId} {name} → 200 convo (free-text name, updatedAt set)."""

from uuid import uuid4

from kallo.authz.access import Access
from kallo.models.convos import ConvoCreate
from kallo.services import convos
from kallo.store import keys
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_user, ref_of


def patch(principal, convo_id: str, body=None, raw_body=None):
    return invoke("convos.patch_convo", principal, path={"convoId": convo_id}, body=body, raw_body=raw_body)


def test_rename(aws, aws_calls):
    alice = make_user()
    convo = convos.create_convo(Access(alice), ConvoCreate(name="Draft"))
    aws_calls.reset()
    result = patch(alice, convo["id"], {"name": "  Lisbon, day 2 "})
    assert result.status == 200, result.body
    assert result.json["name"] == "Lisbon, day 2" and result.json["updatedAt"] >= convo["updatedAt"]
    assert result.json["createdAt"] == convo["createdAt"]
    # The check, then one conditional UpdateItem that returns the new item; then the convo's user
    # grantees (1 Query) and their identifiers streams (1 Query: alice's, none open) hear of it.
    assert aws_calls["dynamodb:UpdateItem"] == 1 and aws_calls.total == 5


def test_who_may_rename(aws):
    owner, member, participant, outsider = make_user(), make_user(), make_user(), make_user()
    topic = make_object("topic", ref_of(owner))
    grant(topic, member, "member")
    convo_id = convos.create_convo(Access(member), ConvoCreate(), topic_id=topic.id)["id"]
    grant(Ref("convo", convo_id), participant, "participant")
    assert patch(owner, convo_id, {"name": "by the topic owner"}).status == 200
    assert patch(member, convo_id, {"name": "by its creator (admin)"}).status == 200
    denied = patch(participant, convo_id, {"name": "x"})
    assert denied.status == 403 and denied.json["code"] == "permission_denied"
    assert patch(outsider, convo_id, {"name": "x"}).status == 404


def test_a_deleted_convo_is_not_resurrected(aws):
    alice = make_user()
    convo_id = convos.create_convo(Access(alice), ConvoCreate())["id"]
    # Deleted behind its back: the owner grant still passes the check.
    table().delete(keys.object_key(Ref("convo", convo_id)))
    result = patch(alice, convo_id, {"name": "x"})
    assert result.status == 404 and result.json["code"] == "not_found"
    assert table().get(keys.object_key(Ref("convo", convo_id))) is None


def test_bad_input(aws):
    alice = make_user()
    convo_id = convos.create_convo(Access(alice), ConvoCreate())["id"]
    for raw in (
        "{bad",
        "[]",
        "{}",
        '{"name": null}',
        '{"name": ""}',
        '{"name": "   "}',
        '{"name": 5}',
        '{"name": "' + "x" * 257 + '"}',
        '{"name": "a", "topicId": "' + str(uuid4()) + '"}',
    ):
        result = patch(alice, convo_id, raw_body=raw)
        assert 400 <= result.status < 500, (raw, result.status)
        assert {"code", "message"} <= set(result.json), result.body
    assert patch(alice, "nope", {"name": "x"}).status == 422
