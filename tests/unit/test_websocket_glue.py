"""kallo.websocket: the connection lifecycle and the frame around every client message (envelope parsing,
the connection's principal, payload validation, errors to the sender only, always 200)."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from kallo import websocket
from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.clock import iso, now
from kallo.errors import Conflict
from kallo.models.auth import AccessTokenCreate
from kallo.models.common import ApiModel
from kallo.models.convos import ConvoCreate
from kallo.models.ws import NewStep
from kallo.realtime import audience
from kallo.services import access_tokens, convos
from kallo.store import connections, credentials, keys
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support import ws
from tests.support.world import grant, make_service_account, make_user

sockets = ws.sockets


class Echo(ApiModel):
    word: str


def event(body: Any, connection_id: str, *, raw: bool = False) -> dict[str, Any]:
    sample = ws.sample_event("convo_new_step")
    sample["requestContext"]["connectionId"] = connection_id
    sample["body"] = body if raw else json.dumps(body)
    return sample


@pytest.fixture
def alice(aws) -> Principal:
    return make_user()


@pytest.fixture
def convo_id(alice) -> str:
    return convos.create_convo(Access(alice), ConvoCreate())["id"]


@pytest.fixture
def seen() -> list[tuple[websocket.Session, Any]]:
    return []


def run(body: Any, connection_id: str, seen: list, *, raw: bool = False, action=None) -> dict:
    def record(session: websocket.Session, payload: Echo) -> None:
        seen.append((session, payload))

    return websocket.handle_message(event(body, connection_id, raw=raw), Echo, action or record)


def test_a_message_reaches_its_action_with_the_connections_session(sockets, alice, convo_id, seen):
    connection = ws.connect(alice, convo_id)
    answer = run({"type": "convoNewStep", "payload": {"word": "hi"}, "requestId": "q1"}, connection, seen)
    assert answer == {"statusCode": 200}
    ((session, payload),) = seen
    assert payload == Echo(word="hi") and session.request_id == "q1"
    assert session.convo_id == convo_id and session.connection_id == connection
    assert session.access.principal == alice and session.actor.request_id == "q1"
    assert sockets.frames == []  # success says nothing by itself: the broadcasts do


def test_the_stored_principal_keeps_its_scheme_and_scope(sockets, seen):
    svc, key = make_service_account()
    convo_id = convos.create_convo(Access(svc), ConvoCreate())["id"]
    scoped = Principal(
        user_id=svc.user_id, scheme="api_key", is_service_account=True, scope=(Ref("convo", convo_id),)
    )
    connection = ws.connect(scoped, convo_id, api_key=key)
    run({"type": "t", "payload": {"word": "x"}}, connection, seen)
    assert seen[0][0].access.principal.scope == (Ref("convo", convo_id),)
    assert seen[0][0].access.principal.scheme == "api_key"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("not json", "malformed_message"),
        ("[1, 2]", "malformed_message"),
        ('"text"', "malformed_message"),
        ("", "malformed_message"),
        ('{"a":' * 50_000 + "1" + "}" * 50_000, "malformed_message"),
        # I11: nesting is bounded before parsing, unbalanced or not, however small the message.
        ('{"type": "t", "payload": ' + "[" * 100_000, "malformed_message"),
        ('{"type": "t", "payload": {"word": ' + "[" * 65 + "]" * 65 + "}}", "malformed_message"),
    ],
)
def test_frames_that_are_not_a_json_object(sockets, alice, convo_id, seen, body, code):
    connection = ws.connect(alice, convo_id)
    assert run(body, connection, seen, raw=True) == {"statusCode": 200}
    (error,) = sockets.errors(connection)
    assert error["code"] == code and "requestId" not in error and seen == []


def test_validation_errors_carry_details_and_echo_the_request_id(sockets, alice, convo_id, seen):
    connection = ws.connect(alice, convo_id)
    run({"type": "t", "payload": {"word": 3, "extra": 1}, "requestId": "q2"}, connection, seen)
    run({"type": "t", "requestId": "q3"}, connection, seen)  # no payload at all
    run({"type": "", "payload": {"word": "x"}, "requestId": "q4"}, connection, seen)  # a bad envelope
    first, second, third = sockets.to(connection)
    assert first["type"] == "error" and first["requestId"] == "q2" and first["payload"]["requestId"] == "q2"
    assert first["payload"]["code"] == "validation_error"
    assert {tuple(d["loc"]) for d in first["payload"]["details"]} == {
        ("payload", "word"),
        ("payload", "extra"),
    }
    assert second["payload"]["code"] == "validation_error" and second["requestId"] == "q3"
    assert second["payload"]["details"][0]["loc"] == ["payload", "word"]
    assert third["payload"]["code"] == "validation_error" and third["requestId"] == "q4"
    assert third["payload"]["details"][0]["loc"] == ["message", "type"]
    assert seen == []


def test_a_request_id_that_is_not_a_short_string_is_not_echoed(sockets, alice, convo_id, seen):
    connection = ws.connect(alice, convo_id)
    run({"type": "t", "payload": {}, "requestId": 7}, connection, seen)
    run({"type": "t", "payload": {}, "requestId": "x" * 300}, connection, seen)
    assert all("requestId" not in m for m in sockets.to(connection))
    assert [m["payload"]["code"] for m in sockets.to(connection)] == ["validation_error"] * 2


def test_an_unknown_connection_is_told_to_reconnect(sockets, seen):
    run({"type": "t", "payload": {"word": "x"}, "requestId": "q"}, "gone-connection=", seen)
    (error,) = sockets.errors("gone-connection=")
    assert error == {
        "code": "connection_unknown",
        "message": error["message"],
        "requestId": "q",
    }
    assert seen == []


def test_domain_errors_and_faults_become_errors_to_the_sender_only(sockets, alice, convo_id, seen, caplog):
    connection = ws.connect(alice, convo_id)
    other = ws.connect(alice, convo_id)

    def conflict(session: websocket.Session, payload: Echo) -> None:
        raise Conflict("taken", code="already_exists")

    def fault(session: websocket.Session, payload: Echo) -> None:
        raise RuntimeError("boom")

    body = {"type": "t", "payload": {"word": "x"}, "requestId": "q"}
    assert run(body, connection, seen, action=conflict) == {"statusCode": 200}
    assert run(body, connection, seen, action=fault) == {"statusCode": 200}
    assert [e["code"] for e in sockets.errors(connection)] == ["already_exists", "internal_error"]
    assert "boom" not in json.dumps(sockets.errors(connection))  # no internals leak
    assert sockets.to(other) == []


def test_an_error_to_a_sender_that_is_gone_is_dropped(sockets, seen):
    sockets.gone.add("closed=")
    assert run("nope", "closed=", seen, raw=True) == {"statusCode": 200}
    assert sockets.frames == []


def test_a_base64_body_is_decoded(sockets, alice, convo_id, seen):
    connection = ws.connect(alice, convo_id)
    sample = event(None, connection)
    sample["body"] = base64.b64encode(json.dumps({"type": "t", "payload": {"word": "é"}}).encode()).decode()
    sample["isBase64Encoded"] = True
    websocket.handle_message(sample, Echo, lambda session, payload: seen.append(payload))
    assert seen == [Echo(word="é")]


def test_nesting_within_the_bound_reaches_validation(sockets, alice, convo_id, seen):
    connection = ws.connect(alice, convo_id)
    # 64 levels in all: the frame, the payload and 62 arrays.
    run('{"type": "t", "payload": {"word": ' + "[" * 62 + "]" * 62 + "}}", connection, seen, raw=True)
    (error,) = sockets.errors(connection)
    assert error["code"] == "validation_error" and seen == []


def test_step_text_keeps_its_lines_and_marks_but_no_control_or_bidirectional_override():
    assert NewStep.model_validate({"content": {"text": "Line 1\n\tLine 2\r\n"}}).content.text
    # Hebrew and Arabic text carries the bidirectional marks (RLM, LRM, ALM): kept as given.
    marked = "\u05e9\u05dc\u05d5\u05dd (1)\u200f Kallo\u200e \u0639\u062f\u062f \u061c-5"
    assert NewStep.model_validate({"content": {"text": marked}}).content.text == marked
    refusals = (
        ("a\x00b", "U+0000"),
        ("a\u202eb", "U+202E"),
        ("a\u202bb", "U+202B"),
        ("a\u2067b", "U+2067"),
        ("a\x1bb", "U+001B"),
    )
    for text, found in refusals:
        with pytest.raises(ValidationError) as caught:
            NewStep.model_validate({"content": {"text": text}})
        error = websocket.validation_error(caught.value)
        assert error.code == "validation_error" and found in error.message
    with pytest.raises(ValidationError):
        NewStep.model_validate(
            {
                "content": {"text": "x"},
                "files": [{"dataSourceId": str(uuid4()), "name": "a\u202eb", "mimeType": "text/plain"}],
            }
        )
    # A file's name is one line: the marks are refused there.
    with pytest.raises(ValidationError):
        NewStep.model_validate(
            {
                "content": {"text": "x"},
                "files": [{"dataSourceId": str(uuid4()), "name": "a\u200fb", "mimeType": "text/plain"}],
            }
        )


def test_a_too_long_step_text_is_payload_too_large():
    with pytest.raises(ValidationError) as caught:
        NewStep.model_validate({"content": {"text": "é" * 40000}})  # 80 000 bytes, 40 000 characters
    error = websocket.validation_error(caught.value)
    assert error.code == "payload_too_large" and error.status == 413
    assert error.details[0]["loc"] == ["payload", "content", "text"]
    assert NewStep.model_validate({"content": {"text": "x" * 65536}}).content.text


# -- access tokens revoked while connected -------------------------------------------------------------


def test_a_revoked_access_token_stops_the_connection(sockets, seen):
    svc, _ = make_service_account()
    user = make_user(admin=svc)
    own_convo = convos.create_convo(Access(user), ConvoCreate())["id"]
    data = AccessTokenCreate.model_validate(
        {
            "userId": user.user_id,
            "scopeObjects": [{"type": "user", "id": user.user_id}],
            "expiresAt": iso(now() + timedelta(hours=1)),
        }
    )
    token = access_tokens.create_access_token(Access(svc), data)
    principal = Principal(
        user_id=user.user_id, scheme="access_token", token_id=token["id"], scope=(Ref("user", user.user_id),)
    )
    connection = ws.connect(principal, own_convo)
    body = {"type": "t", "payload": {"word": "x"}, "requestId": "q"}
    run(body, connection, seen)
    assert len(seen) == 1
    credentials.revoke_access_token(token["id"], iso(now()))
    run(body, connection, seen)  # within the re-check bound (a few seconds): still accepted
    assert len(seen) == 2
    audience.forget()  # the bound has passed
    run(body, connection, seen)
    assert len(seen) == 2 and sockets.errors(connection)[0]["code"] == "unauthorized"
    assert "revoked" not in sockets.errors(connection)[0]["message"]
    # It hears nothing more: forgotten, and its socket closed after the error was sent.
    assert connections.get(connection) is None and sockets.closed == [connection]
    run(body, connection, seen)
    assert len(seen) == 2 and len(sockets.to(connection)) == 1


def test_a_removed_grant_refuses_the_next_message_and_closes_the_socket(sockets, alice, convo_id, seen):
    viewer = make_user()
    grant(Ref("convo", convo_id), viewer, "participant")
    connection = ws.connect(viewer, convo_id)
    body = {"type": "t", "payload": {"word": "x"}, "requestId": "q"}
    run(body, connection, seen)
    assert len(seen) == 1
    table().delete(keys.grant_key(Ref("convo", convo_id), Ref("user", viewer.user_id)))
    audience.forget()
    run(body, connection, seen)
    assert len(seen) == 1 and [e["code"] for e in sockets.errors(connection)] == ["unauthorized"]
    assert connections.get(connection) is None and sockets.closed == [connection]


def test_a_message_rechecks_at_most_once_per_interval(sockets, alice, convo_id, seen, aws_calls, monkeypatch):
    connection = ws.connect(alice, convo_id)
    body = {"type": "t", "payload": {"word": "x"}}
    aws_calls.reset()
    run(body, connection, seen)
    run(body, connection, seen)
    # Each message counts against alice's rate; only the first reads the connection (kept a minute) and
    # checks it (the convo's grants + alice's).
    calls = {"dynamodb:UpdateItem": 2}
    assert dict(aws_calls.calls) == {
        **calls,
        "dynamodb:GetItem": 1,
        "dynamodb:Query": 1,
        "dynamodb:BatchGetItem": 1,
    }
    monkeypatch.setattr(audience, "RECHECK_SECONDS", 0.0)
    monkeypatch.setattr(audience, "CHAIN_SECONDS", 0.0)
    audience.forget()
    aws_calls.reset()
    run(body, connection, seen)
    run(body, connection, seen)
    assert dict(aws_calls.calls) == {**calls, "dynamodb:Query": 2, "dynamodb:BatchGetItem": 2}
    assert len(seen) == 4


def test_a_connection_item_is_read_again_after_a_minute(
    sockets, alice, convo_id, seen, aws_calls, monkeypatch
):
    connection = ws.connect(alice, convo_id)
    body = {"type": "t", "payload": {"word": "x"}}
    run(body, connection, seen)
    monkeypatch.setattr(websocket, "CONNECTION_SECONDS", 0.0)
    aws_calls.reset()
    run(body, connection, seen)
    assert aws_calls["dynamodb:GetItem"] == 1


# -- $connect, $disconnect, $default -------------------------------------------------------------------


def connect_event(headers: dict[str, str], query: dict[str, str] | None) -> dict[str, Any]:
    sample = ws.sample_event("connect")
    sample["headers"] = headers
    sample["queryStringParameters"] = query
    sample["requestContext"]["connectionId"] = "c1="
    return sample


def test_connect_stores_the_connection_with_its_principal(aws):
    svc, key = make_service_account()
    convo = convos.create_convo(Access(svc), ConvoCreate())["id"]
    answer = websocket.connect(connect_event({"x-api-key": key}, {"convoId": convo.upper()}))
    assert answer == {"statusCode": 200}
    stored = connections.get("c1=")
    assert stored["convoId"] == convo and stored["userId"] == svc.user_id
    assert Principal.from_context(stored["principal"]) == svc
    assert stored["connectedAt"] == "2026-11-22T10:00:00.000Z"  # requestContext.connectedAt
    assert [c["connectionId"] for c in connections.of_convo(convo)] == ["c1="]
    assert stored["ttl"] > now().timestamp() + 7000


@pytest.mark.parametrize(
    ("headers", "query", "status", "code"),
    [
        ({}, {"convoId": "CONVO"}, 401, "unauthorized"),
        ({"x-api-key": "kallo_wrong"}, {"convoId": "CONVO"}, 401, "unauthorized"),
        ({"Authorization": "Basic abc"}, {"convoId": "CONVO"}, 401, "unauthorized"),
        ({"x-api-key": "KEY"}, None, 400, "invalid_convo_id"),
        ({"x-api-key": "KEY"}, {"convoId": "not-a-uuid"}, 400, "invalid_convo_id"),
        ({"x-api-key": "KEY"}, {"convoId": "UNKNOWN"}, 404, "not_found"),
        ({"x-api-key": "KEY"}, {"convoId": "CONVO"}, 404, "not_found"),  # someone else's convo
    ],
)
def test_connect_refusals(aws, convo_id, headers, query, status, code):
    _, key = make_service_account()
    fill = {"KEY": key, "CONVO": convo_id, "UNKNOWN": str(uuid4())}
    headers = {k: fill.get(v, v) for k, v in headers.items()}
    query = {k: fill.get(v, v) for k, v in query.items()} if query else query
    answer = websocket.connect(connect_event(headers, query))
    assert answer["statusCode"] == status and json.loads(answer["body"])["code"] == code
    assert connections.get("c1=") is None


def test_disconnect_forgets_both_items_and_tolerates_unknown_ones(aws, alice, convo_id):
    connection = ws.connect(alice, convo_id)
    sample = ws.sample_event("disconnect")
    sample["requestContext"]["connectionId"] = connection
    assert websocket.disconnect(sample) == {"statusCode": 200}
    assert connections.get(connection) is None and connections.of_convo(convo_id) == []
    assert websocket.disconnect(sample) == {"statusCode": 200}


@pytest.mark.parametrize(
    ("body", "code", "request_id"),
    [
        ("{not json", "malformed_message", None),
        ('{"type": "convoTyping", "requestId": "t1"}', "unknown_message_type", "t1"),
        ('{"payload": {}, "requestId": "t2"}', "unknown_message_type", "t2"),
        ('{"type": 5}', "unknown_message_type", None),
    ],
)
def test_default_answers_an_error_to_the_sender(sockets, body, code, request_id):
    sample = ws.sample_event("default")
    sample["body"] = body
    sample["requestContext"]["connectionId"] = "d1="
    assert websocket.default(sample) == {"statusCode": 200}
    (message,) = sockets.to("d1=")
    assert message["type"] == "error" and message["payload"]["code"] == code
    assert message.get("requestId") == request_id == message["payload"].get("requestId")
