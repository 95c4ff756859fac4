"""Time from a stop to `stopped` through the local stack: a WebSocket client asks for a long answer,
waits for its first deltas, sends `convoStopStep` (or POST /steps/{stepId}/stop with `--via rest`) and
measures the time until the final `convoStepUpdate` with `status: "stopped"` arrives (the goal: at most
1 s), median and max of several runs, per model. The stop leaves at a random moment (within
`JITTER_SECONDS`) after the third delta, as a person's would.

    python -m bench.stop [--runs 5] [--via ws|rest] [--model embedded:smollm2 ...]

The answer's writer sees a stop at its next save, at most `Pacing.save_interval` (0.5 s) after the
previous one (`kallo.services.replies`, "Stop"), so the figure is about a quarter of a second plus the
stores, the model's next token and the broadcast, and at most about 0.5 s plus those. Models as in bench/realtime.py: the stack's embedded
one, and `openai:scripted`, a loopback OpenAI-compatible endpoint streaming a token every
`--scripted-delay` seconds (the pipeline's own latency). The stack runs in a subprocess on a free
loopback port and is stopped at the end; every wait is bounded (`--timeout` seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
import uuid
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection

from bench.realtime import (
    SCRIPTED_MODEL,
    BenchFailed,
    create_convo,
    new_step,
    next_message,
    open_socket,
    scripted_stack,
)
from tests.support.local_stack import RunningStack, StackFailed

DEFAULT_MODELS = ["embedded:smollm2", SCRIPTED_MODEL]
PROMPT = "Write a very long story about a lighthouse keeper and the ships she guides."
# Enough tokens that the answer is still being written when the stop comes.
MAX_TOKENS = 1000
# The stop is sent once this many deltas arrived: the answer is well under way.
DELTAS_BEFORE_STOP = 3
# The stop is sent at a random moment within this long after that delta.
JITTER_SECONDS = 0.5


@dataclass(frozen=True)
class Stop:
    seconds: float  # from sending the stop to receiving `stopped`
    chars: int  # of the text the stopped answer kept


async def stop_once(stack: RunningStack, model: str, via: str, timeout: float) -> Stop:
    convo_id = create_convo(stack, f"bench stop {model}")
    async with await open_socket(stack, convo_id, timeout) as socket:
        config = {"reply": True, "model": model, "maxTokens": MAX_TOKENS, "temperature": 0.7}
        deadline = time.monotonic() + timeout
        await socket.send(new_step(PROMPT, config))
        deltas, step_id, sent_at = 0, None, None
        while True:
            message = await next_message(socket, deadline)
            payload = message.get("payload") or {}
            if message.get("type") == "error":
                raise BenchFailed(f"the stack answered an error: {payload}")
            if message.get("type") != "convoStepUpdate":
                continue
            if "delta" in payload and sent_at is None:
                deltas += 1
                if deltas == DELTAS_BEFORE_STOP:
                    step_id = payload["id"]
                    # Deltas and saves keep a steady beat: a person's stop comes at any moment of it.
                    await asyncio.sleep(random.uniform(0, JITTER_SECONDS))
                    sent_at = time.monotonic()
                    await send_stop(stack, socket, step_id, via)
                continue
            status = payload.get("status")
            if status in ("completed", "failed"):
                raise BenchFailed(f"the answer ended {status} before it was stopped: raise MAX_TOKENS")
            if status == "stopped" and payload.get("id") == step_id and sent_at is not None:
                return Stop(time.monotonic() - sent_at, len(payload["content"]["text"]))


async def send_stop(stack: RunningStack, socket: ClientConnection, step_id: str, via: str) -> None:
    if via == "ws":
        stop = {"type": "convoStopStep", "payload": {"id": step_id}, "requestId": str(uuid.uuid4())}
        await socket.send(json.dumps(stop))
        return
    response = await asyncio.to_thread(
        stack.client.post, f"/steps/{step_id}/stop", headers={"x-api-key": stack.api_key}
    )
    if response.status_code != 202:
        raise BenchFailed(f"POST /steps/{step_id}/stop answered {response.status_code}: {response.text}")


def bench_model(stack: RunningStack, model: str, runs: int, via: str, timeout: float) -> list[Stop]:
    """A warm-up stop (it loads the model), then `runs` measured ones, each on a new convo."""
    stops = [asyncio.run(stop_once(stack, model, via, timeout)) for _ in range(runs + 1)]
    return stops[1:]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="measured stops per model (after one warm-up)")
    parser.add_argument("--via", choices=("ws", "rest"), default="ws", help="convoStopStep or Stop Step")
    parser.add_argument("--model", action="append", help=f"model to measure (default: {DEFAULT_MODELS})")
    parser.add_argument("--timeout", type=float, default=120, help="seconds one run may take at most")
    parser.add_argument(
        "--scripted-delay", type=float, default=0.02, help=f"seconds between two tokens of {SCRIPTED_MODEL}"
    )
    arguments = parser.parse_args()
    models = arguments.model or DEFAULT_MODELS
    try:
        with scripted_stack(models, arguments.scripted_delay) as stack:
            results = {
                m: bench_model(stack, m, arguments.runs, arguments.via, arguments.timeout) for m in models
            }
    except (StackFailed, BenchFailed, TimeoutError) as error:
        print(f"bench.stop: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"Stop to stopped ({arguments.via}), median and max of {arguments.runs} runs (ms)")
    print(f"{'model':<28} {'median':>8} {'max':>8} {'kept chars':>11}")
    for model, stops in results.items():
        seconds = [s.seconds * 1000 for s in stops]
        kept = statistics.median(s.chars for s in stops)
        print(f"{model:<28} {statistics.median(seconds):>8.0f} {max(seconds):>8.0f} {kept:>11.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
