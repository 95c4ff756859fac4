"""Real-time latency of an LLM reply through the local stack: a WebSocket client sends a user step that
asks for a reply and measures the time to the first `delta` of the answer and to its completion
(the final `convoStepUpdate` with `status: "completed"`), median of several runs, per model.

    python -m bench.realtime [--runs 5] [--max-tokens 24] [--model embedded:smollm2 ...]

Two models by default: the stack's embedded one (`embedded:smollm2`), and `openai:scripted`, the
tests' loopback OpenAI-compatible endpoint (tests/support/scripted_endpoint.py) streaming `maxTokens`
fixed tokens, one every `--scripted-delay` seconds: the reply pipeline's own latency (queue, worker, stores, broadcasts),
without a model's. (The LLM registry's `scripted` provider registers in-process only, so a stack in
another process cannot select it; the stack reaches this endpoint through KALLO_OPENAI_BASE_URL.)

The stack is started in a subprocess on a free loopback port (as the e2e tests start it) and stopped at
the end. Each run uses a new convo, so every prompt has the same (empty) history; a first, unmeasured
run loads the model. Every wait is bounded (`--timeout` seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.support.local_stack import RunningStack, StackFailed, start_stack
from tests.support.scripted_endpoint import ScriptedEndpoint

SCRIPTED_MODEL = "openai:scripted"
DEFAULT_MODELS = ["embedded:smollm2", SCRIPTED_MODEL]
PROMPT = "In one sentence: why is the sky blue?"


class BenchFailed(RuntimeError):
    """The stack answered something else than the flow being measured."""


@contextmanager
def scripted_stack(models: Iterable[str], delay: float) -> Iterator[RunningStack]:
    """A local stack whose `openai:scripted` streams from a scripted endpoint (one token every `delay`
    seconds) and whose allow-list (I10) holds `models` besides the default ones, or every reply would
    be refused; the stack stops when the block ends without error."""
    scripted = ScriptedEndpoint(text=None, delay=delay)
    allowed = json.dumps(sorted({*models, *DEFAULT_MODELS}))
    try:
        with start_stack(KALLO_OPENAI_BASE_URL=scripted.base_url, KALLO_ALLOWED_MODELS=allowed) as stack:
            yield stack
            stack.stop()
    finally:
        scripted.close()


def create_convo(stack: RunningStack, name: str) -> str:
    """A convo owned by the bootstrap service account (its API key then opens WebSockets on it)."""
    response = stack.client.post("/convos", json={"name": name}, headers={"x-api-key": stack.api_key})
    if response.status_code != 201:
        raise BenchFailed(f"POST /convos answered {response.status_code}: {response.text}")
    return response.json()["id"]


async def open_socket(stack: RunningStack, convo_id: str, timeout: float) -> ClientConnection:
    return await connect(
        f"{stack.ws_url}/ws/convos/{convo_id}",
        additional_headers={"x-api-key": stack.api_key},
        open_timeout=timeout,
        max_size=None,
    )


def new_step(text: str, config: dict[str, Any] | None = None) -> str:
    """A `convoNewStep` message for a user step with `text` (and a stepConfig, when given)."""
    step: dict[str, Any] = {"content": {"text": text}}
    if config is not None:
        step["config"] = config
    return json.dumps({"type": "convoNewStep", "payload": step, "requestId": str(uuid.uuid4())})


async def next_message(socket: ClientConnection, deadline: float) -> dict[str, Any]:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    return json.loads(await asyncio.wait_for(socket.recv(), remaining))


@dataclass(frozen=True)
class Reply:
    first_delta: float  # seconds from sending the step
    completed: float
    deltas: int
    text: str


async def measure_reply(
    stack: RunningStack, convo_id: str, model: str, max_tokens: int, timeout: float
) -> Reply:
    """One user step asking `model` for a reply, timed until the answer completes."""
    async with await open_socket(stack, convo_id, timeout) as socket:
        config = {"reply": True, "model": model, "maxTokens": max_tokens, "temperature": 0}
        started = time.monotonic()
        deadline = started + timeout
        await socket.send(new_step(PROMPT, config))
        first_delta: float | None = None
        deltas = 0
        while True:
            message = await next_message(socket, deadline)
            payload = message.get("payload") or {}
            if message.get("type") == "error":
                raise BenchFailed(f"the stack answered an error: {payload}")
            if message.get("type") != "convoStepUpdate":
                continue
            if payload.get("delta"):
                deltas += 1
                if first_delta is None:
                    first_delta = time.monotonic() - started
            if payload.get("status") == "failed":
                raise BenchFailed(f"the reply failed: {payload.get('error')}")
            if payload.get("status") == "completed":
                completed = time.monotonic() - started
                text = (payload.get("content") or {}).get("text", "")
                # An answer short enough to come in one piece has no delta before it.
                return Reply(first_delta if first_delta is not None else completed, completed, deltas, text)


@dataclass(frozen=True)
class ModelResult:
    model: str
    cold: Reply
    runs: list[Reply]

    def row(self) -> str:
        first = statistics.median(r.first_delta for r in self.runs)
        done = statistics.median(r.completed for r in self.runs)
        deltas = statistics.median(r.deltas for r in self.runs)
        chars = statistics.median(len(r.text) for r in self.runs)
        return (
            f"{self.model:<28} {first * 1000:>10.0f} {done * 1000:>12.0f} {deltas:>7.0f} {chars:>6.0f}"
            f" {self.cold.first_delta * 1000:>12.0f} {self.cold.completed * 1000:>11.0f}"
        )


def bench_model(stack: RunningStack, model: str, runs: int, max_tokens: int, timeout: float) -> ModelResult:
    """A warm-up reply (it loads the model), then `runs` measured ones, each on a new convo."""
    replies = []
    for _ in range(runs + 1):
        convo_id = create_convo(stack, f"bench realtime {model}")
        replies.append(asyncio.run(measure_reply(stack, convo_id, model, max_tokens, timeout)))
    return ModelResult(model, replies[0], replies[1:])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="measured runs per model (after one warm-up)")
    parser.add_argument("--max-tokens", type=int, default=24, help="stepConfig maxTokens of the reply")
    parser.add_argument("--model", action="append", help=f"model to measure (default: {DEFAULT_MODELS})")
    parser.add_argument("--timeout", type=float, default=120, help="seconds one reply may take at most")
    parser.add_argument(
        "--scripted-delay", type=float, default=0.02, help=f"seconds between two tokens of {SCRIPTED_MODEL}"
    )
    arguments = parser.parse_args()
    models = arguments.model or DEFAULT_MODELS
    try:
        with scripted_stack(models, arguments.scripted_delay) as stack:
            results = [
                bench_model(stack, model, arguments.runs, arguments.max_tokens, arguments.timeout)
                for model in models
            ]
    except (StackFailed, BenchFailed, TimeoutError) as error:
        print(f"bench.realtime: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(
        f"LLM reply over WebSocket, maxTokens {arguments.max_tokens}, median of {arguments.runs} runs (ms);"
        f" {SCRIPTED_MODEL}: one token every {arguments.scripted_delay * 1000:.0f} ms"
    )
    print(
        f"{'model':<28} {'1st delta':>10} {'completed':>12} {'deltas':>7} {'chars':>6}"
        f" {'cold 1st':>12} {'cold done':>11}"
    )
    for result in results:
        print(result.row())
    return 0


if __name__ == "__main__":
    sys.exit(main())
