"""LLM providers behind one small streaming interface, chosen by a model name `<provider>:<model id>`
(e.g. `bedrock:amazon.nova-lite-v1:0`, `openai:gpt-4o-mini`, `embedded:smollm2`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Generation:
    """What to generate with: the model id within its provider, and sampling settings."""

    model: str
    temperature: float | None = None
    max_tokens: int | None = None


class ProviderError(Exception):
    """A failure worth showing to people (the step fails with this message)."""


class Provider(Protocol):
    def stream(self, messages: list[ChatMessage], generation: Generation) -> Iterator[str]:
        """Yield the answer's text as it is generated, in pieces of any size."""
        ...
