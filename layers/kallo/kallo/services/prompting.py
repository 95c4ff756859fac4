"""What the model reads for an answer (`kallo.services.replies`): the plan of one answer, made before its
step is written.

A system prompt (a short default instruction, followed by the prompt of the topic that owns the convo,
if it has one, its `{{variables}}` filled from the convo's `inputs` when it has them,
`kallo.services.prompt_variables`, and by excerpts of the user's documents, if any), then the convo's
primary steps, oldest first, up to and including the step being answered; failed, unfinished and empty
steps are left out (a stopped answer is read as it stands), user steps are `user` turns, LLM steps
`assistant` turns (consecutive turns of one role are merged, and leading assistant turns dropped, as
Bedrock requires). The history is trimmed from the oldest turn to a token budget, estimated at 4
characters per token: the model's context less the answer's `maxTokens` (at most half the context) and
the system prompt (excerpts included). The step being answered is always kept; if it alone exceeds the
budget, its middle is cut out.

Grounding and its checks (I6), the step config and its clamps (I10): see `kallo.services.replies`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.documents.bm25 import Hit
from kallo.jobs import ReplyJob
from kallo.llm import ChatMessage, ProviderError, registry
from kallo.models.steps import StepConfig
from kallo.services import grounding, prompt_variables
from kallo.settings import get_settings
from kallo.store import objects, steps
from kallo.store.keys import Ref

logger = Logger(child=True)

DEFAULT_INSTRUCTION = (
    "You are Kallo, a helpful assistant. Answer the user's latest message accurately and concisely, "
    "in the language it is written in."
)
GROUNDING_INSTRUCTION = (
    "Use these excerpts from the user's documents when they help; cite them as [1], [2]; say so if they "
    "do not contain the answer."
)
CHARS_PER_TOKEN = 4
# What a chat template adds around each turn (role markers, separators), in tokens.
TURN_TOKENS = 4
DEFAULT_MAX_TOKENS = 2048
# The step being answered keeps at least this much of its text, whatever the budget says.
MIN_QUESTION_TOKENS = 256
HISTORY_PAGE = 200
# Excerpts of the user's documents take at most this share of the model's context, in at most this many.
EXCERPT_SHARE = 0.3
EXCERPTS = 4
COMPLETED, FAILED, STOPPED = "completed", "failed", "stopped"
# The steps the model reads: a stopped answer's text was seen by the people in the convo, as it is.
READABLE = frozenset({COMPLETED, STOPPED})


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


def text_of(step: dict[str, Any]) -> str:
    return (step.get("content") or {}).get("text", "")


def history(conversation: list[dict[str, Any]], budget_tokens: int) -> list[ChatMessage]:
    """The turns of a conversation (oldest first, the step being answered last) that fit the budget."""
    *earlier, question = conversation
    if not text_of(question).strip():
        message = "there is nothing to answer: the step has no text"
        raise ProviderError(message, code="nothing_to_answer", public=message)
    budget = max(budget_tokens, MIN_QUESTION_TOKENS)
    kept = [ChatMessage("user", _cut_middle(text_of(question), budget))]
    used = tokens(kept[0].content)
    for step in reversed(earlier):
        if step.get("status", "completed") not in READABLE or not text_of(step).strip():
            continue  # a failed or unfinished answer, a step with only files
        used += tokens(text_of(step))
        if used > budget_tokens:
            break
        kept.append(ChatMessage("user" if step.get("authorType") == "user" else "assistant", text_of(step)))
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
    # The display names of the sources the hits come from (their citations carry them).
    source_names: dict[str, str] = field(default_factory=dict)

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
) -> tuple[list[Hit], str, list[str], dict[str, str]]:
    """The passages to ground the answer on, their excerpts for the system prompt, the named data
    sources that passed the check (I6, see the module docstring) and the display names of the sources
    used; none when retrieval fails (an ungrounded answer beats no answer)."""
    if job.only_data_source_ids == []:  # narrowed to nothing: an ungrounded answer, nothing to read
        return [], "", [], {}
    try:
        named = grounding.named_sources(config, readers(job, question))
        sources = grounding.sources_for(convo, topic, named)
        if job.only_data_source_ids is not None:  # narrowed by the request (Gloo's publishers, intent 0)
            sources = [s for s in sources if s["id"] in job.only_data_source_ids]
        if not sources:
            return [], "", named, {}
        budget = int(registry.context_tokens(config["model"]) * EXCERPT_SHARE)
        hits = grounding.retrieve(sources, text_of(question), k=EXCERPTS, budget_tokens=budget)
    except Exception:
        logger.exception("retrieval failed: the answer is not grounded", extra={"convoId": job.convo_id})
        return [], "", [], {}
    names = {s["id"]: s.get("name") or "" for s in sources}
    return hits, grounding.excerpts(hits, sources) if hits else "", named, names


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


def plan(job: ReplyJob, convo: dict[str, Any]) -> Plan | None:
    topic = objects.get(Ref("topic", convo["topicId"])) if convo.get("topicId") else None
    defaults = ((topic or {}).get("config") or {}).get("defaults") or {}
    # The answer's config says how it was made; `reply` asked for it and means nothing on the answer.
    config = {k: v for k, v in {**defaults, **job.config}.items() if k != "reply" and v is not None}
    config["model"] = config.get("model") or get_settings().default_model
    conversation = _conversation(job)
    if conversation is None:
        return None
    hits, excerpts, named, names = _grounding(job, convo, topic, config, conversation[-1])
    # The answer's config (which a regen reuses) keeps only the data sources that passed the check.
    config.pop("dataSourceIds", None)
    if named:
        config["dataSourceIds"] = named
    system = _system_prompt(topic, convo)
    if excerpts:
        system = f"{system}\n\n{GROUNDING_INSTRUCTION}\n\n{excerpts}"
    return Plan(config["model"], config, system, conversation, tuple(hits), names)
