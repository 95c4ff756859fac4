"""An answer's deltas may reuse the convo's connection list for about a second (`kallo.realtime`); every
other message reads it afresh, so a connection opened during an answer gets those. Reuse never skips
the audience check (I8)."""

from __future__ import annotations

from kallo import realtime
from kallo.realtime import audience
from kallo.store import keys
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support import ws

sockets = ws.sockets


def delta(convo_id: str, seq: int) -> None:
    realtime.broadcast(
        convo_id, "convoStepUpdate", {"id": "s", "delta": "x", "seq": seq}, reuse_connections=True
    )


def test_deltas_reuse_the_list_within_a_second_and_other_messages_read_it_afresh(sockets, aws_calls):
    room = ws.room()
    realtime.broadcast(room.convo_id, "convoNewStep", {"id": "s"})
    late = ws.connect(room.owner, room.convo_id)  # opens while the answer streams
    aws_calls.reset()
    delta(room.convo_id, 1)
    delta(room.convo_id, 2)
    # No Query: the list of the newStep's broadcast (the late connection is not on it yet).
    assert aws_calls["dynamodb:Query"] == 0 and sockets.to(late) == []
    realtime.broadcast(room.convo_id, "convoStepUpdate", {"id": "s", "status": "completed", "seq": 3})
    # The final update reads the list; the newcomer is checked on its grants (the chain read just before).
    assert aws_calls["dynamodb:Query"] == 1 and aws_calls["dynamodb:BatchGetItem"] == 1
    assert [m["payload"].get("status") for m in sockets.to(late)] == ["completed"]


def test_a_delta_after_a_second_reads_the_list_again(sockets, aws_calls, monkeypatch):
    room = ws.room()
    realtime.broadcast(room.convo_id, "convoNewStep", {"id": "s"})
    monkeypatch.setattr(realtime, "CONNECTIONS_REUSE_SECONDS", 0.0)
    aws_calls.reset()
    delta(room.convo_id, 1)
    assert aws_calls["dynamodb:Query"] == 1


def test_a_reused_list_still_refuses_a_connection_whose_grant_was_removed(sockets):
    """I8: the viewer's grant goes while an answer streams; once its verdict is due, a delta sent on the
    reused list does not reach it, and it is dropped."""
    room = ws.room()
    realtime.broadcast(room.convo_id, "convoNewStep", {"id": "s"})
    table().delete(keys.grant_key(Ref("convo", room.convo_id), Ref("user", room.viewer.user_id or "")))
    audience.forget()  # the re-check interval (3 s) has passed
    sockets.clear()
    delta(room.convo_id, 1)
    assert room.viewer_connection not in sockets.receivers
    assert sockets.closed == [room.viewer_connection]
    delta(room.convo_id, 2)  # the dropped connection is off the reused list: not posted to again
    assert sockets.closed == [room.viewer_connection]
    assert [m["payload"]["seq"] for m in sockets.to(room.owner_connection)] == [1, 2]
