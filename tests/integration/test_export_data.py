"""Export Data: POST /exports → 202, the export queued for the export worker."""

from __future__ import annotations

import json
import time
from uuid import uuid4

import pytest
from botocore.exceptions import ClientError

from kallo import aws as kallo_aws
from kallo.auth.principal import Principal
from kallo.settings import get_settings
from kallo.store import exports as export_items
from kallo.store import keys
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.api import invoke, sample_event
from tests.support.world import grant, make_object, make_user, ref_of


def body(*convos: Ref, to: list[str] | None = None, **changes) -> dict:
    return {
        "format": "html-email",
        "sources": {"convoIds": [c.id for c in convos]},
        "destinations": [{"type": "email", "address": a} for a in (to or ["team@example.com"])],
        **changes,
    }


def queued_jobs() -> list[dict]:
    sqs = kallo_aws.client("sqs")
    messages = sqs.receive_message(QueueUrl=get_settings().export_queue_url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def test_the_sample_event_is_a_valid_request():
    sent = json.loads(sample_event("convos.export_data")["body"])
    assert sent["format"] == "html-email" and sent["sources"]["convoIds"]


def test_export_convos_the_caller_may_view(aws, aws_calls):
    alice, bob = make_user(), make_user()
    mine = make_object("convo", ref_of(alice), name="Mine")
    shared = make_object("convo", ref_of(bob), name="Shared")
    grant(shared, alice, "viewer")
    aws_calls.reset()
    result = invoke(
        "convos.export_data",
        alice,
        body=body(mine, shared, to=["Pat@Example.com", "sam@example.com"], createdBy=str(uuid4())),
    )
    assert result.status == 202, result.body
    export = result.json
    assert set(export) == {"id", "format", "sources", "destinations", "createdAt", "createdBy", "status"}
    assert export["status"] == "queued" and export["createdBy"] == alice.user_id
    assert export["sources"] == {"convoIds": [mine.id, shared.id]}
    assert export["destinations"] == [
        {"type": "email", "address": "pat@example.com"},
        {"type": "email", "address": "sam@example.com"},
    ]
    # One Query per convo (its structural grants), the caller's grants and the convos (2 BatchGetItems),
    # the export, its job.
    assert aws_calls.total == 6, aws_calls.calls
    assert aws_calls["dynamodb:Query"] == 2 and aws_calls["dynamodb:BatchGetItem"] == 2
    assert aws_calls["dynamodb:PutItem"] == 1 and aws_calls["sqs:SendMessage"] == 1
    assert queued_jobs() == [{"exportId": export["id"]}]
    stored = table().get(keys.export_key(export["id"]))
    assert stored["status"] == "queued" and stored["entity"] == "export"
    assert 89 * 86400 < stored["ttl"] - time.time() <= 90 * 86400


def test_team_members_export_the_convos_of_the_teams_topics(aws, aws_calls):
    owner, member = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    topic = make_object("topic", team)
    convo = make_object("convo", topic)
    aws_calls.reset()
    result = invoke("convos.export_data", member, body=body(convo))
    assert result.status == 202, result.body
    # The convo's and the topic's structural grants, then as above.
    assert aws_calls["dynamodb:Query"] == 2 and aws_calls.total == 6


def test_a_stranger_gets_404_naming_no_convo(aws):
    alice, bob = make_user(), make_user()
    mine, theirs = make_object("convo", ref_of(alice)), make_object("convo", ref_of(bob))
    for convos in ((theirs,), (mine, theirs), (Ref("convo", str(uuid4())),)):
        result = invoke("convos.export_data", alice, body=body(*convos))
        assert result.status == 404, result.body
        assert result.json["code"] == "not_found"
        assert theirs.id not in result.body and mine.id not in result.body
    assert queued_jobs() == []


def test_a_viewer_token_scope_limits_the_export(aws):
    alice = make_user()
    inside = make_object("topic", ref_of(alice))
    convo_inside = make_object("convo", inside)
    convo_outside = make_object("convo", ref_of(alice))
    token = Principal(user_id=alice.user_id, scheme="access_token", scope=(inside,))
    assert invoke("convos.export_data", token, body=body(convo_outside)).status == 404
    result = invoke("convos.export_data", token, body=body(convo_inside))
    assert result.status == 202, result.body
    # The worker re-checks access within the same scope.
    assert export_items.get(result.json["id"])["creatorScope"] == [["topic", inside.id]]


def test_a_client_cannot_choose_the_id(aws):
    alice = make_user()
    result = invoke(
        "convos.export_data", alice, body=body(make_object("convo", ref_of(alice)), id=str(uuid4()))
    )
    assert result.status == 422 and result.json["code"] == "validation_error"
    assert "assigned by the server" in result.json["message"]
    assert queued_jobs() == []


def test_no_sender_address_is_a_409(aws, monkeypatch, aws_calls):
    alice = make_user()
    convo = make_object("convo", ref_of(alice))
    monkeypatch.setenv("KALLO_MAIL_FROM", "")
    get_settings.cache_clear()
    aws_calls.reset()
    result = invoke("convos.export_data", alice, body=body(convo))
    assert result.status == 409 and result.json["code"] == "mail_not_configured"
    assert aws_calls.total == 0


def test_a_failed_enqueue_leaves_no_export_behind(aws, monkeypatch):
    alice = make_user()
    monkeypatch.setenv("KALLO_EXPORT_QUEUE_URL", "http://sqs.us-east-1.localhost/123456789012/missing")
    get_settings.cache_clear()
    written, real_create = [], export_items.create
    monkeypatch.setattr(export_items, "create", lambda fields: written.append(fields) or real_create(fields))
    with pytest.raises(ClientError):
        invoke("convos.export_data", alice, body=body(make_object("convo", ref_of(alice))))
    assert len(written) == 1 and export_items.get(written[0]["id"]) is None


@pytest.mark.parametrize(
    "raw",
    [
        "{bad",
        "[]",
        "{}",
        json.dumps(body(Ref("convo", str(uuid4())), format="pdf")),
        json.dumps(body(Ref("convo", str(uuid4())), to=["not-an-email"])),
        json.dumps(body(Ref("convo", str(uuid4())), to=[f"p{n}@example.com" for n in range(11)])),
        json.dumps(body(*[Ref("convo", str(uuid4())) for _ in range(51)])),
        json.dumps(body()),
        json.dumps({**body(Ref("convo", str(uuid4()))), "destinations": []}),
        json.dumps(
            {**body(Ref("convo", str(uuid4()))), "destinations": [{"type": "sms", "address": "+1555"}]}
        ),
        json.dumps({**body(Ref("convo", str(uuid4()))), "extra": 1}),
    ],
)
def test_bad_input_is_4xx(aws, raw):
    result = invoke("convos.export_data", make_user(), raw_body=raw)
    assert result.status in (400, 422), (raw[:80], result.status, result.body)
    assert {"code", "message"} <= set(result.json)
    assert queued_jobs() == []


def test_bad_email_format_and_too_many_are_422(aws):
    alice = make_user()
    convo = make_object("convo", ref_of(alice))
    for bad in (
        body(convo, to=["pat@"]),
        body(convo, format="html"),
        body(*[Ref("convo", str(uuid4())) for _ in range(51)]),
    ):
        result = invoke("convos.export_data", alice, body=bad)
        assert result.status == 422 and result.json["code"] == "validation_error", result.body


def test_credentials_are_required(aws):
    result = invoke("convos.export_data", None, body=body(Ref("convo", str(uuid4()))))
    assert result.status == 401
