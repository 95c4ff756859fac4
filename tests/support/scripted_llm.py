"""A scripted LLM provider for tests and benchmarks: fixed chunks, optional delays, optional failure.

    llm = ScriptedLLM(Script(["Hel", "lo"]), Script(["A title"]))  # 1st call: the answer; then: the name
    with installed(llm) as model:  # model == "scripted:test"
        replies.answer(job)  # a ReplyJob whose config names `model`
    llm.calls  # [(messages, generation), ...]

Each call of `stream` plays the next script; the last one is played again once they run out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kallo.llm import ChatMessage, Generation, ProviderError, Usage, registry

NAME = "scripted"


@dataclass(frozen=True)
class Script:
    chunks: list[str]
    # Seconds before each chunk: one for all, or one per chunk.
    delay: float | list[float] = 0.0
    fail_after: int | None = None  # raise `error` once this many chunks were yielded
    error: Exception = field(default_factory=lambda: ProviderError("the scripted model broke down"))
    usage: Usage | None = None  # yielded after the chunks, as providers report their token counts

    @classmethod
    def saying(cls, text: str, *, size: int = 1, **options: Any) -> Script:
        """`text` in chunks of `size` characters."""
        return cls([text[i : i + size] for i in range(0, len(text), size)], **options)


class ScriptedLLM:
    def __init__(self, *scripts: Script) -> None:
        self.scripts = list(scripts) or [Script(["Hello!"])]
        self.calls: list[tuple[list[ChatMessage], Generation]] = []
        self._lock = threading.Lock()

    def stream(self, messages: list[ChatMessage], generation: Generation) -> Iterator[str | Usage]:
        with self._lock:
            script = self.scripts[min(len(self.calls), len(self.scripts) - 1)]
            self.calls.append((messages, generation))
        for index, chunk in enumerate(script.chunks):
            if script.fail_after is not None and index >= script.fail_after:
                raise script.error
            pause = script.delay[index] if isinstance(script.delay, list) else script.delay
            if pause:
                time.sleep(pause)
            yield chunk
        if script.fail_after is not None and script.fail_after >= len(script.chunks):
            raise script.error
        if script.usage is not None:
            yield script.usage


@contextmanager
def installed(llm: ScriptedLLM, *, context_tokens: int = registry.DEFAULT_CONTEXT_TOKENS) -> Iterator[str]:
    """Serve `scripted:*` with `llm` while inside; yields a model name for it."""
    registry.register(NAME, llm, context_tokens=context_tokens)
    try:
        yield f"{NAME}:test"
    finally:
        registry.unregister(NAME)
