"""Summaries of data sources: Generate Summary (`POST /data-sources/{dataSourceId}/summary`) asks for
one, the data source worker writes it, and the next request returns it.

The summary item (`kallo.store.summaries`, in the data source's partition, so deleting the data source
deletes it) holds `status` (`pending`, `ready`, `failed`), `requestedAt`, `content {text}`,
`annotations` (citations), `error`, `model`, `updatedAt`.

Request side (`request`): a ready summary is returned (200) and kept: it is not generated again on each
call. Otherwise exactly one job is made pending: the item is written `pending` with a condition (a
first request creates it; a failed one, or a pending one older than `PENDING_SECONDS`, whose job was
lost, is requested again only if no one else did meanwhile), and a `{"type": "summarize",
"dataSourceId"}` job is sent to the data source queue when the data source is ready; while it is still
processing, the upload's processing (`kallo.services.ingest`) sends the job once there is text. The
answer is 202 `{retryAfter}`. A data source that failed to process has no text to summarise: 409
`not_processable`.

Worker side (`summarize`): the data source's extracted text is summarised by the default model in one
request when it fits the model's context (`registry.context_tokens`; the embedded model reads 2048
tokens), else in at most `MAX_SECTIONS` sections whose summaries are then summarised. Each sentence of
the summary is then grounded: the BM25 passage of the data source that matches it best, and in that
passage the sentence sharing most terms with it (`kallo.documents.quotes`), become a citation
`{type: "citation", dataSourceId, text, start, end}` (offsets in the extracted text), at most
`MAX_CITATIONS`, none twice. I6 (grounding): a summary reads, and cites, only its own data source:
the one index it is given, never another. An LLM failure stores `failed` with `error {code, message}`
(I7: a code and a message of ours, e.g. `model_error` "the model could not answer", never a provider's
URL or upstream body, which go to the log); a later request asks again. A job whose summary is not pending (ready already: a duplicate delivery; gone: the data
source was deleted) does nothing.

AWS calls:
- Generate Summary: the check on the data source (1 Query + 1 BatchGetItem for an unlinked one) + 1
  Query (the data source and its summary) = 3 for a ready summary; a new request adds 1 UpdateItem (the
  requester's daily allowance of summaries, I10: past it 429 `quota_exceeded` with `Retry-After`), 1
  PutItem (or UpdateItem) and 1 SendMessage (none while the data source is processing).
- `summarize`: 2 GetItem (summary, data source) + 2 GetObject (text, index) + 1 UpdateItem (+ the
  embedding model's calls when one is configured).
"""

from __future__ import annotations

import itertools
import math
import re
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from kallo import jobs, quotas
from kallo.authz.access import Access
from kallo.authz.policy import ObjectType, Permission
from kallo.clock import iso, now, now_iso
from kallo.documents import bm25, embeddings, quotes
from kallo.documents.bm25 import Index
from kallo.errors import Conflict, NotFound
from kallo.llm import ChatMessage, ProviderError, registry
from kallo.llm.streaming import collect
from kallo.services.prompting import TURN_TOKENS
from kallo.settings import get_settings
from kallo.store import blobs, objects
from kallo.store import summaries as store
from kallo.store.keys import Ref

logger = Logger(child=True)

PENDING, READY, FAILED = "pending", "ready", "failed"
TIMEOUT_CODE = "summary_timeout"
INTERNAL_CODE = "internal_error"
# A pending request older than this lost its job (or its worker): the next request queues another.
PENDING_SECONDS = 600
# When a client should ask again: a short document's summary takes a few seconds.
RETRY_AFTER_SECONDS = 5
MAX_SECTIONS = 6
MAX_CITATIONS = 5
# Documents (numbers, names, markup left over from a PDF) take more tokens per character than chat.
CHARS_PER_TOKEN = 3
SUMMARY_TOKENS = 320
# A summary asks for five sentences; a model that writes more is cut here.
MAX_SUMMARY_SENTENCES = 8
SECTION_TOKENS = 160
# The worker may run 300 s: every generation of one summary must end well within that.
GENERATION_SECONDS = 240.0
INTERNAL = "the summary could not be generated because of an internal error"

SUMMARY_INSTRUCTION = (
    "Summarize the document below in at most five sentences: what it is about and its main points. "
    "Use only what the document says. Answer with the summary only."
)
SECTION_INSTRUCTION = (
    "Summarize this part of a longer document in two or three sentences: its main points only. "
    "Answer with the summary only."
)
COMBINE_INSTRUCTION = (
    "Below are summaries of the consecutive parts of one document. Write one summary of the whole "
    "document in at most five sentences. Answer with the summary only."
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"\w")


def schedule(data_source_id: str) -> None:
    """Queue the summary job of a data source."""
    jobs.send(jobs.SummaryJob(type=jobs.SUMMARIZE, dataSourceId=data_source_id))


# -- Generate Summary ----------------------------------------------------------------------------------


def request(access: Access, data_source_id: str) -> tuple[dict[str, Any], int]:
    """The data source's summary (200), or the promise of one (202 `{retryAfter}`); see the module
    docstring."""
    ref = Ref(ObjectType.data_source.value, data_source_id)
    access.require(ref, Permission.can_view)
    item, summary = store.with_data_source(data_source_id)
    if item is None:  # deleted since the check read its grants
        raise NotFound(f"data_source {data_source_id} not found")
    if summary is not None and summary.get("status") == READY:
        return {"content": summary["content"], "annotations": summary.get("annotations", [])}, 200
    if item.get("status") == FAILED:
        raise Conflict(
            "this data source could not be processed, so it has no text to summarise",
            code="not_processable",
        )
    moment = now()
    needed = _needs_request(summary, moment)
    if needed:
        # I10 (cost): a generation counts against the requester's daily allowance of summaries.
        quotas.count_summary(access.principal.user_id or "")
    requested = needed and _mark_pending(data_source_id, summary, moment)
    if requested and item.get("status") == READY:
        schedule(data_source_id)
    return {"retryAfter": iso(moment + timedelta(seconds=RETRY_AFTER_SECONDS))}, 202


def _needs_request(summary: dict[str, Any] | None, moment: datetime) -> bool:
    if summary is None or summary.get("status") != PENDING:
        return True
    requested = datetime.fromisoformat(summary["requestedAt"])
    return moment - requested > timedelta(seconds=PENDING_SECONDS)


def _mark_pending(data_source_id: str, summary: dict[str, Any] | None, moment: datetime) -> bool:
    """Make the summary pending unless another request did so first (then its job is the one)."""
    at = iso(moment)
    pending = {"status": PENDING, "requestedAt": at, "updatedAt": at}
    try:
        store.claim(data_source_id, pending, requested_at=None if summary is None else summary["requestedAt"])
    except Conflict:
        return False
    return True


# -- the worker's side ---------------------------------------------------------------------------------


def summarize(data_source_id: str, *, seconds: float = GENERATION_SECONDS) -> str | None:
    """Write the summary of a data source whose summary is pending; returns its status afterwards (None
    when there was nothing to do). `seconds` bounds the time spent generating."""
    context = {"dataSourceId": data_source_id}
    summary = store.get(data_source_id)
    if summary is None or summary.get("status") != PENDING:
        logger.info(
            "no pending summary: job ignored", extra={**context, "status": (summary or {}).get("status")}
        )
        return None
    item = objects.get(Ref(ObjectType.data_source.value, data_source_id), consistent=True)
    if item is None or item.get("status") != READY:
        # Deleted (its summary goes with it), or not processed yet: processing queues the job again.
        logger.info("data source not ready: summary job ignored", extra=context)
        return None
    text = blobs.get(blobs.key(item["location"], blobs.TEXT)).decode("utf-8")
    model = get_settings().default_model
    try:
        summary_text = generate(text, model, deadline=time.monotonic() + seconds)
    except Exception as error:
        return _store(data_source_id, {"status": FAILED, "error": _shown(error)})
    index = Index.from_bytes(blobs.get(blobs.key(item["location"], blobs.INDEX)))
    changes = {
        "status": READY,
        "content": {"text": summary_text},
        "annotations": citations(data_source_id, summary_text, index, name=item.get("name") or ""),
        "model": model,
    }
    return _store(data_source_id, changes, remove=("error",))


def _store(data_source_id: str, changes: dict[str, Any], *, remove: tuple[str, ...] = ()) -> str | None:
    try:
        store.update(data_source_id, {**changes, "updatedAt": now_iso()}, remove=remove)
    except Conflict:  # the data source (and its summary) was deleted meanwhile
        logger.info("summary gone while it was written", extra={"dataSourceId": data_source_id})
        return None
    return changes["status"]


def _shown(error: BaseException) -> dict[str, str]:
    """What a failed summary says, `{code, message}`: never a provider's URL, upstream body or
    exception text (I7); those are logged."""
    if isinstance(error, ProviderError):
        logger.warning("the model could not summarise", extra={"detail": str(error), "code": error.code})
        return error.shown()
    if isinstance(error, TimeoutError):
        logger.warning("the summary timed out", extra={"detail": str(error)})
        return {"code": TIMEOUT_CODE, "message": "the summary took longer than the worker may run"}
    logger.exception("the summary failed", exc_info=error)
    return {"code": INTERNAL_CODE, "message": INTERNAL}


# -- generating ----------------------------------------------------------------------------------------


def _budget_chars(model: str, instruction: str, answer_tokens: int) -> int:
    """How much document text one request may carry: the context less the answer and the instruction."""
    context = registry.context_tokens(model)
    instruction_tokens = math.ceil(len(instruction) / CHARS_PER_TOKEN) + 2 * TURN_TOKENS
    return max(1, context - answer_tokens - instruction_tokens) * CHARS_PER_TOKEN


def sections(text: str, budget_chars: int) -> list[str]:
    """The text in at most `MAX_SECTIONS` consecutive parts of about equal length, cut at spaces and to
    the budget (a text longer than six budgets is summarised from the start of each part: the parts
    still span the whole document)."""
    # A cut moves back to a space at most a tenth of a part: parts of 0.9 budget then always fit.
    count = min(MAX_SECTIONS, math.ceil(len(text) / (budget_chars * 0.9)))
    size = math.ceil(len(text) / count)
    bounds = [0]
    for n in range(1, count):
        space = text.rfind(" ", max(bounds[-1] + 1, n * size - size // 10), n * size)
        bounds.append(space if space > 0 else n * size)
    bounds.append(len(text))
    parts = [text[start:end][:budget_chars].strip() for start, end in itertools.pairwise(bounds)]
    return [part for part in parts if part]


def _ask(model: str, instruction: str, content: str, max_tokens: int, deadline: float) -> str:
    provider, generation = registry.provider_for(model)
    generation = replace(generation, temperature=0.2, max_tokens=max_tokens)
    messages = [ChatMessage("system", instruction), ChatMessage("user", content)]
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("the summary took longer than the worker may run")
    text = collect(
        lambda: provider.stream(messages, generation), seconds=remaining, limit=max_tokens * 8, model=model
    )
    text = tidy(text)
    if not text:
        raise ProviderError("the model returned no summary", public="the model returned no summary")
    return text


_PART_LABEL = re.compile(r"^\s*(part|section)\s*\d+\s*:\s*", re.IGNORECASE | re.MULTILINE)


def tidy(summary: str) -> str:
    """A model's summary without the part labels it may echo and without repeated sentences (small
    models loop): each sentence once, in order, at most `MAX_SUMMARY_SENTENCES`."""
    kept: list[str] = []
    seen: set[str] = set()
    for sentence in summary_sentences(_PART_LABEL.sub("", summary)):
        normal = " ".join(sentence.lower().split())
        if normal not in seen:
            seen.add(normal)
            kept.append(sentence)
    return " ".join(kept[:MAX_SUMMARY_SENTENCES])


def generate(text: str, model: str, *, deadline: float) -> str:
    """The summary of a text by `model`, in one request when the text fits its context, else by
    sections (see the module docstring)."""
    if not text.strip():
        message = "the data source has no text to summarise"
        raise ProviderError(message, code="nothing_to_summarise", public=message)
    whole = _budget_chars(model, SUMMARY_INSTRUCTION, SUMMARY_TOKENS)
    if len(text) <= whole:
        return _ask(model, SUMMARY_INSTRUCTION, text, SUMMARY_TOKENS, deadline)
    part_budget = _budget_chars(model, SECTION_INSTRUCTION, SECTION_TOKENS)
    partial = [
        _ask(model, SECTION_INSTRUCTION, part, SECTION_TOKENS, deadline)
        for part in sections(text, part_budget)
    ]
    joined = "\n\n".join(f"Part {n}: {summary}" for n, summary in enumerate(partial, 1))
    return _ask(
        model,
        COMBINE_INSTRUCTION,
        joined[: _budget_chars(model, COMBINE_INSTRUCTION, SUMMARY_TOKENS)],
        SUMMARY_TOKENS,
        deadline,
    )


# -- grounding -----------------------------------------------------------------------------------------


def summary_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if _WORD.search(s)]


def citations(
    data_source_id: str, summary_text: str, index: Index, *, name: str = ""
) -> list[dict[str, Any]]:
    """For each sentence of a summary, the source sentence that supports it best (see the module
    docstring); `name`, the data source's display name, is carried as `dataSourceName`."""
    sentences = summary_sentences(summary_text)
    vectors = embeddings.embed(sentences) if sentences else None
    found: list[dict[str, Any]] = []
    seen: set[tuple[int, int]] = set()
    for n, sentence in enumerate(sentences):
        hits = bm25.search(
            {data_source_id: index}, sentence, k=1, query_vector=vectors[n] if vectors else None
        )
        if not hits:
            continue
        quote = quotes.best_sentence(hits[0].passage, sentence)
        if (quote.start, quote.end) in seen:
            continue
        seen.add((quote.start, quote.end))
        found.append(
            {
                "type": "citation",
                "dataSourceId": data_source_id,
                **({"dataSourceName": name} if name else {}),
                "text": quote.text,
                "start": quote.start,
                "end": quote.end,
            }
        )
        if len(found) == MAX_CITATIONS:
            break
    return found
