"""The LLM step worker (workers.llm_step): FIFO batches of reply jobs with the sample event; duplicate
deliveries answer once, a failed job holds back the rest of its convo only, malformed jobs fail their record (to be dead-lettered),
provider failures are final answers, and idempotency records live in the single table."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from workers import llm_step as worker

from kallo import realtime
from kallo.jobs import ReplyJob
from kallo.store import steps
from kallo.store.keys import Ref
from kallo.store.table import table
from local.runtime import LambdaContext
from tests.support.api import EVENTS
from tests.support.scripted_llm import Script, ScriptedLLM, installed
from tests.support.world import add_user_step, make_object, make_user, ref_of

SAMPLE = json.loads((EVENTS / "workers" / "llm_step.json").read_text())["Records"][0]


def context(seconds: float = 300) -> LambdaContext:
    return LambdaContext.starting("StepWorkerFunction", memory=1024, seconds=seconds)


def record(job: ReplyJob | str, *, group: str | None = None) -> dict[str, Any]:
    body = job if isinstance(job, str) else job.model_dump_json(by_alias=True)
    message = copy.deepcopy(SAMPLE)
    message.update(messageId=str(uuid4()), body=body)
    message["attributes"]["MessageGroupId"] = group or (job.convo_id if isinstance(job, ReplyJob) else "g")
    return message


def run(*records: dict[str, Any], seconds: float = 300) -> list[str]:
    """Invoke the worker with one batch; returns the ids of the messages it reports as failed."""
    response = worker.lambda_handler({"Records": list(records)}, context(seconds))
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, str, dict[str, Any]]]:
    messages: list[tuple[str, str, dict[str, Any]]] = []
    monkeypatch.setattr(
        realtime,
        "broadcast",
        lambda convo_id, kind, payload, request_id=None, **_: messages.append((convo_id, kind, payload)),
    )
    return messages


@pytest.fixture
def llm() -> Iterator[tuple[ScriptedLLM, str]]:
    scripted = ScriptedLLM(Script(["Hello", " there"]))
    with installed(scripted) as model:
        yield scripted, model


@pytest.fixture
def user(aws):
    return make_user()


def convo_with_question(user, text: str = "Hi") -> tuple[Ref, dict[str, Any]]:
    convo = make_object("convo", ref_of(user), name="Named")
    question = add_user_step(convo, user, text)
    return convo, question


def job_for(convo: Ref, question: dict[str, Any], model: str) -> ReplyJob:
    return ReplyJob(
        jobId=str(uuid4()),
        convoId=convo.id,
        replyToStepId=question["id"],
        llmStepId=str(uuid4()),
        config={"model": model, "reply": True},
        requestedBy=question["authorId"],
    )


def answers(convo: Ref) -> list[dict[str, Any]]:
    return [s for s in steps.of_convo(convo.id).items if s["authorType"] == "llm"]


def test_the_sample_event_is_a_reply_job():
    job = ReplyJob.model_validate_json(SAMPLE["body"])
    assert SAMPLE["attributes"]["MessageGroupId"] == job.convo_id
    assert SAMPLE["attributes"]["MessageDeduplicationId"] == job.job_id


def test_a_job_is_answered(user, sent, llm):
    _, model = llm
    convo, question = convo_with_question(user)
    job = job_for(convo, question, model)
    assert run(record(job)) == []
    [answer] = answers(convo)
    assert (answer["id"], answer["status"], answer["content"]) == (
        job.llm_step_id,
        "completed",
        {"text": "Hello there"},
    )
    assert [kind for _, kind, _ in sent][:2] == ["convoStatus", "convoNewStep"]


def test_a_duplicate_delivery_is_answered_once(user, sent, llm):
    scripted, model = llm
    convo, question = convo_with_question(user)
    job = job_for(convo, question, model)
    assert run(record(job), record(job)) == []  # twice in one batch
    first = list(sent)
    assert run(record(job)) == []  # and again later
    assert len(scripted.calls) == 1
    assert [a["id"] for a in answers(convo)] == [job.llm_step_id]
    assert sent == first
    assert [kind for _, kind, _ in sent].count("convoNewStep") == 1


def test_the_idempotency_record_is_kept_in_the_single_table_with_a_ttl(user, sent, llm):
    _, model = llm
    convo, question = convo_with_question(user)
    run(record(job_for(convo, question, model)))
    [item] = table().query_all("IDEMPOTENCY#llm_step")
    assert item["SK"].startswith("reply-job#")
    assert item["status"] == "COMPLETED"
    assert item["ttl"] > time.time() + 23 * 3600


def test_a_failed_job_holds_back_the_rest_of_its_convo_only(user, sent, llm, monkeypatch):
    _, model = llm
    convo, question = convo_with_question(user)
    other, other_question = convo_with_question(user)
    broken = job_for(convo, question, model)
    after_broken = job_for(convo, question, model)
    fine = job_for(other, other_question, model)
    original = steps.get

    def get(step_id: str) -> dict[str, Any] | None:
        if step_id == broken.llm_step_id:
            raise RuntimeError("DynamoDB throttled the request")
        return original(step_id)

    monkeypatch.setattr(steps, "get", get)
    batch = [record(broken), record(after_broken), record(fine)]
    assert run(*batch) == [batch[0]["messageId"], batch[1]["messageId"]]
    assert answers(convo) == []  # the job after the broken one waits for it
    assert [a["id"] for a in answers(other)] == [fine.llm_step_id]

    monkeypatch.setattr(steps, "get", original)  # the retry finds DynamoDB well again
    assert run(batch[0], batch[1]) == []
    assert {a["id"] for a in answers(convo)} == {broken.llm_step_id, after_broken.llm_step_id}


def test_a_malformed_job_fails_its_record_to_be_dead_lettered(user, sent, llm):
    _, model = llm
    convo, question = convo_with_question(user)
    good = job_for(convo, question, model)
    malformed = [record("not json"), record(json.dumps({"jobId": "x"}))]
    # SQS delivers the failed records again, then moves them to the dead-letter queue; the good job
    # of another group is answered.
    assert run(*malformed, record(good)) == [r["messageId"] for r in malformed]
    assert [a["id"] for a in answers(convo)] == [good.llm_step_id]


def test_a_provider_failure_is_a_failed_step_not_a_retry(user, sent):
    with installed(ScriptedLLM(Script(["Par", "tial"], fail_after=1))) as model:
        convo, question = convo_with_question(user)
        job = job_for(convo, question, model)
        assert run(record(job)) == []
    [answer] = answers(convo)
    assert answer["status"] == "failed"
    assert answer["error"] == {"code": "model_error", "message": "the model could not answer"}
    assert answer["content"] == {"text": "Par"}


def test_a_job_with_too_little_time_left_waits_for_the_next_invocation(user, sent, llm):
    scripted, model = llm
    convo, question = convo_with_question(user)
    message = record(job_for(convo, question, model))
    # A batch that fails as a whole fails the invocation (Powertools' default), so SQS retries it all.
    with pytest.raises(BatchProcessingError, match="All records failed"):
        run(message, seconds=worker.MIN_SECONDS_TO_START - 1)
    assert scripted.calls == [] and sent == []
    assert table().query_all("IDEMPOTENCY#llm_step") == []  # nothing holds the job back on its retry
    assert run(message) == []
    assert len(answers(convo)) == 1
