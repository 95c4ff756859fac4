"""A provider's stream on a thread of its own: what an answer (`kallo.services.replies`), a convo's
name (`kallo.services.naming`), a summary and suggestions read a model's text through.

`Producer` runs the stream so that pending text is flushed on time whatever the provider's pace, and a
deadline can end a generation whose provider has gone quiet; `collect` reads a whole short generation
within a time limit.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from aws_lambda_powertools import Logger

from kallo.llm import Usage

logger = Logger(child=True)


@dataclass(frozen=True)
class Failure:
    error: BaseException


END = object()


class Producer:
    """Runs a provider's stream on its own thread, so that pending text is flushed on time whatever
    the provider's pace (a slow token does not hold back the ones before it), and so that a deadline
    can end an answer whose provider has gone quiet."""

    def __init__(self, open_stream: Callable[[], Iterator[str | Usage]]) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._stopped = threading.Event()
        # The provider's token counts, set before the end of the stream is queued (so whoever has
        # taken `END` sees it).
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
            self._queue.put(Failure(error))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:  # lets a provider release its connection or lock at once
                try:
                    close()
                except Exception:
                    logger.warning("closing an LLM stream failed", exc_info=True)
            self._queue.put(END)

    def take(self, timeout: float | None) -> tuple[list[str], object | None]:
        """The chunks that arrive within `timeout` seconds (None: wait for one), with all those already
        waiting behind the first; and `END` or a `Failure` when the stream ended after them."""
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
                if self._queue.get(timeout=remaining) is END:
                    return
            except queue.Empty:
                return


def collect(
    open_stream: Callable[[], Iterator[str | Usage]], *, seconds: float, limit: int, model: str | None = None
) -> str:
    """A whole (short) generation, at most `limit` characters, within `seconds`. With `model` (the
    `<provider>:<model id>` it came from), the tokens the provider counted are that model's
    `InputTokens` and `OutputTokens` (`kallo.metrics`), as an answer's are: a convo's name and a
    summary spend tokens too."""
    producer, text, deadline = Producer(open_stream), "", time.monotonic() + seconds
    try:
        while len(text) < limit:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no complete answer within {seconds:g} s")
            chunks, end = producer.take(remaining)
            text += "".join(chunks)
            if isinstance(end, Failure):
                raise end.error
            if end is END:
                break
    finally:
        producer.stop()
    if model is not None and producer.usage is not None:
        from kallo import metrics  # the callers that count (workers) load it anyway

        metrics.tokens(model, producer.usage.input_tokens, producer.usage.output_tokens)
    return text[:limit]
