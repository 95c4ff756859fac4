"""$default (ws.default): frames that are not JSON and messages of no known type get an `error` to the
sender only, and the socket lives on."""

import pytest

from tests.support import ws

sockets = ws.sockets


@pytest.mark.parametrize(
    ("body", "code", "request_id"),
    [
        ("hello", "malformed_message", None),
        ("\u00ff\u00fe", "malformed_message", None),
        ("[]", "malformed_message", None),
        ("[" * 100_000 + "]" * 100_000, "malformed_message", None),
        ('{"type": "convoTyping", "payload": {}, "requestId": "r9"}', "unknown_message_type", "r9"),
        ('{"type": "$connect", "requestId": "r8"}', "unknown_message_type", "r8"),
        ('{"payload": {"content": {"text": "hi"}}}', "unknown_message_type", None),
    ],
)
def test_an_error_to_the_sender_only(sockets, aws_calls, body, code, request_id):
    room = ws.room()
    aws_calls.reset()
    assert ws.invoke("default", room.owner_connection, body=body) == {"statusCode": 200}
    (message,) = sockets.to(room.owner_connection)
    assert message["type"] == "error" and message["payload"]["code"] == code
    assert message["payload"]["message"] and message.get("requestId") == request_id
    assert sockets.receivers == {room.owner_connection}
    assert dict(aws_calls.calls) == {"apigatewaymanagementapi:PostToConnection": 1}


def test_the_sample_event(sockets):
    room = ws.room()
    ws.invoke("default", room.viewer_connection)
    (message,) = sockets.to(room.viewer_connection)
    assert message == {
        "type": "error",
        "payload": {
            "code": "unknown_message_type",
            "message": message["payload"]["message"],
            "requestId": "req-1",
        },
        "requestId": "req-1",
    }
    assert "convoNewStep" in message["payload"]["message"]
