"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp server, LM Studio...):
`POST {base_url}/chat/completions` with `stream: true`, read as server-sent events.

Only the standard library is used (urllib), so the layer carries no HTTP client dependency for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from http.client import HTTPException
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from kallo.llm import ChatMessage, Generation, ProviderError, Usage

# Seconds to connect, and the longest silence allowed between two pieces of the stream.
DEFAULT_TIMEOUT = 120.0
# How much of an error body is worth quoting when it is not the usual JSON.
_QUOTE_LIMIT = 500


def _server_message(body: bytes) -> str:
    """The explanation in an error body: OpenAI's `{"error": {"message"}}`, Ollama's `{"error": "..."}`,
    vLLM's `{"message"}` / FastAPI's `{"detail"}`, or the raw text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        return text[:_QUOTE_LIMIT] or "no explanation given"
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for candidate in (error, parsed.get("message"), parsed.get("detail")):
            if candidate:
                return candidate if isinstance(candidate, str) else json.dumps(candidate)[:_QUOTE_LIMIT]
    return text[:_QUOTE_LIMIT]


def server_sent_events(lines: Iterable[bytes]) -> Iterator[str]:
    """The `data` of each event of an SSE stream (its `data:` lines joined by newlines, per the spec);
    comments, `event:` and `id:` lines are skipped."""
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
    if data:  # a stream that ends without its final blank line
        yield "\n".join(data)


def deltas(events: Iterable[str]) -> Iterator[str | Usage]:
    """The answer's text in chat.completion.chunk events, up to `[DONE]`, and the `usage` the last
    chunk carries when the request asked for it (`stream_options.include_usage`)."""
    for data in events:
        if data.strip() == "[DONE]":
            return
        try:
            chunk = json.loads(data)
        except ValueError as error:
            raise ProviderError(
                f"the model server sent something that is not JSON: {data[:100]!r}"
            ) from error
        if not isinstance(chunk, dict):
            continue
        if chunk.get("error"):  # some servers report a failure in the middle of the stream this way
            raise ProviderError(f"the model server failed while answering: {_server_message(data.encode())}")
        for choice in chunk.get("choices") or []:
            content = (choice.get("delta") or {}).get("content")
            if content:
                yield content
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            read, written = usage.get("prompt_tokens"), usage.get("completion_tokens")
            if isinstance(read, int) and isinstance(written, int):
                yield Usage(read, written)


class OpenAICompatibleProvider:
    def __init__(self, base_url: str, api_key: str = "", *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self._api_key = api_key
        self._timeout = timeout

    def _request(self, messages: list[ChatMessage], generation: Generation) -> Request:
        body: dict[str, Any] = {
            "model": generation.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            # The provider's own token counts, in a last chunk: budgets are charged with them.
            "stream_options": {"include_usage": True},
        }
        if generation.temperature is not None:
            body["temperature"] = generation.temperature
        if generation.max_tokens is not None:
            body["max_tokens"] = generation.max_tokens
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")

    def stream(self, messages: list[ChatMessage], generation: Generation) -> Iterator[str | Usage]:
        request = self._request(messages, generation)
        try:
            response = urlopen(request, timeout=self._timeout)
        except HTTPError as error:
            with error:
                explanation = _server_message(error.read())
            raise ProviderError(
                f"the model server answered {error.code} {error.reason}: {explanation}"
            ) from error
        except URLError as error:
            raise ProviderError(
                f"the model server at {self.url} could not be reached: {error.reason}"
            ) from error
        except (OSError, HTTPException) as error:  # a timeout, a reset connection, a malformed answer
            raise ProviderError(f"the model server at {self.url} could not be reached: {error}") from error
        with response:
            try:
                yield from deltas(server_sent_events(response))
            except (OSError, HTTPException) as error:
                raise ProviderError(
                    f"the connection to the model server broke while it answered: {error}"
                ) from error
