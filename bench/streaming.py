"""First event of a streamed answer on the compatibility surfaces against the first WebSocket delta, for
the same prompt and model on the same run of the local stack.

    python -m bench.streaming [--runs 5] [--max-tokens 24] [--model embedded:smollm2 ...]

For each model, in turns (so that a warming machine favours none): a WebSocket client sends a user step
asking for a reply and times its first `delta` (bench/realtime.py's measurement); the Dify-style API
(`POST /dify/v1/chat-messages`, `response_mode: streaming`, an app key of the topic) and Gloo KaLLM
(`POST /gloo/ai/v1/message/kallm`, `stream: true`, the same key) are timed to their first event that
carries answer text, with `httpx`'s streaming reader. All three answer in a topic whose defaults name the
model and `maxTokens`. The goal is an SSE first event within 1.2x the WebSocket first delta.

`openai:scripted` (bench/realtime.py's loopback endpoint: fixed tokens at a steady pace) measures the
pipelines without a model's variance; `embedded:smollm2` is the stack's own model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from bench.realtime import (
    DEFAULT_MODELS,
    PROMPT,
    BenchFailed,
    measure_reply,
    scripted_stack,
)
from tests.support.local_stack import RunningStack, StackFailed


def _created(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code != 201:
        raise BenchFailed(f"{what} answered {response.status_code}: {response.text}")
    return response.json()


def topic_with_key(stack: RunningStack, model: str, max_tokens: int) -> tuple[str, str]:
    """A topic of the bootstrap service account whose defaults answer with `model`, and an app key."""
    headers = {"x-api-key": stack.api_key}
    defaults = {"model": model, "maxTokens": max_tokens, "temperature": 0, "reply": True}
    topic = _created(
        stack.client.post(
            "/topics",
            json={"name": f"bench {model}", "description": "bench", "config": {"defaults": defaults}},
            headers=headers,
        ),
        "POST /topics",
    )
    key = _created(
        stack.client.post(f"/topics/{topic['id']}/app-keys", json={"name": "bench"}, headers=headers),
        "POST /topics/{id}/app-keys",
    )
    return topic["id"], key["key"]


def wait_named(stack: RunningStack, convo_id: str, timeout: float = 60) -> None:
    """A new convo is named by the model after its first answer: the next run must not queue behind
    that (the embedded model answers one request at a time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        convo = stack.client.get(f"/convos/{convo_id}", headers={"x-api-key": stack.api_key}).json()
        if convo.get("name"):
            return
        time.sleep(0.1)
    raise BenchFailed(f"convo {convo_id} was not named within {timeout:g} s")


def first_event(stack: RunningStack, path: str, body: dict[str, Any], key: str, has_text: Callable) -> float:
    """Seconds from sending the request to the first `data:` event whose payload `has_text`; the stream
    is then read to its end, and the new convo's naming waited for (so the next run starts on an idle
    stack)."""
    started, first, convo_id = time.monotonic(), None, None
    with stack.client.stream(
        "POST", path, json=body, headers={"authorization": f"Bearer {key}"}, timeout=120
    ) as response:
        if response.status_code != 200:
            raise BenchFailed(f"POST {path} answered {response.status_code}: {response.read().decode()}")
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            payload = json.loads(line[5:])
            if payload.get("event") == "error":
                raise BenchFailed(f"POST {path} streamed an error: {payload}")
            if first is None and has_text(payload):
                first = time.monotonic() - started
            convo_id = convo_id or payload.get("conversation_id") or payload.get("chat_id")
    if first is None or convo_id is None:
        raise BenchFailed(f"POST {path} streamed no answer text, or no conversation id")
    wait_named(stack, convo_id)
    return first


def dify_first(stack: RunningStack, key: str, run: int) -> float:
    body = {"inputs": {}, "query": PROMPT, "response_mode": "streaming", "user": f"bench-{run}"}
    return first_event(
        stack, "/dify/v1/chat-messages", body, key, lambda p: p.get("event") == "message" and p.get("answer")
    )


def gloo_first(stack: RunningStack, key: str, run: int) -> float:
    body = {"query": PROMPT, "stream": True}
    return first_event(stack, "/gloo/ai/v1/message/kallm", body, key, lambda p: bool(p.get("message")))


def websocket_first(stack: RunningStack, topic_id: str, model: str, max_tokens: int) -> float:
    convo = _created(
        stack.client.post(
            f"/convos?topicId={topic_id}", json={"name": "bench ws"}, headers={"x-api-key": stack.api_key}
        ),
        "POST /convos",
    )
    return asyncio.run(measure_reply(stack, convo["id"], model, max_tokens, 120)).first_delta


def bench_model(stack: RunningStack, model: str, runs: int, max_tokens: int) -> dict[str, list[float]]:
    topic_id, key = topic_with_key(stack, model, max_tokens)
    timings: dict[str, list[float]] = {"websocket": [], "dify": [], "gloo": []}
    for run in range(runs + 1):  # the first round warms the model and the surfaces up
        round_ = {
            "websocket": websocket_first(stack, topic_id, model, max_tokens),
            "dify": dify_first(stack, key, run),
            "gloo": gloo_first(stack, key, run),
        }
        if run:
            for name, seconds in round_.items():
                timings[name].append(seconds)
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="measured rounds per model (after one warm-up)")
    parser.add_argument("--max-tokens", type=int, default=24, help="the topic's maxTokens")
    parser.add_argument("--model", action="append", help=f"model to measure (default: {DEFAULT_MODELS})")
    arguments = parser.parse_args()
    models = arguments.model or DEFAULT_MODELS
    rows = []
    try:
        with scripted_stack(models, 0.02) as stack:
            for model in models:
                timings = bench_model(stack, model, arguments.runs, arguments.max_tokens)
                ws = statistics.median(timings["websocket"])
                cells = [f"{model:<20} {ws * 1000:>10.0f}"]
                for surface in ("dify", "gloo"):
                    median = statistics.median(timings[surface])
                    cells.append(f"{median * 1000:>10.0f} {median / ws:>6.2f}x")
                rows.append(" ".join(cells))
    except (StackFailed, BenchFailed, TimeoutError, httpx.HTTPError) as error:
        print(f"bench.streaming: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"First answer text, median of {arguments.runs} rounds (ms), maxTokens {arguments.max_tokens}")
    print(f"{'model':<20} {'WS delta':>10} {'Dify SSE':>10} {'ratio':>7} {'Gloo SSE':>10} {'ratio':>7}")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
