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


MODEL_ERROR = "model_error"
MODEL_ERROR_MESSAGE = "the model could not answer"


@dataclass(frozen=True)
class Usage:
    """The provider's own count of the tokens one generation read and wrote. A provider yields it
    after the text, when it knows it (Bedrock: the closing `metadata` event; OpenAI-compatible: the
    last chunk, asked for with `stream_options.include_usage`), or its running count after every token
    when it counts itself (the embedded model): the last one yielded stands for the generation. Token
    budgets are charged with it (I10). A stream stopped before its end has counts only from a provider
    that yields them on the way."""

    input_tokens: int
    output_tokens: int

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_api(self, model: str) -> dict[str, int | str]:
        """`usage {inputTokens, outputTokens, model}` as steps and `convoStepUpdate` carry it."""
        return {"inputTokens": self.input_tokens, "outputTokens": self.output_tokens, "model": model}


class ProviderError(Exception):
    """A model could not answer. `str(error)` is the detail for the log: it may hold a provider's URL,
    status or upstream body. What people see (a failed step's or summary's `error`) is only `code` and
    `public`: generic unless the raiser says its text is our own and safe (I7: step errors reveal no
    internal URL or upstream body)."""

    def __init__(self, detail: str, *, code: str = MODEL_ERROR, public: str = MODEL_ERROR_MESSAGE) -> None:
        super().__init__(detail)
        self.code = code
        self.public = public

    def shown(self) -> dict[str, str]:
        """The `{code, message}` a failed step or summary stores and broadcasts."""
        return {"code": self.code, "message": self.public}


class Provider(Protocol):
    def stream(self, messages: list[ChatMessage], generation: Generation) -> Iterator[str | Usage]:
        """Yield the answer's text as it is generated, in pieces of any size, then its `Usage` when
        the provider reports one."""
        ...
