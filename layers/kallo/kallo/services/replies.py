"""LLM answers to user steps: what the LLM step worker (`workers.llm_step`) does with each `ReplyJob`.

The flow of one answer, every message sent with `kallo.realtime.broadcast` (API.md, "WebSocket"):
1. `convoStatus` `{convoId, status: "running", stepId}`;
2. the LLM step is stored (`authorType: "llm"`, `status: "running"`, empty text, `seq: 0`,
   `replyToStepId`) and sent as `convoNewStep`;
3. `convoStepUpdate` `{id, delta, seq}` as the text arrives, `seq` 1, 2, 3...: the first delta goes out
   as soon as there is text, later ones are coalesced (one message per 250 ms at most, or as soon as 200
   characters wait). The text so far (exactly deltas 1..`seq`) and its `seq` are saved every half
   second (`Pacing.save_interval`), so a client that reconnects reads the step over REST and applies
   only the deltas with a higher `seq`; when no delta went out since the last save, the save only
   touches the step (`seq`, `updatedAt`), so that it still checks for a stop (below);
4. `convoStepUpdate` `{id, content, status: "completed", seq, usage?}` (the next `seq`; a grounded
   answer adds its `annotations`, also stored on the step), or when a stop was requested
   `{id, content (the text so far), status: "stopped", seq, usage?}`, or on any failure
   `{id, content (the text so far), status: "failed", error: {code, message}, seq}`. I7: the error is
   only ever a code and a message of ours (`model_error` "the model could not answer",
   `model_not_allowed`, `answer_timeout`, `nothing_to_answer`, `invalid_config`, `internal_error`),
   never a provider's URL, upstream body or exception text: those go to the log;
5. `convoStatus` `{convoId, status: "idle"}`;
6. the completed answer is indexed for Query Steps (`kallo.store.search.index`);
7. a convo that has no name yet gets one: a title of at most 8 words asked of the same model (the
   first words of the question when that fails), then `convoUpdate` `{id, name, updatedAt}`. This comes
   after `idle`, so naming never delays the answer; it never fails it either.

What the model reads: a system prompt (a short default instruction, followed by the prompt of the topic
that owns the convo, if it has one, its `{{variables}}` filled from the convo's `inputs` when it has
them, `kallo.services.prompt_variables`, and by excerpts of the user's documents, if any: see Grounding),
then the convo's primary steps, oldest first, up to and including the step being answered; failed,
unfinished and empty steps are left out (a stopped answer is read as it stands), user steps are `user` turns, LLM steps `assistant` turns
(consecutive turns of one role are merged, and leading assistant turns dropped, as Bedrock requires).
The history is trimmed from the oldest turn to a token budget, estimated at 4 characters per token:
the model's context (`registry.context_tokens`: 2048 for the embedded model, 32k otherwise) less the
answer's `maxTokens` (at most half the context) and the system prompt (excerpts included). The step
being answered is always kept; if it alone exceeds the budget, its middle is cut out.

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
sources) + 1 TransactWriteItems (the step) + 2 UpdateItem (the final step, the convo's latestStep) + one
Query per broadcast (5) and `c` PostToConnection each, + 1 Query and 1 BatchGetItem the first time the
connections are checked (I8: at most once every few seconds, `kallo.realtime.audience`); a topic adds
1 GetItem (2 with a prompt) and 1 Query (its linked data sources); data sources named by the config
add their checks (1 Query each + 1 BatchGetItem per reader); linked or named data sources add 1
BatchGetItem, and 1 GetObject per
index a warm worker has not read yet (an embedding model adds its call); every further save (one per
half second of generation) adds 2 UpdateItem, or 1 when no new text went out since the last one; a
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
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from kallo import metrics, quotas, realtime
from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.clock import iso, now, now_iso
from kallo.documents.bm25 import Hit
from kallo.errors import Conflict
from kallo.jobs import ReplyJob
from kallo.llm import ChatMessage, ProviderError, Usage, registry
from kallo.models.steps import STEP_TEXT_LIMIT, Step, StepConfig
from kallo.services import convos, grounding, prompt_variables
from kallo.settings import get_settings
from kallo.store import keys, objects, search, steps
from kallo.store.keys import Ref
from kallo.store.table import table

logger = Logger(child=True)

DEFAULT_INSTRUCTION = (
    "You are Kallo, a helpful assistant. Answer the user's latest message accurately and concisely, "
    "in the language it is written in."
)
GROUNDING_INSTRUCTION = (
    "Use these excerpts from the user's documents when they help; cite them as [1], [2]; say so if they "
    "do not contain the answer."
)
NAMING_INSTRUCTION = (
    "Write a title for the conversation below: at most 8 words, no quotes. Answer with the title only."
)
INTERNAL_CODE = "internal_error"
CHARS_PER_TOKEN = 4
# What a chat template adds around each turn (role markers, separators), in tokens.
TURN_TOKENS = 4
DEFAULT_MAX_TOKENS = 2048
# The step being answered keeps at least this much of its text, whatever the budget says.
MIN_QUESTION_TOKENS = 256
HISTORY_PAGE = 200
TEXT_LIMIT_BYTES = STEP_TEXT_LIMIT
MAX_NAME_WORDS = 8
NAME_LIMIT = 256
FALLBACK_NAME = "New convo"
NAMING_SECONDS = 20.0
NAMING_TOKENS = 24
# What the naming request shows of the exchange: enough for a title, little for a small context.
NAMING_EXCERPT = 600
# Excerpts of the user's documents take at most this share of the model's context, in at most this many.
EXCERPT_SHARE = 0.3
EXCERPTS = 4
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


Listener = Callable[[str, dict[str, Any]], None]
COMPLETED, FAILED, STOPPED = "completed", "failed", "stopped"
# The steps the model reads: a stopped answer's text was seen by the people in the convo, as it is.
READABLE = frozenset({COMPLETED, STOPPED})
# After a stop, how long the provider's stream may take to end (and report its token counts).
STOP_DRAIN_SECONDS = 0.05


# -- what the model reads --------------------------------------------------------------------------------


def tokens(text: str) -> int:
    """The estimated token count of one turn."""
    return math.ceil(len(text) / CHARS_PER_TOKEN) + TURN_TOKENS


def _cut_middle(text: str, budget_tokens: int) -> str:
    """The start and the end of a text too long for the budget (a question often follows what it is
    about, or comes before it)."""
    keep = max(0, budget_tokens - TURN_TOKENS) * CHARS_PER_TOKEN
    if len(text) <= keep:
        return text
    marker = "\n[...]\n"
    half = max(0, keep - len(marker)) // 2
    return text[:half] + marker + text[len(text) - half :]


def _text(step: dict[str, Any]) -> str:
    return (step.get("content") or {}).get("text", "")


def history(conversation: list[dict[str, Any]], budget_tokens: int) -> list[ChatMessage]:
    """The turns of a conversation (oldest first, the step being answered last) that fit the budget."""
    *earlier, question = conversation
    if not _text(question).strip():
        message = "there is nothing to answer: the step has no text"
        raise ProviderError(message, code="nothing_to_answer", public=message)
    budget = max(budget_tokens, MIN_QUESTION_TOKENS)
    kept = [ChatMessage("user", _cut_middle(_text(question), budget))]
    used = tokens(kept[0].content)
    for step in reversed(earlier):
        if step.get("status", "completed") not in READABLE or not _text(step).strip():
            continue  # a failed or unfinished answer, a step with only files
        used += tokens(_text(step))
        if used > budget_tokens:
            break
        kept.append(ChatMessage("user" if step.get("authorType") == "user" else "assistant", _text(step)))
    # Oldest first; consecutive turns of one role merged, and the first turn a user's, as Bedrock
    # requires (and as chat templates expect).
    merged: list[ChatMessage] = []
    for turn in reversed(kept):
        if merged and merged[-1].role == turn.role:
            merged[-1] = replace(turn, content=f"{merged[-1].content}\n\n{turn.content}")
        elif merged or turn.role == "user":
            merged.append(turn)
    return merged


@dataclass(frozen=True)
class Plan:
    """Everything an answer is generated from, read before the step is written."""

    model: str
    config: dict[str, Any]
    system: str
    conversation: list[dict[str, Any]]
    # The passages in the system prompt, numbered from 1 in this order; none: an ungrounded answer.
    hits: tuple[Hit, ...] = ()

    def messages(self, max_tokens: int) -> list[ChatMessage]:
        context = registry.context_tokens(self.model)
        budget = context - min(max_tokens, context // 2) - tokens(self.system)
        return [ChatMessage("system", self.system), *history(self.conversation, budget)]

    def open(self) -> Iterator[str]:
        """Start generating (everything that can fail here fails the step, not the job). I10: the model
        is checked against the allow-list and `maxTokens` clamped to its cap again, here."""
        try:
            config = StepConfig.model_validate(self.config)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            message = f"the step config is not valid: {problems}"
            raise ProviderError(message, code="invalid_config", public=message) from error
        if not registry.is_allowed(self.model):
            raise ProviderError(
                f"model {self.model!r} is not on the allow-list",
                code="model_not_allowed",
                public="the step's model is not allowed on this deployment",
            )
        provider, generation = registry.provider_for(self.model)
        context = registry.context_tokens(self.model)
        max_tokens = registry.capped(self.model, config.max_tokens or min(DEFAULT_MAX_TOKENS, context // 2))
        generation = replace(generation, temperature=config.temperature, max_tokens=max_tokens)
        return provider.stream(self.messages(max_tokens), generation)


def _system_prompt(topic: dict[str, Any] | None, convo: dict[str, Any]) -> str:
    """The default instruction, then the topic's prompt with its variables filled from the convo's
    `inputs`, if it has any (`kallo.services.prompt_variables`)."""
    prompt_id = (topic or {}).get("promptId")
    prompt = objects.get(Ref("prompt", prompt_id)) if prompt_id else None
    text = prompt_variables.fill((prompt or {}).get("text", ""), convo.get("inputs")).strip()
    return f"{DEFAULT_INSTRUCTION}\n\n{text}" if text else DEFAULT_INSTRUCTION


def _reader(user_id: str) -> Access:
    """A user's own access as it is now, user-wide: a token's scope bounded what its writer could name
    when the config was written (`kallo.services.step_configs`); here the question is what the user may
    still view."""
    return Access(Principal(user_id=user_id, scheme="api_key"))


def readers(job: ReplyJob, question: dict[str, Any]) -> list[Access]:
    """I6 (grounding): whose access bounds the data sources a config names: the question's author, and
    the job's requester when that is someone else (a regen): every one of them must be able to view a
    data source now for the answer to use it."""
    user_ids = dict.fromkeys(i for i in (question.get("authorId"), job.requested_by) if i)
    return [_reader(user_id) for user_id in user_ids]


def _grounding(
    job: ReplyJob,
    convo: dict[str, Any],
    topic: dict[str, Any] | None,
    config: dict[str, Any],
    question: dict[str, Any],
) -> tuple[list[Hit], str, list[str]]:
    """The passages to ground the answer on, their excerpts for the system prompt, and the named data
    sources that passed the check (I6, see the module docstring); none when retrieval fails (an
    ungrounded answer beats no answer)."""
    if job.only_data_source_ids == []:  # narrowed to nothing: an ungrounded answer, nothing to read
        return [], "", []
    try:
        named = grounding.named_sources(config, readers(job, question))
        sources = grounding.sources_for(convo, topic, named)
        if job.only_data_source_ids is not None:  # narrowed by the request (Gloo's publishers, intent 0)
            sources = [s for s in sources if s["id"] in job.only_data_source_ids]
        if not sources:
            return [], "", named
        budget = int(registry.context_tokens(config["model"]) * EXCERPT_SHARE)
        hits = grounding.retrieve(sources, _text(question), k=EXCERPTS, budget_tokens=budget)
    except Exception:
        logger.exception("retrieval failed: the answer is not grounded", extra={"convoId": job.convo_id})
        return [], "", []
    return hits, grounding.excerpts(hits, sources) if hits else "", named


def _conversation(job: ReplyJob) -> list[dict[str, Any]] | None:
    """The convo's primary steps, oldest first, up to and including the step being answered (whether
    or not it is primary); None when that step no longer exists."""
    found: list[dict[str, Any]] = []
    start = None
    while True:
        page = steps.of_convo(job.convo_id, limit=HISTORY_PAGE, start_key=start)
        for step in page.items:
            if step["id"] == job.reply_to_step_id:
                found.append(step)
                return found
            if not step.get("isAlternate") and step["id"] != job.llm_step_id:
                found.append(step)
        start = page.last_key
        if not start:
            return None


def _plan(job: ReplyJob, convo: dict[str, Any]) -> Plan | None:
    topic = objects.get(Ref("topic", convo["topicId"])) if convo.get("topicId") else None
    defaults = ((topic or {}).get("config") or {}).get("defaults") or {}
    # The answer's config says how it was made; `reply` asked for it and means nothing on the answer.
    config = {k: v for k, v in {**defaults, **job.config}.items() if k != "reply" and v is not None}
    config["model"] = config.get("model") or get_settings().default_model
    conversation = _conversation(job)
    if conversation is None:
        return None
    hits, excerpts, named = _grounding(job, convo, topic, config, conversation[-1])
    # The answer's config (which a regen reuses) keeps only the data sources that passed the check.
    config.pop("dataSourceIds", None)
    if named:
        config["dataSourceIds"] = named
    system = _system_prompt(topic, convo)
    if excerpts:
        system = f"{system}\n\n{GROUNDING_INSTRUCTION}\n\n{excerpts}"
    return Plan(config["model"], config, system, conversation, tuple(hits))


# -- generating -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Failure:
    error: BaseException


_END = object()


class _Producer:
    """Runs a provider's stream on its own thread, so that pending text is flushed on time whatever
    the provider's pace (a slow token does not hold back the ones before it), and so that a deadline
    can end an answer whose provider has gone quiet."""

    def __init__(self, open_stream: Callable[[], Iterator[str | Usage]]) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._stopped = threading.Event()
        # The provider's token counts, set before the end of the stream is queued (so whoever has
        # taken `_END` sees it).
        self.usage: Usage | None = None
        threading.Thread(target=self._run, args=(open_stream,), name="llm-stream", daemon=True).start()

    def _run(self, open_stream: Callable[[], Iterator[str | Usage]]) -> None:
        chunks: Iterator[str | Usage] | None = None
        try:
            chunks = open_stream()
            for chunk in chunks:
                if isinstance(chunk, Usage):
                    self.usage = chunk
                    continue
                if self._stopped.is_set():
                    break
                if chunk:
                    self._queue.put(chunk)
        except BaseException as error:  # the consumer decides what it means
            self._queue.put(_Failure(error))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:  # lets a provider release its connection or lock at once
                try:
                    close()
                except Exception:
                    logger.warning("closing an LLM stream failed", exc_info=True)
            self._queue.put(_END)

    def take(self, timeout: float | None) -> tuple[list[str], object | None]:
        """The chunks that arrive within `timeout` seconds (None: wait for one), with all those already
        waiting behind the first; and `_END` or a `_Failure` when the stream ended after them."""
        chunks: list[str] = []
        try:
            item = self._queue.get(timeout=None if timeout is None else max(0.0, timeout))
            while isinstance(item, str):
                chunks.append(item)
                item = self._queue.get_nowait()
        except queue.Empty:
            return chunks, None
        return chunks, item

    def stop(self) -> None:
        self._stopped.set()

    def drain(self, seconds: float) -> None:
        """After `stop`: wait at most `seconds` for the stream to end, dropping what it still sends, so
        that token counts reported on the way out (`usage`) are in."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                if self._queue.get(timeout=remaining) is _END:
                    return
            except queue.Empty:
                return


def collect(open_stream: Callable[[], Iterator[str | Usage]], *, seconds: float, limit: int) -> str:
    """A whole (short) generation, at most `limit` characters, within `seconds`."""
    producer, text, deadline = _Producer(open_stream), "", time.monotonic() + seconds
    try:
        while len(text) < limit:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no complete answer within {seconds:g} s")
            chunks, end = producer.take(remaining)
            text += "".join(chunks)
            if isinstance(end, _Failure):
                raise end.error
            if end is _END:
                break
    finally:
        producer.stop()
    return text[:limit]


def _announce(
    convo_id: str, message_type: str, payload: dict[str, Any], listener: Listener | None = None
) -> None:
    """Broadcast without ever failing the answer: a lost message shows as a `seq` gap or a stale
    status, which a client repairs by reading the convo over REST, while raising would throw the answer
    away (the post to each connection is already best-effort in `realtime`). The `listener` of an
    answer run in process hears the message first, as it is broadcast."""
    if listener is not None:
        try:
            listener(message_type, payload)
        except Exception:
            logger.warning("an answer's listener failed", extra={"type": message_type}, exc_info=True)
    try:
        realtime.broadcast(convo_id, message_type, payload)
    except Exception:
        logger.warning("broadcast failed", extra={"convoId": convo_id, "type": message_type}, exc_info=True)


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
    ) -> None:
        self.step = step
        self.convo_id = convo_id
        self.hits = hits
        self.listener = listener
        self.text = ""
        self.size = 0  # of the text as JSON-escaped UTF-8 bytes
        self.full = False
        self.pending: list[str] = []
        self.pending_chars = 0
        self.seq = 0
        self.sent_chars = 0  # of `text`, in deltas 1..seq
        self.saved_seq = 0
        self.last_flush = -math.inf  # the first delta goes out at once
        self.last_save = time.monotonic()
        self.usage: Usage | None = None  # the counts the step ended with (charged as stored)
        self.first_delta_at: float | None = None  # time.time() of delta 1 (`FirstDeltaLatency`)

    def _announce(self, message_type: str, payload: dict[str, Any]) -> None:
        _announce(self.convo_id, message_type, payload, self.listener)

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
        self.seq += 1
        delta = "".join(self.pending)
        self.pending, self.pending_chars, self.last_flush = [], 0, moment
        self.sent_chars = len(self.text)
        self._announce("convoStepUpdate", {"id": self.step["id"], "delta": delta, "seq": self.seq})
        if self.first_delta_at is None:
            self.first_delta_at = time.time()

    def _progress(self, moment: float) -> None:
        """Save the text so far, or when nothing new was sent since the last save, only mark the step
        as alive (the same condition, so a stop is seen; the convo's `latestStep` is left alone)."""
        if self.seq != self.saved_seq:
            # The text of deltas 1..seq exactly: a client resumes from this seq without a gap.
            self._save_running({"content": {"text": self.text[: self.sent_chars]}, "seq": self.seq})
        else:
            self._save_running({"seq": self.seq}, latest=False)
        self.saved_seq, self.last_save = self.seq, moment

    def generate(self, producer: _Producer, deadline: float | None) -> None:
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
                if isinstance(end, _Failure):
                    raise end.error
                if end is _END:
                    return
                moment = time.monotonic()
                if self.pending and (
                    self.pending_chars >= pacing.flush_chars
                    or moment - self.last_flush >= pacing.flush_interval
                ):
                    self._flush(moment)
        finally:
            producer.stop()

    def execute(self, producer: _Producer, deadline: float | None) -> str:
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
            return grounding.citations(list(self.hits), self.text)
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
    run.text, run.seq = _text(step), int(step.get("seq") or 0)
    try:
        run.stop()
    except _StepGone:  # another attempt ended it, or it was deleted
        return
    _announce(job.convo_id, "convoStatus", {"convoId": job.convo_id, "status": "idle"}, listener)


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
    plan = _plan(job, convo) if convo is not None else None
    if plan is None:  # nobody is waiting for this answer any more; retrying cannot change that
        logger.info("convo or step to answer is gone: job dropped", extra=context)
        return

    _announce(
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
        _announce(job.convo_id, "convoStatus", {"convoId": job.convo_id, "status": "idle"}, listener)
        raise

    producer = _Producer(plan.open)  # the model starts while the new step is announced
    _announce(job.convo_id, "convoNewStep", step, listener)
    run = _Run(step, job.convo_id, plan.hits, listener)
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
    _announce(job.convo_id, "convoStatus", {"convoId": job.convo_id, "status": "idle"}, listener)
    if outcome not in (COMPLETED, STOPPED):
        return
    try:
        search.index(run.step)
    except Exception:
        # The answer stands (a retry would find it ended and skip it): say so loudly instead.
        logger.exception("indexing the answer for search failed", extra=context)
    if not convo.get("name"):
        name_convo(convo, plan, run.text, listener)


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
        spent = tokens(plan.system) + sum(tokens(_text(s)) for s in plan.conversation) + tokens(text)
    try:
        quotas.charge_tokens(job.requested_by, job.team_id, spent)
    except Exception:
        logger.exception("charging the answer's tokens failed", extra={"convoId": job.convo_id})


# -- naming -----------------------------------------------------------------------------------------------


# Double quotes and markdown emphasis go wherever they are; single quotes only around the name, as
# they are apostrophes inside it.
_NOISE = re.compile(r"[\"“”„«»`*#]")
_LABEL = re.compile(r"^(title|name)\s*:\s*", re.IGNORECASE)


def clean_name(raw: str) -> str:
    """A convo name from a model's (or a person's) words: the first line, without quotes, a `Title:`
    label or markdown, at most 8 words."""
    line = next((line for line in raw.splitlines() if line.strip()), "")
    line = _LABEL.sub("", _NOISE.sub("", line).strip())
    words = line.split()[:MAX_NAME_WORDS]
    return " ".join(words).strip(" .,;:-_'\u2018\u2019")[:NAME_LIMIT]


def _question(plan: Plan) -> str:
    return " ".join((plan.conversation[-1].get("content") or {}).get("text", "").split())


def name_convo(convo: dict[str, Any], plan: Plan, answer_text: str, listener: Listener | None = None) -> None:
    """Give a nameless convo a name from its first exchange (only while it is still nameless)."""
    question = _question(plan)
    exchange = f"Question: {question[:NAMING_EXCERPT]}\n\nAnswer: {answer_text[:NAMING_EXCERPT]}"
    messages = [ChatMessage("system", NAMING_INSTRUCTION), ChatMessage("user", exchange)]
    name = ""
    try:
        provider, generation = registry.provider_for(plan.model)
        generation = replace(generation, temperature=0.2, max_tokens=NAMING_TOKENS)
        name = clean_name(
            collect(lambda: provider.stream(messages, generation), seconds=NAMING_SECONDS, limit=400)
        )
    except Exception:
        logger.warning(
            "naming the convo failed: its first words name it", extra={"convoId": convo["id"]}, exc_info=True
        )
    name = name or clean_name(question) or FALLBACK_NAME
    changes = {"name": name, "updatedAt": now_iso()}
    try:
        table().update(keys.object_key(Ref("convo", convo["id"])), changes, expect=(("name",), ""))
    except Conflict:  # named (or deleted) meanwhile: a person's choice wins
        return
    except Exception:
        logger.warning("storing the convo's name failed", extra={"convoId": convo["id"]}, exc_info=True)
        return
    _announce(convo["id"], "convoUpdate", {"id": convo["id"], **changes}, listener)
    convos.announce_renamed(convo["id"])
