"""convoNewStep (ws.convo_new_step): a user step stored, broadcast to every connection of the convo, and
answered through the FIFO step queue when it asks for a reply."""

from uuid import uuid4

from kallo.store import connections, grants, objects, search, steps
from kallo.store.keys import Ref
from tests.support import ws
from tests.support.world import grant, make_object, make_user, ref_of

sockets = ws.sockets


def test_the_step_is_broadcast_to_the_convo_and_a_reply_queued(sockets, aws_calls):
    room = ws.room()
    elsewhere = ws.room()
    aws_calls.reset()
    answer = ws.invoke("convo_new_step", room.participant_connection)  # the sample: reply asked for
    assert answer == {"statusCode": 200}
    # The connection; the check (structural grants + the caller's grants, which say they hold a grant of
    # their own: no read for that); the step, its marker, the convo's latestStep and its words in one
    # transaction; the convo's connections; the check of the two other connections (their grants: the
    # structural grants were read a moment ago, I8); 3 posts; the job.
    assert dict(aws_calls.calls) == {
        "dynamodb:GetItem": 1,
        "dynamodb:Query": 2,
        "dynamodb:BatchGetItem": 2 + 1,  # + the token budgets (a reply is asked for)
        "dynamodb:UpdateItem": 1,  # the message counted against the sender's rate
        "dynamodb:TransactWriteItems": 1,
        "apigatewaymanagementapi:PostToConnection": 3,
        "sqs:SendMessage": 1,
    }
    (step,) = sockets.payloads(room.participant_connection, "convoNewStep")
    assert step["content"] == {"text": "Plan three days in Lisbon"}
    assert step["authorId"] == room.participant.user_id and step["config"] == {
        "reply": True,
        "temperature": 0.7,
    }
    for connection in (room.owner_connection, room.viewer_connection, room.participant_connection):
        (message,) = sockets.to(connection)
        assert message == {"type": "convoNewStep", "payload": step, "requestId": "req-1"}
    assert sockets.receivers == {room.owner_connection, room.viewer_connection, room.participant_connection}
    assert elsewhere.owner_connection not in sockets.receivers
    assert steps.get(step["id"]) == step == objects.get(Ref("convo", room.convo_id))["latestStep"]
    (job,) = ws.reply_jobs()
    assert job["messageGroupId"] == room.convo_id and job["deduplicationId"] == step["id"]
    assert (
        job["replyToStepId"] == step["id"] == job["jobId"] and job["requestedBy"] == room.participant.user_id
    )
    assert job["config"] == step["config"]


def test_without_a_reply_nothing_is_queued(sockets):
    room = ws.room()
    ws.send(room.owner_connection, "convoNewStep", {"content": {"text": "just a note"}})
    assert len(sockets.frames) == 3 and ws.reply_jobs() == []


def test_a_message_costs_three_dynamodb_calls_while_its_connection_is_checked(sockets, aws_calls):
    """The budget of a message without a reply while a conversation goes on: the connection's item and
    the verdicts of the last 3 s (I8, with the grants they were made on) are in the process."""
    room = ws.room()
    ws.send(room.owner_connection, "convoNewStep", {"content": {"text": "first"}})
    aws_calls.reset()
    ws.send(room.owner_connection, "convoNewStep", {"content": {"text": "second, with a few words"}})
    # The message counted against the rate; the step, its marker, the convo's latestStep and its words
    # in one transaction; the convo's connections, read afresh (a newStep always is).
    assert dict(aws_calls.calls) == {
        "dynamodb:UpdateItem": 1,
        "dynamodb:TransactWriteItems": 1,
        "dynamodb:Query": 1,
        "apigatewaymanagementapi:PostToConnection": 3,
    }
    assert [s["content"]["text"] for s in steps.of_convo(room.convo_id).items][
        -1
    ] == "second, with a few words"
    assert [p["stepId"] for p in search.postings("few", limit=5).items] == [
        steps.of_convo(room.convo_id).items[-1]["id"]
    ]


def test_a_long_message_has_its_words_written_apart(sockets, aws_calls):
    """A step with more distinct words than its transaction can take writes them with BatchWriteItem."""
    room = ws.room()
    text = " ".join(f"word{n}" for n in range(120))
    aws_calls.reset()
    ws.send(room.owner_connection, "convoNewStep", {"content": {"text": text}})
    assert aws_calls["dynamodb:TransactWriteItems"] == 1 and aws_calls["dynamodb:BatchWriteItem"] == 4
    (stored,) = steps.of_convo(room.convo_id).items
    assert [p["stepId"] for p in search.postings("word99", limit=5).items] == [stored["id"]]


def test_a_client_cannot_choose_a_step_id(sockets):
    """I4: a step's id is the server's. Another convo's step id and a fresh one get the same answer, so
    a message tells nothing about ids in use; nothing is stored or heard."""
    room, other = ws.room(), ws.room()
    ws.send(other.owner_connection, "convoNewStep", {"content": {"text": "elsewhere"}})
    (theirs,) = sockets.payloads(other.owner_connection, "convoNewStep")
    sockets.clear()
    step = {"content": {"text": "mine"}}
    messages = [
        ("convoNewStep", lambda chosen: {**step, "id": chosen}),
        ("convoNewStepGroup", lambda chosen: {"steps": [step, {**step, "id": chosen}]}),
    ]
    answers = []
    for message, payload in messages:
        for chosen in (theirs["id"], str(uuid4())):
            ws.send(room.owner_connection, message, payload(chosen), "r1")
            (error,) = sockets.errors(room.owner_connection)
            answers.append((error["code"], error["message"].replace(chosen, "<id>")))
            sockets.clear()
    assert {code for code, _ in answers} == {"validation_error"}
    assert answers[0] == answers[1] and answers[2] == answers[3]
    assert "assigned by the server" in answers[0][1]
    assert steps.of_convo(room.convo_id).items == []
    assert [s["id"] for s in steps.of_convo(other.convo_id).items] == [theirs["id"]]


def test_a_viewer_watches_and_cannot_write(sockets):
    room = ws.room()
    assert ws.send(room.viewer_connection, "convoNewStep", {"content": {"text": "me too"}}, "v1") == {
        "statusCode": 200
    }
    (error,) = sockets.errors(room.viewer_connection)
    assert error["code"] == "permission_denied" and error["requestId"] == "v1"
    assert sockets.receivers == {room.viewer_connection}
    assert steps.of_convo(room.convo_id).items == []


def test_permissions_are_evaluated_per_message(sockets):
    room = ws.room()
    ws.send(room.participant_connection, "convoNewStep", {"content": {"text": "first"}})
    grants_key = (Ref("convo", room.convo_id), Ref("user", room.participant.user_id))
    from kallo.store import keys
    from kallo.store.table import table

    table().delete(keys.grant_key(*grants_key))  # the participant is removed while connected
    sockets.clear()
    # The connection's verdict (can_view) is still remembered: the write itself finds the grant gone.
    ws.send(room.participant_connection, "convoNewStep", {"content": {"text": "second"}}, "p2")
    (error,) = sockets.errors(room.participant_connection)
    assert error["code"] == "not_found" and error["requestId"] == "p2"
    assert [s["content"]["text"] for s in steps.of_convo(room.convo_id).items] == ["first"]
    assert grants.get(*grants_key) is None


def test_a_lowered_grant_refuses_the_next_message(sockets):
    """A participant made a viewer while connected may still watch (its verdict, can_view, stands) but no
    longer write: the remembered grant is checked by the write's own transaction."""
    room = ws.room()
    ws.send(room.participant_connection, "convoNewStep", {"content": {"text": "first"}})
    grant(Ref("convo", room.convo_id), room.participant, "viewer")
    sockets.clear()
    ws.send(room.participant_connection, "convoNewStep", {"content": {"text": "second"}}, "p3")
    (error,) = sockets.errors(room.participant_connection)
    assert error["code"] == "permission_denied" and error["requestId"] == "p3"
    assert [s["content"]["text"] for s in steps.of_convo(room.convo_id).items] == ["first"]


def test_bad_payloads_get_an_error_and_the_socket_lives_on(sockets, aws_calls):
    room = ws.room()
    cases = [
        ({}, "validation_error"),
        # An empty step: no text (or only whitespace), no file.
        ({"content": {}}, "validation_error"),
        ({"content": {"text": " \n\t"}, "config": {"reply": True}}, "validation_error"),
        ({"content": {"text": 5}}, "validation_error"),
        ({"content": {"text": "x"}, "groupId": str(uuid4())}, "validation_error"),
        ({"content": {"text": "x"}, "convoId": str(uuid4())}, "validation_error"),
        ({"content": {"text": "x"}, "config": {"temperature": 9}}, "validation_error"),
        ({"content": {"text": "x"}, "id": "not-a-uuid"}, "validation_error"),
        ({"content": {"text": "x"}, "delta": "y"}, "validation_error"),
        ({"content": {"text": "é" * 33000}}, "payload_too_large"),
        ("not an object", "validation_error"),
    ]
    aws_calls.reset()
    for position, (payload, code) in enumerate(cases):
        answer = ws.send(room.owner_connection, "convoNewStep", payload, f"b{position}")
        assert answer == {"statusCode": 200}
        error = sockets.errors(room.owner_connection)[-1]
        assert (error["code"], error["requestId"]) == (code, f"b{position}"), (payload, error)
    # Each bad payload costs its count against the rate and the error; the first message reads the
    # connection (kept a minute) and checks it (Query + BatchGetItem, remembered for a few seconds with
    # the grants, on which the service finds a foreign convoId before anything is written).
    assert dict(aws_calls.calls) == {
        "dynamodb:GetItem": 1,
        "dynamodb:UpdateItem": len(cases),
        "dynamodb:Query": 1,
        "dynamodb:BatchGetItem": 1,
        "apigatewaymanagementapi:PostToConnection": len(cases),
    }
    assert sockets.receivers == {room.owner_connection}
    assert steps.of_convo(room.convo_id).items == []


def test_a_gone_connection_is_deleted_not_the_sender(sockets):
    room = ws.room()
    sockets.gone.add(room.viewer_connection)
    ws.send(room.owner_connection, "convoNewStep", {"content": {"text": "anyone there?"}})
    assert sockets.receivers == {room.owner_connection, room.participant_connection}
    assert connections.get(room.viewer_connection) is None
    assert {c["connectionId"] for c in connections.of_convo(room.convo_id)} == {
        room.owner_connection,
        room.participant_connection,
    }
    # The sender itself gone: its own connection goes, the step was stored all the same.
    sockets.gone.add(room.owner_connection)
    ws.send(room.owner_connection, "convoNewStep", {"content": {"text": "still there?"}})
    assert connections.get(room.owner_connection) is None
    assert len(steps.of_convo(room.convo_id).items) == 2


def test_costly_or_oversized_steps_are_refused_before_anything_is_stored(sockets):
    """I10 and the frame bound: the most expensive model, 32768 tokens an answer, and 100 citations of
    4 KB (a step no frame can carry) each get an error to the sender; nothing is stored or queued."""
    room = ws.room()
    source = make_object("data_source", ref_of(room.owner)).id
    huge = [{"dataSourceId": source, "text": "x" * 4096}] * 100
    cases = [
        (
            {"config": {"reply": True, "model": "bedrock:anthropic.claude-3-opus-20240229-v1:0"}},
            "unknown_model",
        ),
        ({"config": {"reply": True, "maxTokens": 32768}}, "max_tokens_too_large"),
        ({"annotations": huge, "config": {"reply": True}}, "payload_too_large"),
    ]
    for position, (fields, code) in enumerate(cases):
        ws.send(room.owner_connection, "convoNewStep", {"content": {"text": "x"}, **fields}, f"c{position}")
        error = sockets.errors(room.owner_connection)[-1]
        assert (error["code"], error["requestId"]) == (code, f"c{position}"), error
    assert sockets.receivers == {room.owner_connection}
    assert steps.of_convo(room.convo_id).items == [] and ws.reply_jobs() == []


def topic_convo(owner, defaults: dict) -> tuple[Ref, str]:
    """A topic of the owner's with these defaults, and a convo of it made as Create a Convo makes it."""
    from kallo.authz.access import Access
    from kallo.models.convos import ConvoCreate
    from kallo.services import convos

    topic = make_object("topic", ref_of(owner), config={"defaults": defaults})
    return topic, convos.create_convo(Access(owner), ConvoCreate(), topic_id=topic.id)["id"]


def test_a_topics_default_reply_comes_with_the_connections_check(sockets, aws_calls):
    """A step that leaves `reply` out in a topic's convo takes the topic's `config.defaults.reply` from
    the item read with its connection's check (`kallo.realtime.audience`): 3 calls within 3 s of it, and
    the check's BatchGetItem carries the topic after that (no GetItem either way)."""
    from kallo.realtime import audience

    owner = make_user()
    _, convo_id = topic_convo(owner, {"reply": True})
    mine = ws.connect(owner, convo_id)
    ws.send(mine, "convoNewStep", {"content": {"text": "first"}})
    aws_calls.reset()
    ws.send(mine, "convoNewStep", {"content": {"text": "second"}, "config": {"reply": False}})
    assert dict(aws_calls.calls) == {
        "dynamodb:UpdateItem": 1,
        "dynamodb:TransactWriteItems": 1,
        "dynamodb:Query": 1,
        "apigatewaymanagementapi:PostToConnection": 1,
    }
    ws.reply_jobs()  # the first step's
    aws_calls.reset()
    ws.send(mine, "convoNewStep", {"content": {"text": "within 3 s"}})
    assert aws_calls["dynamodb:GetItem"] == 0
    assert len(ws.reply_jobs()) == 1  # the topic's default, from the verdict's item
    audience.forget()  # the verdict is 3 s old: the next message checks the connection again
    aws_calls.reset()
    ws.send(mine, "convoNewStep", {"content": {"text": "after 3 s"}})
    # The check's BatchGetItem (grants, credentials, the topic), and the token budgets' (a reply, I10).
    assert aws_calls["dynamodb:GetItem"] == 0 and aws_calls["dynamodb:BatchGetItem"] == 2
    assert len(ws.reply_jobs()) == 1


def test_a_change_of_the_topics_defaults_holds_once_the_verdict_is_checked_again(sockets):
    """The topic's defaults are as old as the connection's verdict, at most `RECHECK_SECONDS` (3 s):
    within them a message may still follow the old default; from the next check on, the new one."""
    from kallo.realtime import audience

    owner = make_user()
    topic, convo_id = topic_convo(owner, {"reply": True})
    mine = ws.connect(owner, convo_id)
    ws.send(mine, "convoNewStep", {"content": {"text": "answer me"}})
    assert len(ws.reply_jobs()) == 1
    objects.update(topic, {"config": {"defaults": {"reply": False}}})  # another process's Update Topic
    ws.send(mine, "convoNewStep", {"content": {"text": "within the bound"}})
    assert len(ws.reply_jobs()) == 1  # the verdict's topic item, read less than 3 s ago
    audience.forget()
    ws.send(mine, "convoNewStep", {"content": {"text": "after it"}})
    assert ws.reply_jobs() == []
    objects.update(topic, {"config": {"defaults": {"reply": True}}})
    audience.forget()
    ws.send(mine, "convoNewStep", {"content": {"text": "and back"}})
    assert len(ws.reply_jobs()) == 1


def test_a_topics_defaults_never_answer_another_topics_convo(sockets, aws):
    """ATTACK (I10, tenants): two tenants' topics, one answering by default, one not, their convos
    checked in the same process within the same 3 s: each step follows its own convo's topic, so one
    tenant's defaults never spend another's tokens, nor silence its answers."""
    from kallo.realtime import audience

    ours, theirs = make_user(), make_user()
    _, answering = topic_convo(ours, {"reply": True})
    _, quiet = topic_convo(theirs, {"reply": False})
    on_answering, on_quiet = ws.connect(ours, answering), ws.connect(theirs, quiet)
    for _ in range(2):  # a fresh verdict each, then both remembered
        ws.send(on_answering, "convoNewStep", {"content": {"text": "ours"}})
        ws.send(on_quiet, "convoNewStep", {"content": {"text": "theirs"}})
        assert [j["convoId"] for j in ws.reply_jobs()] == [answering]
    audience.forget()
    ws.send(on_quiet, "convoNewStep", {"content": {"text": "theirs first"}})
    ws.send(on_answering, "convoNewStep", {"content": {"text": "ours second"}})
    assert [j["convoId"] for j in ws.reply_jobs()] == [answering]
