"""The export worker (workers.export): SQS batches of export jobs sent through moto's SES; one email per
export however often its job is delivered, SES refusals fail the export for good, throttling is
retried, malformed jobs fail their record (to be dead-lettered); and Get an Export, where its creator
reads the outcome."""

from __future__ import annotations

import copy
import json
import re
import time
from typing import Any
from uuid import uuid4

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError
from moto.ses.models import ses_backends
from workers import export as worker

from kallo import aws as kallo_aws
from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.jobs import ExportJob
from kallo.models.exports import ExportCreate
from kallo.services import exports
from kallo.settings import get_settings
from kallo.store import exports as export_items
from kallo.store import keys, objects, users
from kallo.store.keys import Ref
from kallo.store.table import table
from local.runtime import LambdaContext
from tests.support.api import EVENTS, invoke
from tests.support.world import add_user_step, grant, make_object, make_service_account, make_user, ref_of

SAMPLE = json.loads((EVENTS / "workers" / "export.json").read_text())["Records"][0]
ATTACK = "<script>alert('x')</script>"


def context() -> LambdaContext:
    return LambdaContext.starting("ExportWorkerFunction", memory=512, seconds=120)


def record(body: str) -> dict[str, Any]:
    return {**copy.deepcopy(SAMPLE), "messageId": str(uuid4()), "body": body}


def job(export_id: str) -> dict[str, Any]:
    return record(json.dumps({"exportId": export_id}))


def run(*records: dict[str, Any]) -> list[str]:
    """Invoke the worker with one batch; returns the ids of the messages it reports as failed."""
    response = worker.lambda_handler({"Records": list(records)}, context())
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def mailbox() -> list:
    return ses_backends["123456789012"]["us-east-1"].sent_messages


@pytest.fixture
def queued(aws) -> dict[str, Any]:
    """An export of a convo whose step holds markup, to two addresses, queued through the API."""
    alice = make_user(name="Alice")
    convo = make_object("convo", ref_of(alice), name="Launch plans")
    add_user_step(convo, alice, f"Ship it {ATTACK}")
    other = make_object("convo", ref_of(alice), name="Other")
    add_user_step(other, alice, "Second convo")
    for address in ("pat@example.com", "sam@example.com"):
        reader = make_user(email=address)
        grant(convo, reader, "viewer")
        grant(other, reader, "viewer")
    result = invoke(
        "convos.export_data",
        alice,
        body={
            "format": "html-email",
            "sources": {"convoIds": [convo.id, other.id]},
            "destinations": [
                {"type": "email", "address": "pat@example.com"},
                {"type": "email", "address": "sam@example.com"},
            ],
        },
    )
    assert result.status == 202, result.body
    return result.json


def assert_one_email(export: dict[str, Any]) -> None:
    [message] = mailbox()
    assert message.source == get_settings().mail_from
    assert message.destinations["ToAddresses"] == ["pat@example.com", "sam@example.com"]
    # I9: the subject is ours (a count and a date), never a convo's name.
    assert re.fullmatch(r"Kallo export: 2 convos, \d{4}-\d{2}-\d{2}", message.subject)
    assert "Ship it &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in message.body
    assert "<script" not in message.body and "Second convo" in message.body
    stored = export_items.get(export["id"])
    assert stored["status"] == "sent" and stored["messageId"] == message.id


def test_the_sample_event_is_an_export_job():
    assert ExportJob.model_validate_json(SAMPLE["body"]).export_id == json.loads(SAMPLE["body"])["exportId"]


def test_a_job_sends_one_email(queued, aws_calls):
    aws_calls.reset()
    assert run(job(queued["id"])) == []
    # The idempotency record (PutItem, UpdateItem); the export (GetItem); two convos' grants (2 Queries)
    # and the creator's grants on them (BatchGetItem); the convos (BatchGetItem); each address checked
    # again (its claim and user: 2 GetItems; the convos' grants: 2 Queries; its grants: BatchGetItem);
    # their steps (2 Queries); the authors (BatchGetItem); the email; the outcome (UpdateItem).
    assert aws_calls["dynamodb:GetItem"] == 1 + 2 * 2
    assert aws_calls["dynamodb:Query"] == 4 + 2 * 2 and aws_calls["dynamodb:BatchGetItem"] == 3 + 2
    assert aws_calls["dynamodb:PutItem"] == 1 and aws_calls["dynamodb:UpdateItem"] == 2
    assert aws_calls["ses:SendEmail"] == 1
    assert aws_calls.total == 12 + 2 * 5, aws_calls.calls
    assert_one_email(queued)


def test_a_job_delivered_twice_sends_one_email(queued, aws_calls):
    assert run(job(queued["id"]), job(queued["id"])) == []  # twice in one batch
    aws_calls.reset()
    assert run(job(queued["id"])) == []  # and again later
    # A duplicate costs the idempotency record's PutItem alone.
    assert aws_calls.total == 1 and aws_calls["dynamodb:PutItem"] == 1
    assert_one_email(queued)


def test_a_job_seen_after_its_idempotency_record_expired_sends_nothing(queued, aws_calls):
    assert run(job(queued["id"])) == []
    [idempotency] = table().query_all("IDEMPOTENCY#export")
    assert idempotency["SK"].startswith("export-job#") and idempotency["status"] == "COMPLETED"
    assert idempotency["ttl"] > time.time() + 23 * 3600
    table().delete({"PK": idempotency["PK"], "SK": idempotency["SK"]})
    aws_calls.reset()
    assert run(job(queued["id"])) == []
    # The export is read, found sent, and left alone: a new idempotency record (PutItem, UpdateItem)
    # and the export (GetItem).
    assert aws_calls.total == 3 and aws_calls["dynamodb:GetItem"] == 1
    assert_one_email(queued)


def test_an_unverified_sender_fails_the_export_without_retry(queued):
    kallo_aws.client("ses").delete_identity(Identity=get_settings().mail_from)
    assert run(job(queued["id"])) == []
    stored = export_items.get(queued["id"])
    assert stored["status"] == "failed" and stored["error"]["code"] == "mail_rejected"
    assert "not verified" in stored["error"]["message"]
    assert mailbox() == []


def test_throttling_is_retried(queued, monkeypatch):
    ses = kallo_aws.client("ses")
    original = ses.send_email

    def throttled(**kwargs: Any) -> Any:
        raise ClientError(
            {
                "Error": {"Code": "Throttling", "Message": "Maximum sending rate exceeded."},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            },
            "SendEmail",
        )

    monkeypatch.setattr(ses, "send_email", throttled)
    message = job(queued["id"])
    with pytest.raises(BatchProcessingError):  # what Powertools raises when every record failed
        run(message)
    assert export_items.get(queued["id"])["status"] == "queued"
    monkeypatch.setattr(ses, "send_email", original)
    assert run(message) == []  # the redelivery is not blocked by the failed attempt's record
    assert_one_email(queued)


def test_malformed_jobs_fail_their_record_and_missing_exports_are_skipped(aws):
    bodies = ("{bad", "{}", '{"exportId": "x"}', json.dumps({"exportId": str(uuid4()), "more": 1}))
    malformed = [record(body) for body in bodies]
    # SQS delivers the failed records again, then moves them to the dead-letter queue.
    assert run(*malformed, job(str(uuid4()))) == [r["messageId"] for r in malformed]
    assert mailbox() == []


def test_one_failing_job_fails_alone(queued, monkeypatch):
    alice = make_user(email="other@example.com")  # to oneself
    convo = make_object("convo", ref_of(alice), name="Fine")
    other = exports.export_data(
        Access(alice),
        ExportCreate.model_validate(
            {
                "format": "html-email",
                "sources": {"convoIds": [convo.id]},
                "destinations": [{"type": "email", "address": "other@example.com"}],
            }
        ),
    )
    original = exports.send_export

    def broken_for_the_first(export_id: str) -> str:
        if export_id == queued["id"]:
            raise RuntimeError("boom")
        return original(export_id)

    monkeypatch.setattr(exports, "send_export", broken_for_the_first)
    failing, fine = job(queued["id"]), job(other["id"])
    assert run(failing, fine) == [failing["messageId"]]
    assert [m.subject.split(",")[0] for m in mailbox()] == ["Kallo export: 1 convo"]
    assert export_items.get(queued["id"])["status"] == "queued"


def test_the_email_leaves_out_a_convo_deleted_before_the_send(queued):
    convo_id = queued["sources"]["convoIds"][1]
    table().delete(keys.object_key(Ref("convo", convo_id)))
    assert run(job(queued["id"])) == []
    [message] = mailbox()
    assert message.subject.startswith("Kallo export: 1 convo,") and "Second convo" not in message.body


# -- I9 at send time ----------------------------------------------------------------------------------


def test_a_destination_that_lost_access_is_dropped_at_send_time(queued):
    """Access is checked again when the mail goes: Sam's grants are removed after the request."""
    sam = users.find_by_email("sam@example.com")
    for convo_id in queued["sources"]["convoIds"]:
        table().delete(keys.grant_key(Ref("convo", convo_id), Ref("user", sam["id"])))
    assert run(job(queued["id"])) == []
    [message] = mailbox()
    assert message.destinations["ToAddresses"] == ["pat@example.com"]


def test_no_destination_left_fails_the_export_without_mail(queued):
    for address in ("pat@example.com", "sam@example.com"):
        user = users.find_by_email(address)
        # The address is no longer a verified one (its owner changed it, or it was never confirmed).
        objects.update(Ref("user", user["id"]), {"emailVerified": False})
    assert run(job(queued["id"])) == []
    stored = export_items.get(queued["id"])
    assert stored["status"] == "failed" and stored["error"]["code"] == "no_recipients"
    assert mailbox() == []


# -- Get an Export (GET /exports/{exportId}): the outcome the worker records ------------------------------


def get(principal: Principal, export_id: str):
    return invoke("convos.get_export", principal, path={"exportId": export_id})


def creator_of(export: dict) -> Principal:
    return Principal(user_id=export["createdBy"], scheme="oidc")


def test_the_creator_follows_the_export_from_queued_to_sent(queued, aws_calls):
    alice = creator_of(queued)
    aws_calls.reset()
    seen = get(alice, queued["id"])
    assert (seen.status, seen.json) == (200, queued)
    assert aws_calls.calls == {"dynamodb:GetItem": 1}  # the export (a consistent read)
    assert run(job(queued["id"])) == []
    sent = get(alice, queued["id"]).json
    assert sent["status"] == "sent" and sent["sentAt"] >= queued["createdAt"] and "error" not in sent
    # What the worker keeps for itself (SES's message id, the creator's scope) is not shown.
    assert set(sent) == {*queued, "sentAt"}


def test_a_failed_export_says_why(queued):
    kallo_aws.client("ses").delete_identity(Identity=get_settings().mail_from)
    assert run(job(queued["id"])) == []
    failed = get(creator_of(queued), queued["id"]).json
    assert failed["status"] == "failed" and failed["error"]["code"] == "mail_rejected"
    assert set(failed["error"]) == {"code", "message"}


def test_anyone_but_the_creator_gets_the_404_of_a_missing_export(queued):
    """I4, attacked from tenant B's service account, B's user, a recipient of the export and the
    creator's own tenant's service account: all answer exactly as a missing export does."""
    tenant_b, _ = make_service_account("b")
    bob = make_user(admin=tenant_b)
    recipient = make_user(email="someone-else@example.com")
    missing = get(creator_of(queued), str(uuid4()))
    assert missing.status == 404 and missing.json["code"] == "not_found"
    for intruder in (tenant_b, bob, recipient, make_service_account("a")[0]):
        refused = get(intruder, queued["id"])
        assert (refused.status, refused.json["code"]) == (404, "not_found")
        assert refused.json["message"] == f"export {queued['id']} not found"
        assert "pat@example.com" not in refused.body
    assert get(creator_of(queued), "not-an-id").status == 422


def test_a_narrow_token_sees_only_exports_of_convos_in_its_scope(queued):
    """I3: the creator's token scoped to another convo learns nothing of the export (404); one whose
    scope is the creator's whole user sees it."""
    alice = queued["createdBy"]
    elsewhere = make_object("convo", ref_of(Principal(user_id=alice, scheme="oidc")), name="Elsewhere")
    narrow = Principal(user_id=alice, scheme="access_token", scope=(elsewhere,))
    assert get(narrow, queued["id"]).status == 404
    whole = Principal(
        user_id=alice, scheme="access_token", scope=(ref_of(Principal(user_id=alice, scheme="oidc")),)
    )
    assert get(whole, queued["id"]).status == 200
