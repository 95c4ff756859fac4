"""Patch a Convo: PATCH /convos/{convoId} {name} → 200 convo (free-text name, updatedAt set)."""

from uuid import uuid4

from kallo.authz.access import Access
from kallo.models.convos import ConvoCreate
from kallo.services import convos
from kallo.store import keys
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support import ws
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
    # The check, then one conditional UpdateItem that returns the new item; the convo's connections
    # (1 Query: none); then the convo's user grantees (1 Query) and their identifiers streams (1
    # Query: alice's, none open) hear of it.
    assert aws_calls["dynamodb:UpdateItem"] == 1 and aws_calls.total == 6


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


sockets = ws.sockets


def test_a_rename_is_broadcast_as_convo_update(sockets, aws_calls):
    room, elsewhere = ws.room(), ws.room()
    aws_calls.reset()
    result = patch(room.owner, room.convo_id, {"name": "Lisbon, day 3"})
    assert result.status == 200
    update = {"id": room.convo_id, "name": "Lisbon, day 3", "updatedAt": result.json["updatedAt"]}
    for connection in (room.owner_connection, room.participant_connection, room.viewer_connection):
        assert sockets.to(connection) == [{"type": "convoUpdate", "payload": update}]
    assert sockets.to(elsewhere.owner_connection) == []
    # The rename (check: Query + BatchGetItem; UpdateItem), the connections (Query) and their check
    # (I8: the convo's grants, Query + BatchGetItem), 3 posts; then the identifiers streams: the
    # convo's user grantees (Query) and each one's streams (3 Query).
    assert dict(aws_calls.calls) == {
        "dynamodb:Query": 1 + 1 + 1 + 1 + 3,
        "dynamodb:BatchGetItem": 1 + 1,
        "dynamodb:UpdateItem": 1,
        "apigatewaymanagementapi:PostToConnection": 3,
    }


def test_attack_a_connection_that_lost_the_convo_does_not_hear_its_new_name(sockets):
    """I8: the viewer's grant is gone; the rename is not sent to it, and its socket is closed."""
    room = ws.room()
    table().delete(keys.grant_key(Ref("convo", room.convo_id), Ref("user", room.viewer.user_id or "")))
    ws.audience.forget()
    assert patch(room.owner, room.convo_id, {"name": "secret new name"}).status == 200
    assert sockets.to(room.viewer_connection) == []
    assert room.viewer_connection in sockets.closed
    assert [m["type"] for m in sockets.to(room.participant_connection)] == ["convoUpdate"]
