"""Generate Summary: POST /data-sources/{dataSourceId}/summary → 202 `{retryAfter}` while the data source
worker writes the summary (scripted model), then 200 `{content, annotations}` quoting the data source;
one job per request, kept once written; hidden → 404, unprocessable → 409."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from kallo.auth.principal import Principal
from kallo.clock import iso
from kallo.services import summaries
from kallo.settings import get_settings
from kallo.store import blobs, keys, objects
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.api import invoke
from tests.support.data_source_worker import delivered, record, run
from tests.support.scripted_llm import Script, ScriptedLLM, installed
from tests.support.world import grant, make_object, make_user, ref_of

DOCUMENT = (
    "The lighthouse on Cape Verde was built in 1874. Its lamp burns whale oil until 1910. "
    "Keepers climb 212 steps every evening. A storm in 1953 broke the lantern glass.\n\n"
    "Today the lighthouse is a museum about the coast. Visitors may climb to the gallery in summer."
)
SUMMARY = "The lighthouse was built in 1874. It is now a museum about the coast."


def jobs(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(m["body"]) for m in messages if json.loads(m["body"]).get("type") == "summarize"]


def post(principal: Principal, data_source: Ref):
    return invoke("data_sources.generate_summary", principal, path={"dataSourceId": data_source.id})


def summary_item(data_source: Ref) -> dict[str, Any] | None:
    return table().get(keys.summary_key(data_source.id), consistent=True)


@pytest.fixture
def llm(monkeypatch) -> Iterator[ScriptedLLM]:
    scripted = ScriptedLLM(Script.saying(SUMMARY, size=8))
    with installed(scripted) as model:
        monkeypatch.setenv("KALLO_DEFAULT_MODEL", model)
        get_settings.cache_clear()
        yield scripted


@pytest.fixture
def alice(aws) -> Principal:
    user = make_user()
    delivered()  # the s3:TestEvent of the bucket's notification
    return user


def uploaded(owner: Principal, body: bytes = DOCUMENT.encode(), *, process: bool = True) -> Ref:
    """A text data source whose upload the worker processed (or not yet, `process=False`)."""
    fields = {"name": "cape.txt", "type": "upload", "mimeType": "text/plain", "status": "processing"}
    ref = make_object("data_source", ref_of(owner), **fields)
    location = blobs.location(ref_of(owner), ref.id)
    objects.update(ref, {"location": location})
    blobs.put(location, body, content_type="text/plain")
    if process:
        assert run(*delivered()) == []
    return ref


def test_202_then_the_worker_then_200_with_citations(alice, llm, aws_calls):
    source = uploaded(alice)
    aws_calls.reset()
    before = datetime.now(UTC)
    first = post(alice, source)
    assert first.status == 202 and first.headers["retry-after"] == str(summaries.RETRY_AFTER_SECONDS)
    retry_after = datetime.fromisoformat(first.json["retryAfter"])
    assert before < retry_after <= datetime.now(UTC) + timedelta(seconds=summaries.RETRY_AFTER_SECONDS)
    # The check (Query + BatchGetItem), the data source and its summary (Query), the pending summary,
    # the job.
    assert aws_calls["dynamodb:Query"] == 2 and aws_calls["dynamodb:BatchGetItem"] == 1
    assert aws_calls["dynamodb:PutItem"] == 1 and aws_calls["sqs:SendMessage"] == 1
    assert aws_calls["dynamodb:UpdateItem"] == 1  # the requester's daily allowance of summaries (I10)
    assert aws_calls.total == 6
    assert summary_item(source)["status"] == "pending"

    messages = delivered()
    assert jobs(messages) == [{"type": "summarize", "dataSourceId": source.id}]
    aws_calls.reset()
    assert run(*messages) == []
    # The summary and the data source, its text and index, the summary written.
    assert aws_calls["dynamodb:GetItem"] == 2 and aws_calls["s3:GetObject"] == 2
    assert aws_calls["dynamodb:UpdateItem"] == 1 and aws_calls.total == 5
    assert len(llm.calls) == 1
    messages_read, generation = llm.calls[0]
    assert messages_read[0].role == "system" and DOCUMENT in messages_read[1].content
    assert generation.max_tokens == summaries.SUMMARY_TOKENS

    aws_calls.reset()
    second = post(alice, source)
    assert second.status == 200 and aws_calls.total == 3
    assert second.json["content"] == {"text": SUMMARY}
    annotations = second.json["annotations"]
    assert 1 <= len(annotations) <= summaries.MAX_CITATIONS
    text = blobs.get(blobs.key(objects.get(source)["location"], blobs.TEXT)).decode()
    for annotation in annotations:
        assert annotation["type"] == "citation" and annotation["dataSourceId"] == source.id
        assert text[annotation["start"] : annotation["end"]] == annotation["text"]
    quoted = [a["text"] for a in annotations]
    assert any("1874" in q for q in quoted) and any("museum" in q for q in quoted)
    assert len(set(quoted)) == len(quoted)
    # Kept: asking again neither queues a job nor calls the model.
    assert post(alice, source).json == second.json
    assert delivered() == [] and len(llm.calls) == 1


def test_requests_while_pending_share_one_job(alice, llm):
    source = uploaded(alice)
    assert [post(alice, source).status for _ in range(3)] == [202, 202, 202]
    assert len(jobs(delivered())) == 1


def test_duplicate_jobs_call_the_model_once(alice, llm):
    source = uploaded(alice)
    post(alice, source)
    (job,) = delivered()
    assert run(job, record(job["body"])) == []
    assert run(record(job["body"])) == []
    assert len(llm.calls) == 1 and summary_item(source)["status"] == "ready"


def test_a_request_while_processing_is_queued_when_processing_ends(alice, llm):
    source = uploaded(alice, process=False)
    uploads = delivered()
    response = post(alice, source)
    assert response.status == 202 and summary_item(source)["status"] == "pending"
    assert jobs(delivered()) == []  # nothing to summarise yet
    assert run(*uploads) == []
    queued = delivered()
    assert jobs(queued) == [{"type": "summarize", "dataSourceId": source.id}]
    assert run(*queued) == []
    assert post(alice, source).json["content"] == {"text": SUMMARY}


def test_a_pending_request_whose_job_was_lost_is_requested_again(alice, llm):
    source = uploaded(alice)
    post(alice, source)
    delivered()  # lost
    old = iso(datetime.now(UTC) - timedelta(seconds=summaries.PENDING_SECONDS + 5))
    table().update(keys.summary_key(source.id), {"requestedAt": old})
    assert post(alice, source).status == 202
    assert len(jobs(delivered())) == 1
    assert summary_item(source)["requestedAt"] > old


def test_a_model_failure_fails_the_summary_and_a_later_request_retries(aws, alice, monkeypatch):
    scripted = ScriptedLLM(Script(["The light"], fail_after=1), Script.saying(SUMMARY))
    with installed(scripted) as model:
        monkeypatch.setenv("KALLO_DEFAULT_MODEL", model)
        get_settings.cache_clear()
        source = uploaded(alice)
        post(alice, source)
        assert run(*delivered()) == []
        failed = summary_item(source)
        assert failed["status"] == "failed"
        # I7: what the provider said goes to the log, not to the summary.
        assert failed["error"] == {"code": "model_error", "message": "the model could not answer"}
        assert post(alice, source).status == 202
        assert summary_item(source)["status"] == "pending" and "error" not in summary_item(source)
        assert run(*delivered()) == []
        assert post(alice, source).json["content"] == {"text": SUMMARY}
    assert len(scripted.calls) == 2


def test_an_unknown_model_fails_the_summary_with_a_generic_error(alice, monkeypatch):
    monkeypatch.setenv("KALLO_DEFAULT_MODEL", "nowhere:model")
    get_settings.cache_clear()
    source = uploaded(alice)
    post(alice, source)
    assert run(*delivered()) == []
    assert summary_item(source)["error"] == {"code": "model_error", "message": "the model could not answer"}


def test_a_stranger_gets_404_and_a_viewer_gets_the_summary(alice, llm):
    source = uploaded(alice)
    stranger, viewer = make_user(), make_user()
    grant(source, viewer, "viewer")
    response = post(stranger, source)
    assert response.status == 404 and response.json["code"] == "not_found"
    assert summary_item(source) is None and jobs(delivered()) == []
    assert post(viewer, source).status == 202


def test_a_team_member_may_ask_for_the_summary_of_the_teams_data_source(alice, llm):
    member = make_user()
    team = make_object("team", ref_of(alice))
    grant(team, member, "member")
    fields = {"name": "t.txt", "type": "upload", "mimeType": "text/plain", "status": "ready"}
    source = make_object("data_source", team, createdBy=alice.user_id, **fields)
    objects.update(source, {"location": blobs.location(team, source.id)})
    assert post(member, source).status == 202


def test_a_failed_data_source_has_no_summary(alice, llm):
    source = uploaded(alice, b"\x7fELF\x02\x01\x01\x00" + bytes(64))
    assert objects.get(source)["status"] == "failed"
    response = post(alice, source)
    assert response.status == 409 and response.json["code"] == "not_processable"
    assert summary_item(source) is None


def test_unknown_and_malformed_ids(alice):
    missing = post(alice, Ref("data_source", str(uuid4())))
    assert missing.status == 404 and missing.json["code"] == "not_found"
    malformed = invoke("data_sources.generate_summary", alice, path={"dataSourceId": "nope"})
    assert malformed.status == 422 and malformed.json["code"] == "validation_error"


def test_summaries_past_the_daily_allowance_are_429(alice, llm, monkeypatch):
    monkeypatch.setenv("KALLO_SUMMARIES_PER_DAY", "1")
    get_settings.cache_clear()
    first, second = uploaded(alice), uploaded(alice)
    assert post(alice, first).status == 202
    # Asking again about the pending one starts nothing and costs nothing.
    assert post(alice, first).status == 202
    refused = post(alice, second)
    assert refused.status == 429 and refused.json["code"] == "quota_exceeded"
    assert 0 < int(refused.headers["retry-after"]) <= 86400
    assert summary_item(second) is None
