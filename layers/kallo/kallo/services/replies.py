"""LLM answers to user steps: what the LLM step worker (`workers.llm_step`) does with each `ReplyJob`.

The flow of one answer, every message sent with `kallo.realtime.broadcast` (API.md, "WebSocket"):
1. `convoStatus` `{convoId, status: "running", stepId}`;
2. the LLM step is stored (`authorType: "llm"`, `status: "running"`, empty text, `seq: 0`,
   `replyToStepId`) and sent as `convoNewStep`;
3. `convoStepUpdate` `{id, delta, seq}` as the text arrives, `seq` 1, 2, 3...: the first delta goes out
   as soon as there is text, later ones are coalesced (one message per 250 ms at most, or as soon as 200
   characters wait). Each delta's text is saved BEFORE it is broadcast: the step's `content` and `seq`
   (exactly deltas 1..`seq`) never lag what was sent, so a client that reads the step (convoSync's
   snapshot, or REST) and applies only the deltas with a higher `seq` has no gap. The convo's
   `latestStep` follows every half second (`Pacing.save_interval`). When no delta went out for half a
   second, a save only touches the step (`seq`, `updatedAt`), so that it still checks for a stop
   (below);
4. `convoStepUpdate` `{id, content, status: "completed", seq, usage?}` (the next `seq`; a grounded
   answer adds its `annotations`, also stored on the step), or when a stop was requested
   `{id, content (the text so far), status: "stopped", seq, usage?}`, or on any failure
   `{id, content (the text so far), status: "failed", error: {code, message}, seq}`. I7: the error is
   only ever a code and a message of ours (`model_error` "the model could not answer",
   `model_not_allowed`, `answer_timeout`, `nothing_to_answer`, `invalid_config`, `internal_error`),
   never a provider's URL, upstream body or exception text: those go to the log;
5. `convoStatus` `{convoId, status: "idle"}`;
6. the completed answer is indexed for Query Steps (`kallo.store.search.index`);
7. a convo that has no name yet gets one (`kallo.services.naming`): a title of at most 8 words asked of
   the same model (the first words of the question when that fails), then `convoUpdate`
   `{id, name, updatedAt}`. This comes after `idle`, so naming never delays the answer; it never fails
   it either.

What the model reads (`kallo.services.prompting`, the answer's `Plan`): a system prompt (the default
instruction, the topic's prompt with its variables filled, the excerpts of the user's documents, if
any: see Grounding), then the convo's readable primary steps up to the one being answered, trimmed to
the model's context. The provider's stream runs on a thread of its own (`kallo.llm.streaming`), and a
nameless convo is named after the answer (`kallo.services.naming`).

Grounding (`kallo.services.grounding`): before the step is written, the ready data sources linked to
the convo and to its topic, and those the step's config names that its readers may view, are searched
with the question. I6: the ids a config names (the step's `dataSourceIds`, the topic's
`config.defaults`, an LLM step's stored config that a regen reuses) are never trusted: they are checked
at the moment of the answer against the access of the question's author and, when someone else asked
(a regen), of that requester too: the stricter of the two, so a regen never grounds on what either
could not view. Unviewable ids are dropped silently, and the answer's stored config keeps only those
that passed. The best
passages (at most 4, within 30% of the model's context) go into the system prompt as numbered excerpts
the model is asked to cite as [1], [2]. A completed answer then stores `annotations`: citations of the
passages it used, each quoting a sentence with its offsets in the data source's text. Retrieval never
fails the answer: on any error it is logged and the answer is ungrounded. A job may narrow all this
(`ReplyJob.onlyDataSourceIds`, set by a surface that runs its answer itself): only those of the sources
above that it lists are used (none: an ungrounded answer); it never adds one.

The step config is the owning topic's `config.defaults` overlaid by the job's; its model (else
`KALLO_DEFAULT_MODEL`) is stored on the LLM step. I10 (cost): a model off the stack's allow-list fails
the step (`model_not_allowed`), and `maxTokens` is clamped to the model's cap (`kallo.llm.registry`),
whatever the stored config says. Without `maxTokens`, an answer may take 2048 tokens (1024 on the
embedded model). An answer's text is cut at 64 KB (as JSON-escaped UTF-8), where generation stops and
the step completes: a whole step must fit in one WebSocket frame (128 KB).

Stop (`kallo.services.stops`): how the writer of an answer learns of it. Stop Step sets
`stopRequestedAt` on the step's item, on the condition that it is `running`. Every save of a running
answer (the progress saves above, and the one that completes it) is conditional on that attribute
being absent, and the generate loop wakes up for a save at least every `save_interval` (0.5 s) even
while the model is silent, so the stop is seen within about half a second, at no extra call per save.
Only when a save's condition fails is the step read again (a consistent GetItem), to tell a stop (the
step is still there, `running`, with the mark) from a deletion (Delete Step or a deleted convo, which
is not a stop: the answer ends quietly, as before). On a stop the provider's stream is closed (it is
given `STOP_DRAIN_SECONDS` to end, so that counts a provider reports on the way are in: the embedded
model counts its tokens as it goes; Bedrock's `metadata` event and an OpenAI-compatible server's
`usage` chunk come only at a stream's end, so an answer they were still writing has no `usage` and is
charged our estimate), and the step ends `stopped` with all the text it had, on the condition that it
is still `running` (only one attempt ends it). The same holds for an answer made in process
(`kallo.services.answering`): it saves the same way. A stop that comes as the text ends wins over the
completion (the step ends `stopped` with its whole text): the request was accepted with a 202.

Idempotency: the answer is the step `job.llm_step_id`. When it exists and is completed, failed or
stopped, the job was done already (a duplicate delivery) and nothing happens. When it exists and is
running with a stop requested, the attempt that wrote it is gone: it is not started over but ended
`stopped` with the text saved last (a final `convoStepUpdate` and `idle`; nothing is generated or
charged). When it exists and is running, an earlier attempt crashed: it starts over, text reset, from
`seq` 0 again, on the condition that no stop was requested meanwhile (else it is ended as stopped).
Errors while reading or storing the step propagate, so the job is retried; once the step exists,
every error ends it as failed (a provider error is a final answer, not retried), unless even that
cannot be stored.

AWS calls for a short answer (one delta message, a convo with a name, not owned by a topic, `c`
connections): 1 GetItem (the convo) + 3 Query (the step by id, the convo's steps, its linked data
sources) + 1 TransactWriteItems (the step) + 3 UpdateItem (the delta's save, the final step, the
convo's latestStep) + one
Query per broadcast (5; the deltas of a longer answer Query about once a second, reusing the list in
between, `kallo.realtime`) and `c` PostToConnection each, + 1 Query and 1 BatchGetItem the first time the
connections are checked (I8: at most once every few seconds, `kallo.realtime.audience`); a topic adds
1 GetItem (2 with a prompt) and 1 Query (its linked data sources); data sources named by the config
add their checks (1 Query each + 1 BatchGetItem per reader); linked or named data sources add 1
BatchGetItem, and 1 GetObject per
index a warm worker has not read yet (an embedding model adds its call); every further delta adds 1
UpdateItem (its save) and the convo's `latestStep` 1 more at most every half second (so a steady
stream, 4 deltas a second, costs 6 UpdateItem a second), and half a second without a delta 1
UpdateItem (the stop check; 2 when the `latestStep` lagged); a
stop adds 1 GetItem (the re-read after the failed condition) and ends with 1 UpdateItem (the stopped
step) + the broadcasts, and no convo `latestStep` update; indexing the answer (completed or stopped)
for search adds 1 BatchWriteItem per 25 distinct words (at most 4); naming adds 1 UpdateItem and a
broadcast. Charging the answer's tokens (I10) adds 1 UpdateItem, or 1
TransactWriteItems when a team pays too.

Usage: each provider reports its own token counts (`kallo.llm.Usage`); the completed (or stopped) step
stores them as `usage {inputTokens, outputTokens, model}`, the final `convoStepUpdate` carries them, and
they are charged to the requester's and the team's daily budgets (`kallo.quotas`).

Listener: `answer(job, listener=...)` calls `listener(type, payload)` with every message the answer
broadcasts, just before it is broadcast (an error in the listener is logged, never fails the answer):
how `kallo.services.answering.run` streams an answer made in process.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from kallo import metrics, quotas
from kallo.clock import iso, now, now_iso
from kallo.documents.bm25 import Hit
from kallo.errors import Conflict
from kallo.jobs import ReplyJob
from kallo.llm import ProviderError, Usage
from kallo.llm.streaming import END, Failure, Producer
from kallo.models.steps import STEP_TEXT_LIMIT, Step
from kallo.services import grounding, naming, prompting
from kallo.services.announcing import Listener, announce
from kallo.services.prompting import COMPLETED, FAILED, STOPPED, Plan, text_of, tokens
from kallo.store import objects, search, steps
from kallo.store.keys import Ref

logger = Logger(child=True)

INTERNAL_CODE = "internal_error"
TEXT_LIMIT_BYTES = STEP_TEXT_LIMIT
TOO_LONG = "the answer was cut short: it took longer than the worker may run"
INTERNAL = "the answer could not be generated because of an internal error"


@dataclass(frozen=True)
class Pacing:
    """How deltas are coalesced and how often progress is saved (seconds, characters)."""

    flush_interval: float = 0.25
    flush_chars: int = 200
    # Also how soon a stop is seen: every save asks whether one was requested.
    save_interval: float = 0.5


pacing = Pacing()


class _StepGone(Exception):
    """The LLM step was deleted while it was being written (Delete Step, a deleted convo), or another
    attempt ended it."""


class _StopRequested(Exception):
    """Stop Step marked the LLM step (`stopRequestedAt`) while it was being written."""


# After a stop, how long the provider's stream may take to end (and report its token counts).
STOP_DRAIN_SECONDS = 0.05


# -- generating -------------------------------------------------------------------------------------------


def shown(error: BaseException) -> dict[str, str]:
    """What a failed step says, `{code, message}`: never a provider's URL, upstream body or exception
    text (I7); those are logged."""
    if isinstance(error, ProviderError):
        logger.warning("the model could not answer", extra={"detail": str(error), "code": error.code})
        return error.shown()
    logger.exception("the answer failed", exc_info=error)
    return {"code": INTERNAL_CODE, "message": INTERNAL}


def _json_bytes(text: str) -> int:
    """The size of `text` inside a message's JSON (quotes, newlines and control characters are
    escaped, so it may be larger than the text): what the frame limit counts."""
    return len(json.dumps(text, ensure_ascii=False).encode()) - 2


class _Run:
    """The LLM step while it is written: text, coalesced deltas, saved progress, and its end."""

    def __init__(
        self,
        step: dict[str, Any],
        convo_id: str,
        hits: tuple[Hit, ...] = (),
        listener: Listener | None = None,
        source_names: dict[str, str] | None = None,
    ) -> None:
        self.step = step
        self.convo_id = convo_id
        self.hits = hits
        self.source_names = source_names or {}
        self.listener = listener
        self.text = ""
        self.size = 0  # of the text as JSON-escaped UTF-8 bytes
        self.full = False
        self.pending: list[str] = []
        self.pending_chars = 0
        self.seq = 0
        self.saved_seq = 0
        self.latest_seq = 0  # the seq the convo's `latestStep` shows
        self.last_flush = -math.inf  # the first delta goes out at once
        self.last_save = self.last_latest = time.monotonic()
        self.usage: Usage | None = None  # the counts the step ended with (charged as stored)
        self.first_delta_at: float | None = None  # time.time() of delta 1 (`FirstDeltaLatency`)

    def _announce(self, message_type: str, payload: dict[str, Any], *, delta: bool = False) -> None:
        announce(self.convo_id, message_type, payload, self.listener, delta=delta)

    def _save(
        self,
        changes: dict[str, Any],
        *,
        expect: tuple[str, Any] | None = None,
        latest: bool = True,
    ) -> dict[str, Any]:
        try:
            return steps.update(self.step, changes, expect=expect, latest=latest)
        except Conflict as error:  # the step is gone, or the expectation failed
            raise _StepGone from error

    def _save_running(self, changes: dict[str, Any], *, latest: bool = True) -> dict[str, Any]:
        """Save while no stop is requested: the condition costs no extra call; only when it fails is
        the step read again, to tell a stop (`_StopRequested`) from a deletion (`_StepGone`)."""
        try:
            return self._save(changes, expect=("stopRequestedAt", None), latest=latest)
        except _StepGone:
            found = steps.current(self.step)
            if found is not None and found.get("status") == "running" and found.get("stopRequestedAt"):
                raise _StopRequested from None
            raise

    def _add(self, chunk: str) -> None:
        size = _json_bytes(chunk)
        if self.size + size > TEXT_LIMIT_BYTES:
            # Cut at a character boundary, then stop: nothing more would be kept.
            room, kept = TEXT_LIMIT_BYTES - self.size, []
            for character in chunk:
                room -= _json_bytes(character)
                if room < 0:
                    break
                kept.append(character)
            chunk = "".join(kept)
            size = _json_bytes(chunk)
            self.full = True
            logger.warning("answer cut at the step text limit", extra={"stepId": self.step["id"]})
        self.text += chunk
        self.size += size
        self.pending.append(chunk)
        self.pending_chars += len(chunk)

    def _wait(self, moment: float) -> float:
        """How long to wait for more text: until the next flush of pending text, and at most until the
        next save is due (a save is also the check for a stop, so it comes even when no text does)."""
        wait = max(0.0, self.last_save + pacing.save_interval - moment)
        if self.pending:
            wait = min(wait, max(0.0, self.last_flush + pacing.flush_interval - moment))
        return wait

    def _flush(self, moment: float) -> None:
        """Save the text through the next `seq`, then broadcast that delta: whoever reads the step
        (convoSync's snapshot, REST) never sees less than was broadcast, so a client that applies the
        deltas after the snapshot's `seq` has no gap. The save is the stop check too (its condition);
        the convo's `latestStep` follows at most once per `save_interval`."""
        seq = self.seq + 1
        delta = "".join(self.pending)
        latest = moment - self.last_latest >= pacing.save_interval
        self._save_running({"content": {"text": self.text}, "seq": seq}, latest=latest)
        self.seq, self.saved_seq, self.last_save = seq, seq, moment
        if latest:
            self.latest_seq, self.last_latest = seq, moment
        self.pending, self.pending_chars, self.last_flush = [], 0, moment
        self._announce(
            "convoStepUpdate", {"id": self.step["id"], "delta": delta, "seq": self.seq}, delta=True
        )
        if self.first_delta_at is None:
            self.first_delta_at = time.time()

    def _progress(self, moment: float) -> None:
        """No delta went out for a `save_interval`: mark the step as alive (the same condition, so a
        stop is seen), bringing the convo's `latestStep` up to the text saved last if it lags."""
        latest = self.latest_seq != self.saved_seq
        self._save_running({"seq": self.seq}, latest=latest)
        self.last_save = moment
        if latest:
            self.latest_seq, self.last_latest = self.seq, moment

    def generate(self, producer: Producer, deadline: float | None) -> None:
        """Consume the stream until it ends (the last pending text goes with the final update); raises
        `_StopRequested` when a save finds the step marked for a stop."""
        try:
            while not self.full:
                moment = time.monotonic()
                if moment - self.last_save >= pacing.save_interval:
                    self._progress(moment)
                wait = self._wait(moment)
                if deadline is not None:
                    if moment >= deadline:
                        raise ProviderError(TOO_LONG, code="answer_timeout", public=TOO_LONG)
                    wait = min(wait, deadline - moment)
                chunks, end = producer.take(wait)
                for chunk in chunks:
                    if not self.full:
                        self._add(chunk)
                if isinstance(end, Failure):
                    raise end.error
                if end is END:
                    return
                moment = time.monotonic()
                if self.pending and (
                    self.pending_chars >= pacing.flush_chars
                    or moment - self.last_flush >= pacing.flush_interval
                ):
                    self._flush(moment)
        finally:
            producer.stop()

    def execute(self, producer: Producer, deadline: float | None) -> str:
        """Generate, then complete the step, stop it or fail it; returns which. Raises `_StepGone`, and
        whatever prevents storing the end (the job is then retried, and starts the step over)."""
        try:
            self.generate(producer, deadline)
        except _StopRequested:
            producer.drain(STOP_DRAIN_SECONDS)
            return self.stop(producer.usage)
        except _StepGone:
            raise
        except Exception as error:
            self.fail(shown(error))
            return FAILED
        try:
            self.complete(producer.usage)
        except _StopRequested:  # asked for just as the text ended: it ends as asked, with all its text
            return self.stop(producer.usage)
        return COMPLETED

    def _citations(self) -> list[dict[str, Any]]:
        """What a grounded answer cites; none rather than a failed answer if that goes wrong."""
        try:
            return grounding.citations(list(self.hits), self.text, self.source_names)
        except Exception:
            logger.exception("citing the answer's sources failed", extra={"stepId": self.step["id"]})
            return []

    def _end(self, status: str, usage: Usage | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """The changes that end the step with `status`, and its final `convoStepUpdate`."""
        self.seq += 1
        self.usage = usage
        content = {"text": self.text}
        changes: dict[str, Any] = {"status": status, "content": content, "seq": self.seq}
        update: dict[str, Any] = {
            "id": self.step["id"],
            "content": content,
            "status": status,
            "seq": self.seq,
        }
        if usage is not None:  # API.md: the final convoStepUpdate carries the provider's counts
            model = (self.step.get("config") or {}).get("model", "")
            changes["usage"] = update["usage"] = usage.to_api(model)
        if self.hits:
            changes["annotations"] = update["annotations"] = self._citations()
        return changes, update

    def complete(self, usage: Usage | None = None) -> None:
        changes, update = self._end(COMPLETED, usage)
        try:
            self.step = self._save_running(changes)
        except _StopRequested:
            self.seq -= 1  # the stop's own end takes this seq
            raise
        self._announce("convoStepUpdate", update)

    def stop(self, usage: Usage | None = None) -> str:
        """End the step `stopped` with its text so far, once: only while it is still running (another
        attempt may have ended it: `_StepGone`)."""
        changes, update = self._end(STOPPED, usage)
        self.step = self._save(changes, expect=("status", "running"))
        self._announce("convoStepUpdate", update)
        return STOPPED

    def fail(self, error: dict[str, str]) -> None:
        self.seq += 1
        content = {"text": self.text}
        self._save({"status": "failed", "content": content, "error": error, "seq": self.seq})
        self._announce(
            "convoStepUpdate",
            {"id": self.step["id"], "content": content, "status": "failed", "error": error, "seq": self.seq},
        )


# -- the answer -------------------------------------------------------------------------------------------


def _created_at(job: ReplyJob, replied_to: dict[str, Any]) -> str:
    """The job's time (a regen keeps its place), else now, but always after the step it answers, so
    the answer sorts after its question even within one millisecond."""
    if job.created_at:
        return job.created_at
    after = datetime.fromisoformat(replied_to["createdAt"]) + timedelta(milliseconds=1)
    return iso(max(now(), after))


def _start(job: ReplyJob, existing: dict[str, Any] | None, plan: Plan) -> dict[str, Any]:
    """Store the running LLM step, or reset the one a crashed attempt left running (unless a stop was
    requested meanwhile: `Conflict`)."""
    if existing is not None:
        return steps.update(
            existing,
            {"status": "running", "content": {"text": ""}, "seq": 0, "config": plan.config},
            remove=("error",),
            expect=("stopRequestedAt", None),
        )
    step = Step(
        id=job.llm_step_id,
        convoId=job.convo_id,
        authorType="llm",
        status="running",
        content={"text": ""},
        config=plan.config,
        seq=0,
        replyToStepId=job.reply_to_step_id,
        createdAt=_created_at(job, plan.conversation[-1]),
        updatedAt=now_iso(),
    )
    return steps.add(step.record())


def _stop_left_running(job: ReplyJob, step: dict[str, Any], listener: Listener | None) -> None:
    """A job for a step that a stop was requested on while no attempt was writing it (the attempt
    crashed, or this is a redelivery): it is never started over, but ended `stopped` with the text
    saved last."""
    run = _Run(step, job.convo_id, listener=listener)
    run.text, run.seq = text_of(step), int(step.get("seq") or 0)
    try:
        run.stop()
    except _StepGone:  # another attempt ended it, or it was deleted
        return
    announce(job.convo_id, "convoStatus", {"convoId": job.convo_id, "status": "idle"}, listener)


def answer(
    job: ReplyJob,
    *,
    deadline: float | None = None,
    listener: Listener | None = None,
    queued_at: float | None = None,
) -> None:
    """Answer the job's step (see the module docstring). `deadline` (a `time.monotonic()` value) ends a
    generation still running then as failed, keeping the text so far. `listener(type, payload)` hears
    every message the answer broadcasts, as it is broadcast (`kallo.services.answering`). `queued_at`
    (a `time.time()` value: when the job was queued, else now) starts the answer's latencies."""
    started = queued_at if queued_at is not None else time.time()
    context = {"convoId": job.convo_id, "stepId": job.llm_step_id, "jobId": job.job_id}
    existing = steps.get(job.llm_step_id)
    if existing is not None and existing.get("status") != "running":
        logger.info("answer exists already: duplicate job ignored", extra=context)
        return
    if existing is not None and existing.get("stopRequestedAt"):
        logger.info("answer stopped while no attempt wrote it: ended, not started over", extra=context)
        _stop_left_running(job, existing, listener)
        return
    convo = objects.get(Ref("convo", job.convo_id))
    plan = prompting.plan(job, convo) if convo is not None else None
    if plan is None:  # nobody is waiting for this answer any more; retrying cannot change that
        logger.info("convo or step to answer is gone: job dropped", extra=context)
        return

    announce(
        job.convo_id,
        "convoStatus",
        {"convoId": job.convo_id, "status": "running", "stepId": job.llm_step_id},
        listener,
    )
    try:
        step = _start(job, existing, plan)
    except Conflict:
        # The convo was deleted meanwhile, another attempt stored the step first (it reports the
        # status from now on), or a stop was requested on the step this attempt was to start over.
        found = steps.current(existing) if existing is not None else None
        if found is not None and found.get("status") == "running" and found.get("stopRequestedAt"):
            _stop_left_running(job, found, listener)
            return
        logger.info("the answer step could not be stored: job dropped", extra=context)
        return
    except Exception:
        announce(job.convo_id, "convoStatus", {"convoId": job.convo_id, "status": "idle"}, listener)
        raise

    producer = Producer(plan.open)  # the model starts while the new step is announced
    announce(job.convo_id, "convoNewStep", step, listener)
    run = _Run(step, job.convo_id, plan.hits, listener, plan.source_names)
    try:
        outcome = run.execute(producer, deadline)
    except _StepGone:
        logger.info("the answer step was deleted (or ended elsewhere) while it was written", extra=context)
        outcome = None
    if outcome is not None:
        # The first text the user got: delta 1, or the final update when all of it came at once.
        ended = time.time()
        first_text_at = run.first_delta_at or (ended if run.text else None)
        first = None if first_text_at is None else (first_text_at - started) * 1000
        metrics.answer(outcome, first_delta_ms=first, completion_ms=(ended - started) * 1000)
    # A stopped stream's counts may still move on its thread: the step's own are charged.
    _charge(job, plan, run.text, run.usage if outcome in (COMPLETED, STOPPED) else producer.usage)
    announce(job.convo_id, "convoStatus", {"convoId": job.convo_id, "status": "idle"}, listener)
    if outcome not in (COMPLETED, STOPPED):
        return
    try:
        search.index(run.step)
    except Exception:
        # The answer stands (a retry would find it ended and skip it): say so loudly instead.
        logger.exception("indexing the answer for search failed", extra=context)
    if not convo.get("name"):
        naming.name_convo(convo, plan, run.text, listener)


def _charge(job: ReplyJob, plan: Plan, text: str, usage: Usage | None) -> None:
    """I10 (cost): the generation's tokens go to the requester's budget and the team's (`job.team_id`),
    as the provider counted them, once per generation (a duplicate job stops before generating). A
    stream that ended without counts (cut short, failed, stopped) is charged our estimate of what was
    read and written; one that wrote nothing and said nothing (a refused request) costs nothing. Never
    fails the answer."""
    if usage is not None:
        spent = usage.total
        metrics.tokens(plan.model, usage.input_tokens, usage.output_tokens)
    elif not text:
        return
    else:
        spent = tokens(plan.system) + sum(tokens(text_of(s)) for s in plan.conversation) + tokens(text)
    try:
        quotas.charge_tokens(job.requested_by, job.team_id, spent)
    except Exception:
        logger.exception("charging the answer's tokens failed", extra={"convoId": job.convo_id})
