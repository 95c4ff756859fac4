"""The identifiers streams' fan-out (`kallo.realtime.identifiers`, through `convos.announce`): who hears a
convo created, renamed (by a person or by the answer that names it), deleted or purged, what each stream
is sent (its own principal's listing, never another tenant's convos), and I8: a stream whose credential
ended is dropped and closed, one whose socket is gone forgotten."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest

from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.clock import iso, now
from kallo.jobs import ReplyJob
from kallo.models.auth import AccessTokenCreate
from kallo.models.convos import ConvoCreate, ConvoPatch
from kallo.realtime import identifiers
from kallo.services import access_tokens, convos, purge, replies
from kallo.store import connections, keys
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support import ws
from tests.support.scripted_llm import Script, ScriptedLLM, installed
from tests.support.world import add_user_step, grant, make_object, make_service_account, make_user, ref_of

sockets = ws.sockets


@pytest.fixture
def people(aws) -> dict[str, Any]:
    """Two tenants: alice (tenant A's user) and bob (tenant B's), each with a stream open."""
    svc_a, _ = make_service_account("a")
    svc_b, _ = make_service_account("b")
    alice, bob = make_user(admin=svc_a), make_user(admin=svc_b)
    return {
        "svc_a": svc_a,
        "alice": alice,
        "bob": bob,
        "alice_stream": ws.connect_stream(alice),
        "bob_stream": ws.connect_stream(bob),
    }


def new_convo(principal: Principal, name: str = "") -> str:
    return convos.create_convo(Access(principal), ConvoCreate(name=name or None))["id"]


def test_a_new_convo_is_heard_by_its_creator_only(people, sockets, aws_calls):
    p = people
    older = new_convo(p["alice"], "older")
    sockets.clear()
    aws_calls.reset()
    convo_id = new_convo(p["alice"], "new")
    assert ws.snapshots(sockets, p["alice_stream"]) == [[convo_id, older]]
    assert ws.snapshots(sockets, p["bob_stream"]) == []
    # The write; alice's streams (Query); her listing (Query + BatchGetItem); the post; its `sent`.
    assert dict(aws_calls.calls) == {
        "dynamodb:TransactWriteItems": 1,
        "dynamodb:Query": 2,
        "dynamodb:BatchGetItem": 1,
        "apigatewaymanagementapi:PostToConnection": 1,
        "dynamodb:UpdateItem": 1,
    }
    stored = connections.streams_of(p["alice"].user_id)
    assert stored[0]["sent"] == [convo_id, older]


def test_a_rename_reaches_each_grantee_with_its_own_listing(people, sockets):
    p = people
    alices_own = new_convo(p["alice"], "private")
    shared = new_convo(p["alice"], "shared")
    bobs_own = new_convo(p["bob"], "bob's")
    grant(Ref("convo", shared), p["bob"], "viewer")
    sockets.clear()
    convos.patch_convo(Access(p["alice"]), shared, ConvoPatch(name="renamed"))
    assert ws.snapshots(sockets, p["alice_stream"]) == [[shared, alices_own]]
    # Bob hears the convo shared with him and his own, never alice's private one.
    assert ws.snapshots(sockets, p["bob_stream"]) == [[bobs_own, shared]]
    sockets.clear()
    convos.patch_convo(Access(p["alice"]), alices_own, ConvoPatch(name="still private"))
    assert ws.snapshots(sockets, p["bob_stream"]) == []
    assert ws.snapshots(sockets, p["alice_stream"]) == [[shared, alices_own]]


def test_a_deletion_is_a_new_snapshot_and_a_deletion_marker(people, sockets):
    p = people
    kept, doomed = new_convo(p["alice"]), new_convo(p["alice"])
    grant(Ref("convo", doomed), p["bob"], "participant")
    sockets.clear()
    convos.delete_convo(Access(p["alice"]), doomed)
    assert ws.snapshots(sockets, p["alice_stream"]) == [[kept, "-" + doomed]]
    assert ws.snapshots(sockets, p["bob_stream"]) == [["-" + doomed]]


def test_a_narrow_token_hears_nothing_outside_its_scope(people, sockets):
    """I3 (scope): a stream opened with a token scoped to one convo hears only that convo."""
    p = people
    scoped_convo = new_convo(p["alice"], "scoped")
    data = AccessTokenCreate.model_validate(
        {
            "userId": p["alice"].user_id,
            "scopeObjects": [{"type": "convo", "id": scoped_convo}],
            "expiresAt": iso(now() + timedelta(hours=1)),
        }
    )
    token = access_tokens.create_access_token(Access(p["svc_a"]), data)
    narrow = Principal(
        user_id=p["alice"].user_id,
        scheme="access_token",
        token_id=token["id"],
        scope=(Ref("convo", scoped_convo),),
    )
    narrow_stream = ws.connect_stream(narrow)
    sockets.clear()
    other = new_convo(p["alice"], "outside the scope")
    assert ws.snapshots(sockets, narrow_stream) == []
    convos.patch_convo(Access(p["alice"]), scoped_convo, ConvoPatch(name="in scope"))
    assert ws.snapshots(sockets, narrow_stream) == [[scoped_convo]]
    assert set(ws.snapshots(sockets, p["alice_stream"])[-1]) == {scoped_convo, other}


def test_a_revoked_token_ends_the_stream(people, sockets):
    """I8 (live access): the next announcement re-checks the stream's credential; a revoked token's
    stream is forgotten and its socket closed, hearing nothing."""
    p = people
    data = AccessTokenCreate.model_validate(
        {
            "userId": p["alice"].user_id,
            "scopeObjects": [{"type": "user", "id": p["alice"].user_id}],
            "expiresAt": iso(now() + timedelta(hours=1)),
        }
    )
    token = access_tokens.create_access_token(Access(p["svc_a"]), data)
    by_token = Principal(user_id=p["alice"].user_id, scheme="access_token", token_id=token["id"])
    stream = ws.connect_stream(by_token)
    first = new_convo(p["alice"])
    assert ws.snapshots(sockets, stream) == [[first]]
    access_tokens.revoke_access_token(Access(p["svc_a"]), token["id"])
    sockets.clear()
    new_convo(p["alice"])
    assert ws.snapshots(sockets, stream) == []
    assert stream in sockets.closed
    assert connections.get(stream) is None
    assert [s["connectionId"] for s in connections.streams_of(p["alice"].user_id)] == [p["alice_stream"]]


def test_a_forged_stream_of_another_user_is_refused(people, sockets):
    """A stream item in alice's partition whose principal is bob's is never sent anything."""
    p = people
    forged = {
        "connectionId": "forged0000000X=",
        "stream": identifiers.STREAM,
        "userId": p["alice"].user_id,
        "principal": p["bob"].to_context(),
        "connectedAt": iso(now()),
    }
    connections.put_stream(forged, ttl=2_000_000_000)
    new_convo(p["alice"])
    assert ws.snapshots(sockets, "forged0000000X=") == []
    assert "forged0000000X=" in sockets.closed


def test_a_gone_socket_is_forgotten_unless_it_is_still_opening(people, sockets):
    p = people
    older = ws.connect_stream(p["alice"], connected_at=iso(now() - timedelta(minutes=1)))
    sockets.gone.update({older, p["alice_stream"]})
    new_convo(p["alice"])
    assert connections.get(older) is None
    # Connected a moment ago: its socket may not be open yet (its greeting is being tried).
    assert [s["connectionId"] for s in connections.streams_of(p["alice"].user_id)] == [p["alice_stream"]]


def test_a_topic_purge_tells_the_creators_of_its_convos(people, sockets):
    p = people
    topic = make_object("topic", ref_of(p["alice"]))
    in_topic = convos.create_convo(Access(p["alice"]), ConvoCreate(), topic_id=topic.id)["id"]
    mine = new_convo(p["alice"])
    table().delete(keys.object_key(topic))  # as Delete Topic does, before its purge
    sockets.clear()
    purge.purge(topic)
    assert ws.snapshots(sockets, p["alice_stream"]) == [[mine, "-" + in_topic]]


def test_the_answer_that_names_a_convo_is_heard(people, sockets):
    p = people
    convo_id = new_convo(p["alice"])
    question = add_user_step(Ref("convo", convo_id), p["alice"], "Why is the sky blue?")
    sockets.clear()
    with installed(ScriptedLLM(Script(["Rayleigh scattering."]), Script(["Blue Sky"]))) as model:
        replies.answer(
            ReplyJob(
                jobId=str(uuid4()),
                convoId=convo_id,
                replyToStepId=question["id"],
                llmStepId=str(uuid4()),
                config={"model": model, "reply": True},
                requestedBy=p["alice"].user_id,
            )
        )
    assert ws.snapshots(sockets, p["alice_stream"]) == [[convo_id]]
    assert convos.get_convo(Access(p["alice"]), convo_id)["name"] == "Blue Sky"


def test_a_greeting_sends_the_first_snapshot_once_the_socket_opens(people, sockets, monkeypatch, aws_calls):
    p = people
    mine = new_convo(p["alice"])
    sockets.clear()
    fresh = ws.connect_stream(p["alice"])
    sockets.gone.add(fresh)  # not open yet: API Gateway answers 410 until $connect has returned
    # Meanwhile a change: the stream is not open yet, and is kept all the same.
    assert convos.identifiers(Access(p["alice"])) == [mine]
    newer = new_convo(p["alice"])
    assert connections.get(fresh) is not None
    monkeypatch.setattr(identifiers.time, "sleep", lambda seconds: sockets.gone.discard(fresh))
    aws_calls.reset()
    assert identifiers.greet_when_open(fresh, convos.identifiers) is True
    # The stream (GetItem), its listing (Query + BatchGetItem), a refused post then the post, `sent`.
    assert dict(aws_calls.calls) == {
        "dynamodb:GetItem": 1,
        "dynamodb:Query": 1,
        "dynamodb:BatchGetItem": 1,
        "apigatewaymanagementapi:PostToConnection": 2,
        "dynamodb:UpdateItem": 1,
    }
    assert ws.snapshots(sockets, fresh) == [[newer, mine]]
    [stored] = [s for s in connections.streams_of(p["alice"].user_id) if s["connectionId"] == fresh]
    assert stored["sent"] == [newer, mine]


def test_a_stream_that_never_opens_is_forgotten(people, sockets, monkeypatch):
    p = people
    fresh = ws.connect_stream(p["alice"])
    sockets.gone.add(fresh)
    monkeypatch.setattr(identifiers.time, "sleep", lambda seconds: None)
    assert identifiers.greet_when_open(fresh, convos.identifiers, seconds=0.0) is False
    assert connections.get(fresh) is None
    assert identifiers.greet_when_open(fresh, convos.identifiers) is False
