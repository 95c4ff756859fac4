"""Prompts (API.md, Schemas: prompt): the instructions a topic's LLM answers follow."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

from kallo.models.topics import NewObject, OwnedObject, Patch

PROMPT_TEXT_LIMIT = 32768
# Kept verbatim (whitespace can matter to a prompt), but never blank.
PromptText = Annotated[str, StringConstraints(min_length=1, max_length=PROMPT_TEXT_LIMIT, pattern=r"\S")]


class PromptCreate(NewObject):
    text: PromptText


class PromptUpdate(Patch):
    text: PromptText


class Prompt(OwnedObject):
    text: str
