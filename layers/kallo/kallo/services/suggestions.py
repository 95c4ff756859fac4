"""Follow-up suggestions: Get Step Suggestions (`GET /steps/{stepId}/suggestions`), and the
`suggested` questions of the compatibility surfaces (Dify's `/messages/{id}/suggested`, Gloo's
`suggestions`).

At most `MAX_SUGGESTIONS` short questions the user could ask next, for a completed answer (an `llm`
step): asked of the step's model once, synchronously by the first caller, and kept on the step
(`suggestions`), so every later caller reads them. Only one caller makes them: it takes a lease on
the step first (`suggestionsLeasedUntil`, a conditional write that expires after `LEASE_SECONDS`, so
a maker that crashed blocks no one for longer); a caller that finds the lease held gets None (REST:
202 `{retryAfter}`), or the suggestions if they were kept meanwhile.

What the model reads: a short instruction, then the question the step answers and the answer (each
cut to `EXCERPT_CHARS`); it may write for `GENERATION_SECONDS` and `SUGGESTION_TOKENS` tokens, and is
stopped once its complete lines hold three questions, or `CUT_MARGIN_SECONDS` before the time limit
(a slow model's complete lines are kept: the REST caller must have its answer within 29 s). Its text
is cleaned (`clean`: one question a line, numbering, bullets, quotes, headings and blank lines
removed, duplicates dropped, each at most `SUGGESTION_CHARS` characters, at most 3). Text with nothing
usable gives an empty list, kept like any other. A model that fails or times out gives an empty list
too, not kept (the lease is released, so a later request asks again).

Who may: `can_view` on the step's convo (as `kallo.services.feedback.answer` checks: a hidden convo
is a missing step, 404; a user step is 422 `not_an_answer`); a running, failed or stopped answer is
409 `not_completed`. I10 (cost): the model is the step's own when it is still allowed (else the
default model), `maxTokens` is capped for it, a caller whose day's token budget (or the team's, for a
convo of a team's topic) is used up gets 429 `quota_exceeded` before the model is asked, and the
tokens spent (the provider's counts, else an estimate) are charged to the caller and that team.

Costs in AWS calls (a convo its user holds directly; a topic-owned convo adds a Query to the check):
- suggestions kept: Query (the step, GSI1) + the check (Query + BatchGetItem) = 3;
- made by this caller: + BatchGetItem (token budgets) + UpdateItem (the lease) + Query (the
  question) + UpdateItem (the charge; TransactWriteItems when a team pays too) + UpdateItem (kept) = 8;
- being made by another caller: 3 + BatchGetItem + UpdateItem (the lease, refused) + GetItem = 6.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

from aws_lambda_powertools import Logger

from kallo import metrics, quotas
from kallo.authz.access import Access
from kallo.authz.policy import ObjectType
from kallo.clock import epoch_seconds, iso, now
from kallo.errors import Conflict, NotFound
from kallo.llm import ChatMessage, Usage, registry
from kallo.llm.streaming import collect
from kallo.services.feedback import answer
from kallo.services.prompting import CHARS_PER_TOKEN, TURN_TOKENS
from kallo.settings import get_settings
from kallo.store import steps
from kallo.store import suggestions as store
from kallo.store.keys import Ref

logger = Logger(child=True)

MAX_SUGGESTIONS = 3
SUGGESTION_CHARS = 200
SUGGESTION_TOKENS = 96
# API Gateway answers a REST request within 29 s: the model gets 20 of them.
GENERATION_SECONDS = 20.0
# A model still writing this long before the time limit is stopped, and its complete lines kept.
CUT_MARGIN_SECONDS = 2.0
# Longer than any maker may run, so a lease outlives only a maker that crashed.
LEASE_SECONDS = 30
RETRY_AFTER_SECONDS = 5
EXCERPT_CHARS = 1000
RAW_LIMIT = 4000
KEPT, LEASE = store.KEPT, store.LEASE

INSTRUCTION = (
    "Suggest three short follow-up questions the user could ask next about the exchange below. Write "
    "each question on its own line, with no numbering and nothing else."
)
_MARKER = re.compile(r"^(?:[-*•+]+|\(?\d{1,2}[.):]|\(?[a-cA-C][.)])[*_]*(?:\s+|$)")
# A line repeating the exchange the model was shown ("Answer: ...") is not a suggestion.
_ECHO = re.compile(r"^answer\s*:", re.IGNORECASE)
_LABEL = re.compile(r"^(?:follow-up\s+)?question(?:\s*\d+)?\s*:\s*", re.IGNORECASE)
# Quotes of every kind (and markdown emphasis) around a question.
_QUOTES = "\"'`\u201c\u201d\u2018\u2019\u201e\u00ab\u00bb*_"


def retry_after() -> str:
    """When a caller who found the suggestions being made should ask again (RFC 3339)."""
    return iso(now() + timedelta(seconds=RETRY_AFTER_SECONDS))


def suggestions_for(access: Access, step_id: str) -> list[str] | None:
    """The follow-up questions of a completed answer, made now if nobody has yet; None while another
    caller makes them. See the module docstring."""
    step = answer(access, step_id)
    if step.get("status") != "completed":
        raise Conflict(
            f"suggestions follow a completed answer; this one is {step.get('status')}", code="not_completed"
        )
    if KEPT in step:
        return step[KEPT]
    user_id = access.principal.user_id or ""
    team_id = quotas.team_paying_for(access, Ref(ObjectType.convo.value, step["convoId"]))
    quotas.require_token_budget(user_id, team_id)
    moment = epoch_seconds(now())
    try:
        store.lease(step, moment + LEASE_SECONDS, now=moment)
    except Conflict:
        stored = steps.current(step)
        if stored is None:
            raise NotFound(f"step {step_id} not found") from None
        return stored.get(KEPT)
    try:
        made, spent = _make(step)
    except Exception:
        logger.warning("the model gave no suggestions", extra={"stepId": step_id}, exc_info=True)
        _release(step, moment + LEASE_SECONDS)
        return []
    try:
        quotas.charge_tokens(user_id, team_id, spent)
    except Exception:
        logger.exception("charging the suggestions' tokens failed", extra={"stepId": step_id})
    try:
        store.keep(step, made)
    except Conflict:  # the step was deleted meanwhile: nothing to keep them on
        logger.info("step gone before its suggestions were kept", extra={"stepId": step_id})
    return made


def _release(step: dict[str, Any], until: int) -> None:
    """Give the lease back (only while it is still this caller's), so the next request asks again."""
    with contextlib.suppress(Conflict):  # taken over, or the step is gone
        store.release(step, until)


def _text(step: dict[str, Any] | None) -> str:
    return " ".join(((step or {}).get("content") or {}).get("text", "").split())


def _model(step: dict[str, Any]) -> str:
    """I10: the step's model while the stack still allows it, else the default model."""
    model = (step.get("config") or {}).get("model") or ""
    return model if model and registry.is_allowed(model) else get_settings().default_model


def _make(step: dict[str, Any]) -> tuple[list[str], int]:
    """Ask the model; the cleaned suggestions and the tokens spent."""
    question = steps.get(step["replyToStepId"]) if step.get("replyToStepId") else None
    exchange = f"Question: {_text(question)[:EXCERPT_CHARS]}\n\nAnswer: {_text(step)[:EXCERPT_CHARS]}"
    messages = [ChatMessage("system", INSTRUCTION), ChatMessage("user", exchange)]
    model = _model(step)
    provider, generation = registry.provider_for(model)
    generation = replace(generation, temperature=0.3, max_tokens=registry.capped(model, SUGGESTION_TOKENS))
    reported: list[Usage] = []
    cut = [False]
    soft_deadline = time.monotonic() + GENERATION_SECONDS - CUT_MARGIN_SECONDS

    def stream() -> Iterator[str | Usage]:
        text = ""
        # Closed when this generator ends, so the provider lets go of its connection (or lock) at once.
        with contextlib.closing(provider.stream(messages, generation)) as chunks:
            for chunk in chunks:
                if isinstance(chunk, Usage):
                    reported.append(chunk)
                    yield chunk
                    continue
                text += chunk
                yield chunk
                # Three complete questions are enough; a slow model keeps what it wrote in time.
                if "\n" in chunk and len(clean(text.rpartition("\n")[0])) >= MAX_SUGGESTIONS:
                    return
                if time.monotonic() >= soft_deadline:
                    cut[0] = True
                    return

    raw = collect(stream, seconds=GENERATION_SECONDS, limit=RAW_LIMIT)
    if cut[0]:
        raw = raw.rpartition("\n")[0]  # the last line was cut short
    if reported:
        spent = reported[-1].total
        metrics.tokens(model, reported[-1].input_tokens, reported[-1].output_tokens)
    else:  # the provider did not count: our estimate of what was read and written
        read = sum(math.ceil(len(m.content) / CHARS_PER_TOKEN) + TURN_TOKENS for m in messages)
        spent = read + math.ceil(len(raw) / CHARS_PER_TOKEN)
    return clean(raw), spent


def clean(raw: str) -> list[str]:
    """Questions from a model's text: one a line, without numbering, bullets, quotes or a `Question:`
    label; blank lines, headings ("Here are three questions:") and echoes of the answer dropped, and
    only the lines ending in "?" when some do; no duplicates; each at most `SUGGESTION_CHARS`
    characters (printable ones only), at most `MAX_SUGGESTIONS`."""
    lines: list[str] = []
    for line in raw.splitlines():
        text, before = " ".join(line.split()), None
        while text != before:  # "**1.** Question 2: ..." takes a few rounds
            before = text
            text = _LABEL.sub("", _MARKER.sub("", text.strip(_QUOTES + " "))).strip(_QUOTES + " ")
        text = "".join(c for c in text if c.isprintable())
        if not text or text.endswith(":") or _ECHO.match(text):
            continue
        lines.append(text)
    # Questions when there are any (a small model may also restate the answer).
    questions = [line for line in lines if line.endswith("?")] or lines
    found: list[str] = []
    for text in questions:
        text = text[:SUGGESTION_CHARS].rstrip()
        if text.casefold() not in {f.casefold() for f in found}:
            found.append(text)
        if len(found) == MAX_SUGGESTIONS:
            break
    return found
