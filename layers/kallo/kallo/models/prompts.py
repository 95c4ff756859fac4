"""Prompts (API.md, Schemas: prompt): the instructions a topic's LLM answers follow."""

from __future__ import annotations

from kallo.models.common import Text
from kallo.models.topics import NewObject, OwnedObject, Patch

PROMPT_TEXT_LIMIT = 32768
# Kept verbatim (whitespace can matter to a prompt), but never blank.
PromptText = Text(PROMPT_TEXT_LIMIT, min_length=1, pattern=r"\S")


class PromptCreate(NewObject):
    text: PromptText


class PromptUpdate(Patch):
    text: PromptText


class Prompt(OwnedObject):
    text: str
