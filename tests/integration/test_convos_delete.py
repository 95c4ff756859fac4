"""Delete a Convo: DELETE /convos/{convoId} → 204; the convo and its grants go at once, the rest through
a purge job."""

import json
from uuid import uuid4

from kallo import aws as kallo_aws
from kallo.authz.access import Access
from kallo.models.convos import ConvoCreate
from kallo.realtime import audience
from kallo.services import convos
from kallo.settings import get_settings
from kallo.store import connections, grants, keys, objects
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support import ws
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_user, ref_of


def delete(principal, convo_id: str):
    return invoke("convos.delete_convo", principal, path={"convoId": convo_id})


def purge_jobs() -> list[dict]:
    sqs = kallo_aws.client("sqs")
    received = sqs.receive_message(QueueUrl=get_settings().purge_queue_url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in received.get("Messages", [])]


def test_owner_deletes(aws, aws_calls):
    alice, bob = make_user(), make_user()
    convo_id = convos.create_convo(Access(alice), ConvoCreate())["id"]
    ref = Ref("convo", convo_id)
    grant(ref, bob, "participant")
    aws_calls.reset()
    result = delete(alice, convo_id)
    assert result.status == 204 and result.body == ""
    # The check (2), the convo's connections (1: none), its user grants (1), one transaction, the purge
    # job, then the identifiers streams of alice and bob (a Query each, none open).
    assert aws_calls["dynamodb:Query"] == 5 and aws_calls["dynamodb:TransactWriteItems"] == 1
    assert aws_calls["sqs:SendMessage"] == 1 and aws_calls.total == 8
    assert objects.get(ref) is None and grants.all_of_object(ref) == []
    assert purge_jobs() == [{"type": "convo", "id": convo_id}]
    # Gone for everyone: bob's participant grant went with it.
    assert invoke("convos.get_convo", bob, path={"convoId": convo_id}).status == 404
    assert delete(alice, convo_id).status == 404


def test_topic_owners_delete_its_convos_creators_and_participants_do_not(aws):
    owner, member, outsider = make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    topic = make_object("topic", team)
    convo_id = convos.create_convo(Access(member), ConvoCreate(), topic_id=topic.id)["id"]
    assert delete(outsider, convo_id).status == 404
    denied = delete(member, convo_id)  # the creator is the convo's admin, not its owner
    assert denied.status == 403 and denied.json["code"] == "permission_denied"
    assert purge_jobs() == []
    assert delete(owner, convo_id).status == 204
    ref = Ref("convo", convo_id)
    assert grants.get(ref, topic) is None and grants.get(ref, ref_of(member)) is None


def test_unknown_and_malformed(aws):
    alice = make_user()
    assert delete(alice, str(uuid4())).status == 404
    bad = delete(alice, "1234")
    assert bad.status == 422 and {"code", "message"} <= set(bad.json)
    assert purge_jobs() == []


sockets = ws.sockets


def test_its_connections_hear_convo_deleted_then_are_closed(sockets, aws_calls):
    room, elsewhere = ws.room(), ws.room()
    aws_calls.reset()
    assert delete(room.owner, room.convo_id).status == 204
    connected = [room.owner_connection, room.participant_connection, room.viewer_connection]
    for connection in connected:
        # The message was posted before the close (a closed connection answers Gone to a post).
        assert sockets.to(connection) == [{"type": "convoDeleted", "payload": {"id": room.convo_id}}]
    assert sorted(sockets.closed) == sorted(connected)
    assert sockets.to(elsewhere.owner_connection) == [] and elsewhere.owner_connection not in sockets.closed
    assert [c["connectionId"] for c in connections.of_convo(room.convo_id)] == []
    assert connections.get(room.viewer_connection) is None
    # + the connections (Query) and their check (I8: Query + BatchGetItem), their items (1
    # BatchWriteItem), 3 posts and 3 closes.
    assert aws_calls["apigatewaymanagementapi:PostToConnection"] == 3
    assert aws_calls["apigatewaymanagementapi:DeleteConnection"] == 3
    assert aws_calls["dynamodb:BatchWriteItem"] == 1


def test_attack_a_connection_that_lost_the_convo_is_closed_without_hearing_of_it(sockets):
    """I8: the viewer's grant was removed before the deletion: it is not told, only closed."""
    room = ws.room()
    grants_key = keys.grant_key(Ref("convo", room.convo_id), Ref("user", room.viewer.user_id or ""))
    table().delete(grants_key)
    audience.forget()
    assert delete(room.owner, room.convo_id).status == 204
    assert sockets.to(room.viewer_connection) == []
    assert room.viewer_connection in sockets.closed
    assert [m["type"] for m in sockets.to(room.participant_connection)] == ["convoDeleted"]


def test_a_connection_already_gone_does_not_fail_the_deletion(sockets):
    room = ws.room()
    sockets.gone.add(room.participant_connection)
    assert delete(room.owner, room.convo_id).status == 204
    assert [m["type"] for m in sockets.to(room.owner_connection)] == ["convoDeleted"]
    assert objects.get(Ref("convo", room.convo_id)) is None
