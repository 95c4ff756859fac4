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
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of

TEAM = "team@example.com"


def body(*convos: Ref, to: list[str] | None = None, **changes) -> dict:
    return {
        "format": "html-email",
        "sources": {"convoIds": [c.id for c in convos]},
        "destinations": [{"type": "email", "address": a} for a in (to or [TEAM])],
        **changes,
    }


def reader(*convos: Ref, email: str = TEAM) -> Principal:
    """A user whose verified email is `email` and who may view the convos: a valid destination."""
    user = make_user(email=email)
    for convo in convos:
        grant(convo, user, "viewer")
    return user


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
    reader(mine, shared, email="pat@example.com")
    reader(mine, shared, email="sam@example.com")
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
    # the day's export count; per address its claim and user (2 GetItems), the convos' grants (2 Queries)
    # and the user's grants on them (BatchGetItem); the export, its job.
    assert aws_calls.total == 6 + 1 + 2 * 5, aws_calls.calls
    assert aws_calls["dynamodb:Query"] == 2 + 2 * 2 and aws_calls["dynamodb:BatchGetItem"] == 2 + 2 * 1
    assert aws_calls["dynamodb:GetItem"] == 2 * 2 and aws_calls["dynamodb:UpdateItem"] == 1
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
    reader(team)
    aws_calls.reset()
    result = invoke("convos.export_data", member, body=body(convo))
    assert result.status == 202, result.body
    # The convo's and the topic's structural grants, once for the caller and once for the address.
    assert aws_calls["dynamodb:Query"] == 2 * 2 and aws_calls.total == 6 + 1 + 5


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
    reader(convo_inside, convo_outside)
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
    convo = make_object("convo", ref_of(alice))
    reader(convo)
    monkeypatch.setenv("KALLO_EXPORT_QUEUE_URL", "http://sqs.us-east-1.localhost/123456789012/missing")
    get_settings.cache_clear()
    written, real_create = [], export_items.create
    monkeypatch.setattr(export_items, "create", lambda fields: written.append(fields) or real_create(fields))
    with pytest.raises(ClientError):
        invoke("convos.export_data", alice, body=body(convo))
    assert len(written) == 1 and export_items.get(written[0]["id"]) is None


@pytest.mark.parametrize(
    "raw",
    [
        "{bad",
        "[]",
        "{}",
        json.dumps(body(Ref("convo", str(uuid4())), format="pdf")),
        json.dumps(body(Ref("convo", str(uuid4())), to=["not-an-email"])),
        json.dumps(body(Ref("convo", str(uuid4())), to=[f"p{n}@example.com" for n in range(6)])),
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


# -- I9: outbound mail only to verified users who may view the convos, at a bounded rate ---------------


def sent_mail() -> list:
    from moto.ses.models import ses_backends

    return ses_backends["123456789012"]["us-east-1"].sent_messages


def test_an_arbitrary_address_is_refused_and_nothing_is_queued(aws):
    """The open relay of issue 10: POST /exports to any address. Refused, no job, no mail."""
    attacker = make_user()
    convo = make_object("convo", ref_of(attacker), name="Click here: https://evil.example")
    for address in ("victim@corp-b.example", "someone@example.com"):
        result = invoke("convos.export_data", attacker, body=body(convo, to=[address]))
        assert result.status == 422 and result.json["code"] == "recipient_not_allowed", result.body
    assert queued_jobs() == [] and sent_mail() == []


def test_no_such_user_unverified_and_cannot_view_are_one_answer(aws):
    """Another tenant's verified user who cannot view the convo answers exactly as an unknown address
    and an unverified (tenant-local) email do: nothing tells them apart."""
    svc_b, _ = make_service_account("tenant-b")
    attacker = make_user()
    convo = make_object("convo", ref_of(attacker))
    make_user(email="verified@corp-b.example", admin=svc_b)
    make_user(email="local@corp-b.example", admin=svc_b)  # a service account's, never verified
    answers = []
    for address in ("verified@corp-b.example", "local@corp-b.example", "nobody@corp-b.example"):
        result = invoke("convos.export_data", attacker, body=body(convo, to=[address]))
        assert result.status == 422, result.body
        answers.append({**result.json, "message": result.json["message"].replace(address, "<address>")})
    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["code"] == "recipient_not_allowed"
    assert queued_jobs() == []


def test_one_refused_destination_refuses_the_export(aws):
    alice = make_user()
    convo = make_object("convo", ref_of(alice))
    reader(convo, email="pat@example.com")
    make_user(email="sam@example.com")  # verified, but may not view the convo
    result = invoke("convos.export_data", alice, body=body(convo, to=["pat@example.com", "sam@example.com"]))
    assert result.status == 422 and result.json["code"] == "recipient_not_allowed"
    assert "sam@example.com" in result.json["message"] and queued_jobs() == []


def test_an_address_must_view_every_convo(aws):
    alice = make_user()
    first, second = make_object("convo", ref_of(alice)), make_object("convo", ref_of(alice))
    reader(first)  # the address may view the first convo only
    result = invoke("convos.export_data", alice, body=body(first, second))
    assert result.status == 422 and result.json["code"] == "recipient_not_allowed"
    assert invoke("convos.export_data", alice, body=body(first)).status == 202


def test_thirty_addresses_are_refused(aws):
    alice = make_user()
    convo = make_object("convo", ref_of(alice))
    to = [f"p{n}@example.com" for n in range(30)]
    for address in to:
        reader(convo, email=address)
    result = invoke("convos.export_data", alice, body=body(convo, to=to))
    assert result.status == 422 and result.json["code"] == "validation_error"
    assert queued_jobs() == []


def test_the_daily_export_allowance_is_per_user(aws, monkeypatch):
    monkeypatch.setenv("KALLO_EXPORTS_PER_DAY", "2")
    get_settings.cache_clear()
    alice, bob = make_user(), make_user()
    mine, theirs = make_object("convo", ref_of(alice)), make_object("convo", ref_of(bob))
    reader(mine, theirs)
    for _ in range(2):
        assert invoke("convos.export_data", alice, body=body(mine)).status == 202
    refused = invoke("convos.export_data", alice, body=body(mine))
    assert refused.status == 429 and refused.json["code"] == "quota_exceeded"
    assert 0 < int(refused.headers["retry-after"]) <= 86400
    assert len(queued_jobs()) == 2
    # Another user's allowance is its own.
    assert invoke("convos.export_data", bob, body=body(theirs)).status == 202
