"""LLM answers (kallo.services.replies.answer) against moto, with a scripted provider and the broadcasts
captured: the message sequence, coalescing, saved progress, failures, idempotency, the context the model
reads, naming, and the AWS calls of an answer."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import pytest

from kallo import quotas, realtime
from kallo.clock import now, now_iso
from kallo.errors import Conflict
from kallo.jobs import ReplyJob
from kallo.llm import ChatMessage, ProviderError, Usage, registry
from kallo.models.steps import STEP_JSON_LIMIT, Step, json_size
from kallo.realtime import audience
from kallo.services import naming, prompting, replies
from kallo.store import connections, objects, search, steps
from kallo.store import quotas as counters
from kallo.store.keys import Ref
from tests.support.scripted_llm import Script, ScriptedLLM, installed
from tests.support.world import make_object, make_user, ref_of


@dataclass
class Sent:
    """The messages broadcast, in order, with the moment each was sent."""

    messages: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The messages that allowed reusing the convo's connection list (only deltas may).
    reusing: list[dict[str, Any]] = field(default_factory=list)

    def types(self) -> list[str]:
        return [t for _, t, _ in self.messages]

    def of(self, message_type: str) -> list[dict[str, Any]]:
        return [p for _, t, p in self.messages if t == message_type]

    def deltas(self) -> list[dict[str, Any]]:
        return [p for p in self.of("convoStepUpdate") if "delta" in p]

    def final(self) -> dict[str, Any]:
        [final] = [p for p in self.of("convoStepUpdate") if "delta" not in p]
        return final


@pytest.fixture
def sent(monkeypatch) -> Sent:
    record = Sent()

    def broadcast(
        convo_id: str,
        message_type: str,
        payload: Any,
        request_id: str | None = None,
        *,
        reuse_connections: bool = False,
    ) -> None:
        with record.lock:
            record.messages.append((time.monotonic(), message_type, payload))
            if reuse_connections:
                record.reusing.append(payload)

    monkeypatch.setattr(realtime, "broadcast", broadcast)
    return record


@dataclass
class Scene:
    user: str
    convo: Ref

    def step(self, text: str, *, author: str = "user", **fields: Any) -> dict[str, Any]:
        at = now_iso()
        time.sleep(0.002)  # distinct milliseconds keep the order of steps written in a row
        return steps.add(
            Step(
                id=str(uuid4()),
                convoId=self.convo.id,
                authorType=author,
                authorId=self.user if author == "user" else None,
                content={"text": text},
                createdAt=at,
                updatedAt=at,
                **fields,
            ).record()
        )

    def job(self, question: dict[str, Any], model: str, **config: Any) -> ReplyJob:
        return ReplyJob(
            jobId=str(uuid4()),
            convoId=self.convo.id,
            replyToStepId=question["id"],
            llmStepId=str(uuid4()),
            config={"model": model, "reply": True, **config},
            requestedBy=self.user,
        )

    def answer_of(self, job: ReplyJob) -> dict[str, Any]:
        found = steps.get(job.llm_step_id)
        assert found is not None
        return found


@pytest.fixture
def scene(aws) -> Scene:
    user = make_user()
    return Scene(user.user_id or "", make_object("convo", ref_of(user), name="Named already"))


def raising(error: Exception) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    return fail


@contextmanager
def play(
    *scripts: Script, context_tokens: int = registry.DEFAULT_CONTEXT_TOKENS
) -> Iterator[tuple[ScriptedLLM, str]]:
    """A scripted provider installed for one test: `with play(...) as (llm, model)`."""
    scripted = ScriptedLLM(*scripts)
    with installed(scripted, context_tokens=context_tokens) as model:
        yield scripted, model


@pytest.fixture
def llm() -> Iterator[tuple[ScriptedLLM, str]]:
    # "Hello" goes out as the first delta; the rest comes while it waits for the next beat, so it
    # goes with the final update.
    with play(Script(["Hello", " world", "!"], delay=[0.0, 0.03, 0.03])) as installed_llm:
        yield installed_llm


# -- the message sequence ---------------------------------------------------------------------------------


def test_an_answer_is_announced_streamed_completed_and_saved(scene, sent, llm):
    _, model = llm
    question = scene.step("Hi there")
    job = scene.job(question, model)
    replies.answer(job)

    assert sent.types()[:2] == ["convoStatus", "convoNewStep"]
    assert sent.types()[-2:] == ["convoStepUpdate", "convoStatus"]
    assert set(sent.types()[2:-2]) <= {"convoStepUpdate"}
    running, idle = sent.of("convoStatus")
    assert running == {"convoId": scene.convo.id, "status": "running", "stepId": job.llm_step_id}
    assert idle == {"convoId": scene.convo.id, "status": "idle"}
    [new] = sent.of("convoNewStep")
    assert new["id"] == job.llm_step_id
    assert {k: new[k] for k in ("convoId", "authorType", "status", "content", "seq", "replyToStepId")} == {
        "convoId": scene.convo.id,
        "authorType": "llm",
        "status": "running",
        "content": {"text": ""},
        "seq": 0,
        "replyToStepId": question["id"],
    }
    assert new["config"] == {"model": model}  # `reply` asked for the answer; it is not the answer's
    assert new["createdAt"] > question["createdAt"]

    deltas = sent.deltas()
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    assert all(d["id"] == job.llm_step_id for d in deltas)
    assert "Hello world!".startswith("".join(d["delta"] for d in deltas))
    # Only the deltas may reuse the convo's connection list; every other message reads it afresh.
    assert sent.reusing == deltas
    assert sent.final() == {
        "id": job.llm_step_id,
        "content": {"text": "Hello world!"},
        "status": "completed",
        "seq": len(deltas) + 1,
    }
    stored = scene.answer_of(job)
    assert (stored["status"], stored["content"], stored["seq"]) == (
        "completed",
        {"text": "Hello world!"},
        len(deltas) + 1,
    )
    assert "error" not in stored
    # The convo's latestStep follows the answer, and Query Steps finds it.
    assert objects.get(scene.convo)["latestStep"]["content"] == {"text": "Hello world!"}
    assert [p["stepId"] for p in search.postings("world", limit=10).items] == [job.llm_step_id]


def test_a_hundred_tiny_chunks_make_a_few_delta_messages(scene, sent, monkeypatch):
    saved = _saves(monkeypatch)
    with play(Script.saying("x" * 100, delay=0.005)) as (_, model):
        job = scene.job(scene.step("Count"), model)
        replies.answer(job)
    deltas = sent.deltas()
    # ~0.5 s of text (longer on a loaded machine) at most 4 times a second: the first at once, then
    # every 250 ms (the spacing is checked below), so a few messages for a hundred chunks.
    assert 2 <= len(deltas) <= 10
    assert len(deltas[0]["delta"]) == 1  # the first text goes out as soon as it exists
    # Flushes are 250 ms apart: each starts with its save (the broadcast follows the save, whose
    # duration varies with the machine's load, so the saves' moments are what is paced).
    moments = [m for m, c, _ in saved if "content" in c]
    assert len(moments) == len(deltas)
    assert all(later - earlier >= 0.24 for earlier, later in itertools.pairwise(moments))
    streamed = "".join(d["delta"] for d in deltas)
    assert sent.final()["content"]["text"] == "x" * 100
    assert streamed == "x" * len(streamed)


def test_a_fast_stream_is_flushed_every_200_characters(scene, sent, monkeypatch):
    # The timer is pushed out of reach so that, however slow the machine, only size triggers flushes.
    monkeypatch.setattr(replies, "pacing", replies.Pacing(flush_interval=3600.0))
    with play(Script.saying("y" * 1000, size=10, delay=0.001)) as (_, model):
        replies.answer(scene.job(scene.step("Go"), model))
    deltas = [d["delta"] for d in sent.deltas()]
    assert len(deltas) >= 4
    assert all(len(d) >= replies.pacing.flush_chars for d in deltas[1:])
    assert sent.final()["content"]["text"] == "y" * 1000


def _saves(monkeypatch) -> list[tuple[float, dict[str, Any], bool]]:
    """Record every store.steps.update of a running step's progress (text and seq, and whether the
    convo's latestStep followed), with the moment it was made."""
    saved: list[tuple[float, dict[str, Any], bool]] = []
    original = steps.update

    def update(step: dict[str, Any], changes: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        moment = time.monotonic()
        result = original(step, changes, **kwargs)
        if set(changes) <= {"content", "seq"} and step.get("status") == "running":
            saved.append((moment, changes, kwargs.get("latest", True)))
        return result

    monkeypatch.setattr(steps, "update", update)
    return saved


def _check_progress(sent: Sent, saved: list[tuple[float, dict[str, Any], bool]], every: float) -> None:
    deltas = [(m, p) for m, t, p in sent.messages if t == "convoStepUpdate" and "delta" in p]
    with_text = {c["seq"]: (m, c) for m, c, _ in saved if "content" in c}
    for moment, delta in deltas:
        # Each delta's text was saved before it was broadcast, and the saved text is exactly deltas
        # 1..seq: a snapshot never lags what was sent, so a client resumes from it with no gap.
        assert delta["seq"] in with_text, f"delta {delta['seq']} was broadcast unsaved"
        saved_at, changes = with_text[delta["seq"]]
        assert saved_at <= moment
        assert changes["content"]["text"] == "".join(d["delta"] for _, d in deltas[: delta["seq"]])
    # The convo's latestStep follows at the save cadence, not once per delta (the worker reads its
    # clock just before each save: a little slack for that).
    latest = [m for m, _, followed in saved if followed]
    assert all(b - a >= every * 0.9 for a, b in itertools.pairwise(latest))


def test_every_delta_is_saved_before_it_is_broadcast(scene, sent, monkeypatch):
    saved = _saves(monkeypatch)
    with play(Script.saying("z" * 32, delay=0.05)) as (_, model):  # 1.6 s of text
        job = scene.job(scene.step("Slowly"), model)
        replies.answer(job)
    assert len(sent.deltas()) >= 3
    _check_progress(sent, saved, replies.pacing.save_interval)
    # A stream longer than the save interval moved the convo's latestStep on the way.
    assert any(followed for _, c, followed in saved if "content" in c)


def test_progress_saving_follows_the_pacing(scene, sent, monkeypatch):
    monkeypatch.setattr(
        replies, "pacing", replies.Pacing(flush_interval=0.03, flush_chars=1000, save_interval=0.1)
    )
    saved = _saves(monkeypatch)
    with play(Script.saying("w" * 40, delay=0.01)) as (_, model):
        job = scene.job(scene.step("Paced"), model)
        replies.answer(job)
    assert len(saved) >= 3
    # Each text save is the next seq; a save while no delta went out (the stop check) repeats it.
    with_text = [c["seq"] for _, c, _ in saved if "content" in c]
    assert with_text == list(range(1, len(with_text) + 1))
    assert [c["seq"] for _, c, _ in saved] == sorted(c["seq"] for _, c, _ in saved)
    _check_progress(sent, saved, 0.1)


def test_a_silent_model_is_still_checked_for_a_stop_and_its_listing_catches_up(scene, sent, monkeypatch):
    # One delta, then 0.7 s of silence: a save without text keeps the stop check going and brings
    # the convo's latestStep up to the text broadcast.
    saved = _saves(monkeypatch)
    with play(Script(["a", "b"], delay=[0.0, 0.7])) as (_, model):
        replies.answer(scene.job(scene.step("Think"), model))
    assert [(c, followed) for _, c, followed in saved][:2] == [
        ({"content": {"text": "a"}, "seq": 1}, False),
        ({"seq": 1}, True),
    ]


def test_pending_text_is_flushed_on_time_while_the_model_is_silent(scene, sent):
    # "b" arrives 50 ms after the first delta went out, then the model thinks for 0.6 s.
    with play(Script(["a", "b", "c"], delay=[0.0, 0.05, 0.6])) as (_, model):
        replies.answer(scene.job(scene.step("Wait"), model))
    moments = [m for m, t, p in sent.messages if "delta" in p]
    assert [d["delta"] for d in sent.deltas()][:2] == ["a", "b"]
    assert 0.2 < moments[1] - moments[0] < 0.45  # on the 250 ms beat, not when "c" comes


# -- failures ---------------------------------------------------------------------------------------------


def test_a_provider_failure_ends_the_step_as_failed_with_the_text_so_far(scene, sent):
    with play(Script(["Once ", "upon ", "a ", "time"], fail_after=2)) as (llm, model):
        job = scene.job(scene.step("Tell a story"), model)
        replies.answer(job)  # not raised: a provider error is the final answer
    assert sent.types()[:2] == ["convoStatus", "convoNewStep"]
    assert sent.types()[-1] == "convoStatus"
    final = sent.final()
    assert final == {
        "id": job.llm_step_id,
        "content": {"text": "Once upon "},
        "status": "failed",
        "error": {"code": "model_error", "message": "the model could not answer"},
        "seq": len(sent.deltas()) + 1,
    }
    stored = scene.answer_of(job)
    assert (stored["status"], stored["error"], stored["content"]) == (
        "failed",
        final["error"],
        final["content"],
    )
    assert len(llm.calls) == 1


def test_a_provider_error_shows_neither_its_url_nor_the_upstream_body(scene, sent):
    """I7: the provider's own message (its endpoint, the body it got back) goes to the log only."""
    leak = ProviderError(
        "the model server at http://10.0.0.7:8000/v1/chat/completions answered 500: "
        '{"error": "tenant-b secret prompt"}'
    )
    with play(Script(["a"], fail_after=0, error=leak)) as (_, model):
        job = scene.job(scene.step("Hello?"), model)
        replies.answer(job)
    stored, final = scene.answer_of(job)["error"], sent.final()["error"]
    assert stored == final == {"code": "model_error", "message": "the model could not answer"}


@pytest.mark.parametrize("model", ["nowhere:model", "bedrock:anthropic.claude-3-opus-20240229-v1:0"])
def test_a_model_off_the_allow_list_fails_the_step_unasked(scene, sent, model):
    """I10: a config naming a model the stack does not allow (stored before the list changed, or never
    checked) is refused when the answer is made; the provider is never called."""
    job = scene.job(scene.step("Hello?"), model)
    replies.answer(job)
    assert scene.answer_of(job)["error"] == {
        "code": "model_not_allowed",
        "message": "the step's model is not allowed on this deployment",
    }


def test_max_tokens_over_the_model_cap_is_clamped(scene, sent, llm):
    """I10: a stored `maxTokens` above the cap never reaches the provider."""
    scripted, model = llm
    replies.answer(scene.job(scene.step("Long?"), model, maxTokens=32768))
    assert scripted.calls[0][1].max_tokens == registry.DEFAULT_MAX_TOKENS_CAP


def test_an_invalid_config_fails_the_step(scene, sent, llm):
    _, model = llm
    job = scene.job(scene.step("Hot"), model, temperature=7)
    replies.answer(job)
    error = scene.answer_of(job)["error"]
    assert error["code"] == "invalid_config"
    assert error["message"].startswith("the step config is not valid: temperature:")


def test_an_unexpected_error_fails_the_step_without_internals(scene, sent):
    with play(Script(["a"], fail_after=0, error=KeyError("secret internals"))) as (_, model):
        job = scene.job(scene.step("Boom"), model)
        replies.answer(job)
    assert scene.answer_of(job)["error"] == {"code": "internal_error", "message": replies.INTERNAL}


def test_an_answer_running_past_the_deadline_fails_keeping_its_text(scene, sent):
    with play(Script.saying("slow text", delay=0.05)) as (_, model):
        job = scene.job(scene.step("Hurry"), model)
        replies.answer(job, deadline=time.monotonic() + 0.2)
    stored = scene.answer_of(job)
    assert stored["status"] == "failed"
    assert stored["error"] == {"code": "answer_timeout", "message": replies.TOO_LONG}
    assert 0 < len(stored["content"]["text"]) < len("slow text")


def test_a_broken_broadcast_does_not_fail_the_answer(scene, monkeypatch, llm):
    _, model = llm
    monkeypatch.setattr(realtime, "broadcast", raising(RuntimeError("API Gateway is down")))
    job = scene.job(scene.step("Anyone?"), model)
    replies.answer(job)
    assert scene.answer_of(job)["status"] == "completed"


def test_an_infrastructure_error_before_the_step_exists_is_raised_for_a_retry(scene, sent, monkeypatch, llm):
    _, model = llm
    job = scene.job(scene.step("Retry me"), model)
    monkeypatch.setattr(steps, "add", raising(RuntimeError("DynamoDB is down")))
    with pytest.raises(RuntimeError, match="DynamoDB is down"):
        replies.answer(job)
    assert sent.of("convoStatus") == [
        {"convoId": scene.convo.id, "status": "running", "stepId": job.llm_step_id},
        {"convoId": scene.convo.id, "status": "idle"},
    ]


def test_a_step_deleted_while_it_is_written_ends_the_answer_quietly(scene, sent, monkeypatch):
    original = steps.update

    def update(step, changes, **kwargs):
        if changes.get("status") == "completed":
            steps.delete(step)
            raise Conflict("the object changed while it was being updated", code="not_found")
        return original(step, changes, **kwargs)

    monkeypatch.setattr(steps, "update", update)
    with play(Script(["Gone"])) as (_, model):
        job = scene.job(scene.step("Delete me"), model)
        replies.answer(job)
    assert sent.types()[-1] == "convoStatus"
    assert not [p for p in sent.of("convoStepUpdate") if "delta" not in p]
    assert steps.get(job.llm_step_id) is None


def test_a_text_beyond_64_kb_is_cut_there(scene, sent):
    chunk = "é" * 1000  # 2 bytes each in UTF-8
    with play(Script([chunk] * 40)) as (_, model):
        job = scene.job(scene.step("Write a lot"), model)
        replies.answer(job)
    text = scene.answer_of(job)["content"]["text"]
    assert len(text.encode()) == replies.TEXT_LIMIT_BYTES == 65536
    assert text == "é" * 32768
    assert sent.final()["status"] == "completed"


def test_a_text_that_grows_when_escaped_is_cut_at_64_kb_of_json(scene, sent):
    """Quotes and newlines take two bytes each in a message's JSON: the cut counts those, so the final
    step still fits one WebSocket frame."""
    with play(Script(['"\n' * 500] * 40)) as (_, model):
        job = scene.job(scene.step("Quote a lot"), model)
        replies.answer(job)
    text = scene.answer_of(job)["content"]["text"]
    assert len(text) == replies.TEXT_LIMIT_BYTES // 2
    assert json_size(sent.final()) < STEP_JSON_LIMIT


# -- idempotency ------------------------------------------------------------------------------------------


def test_a_job_answered_already_does_nothing(scene, sent, llm):
    scripted, model = llm
    job = scene.job(scene.step("Once only"), model)
    replies.answer(job)
    count = len(sent.messages)
    replies.answer(job)
    replies.answer(job.model_copy(update={"job_id": str(uuid4())}))  # another job for the same step
    assert len(sent.messages) == count
    assert len(scripted.calls) == 1
    answers = [s for s in steps.of_convo(scene.convo.id).items if s["authorType"] == "llm"]
    assert [a["id"] for a in answers] == [job.llm_step_id]


def test_a_failed_answer_is_not_answered_again(scene, sent):
    with play(Script([], fail_after=0)) as (llm, model):
        job = scene.job(scene.step("Fail once"), model)
        replies.answer(job)
        replies.answer(job)
    assert len(llm.calls) == 1


def test_a_step_left_running_by_a_crashed_attempt_starts_over(scene, sent, llm):
    _, model = llm
    question = scene.step("Again")
    job = scene.job(question, model)
    at = now_iso()
    steps.add(
        Step(
            id=job.llm_step_id,
            convoId=scene.convo.id,
            authorType="llm",
            status="running",
            content={"text": "half an ans"},
            seq=3,
            replyToStepId=question["id"],
            createdAt=at,
            updatedAt=at,
        ).record()
    )
    replies.answer(job)
    [new] = sent.of("convoNewStep")
    assert (new["id"], new["content"], new["seq"], new["createdAt"]) == (job.llm_step_id, {"text": ""}, 0, at)
    assert sent.deltas()[0]["seq"] == 1
    stored = scene.answer_of(job)
    assert (stored["status"], stored["content"]["text"]) == ("completed", "Hello world!")
    assert len([s for s in steps.of_convo(scene.convo.id).items if s["authorType"] == "llm"]) == 1


def test_a_job_whose_convo_or_question_is_gone_is_dropped(scene, sent, llm):
    _, model = llm
    question = scene.step("Deleted soon")
    job = scene.job(question, model)
    steps.delete(question)
    replies.answer(job)
    orphan = job.model_copy(update={"convo_id": str(uuid4())})
    replies.answer(orphan)
    assert sent.messages == []
    assert steps.get(job.llm_step_id) is None


def test_the_answer_keeps_the_place_a_regen_gives_it(scene, sent, llm):
    _, model = llm
    question = scene.step("Regen")
    place = "2030-01-01T00:00:00.000Z"
    job = scene.job(question, model).model_copy(update={"created_at": place})
    replies.answer(job)
    assert scene.answer_of(job)["createdAt"] == place


# -- what the model reads ---------------------------------------------------------------------------------


def test_the_model_reads_the_topic_prompt_the_history_and_the_merged_config(aws, sent):
    user = make_user()
    prompt = make_object("prompt", ref_of(user), text="Talk like a pirate.")
    topic = make_object(
        "topic",
        ref_of(user),
        description="",
        config={"defaults": {"temperature": 0.3, "maxTokens": 300}},
        promptId=prompt.id,
    )
    scene = Scene(user.user_id or "", make_object("convo", topic, topicId=topic.id, name="Ahoy"))
    scene.step("First question")
    scene.step("First answer", author="llm")
    scene.step("Second question")
    scene.step("An answer that failed", author="llm", status="failed")
    scene.step("   ")  # empty: left out
    scene.step("An alternate", isAlternate=True)
    question = scene.step("Third question")
    scene.step("Written after the question", author="llm")
    with play(Script(["Arr"])) as (llm, model):
        job = scene.job(question, model, maxTokens=50)
        replies.answer(job)
    [(messages, generation)] = llm.calls
    assert messages == [
        ChatMessage("system", f"{prompting.DEFAULT_INSTRUCTION}\n\nTalk like a pirate."),
        ChatMessage("user", "First question"),
        ChatMessage("assistant", "First answer"),
        ChatMessage("user", "Second question\n\nThird question"),
    ]
    assert (generation.model, generation.temperature, generation.max_tokens) == ("test", 0.3, 50)
    assert scene.answer_of(job)["config"] == {"model": model, "temperature": 0.3, "maxTokens": 50}


def test_a_convos_inputs_fill_the_topic_prompts_variables(aws, sent):
    """Dify's `inputs`, kept on the convo, fill `{{name}}` in the topic's prompt; one it lacks is
    emptied. A convo without inputs reads the prompt as written."""
    user = make_user()
    text = "You help {{ name }} plan a trip to {{city}}. {{unknown}}Be brief."
    prompt = make_object("prompt", ref_of(user), text=text)
    topic = make_object("topic", ref_of(user), description="", promptId=prompt.id)
    for inputs, expected in (
        ({"name": "Ada", "city": "Oslo", "extra": 1}, "You help Ada plan a trip to Oslo. Be brief."),
        (None, text),
    ):
        fields = {"inputs": inputs} if inputs is not None else {}
        scene = Scene(user.user_id or "", make_object("convo", topic, topicId=topic.id, name="T", **fields))
        question = scene.step("Where to?")
        with play(Script(["Oslo"])) as (llm, model):
            replies.answer(scene.job(question, model))
        [(messages, _)] = llm.calls
        assert messages[0] == ChatMessage("system", f"{prompting.DEFAULT_INSTRUCTION}\n\n{expected}")


def test_without_a_model_the_default_model_answers(scene, sent, monkeypatch):
    with play(Script(["ok"])) as (llm, model):
        monkeypatch.setenv("KALLO_DEFAULT_MODEL", model)
        from kallo.settings import get_settings

        get_settings.cache_clear()
        question = scene.step("Default?")
        job = scene.job(question, model).model_copy(update={"config": {"reply": True}})
        replies.answer(job)
    assert scene.answer_of(job)["config"] == {"model": model}
    assert llm.calls[0][1].max_tokens == prompting.DEFAULT_MAX_TOKENS


def test_a_long_history_is_trimmed_from_the_oldest_to_the_context(scene, sent):
    for n in range(30):
        scene.step(f"question {n} " + "q" * 400)
        scene.step(f"answer {n} " + "a" * 400, author="llm")
    question = scene.step("last question")
    with play(Script(["ok"]), context_tokens=2048) as (llm, model):
        replies.answer(scene.job(question, model))
    [(messages, generation)] = llm.calls
    assert generation.max_tokens == 1024  # half the context when the config names none
    used = sum(prompting.tokens(m.content) for m in messages)
    assert used <= 2048 - 1024
    assert messages[-1] == ChatMessage("user", "last question")
    assert messages[1].role == "user"
    assert "question 29" in messages[-3].content and "question 0 " not in " ".join(
        m.content for m in messages
    )


def test_history_merges_turns_drops_leading_answers_and_cuts_a_huge_question():
    def step(text: str, author: str = "user") -> dict[str, Any]:
        return {"authorType": author, "content": {"text": text}, "status": "completed"}

    turns = prompting.history([step("hello", "llm"), step("a"), step("b"), step("c", "llm"), step("d")], 1000)
    assert [(t.role, t.content) for t in turns] == [("user", "a\n\nb"), ("assistant", "c"), ("user", "d")]
    huge = "start " + "x" * 10_000 + " end"
    [turn] = prompting.history([step(huge)], 100)
    assert turn.content.startswith("start ") and turn.content.endswith(" end") and "[...]" in turn.content
    assert prompting.tokens(turn.content) <= prompting.MIN_QUESTION_TOKENS


# -- naming -----------------------------------------------------------------------------------------------


@pytest.fixture
def nameless(aws) -> Scene:
    user = make_user()
    return Scene(user.user_id or "", make_object("convo", ref_of(user), name=""))


def test_a_nameless_convo_is_named_after_its_first_answer(nameless, sent):
    with play(Script(["Answer"]), Script(['Title: "Why the Sky Is Blue"', "\nAnd more"])) as (llm, model):
        replies.answer(nameless.job(nameless.step("Why is the sky blue?"), model))
    assert sent.types()[-2:] == ["convoStatus", "convoUpdate"]
    [update] = sent.of("convoUpdate")
    assert (update["id"], update["name"]) == (nameless.convo.id, "Why the Sky Is Blue")
    assert objects.get(nameless.convo)["name"] == "Why the Sky Is Blue"
    messages, generation = llm.calls[1]
    assert messages[0] == ChatMessage("system", naming.NAMING_INSTRUCTION)
    assert "Why is the sky blue?" in messages[1].content and "Answer" in messages[1].content
    assert generation.max_tokens == naming.NAMING_TOKENS


def test_when_naming_fails_the_question_names_the_convo(nameless, sent):
    with play(Script(["Answer"]), Script([], fail_after=0)) as (_, model):
        replies.answer(
            nameless.job(nameless.step('"Please"  explain\nthe rules of chess to a beginner, slowly'), model)
        )
    assert objects.get(nameless.convo)["name"] == "Please explain the rules of chess to a"


def test_a_named_convo_is_not_renamed(scene, sent, llm):
    scripted, model = llm
    replies.answer(scene.job(scene.step("Hi"), model))
    assert len(scripted.calls) == 1
    assert sent.of("convoUpdate") == []


def test_a_name_given_meanwhile_wins(nameless, sent, llm):
    _, model = llm
    question = nameless.step("Hi")
    objects.update(nameless.convo, {"name": "Mine"})
    plan = prompting.Plan(model, {"model": model}, "", [question])
    naming.name_convo({"id": nameless.convo.id, "name": ""}, plan, "Hello")
    assert objects.get(nameless.convo)["name"] == "Mine"
    assert sent.of("convoUpdate") == []


def test_no_name_when_the_answer_failed(nameless, sent):
    with play(Script([], fail_after=0)) as (llm, model):
        replies.answer(nameless.job(nameless.step("Hi"), model))
    assert objects.get(nameless.convo)["name"] == ""
    assert len(llm.calls) == 1


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ('"Sky Colors Explained"', "Sky Colors Explained"),
        ("Title: **Chess for beginners.**\nThe convo is about chess.", "Chess for beginners"),
        ("“Quoted”  with   spaces", "Quoted with spaces"),
        ("one two three four five six seven eight nine ten", "one two three four five six seven eight"),
        ("What's new", "What's new"),
        ("\n\n", ""),
    ],
)
def test_clean_name(raw, name):
    assert naming.clean_name(raw) == name


# -- AWS calls --------------------------------------------------------------------------------------------


def test_aws_calls_of_a_short_answer(scene, aws_calls, monkeypatch, llm):
    _, model = llm
    principal = {"scheme": "oidc", "userId": scene.user}
    connections.put(
        {"connectionId": "conn-1", "convoId": scene.convo.id, "userId": scene.user, "principal": principal},
        ttl=2**31 - 1,
    )
    frames: list[bytes] = []
    monkeypatch.setattr(realtime, "post", lambda connection_id, data: frames.append(data) or True)
    monkeypatch.setattr(audience, "RECHECK_SECONDS", 600.0)  # a slow machine must not add a check
    realtime.reset()
    job = scene.job(scene.step("Hi"), model)
    aws_calls.reset()
    replies.answer(job)
    # running, new step, one delta, final, idle: one Query each for the convo's connections, but the
    # delta's, which reuses the list read within the second; the first broadcast checks the connection
    # (I8): the convo's structural grants and the user's grants, then its verdict is remembered for the
    # other four.
    assert len(frames) == 5
    assert aws_calls.calls == {
        "dynamodb:Query": 3 + 4 + 1,  # the step by id, the convo's steps, its data sources, the broadcasts
        "dynamodb:BatchGetItem": 1,  # the connection's check
        "dynamodb:GetItem": 1,  # the convo
        "dynamodb:TransactWriteItems": 1,  # the step (and the convo's latestStep)
        # the delta's save (before its broadcast), the completed step, the convo's latestStep, the
        # token charge
        "dynamodb:UpdateItem": 4,
        "dynamodb:BatchWriteItem": 1,  # its words, for search
    }


def test_a_failed_search_index_leaves_the_answer_standing(nameless, sent, monkeypatch):
    monkeypatch.setattr(search, "index", raising(RuntimeError("DynamoDB is down")))
    with play(Script(["Answer"]), Script(["A name"])) as (_, model):
        job = nameless.job(nameless.step("Index me"), model)
        replies.answer(job)
    assert nameless.answer_of(job)["status"] == "completed"
    assert objects.get(nameless.convo)["name"] == "A name"


# -- usage and token charges (I10) -------------------------------------------------------------------------


def tokens_used(user_id: str) -> int:
    start = int(now().timestamp()) // quotas.DAY * quotas.DAY
    counter = counters.Counter(Ref("user", user_id), quotas.TOKENS, start)
    return counters.used([counter])[counter]


def test_the_providers_usage_is_stored_and_charged(scene, sent):
    usage = Usage(input_tokens=40, output_tokens=3)
    with play(Script(["Hi"], usage=usage)) as (_, model):
        job = scene.job(scene.step("Hello"), model)
        replies.answer(job)
        final = [p for _, kind, p in sent.messages if kind == "convoStepUpdate" and "delta" not in p][-1]
        assert final["usage"] == {"inputTokens": 40, "outputTokens": 3, "model": model}
        assert steps.get(job.llm_step_id)["usage"] == final["usage"]
        assert tokens_used(scene.user) == 43
        replies.answer(job)  # a duplicate: the answer exists, nothing more is charged
    assert tokens_used(scene.user) == 43


def test_without_counts_the_answer_is_charged_an_estimate_and_a_refusal_nothing(scene, sent):
    with play(Script(["x" * 400])) as (_, model):  # a provider that reports no usage
        replies.answer(scene.job(scene.step("Hello"), model))
    estimate = tokens_used(scene.user)
    assert estimate >= prompting.tokens("x" * 400) + prompting.tokens("Hello")
    with play(Script(["never"], fail_after=0)) as (_, model):  # refused before any text
        replies.answer(scene.job(scene.step("Again"), model))
    assert tokens_used(scene.user) == estimate


# -- stop -------------------------------------------------------------------------------------------------


@dataclass
class RunningCounts:
    """A provider that counts its tokens as it goes, as the embedded model does: each chunk is followed
    by the counts so far. `closed` is set when its stream is closed before the end."""

    chunks: list[str]
    delay: float
    closed: threading.Event = field(default_factory=threading.Event)

    def stream(self, messages: list[ChatMessage], generation: Any) -> Iterator[str | Usage]:
        try:
            for written, chunk in enumerate(self.chunks, start=1):
                time.sleep(self.delay)
                yield chunk
                yield Usage(30, written)
        except GeneratorExit:
            self.closed.set()
            raise


def _in_background(job: ReplyJob, **options: Any) -> threading.Thread:
    worker = threading.Thread(target=replies.answer, args=(job,), kwargs=options, daemon=True)
    worker.start()
    return worker


def _wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    limit = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < limit, "the condition never held"
        time.sleep(0.01)


def _stop_after_first_delta(sent: Sent, job: ReplyJob) -> None:
    _wait_for(lambda: bool(sent.deltas()))
    steps.request_stop(steps.get(job.llm_step_id))


def test_a_stop_ends_the_answer_stopped_keeping_its_text_and_closes_the_stream(scene, sent):
    provider = RunningCounts(["word "] * 200, delay=0.02)  # 4 s if nobody stops it
    with installed(provider) as model:
        job = scene.job(scene.step("Talk for long"), model)
        worker = _in_background(job)
        _stop_after_first_delta(sent, job)
        worker.join(10)
    assert not worker.is_alive()
    assert sent.types()[-2:] == ["convoStepUpdate", "convoStatus"]
    final, idle = sent.final(), sent.of("convoStatus")[-1]
    assert final["status"] == "stopped" and idle["status"] == "idle"
    text = final["content"]["text"]
    assert text.startswith("word ") and len(text) < 5 * 200
    assert final["seq"] == sent.deltas()[-1]["seq"] + 1
    # The provider counted what it generated; the stopped step keeps those counts, as a completed one.
    assert final["usage"]["model"] == model and final["usage"]["inputTokens"] == 30
    assert final["usage"]["outputTokens"] >= len(text) // 5
    stored = scene.answer_of(job)
    assert (stored["status"], stored["content"], stored["seq"], stored["usage"]) == (
        "stopped",
        final["content"],
        final["seq"],
        final["usage"],
    )
    assert provider.closed.wait(5)
    assert tokens_used(scene.user) == 30 + final["usage"]["outputTokens"]


def test_a_stop_is_seen_while_the_model_is_silent(scene, sent):
    """No text arrives after the first delta for 5 s: the answer still wakes up to save, sees the stop
    and ends with the text it had, not with what would come later."""
    with play(Script(["First", " later"], delay=[0.0, 5.0])) as (_, model):
        job = scene.job(scene.step("Think hard"), model)
        worker = _in_background(job)
        _stop_after_first_delta(sent, job)
        worker.join(10)
    assert sent.final()["status"] == "stopped"
    assert sent.final()["content"]["text"] == "First"
    assert "usage" not in sent.final()  # this provider reports counts only at the end of its stream
    assert tokens_used(scene.user) > 0  # charged an estimate, as a stream cut short


def test_a_stop_asked_as_the_text_ends_wins_over_the_completion(scene, sent, monkeypatch):
    original = steps.update

    def update(step, changes, **kwargs):
        if changes.get("status") == "completed":
            steps.request_stop(step)
        return original(step, changes, **kwargs)

    monkeypatch.setattr(steps, "update", update)
    with play(Script(["All of it"], usage=Usage(5, 3))) as (_, model):
        job = scene.job(scene.step("Short"), model)
        replies.answer(job)
    final = sent.final()
    assert (final["status"], final["content"]["text"], final["seq"]) == ("stopped", "All of it", 1)
    assert final["usage"] == {"inputTokens": 5, "outputTokens": 3, "model": model}
    assert scene.answer_of(job)["status"] == "stopped"


def test_deleting_the_step_is_not_a_stop(scene, sent):
    with play(Script.saying("z" * 100, delay=0.02)) as (_, model):
        job = scene.job(scene.step("Delete me midway"), model)
        worker = _in_background(job)
        _wait_for(lambda: bool(sent.deltas()))
        steps.delete(steps.get(job.llm_step_id))
        worker.join(10)
    assert not [p for p in sent.of("convoStepUpdate") if "delta" not in p]
    assert sent.types()[-1] == "convoStatus"
    assert steps.get(job.llm_step_id) is None


def test_a_redelivered_job_never_resumes_a_stopped_answer(scene, sent):
    with play(Script.saying("y" * 100, delay=0.02)) as (llm, model):
        job = scene.job(scene.step("Stop then redeliver"), model)
        worker = _in_background(job)
        _stop_after_first_delta(sent, job)
        worker.join(10)
        stopped, count = scene.answer_of(job), len(sent.messages)
        replies.answer(job)  # SQS delivers the same job again
        replies.answer(job.model_copy(update={"job_id": str(uuid4())}))  # or a second job for the step
    assert len(llm.calls) == 1 and len(sent.messages) == count
    assert scene.answer_of(job) == stopped


def _left_running(scene: Scene, job: ReplyJob, question: dict[str, Any], *, stop: bool) -> dict[str, Any]:
    """The step a crashed attempt left: running, with some text saved (and a stop asked for)."""
    at = now_iso()
    step = steps.add(
        Step(
            id=job.llm_step_id,
            convoId=scene.convo.id,
            authorType="llm",
            status="running",
            content={"text": "half an ans"},
            config={"model": job.config["model"]},
            seq=3,
            replyToStepId=question["id"],
            createdAt=at,
            updatedAt=at,
        ).record()
    )
    return steps.request_stop(step) if stop else step


def test_a_job_for_a_step_stopped_while_no_attempt_wrote_it_ends_it_without_generating(scene, sent, llm):
    scripted, model = llm
    question = scene.step("Crashed, then stopped")
    job = scene.job(question, model)
    _left_running(scene, job, question, stop=True)
    replies.answer(job)
    assert scripted.calls == []
    assert sent.types() == ["convoStepUpdate", "convoStatus"]
    assert sent.final() == {
        "id": job.llm_step_id,
        "content": {"text": "half an ans"},
        "status": "stopped",
        "seq": 4,
    }
    assert scene.answer_of(job)["status"] == "stopped"
    replies.answer(job)  # and once more: nothing
    assert len(sent.messages) == 2 and scripted.calls == []


def test_a_stop_asked_just_before_a_crashed_answer_starts_over_wins(scene, sent, llm, monkeypatch):
    """The job read the step running without a mark; the mark came before the step was reset: the
    reset's condition fails and the step ends stopped instead of starting over."""
    scripted, model = llm
    question = scene.step("Race")
    job = scene.job(question, model)
    stale = _left_running(scene, job, question, stop=False)
    steps.request_stop(stale)
    monkeypatch.setattr(steps, "get", lambda step_id: stale if step_id == job.llm_step_id else None)
    replies.answer(job)
    assert scripted.calls == []
    assert sent.final()["status"] == "stopped" and sent.final()["content"]["text"] == "half an ans"
    assert steps.current(stale)["status"] == "stopped"


def test_a_stop_requested_of_an_answer_in_a_duplicate_attempt_is_ended_once(scene, sent):
    """Two attempts end a stop-requested step: only one final update goes out (the stopped save is
    conditional on the step still running)."""
    with play(Script.saying("q" * 100, delay=0.02)) as (_, model):
        job = scene.job(scene.step("Twice"), model)
        worker = _in_background(job)
        _stop_after_first_delta(sent, job)
        replies.answer(job.model_copy(update={"job_id": str(uuid4())}))  # a duplicate meets the mark
        worker.join(10)
    assert [p["status"] for p in sent.of("convoStepUpdate") if "delta" not in p] == ["stopped"]
    assert scene.answer_of(job)["status"] == "stopped"


# -- the listener -----------------------------------------------------------------------------------------


def test_the_listener_hears_every_broadcast_before_it_is_sent(scene, sent):
    heard: list[tuple[float, str, dict[str, Any]]] = []
    with play(Script(["Hel", "lo", "!"], delay=[0.0, 0.3, 0.3], usage=Usage(4, 3))) as (_, model):
        job = scene.job(scene.step("Hi"), model)
        replies.answer(job, listener=lambda kind, payload: heard.append((time.monotonic(), kind, payload)))
    assert [(k, p) for _, k, p in heard] == [(k, p) for _, k, p in sent.messages]
    assert all(h[0] <= s[0] for h, s in zip(heard, sent.messages, strict=True))
    assert [k for _, k, _ in heard][:3] == ["convoStatus", "convoNewStep", "convoStepUpdate"]


def test_a_failing_listener_does_not_fail_the_answer(scene, sent, llm):
    _, model = llm
    job = scene.job(scene.step("Hi"), model)
    replies.answer(job, listener=raising(RuntimeError("the client went away")))
    assert sent.final()["status"] == "completed"


def test_the_model_reads_a_stopped_answer_as_it_stands_but_not_a_failed_one():
    conversation = [
        {"authorType": "user", "content": {"text": "Tell me a story"}, "status": "completed"},
        {"authorType": "llm", "content": {"text": "Once upon"}, "status": "stopped"},
        {"authorType": "user", "content": {"text": "Go on"}, "status": "completed"},
        {"authorType": "llm", "content": {"text": "broken"}, "status": "failed"},
        {"authorType": "llm", "content": {"text": "half"}, "status": "running"},
        {"authorType": "user", "content": {"text": "And then?"}, "status": "completed"},
    ]
    assert prompting.history(conversation, 1000) == [
        ChatMessage("user", "Tell me a story"),
        ChatMessage("assistant", "Once upon"),
        ChatMessage("user", "Go on\n\nAnd then?"),
    ]
