"""Convo names: a nameless convo is named after its first answer (`kallo.services.replies`), with a
title of at most 8 words asked of the same model (the first words of the question when that fails),
then `convoUpdate` `{id, name, updatedAt}`. It comes after the answer's `idle`, so naming never delays
the answer; it never fails it either. `clean_name` also names convos from a person's words (the Dify
surface).

AWS calls: 1 UpdateItem (only while the convo is still nameless) and a broadcast.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Logger

from kallo.clock import now_iso
from kallo.errors import Conflict
from kallo.llm import ChatMessage, registry
from kallo.llm.streaming import collect
from kallo.services import convos
from kallo.services.announcing import Listener, announce
from kallo.services.prompting import Plan
from kallo.store import objects
from kallo.store.keys import Ref

logger = Logger(child=True)

NAMING_INSTRUCTION = (
    "Write a title for the conversation below: at most 8 words, no quotes. Answer with the title only."
)
MAX_NAME_WORDS = 8
NAME_LIMIT = 256
FALLBACK_NAME = "New convo"
NAMING_SECONDS = 20.0
NAMING_TOKENS = 24
# What the naming request shows of the exchange: enough for a title, little for a small context.
NAMING_EXCERPT = 600


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
            collect(
                lambda: provider.stream(messages, generation),
                seconds=NAMING_SECONDS,
                limit=400,
                model=plan.model,
            )
        )
    except Exception:
        logger.warning(
            "naming the convo failed: its first words name it", extra={"convoId": convo["id"]}, exc_info=True
        )
    name = name or clean_name(question) or FALLBACK_NAME
    changes = {"name": name, "updatedAt": now_iso()}
    try:
        objects.update_if_unset(Ref("convo", convo["id"]), changes, field="name")
    except Conflict:  # named (or deleted) meanwhile: a person's choice wins
        return
    except Exception:
        logger.warning("storing the convo's name failed", extra={"convoId": convo["id"]}, exc_info=True)
        return
    announce(convo["id"], "convoUpdate", {"id": convo["id"], **changes}, listener)
    convos.announce_renamed(convo["id"])
