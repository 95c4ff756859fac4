"""Answers made in process, for the compatibility surfaces (`kallo.surfaces`): a surface asks, then
streams the answer's messages as they happen (Server-Sent Events), without the step queue in between.

    step, job = answering.ask(steps.Actor(access), convo_id, NewStep(content=..., config={"reply": True}))
    for message_type, payload in answering.run(job):
        ...  # ("convoStatus", running), ("convoNewStep", llm step), ("convoStepUpdate", delta)...

- `ask` is Add Step exactly (`kallo.services.steps.add_step`: `can_chat`, the token budgets (I10), the
  config's checks (I6, I10), the user step stored and broadcast), except that the `ReplyJob` is given
  back instead of queued. The step's config must ask for a reply (422 otherwise).
- `run` answers the job with `kallo.services.replies.answer` on a thread and yields every message the
  answer broadcasts, at the moment it is broadcast (the listener hears it before the WebSocket
  connections do): `convoStatus` running, `convoNewStep`, `convoStepUpdate` deltas, the final
  `convoStepUpdate` (`completed`, `stopped` or `failed`), `convoStatus` idle; the iterator ends after
  idle (or at once, empty, when there is nothing to answer: the job was answered already, or its convo
  or question is gone). The convo's WebSocket connections hear the same messages. Naming a nameless convo goes on on
  the thread after idle and is not waited for (its `convoUpdate` reaches the connections only).
- A stop asked through `kallo.services.stops.stop_step` ends an answer made here as it ends one made by
  the worker: the answer saves its progress on the step item and sees the stop mark there.
- A consumer that stops iterating early (a client that went away) does not end the answer: it is
  stored and broadcast to the end, as one made by the worker would be.
- An error before the answer step exists (the store unreachable) is raised from the iterator; after
  that, every failure ends the step `failed` and is a message like the others.

AWS calls: `ask` costs what Add Step costs, less the SendMessage; `run` what the worker's answer
costs (`kallo.services.replies`), less the worker's idempotency record.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from kallo.errors import Unprocessable
from kallo.jobs import ReplyJob
from kallo.models.ws import NewStep
from kallo.services import replies, steps

logger = Logger(child=True)

Message = tuple[str, dict[str, Any]]


def ask(actor: steps.Actor, convo_id: str, data: NewStep) -> tuple[dict[str, Any], ReplyJob]:
    """Store the user step `data` as Add Step does and return it with the job that answers it."""
    if not data.wants_reply:
        raise Unprocessable(
            "the step's config must ask for a reply (config.reply: true)", code="validation_error"
        )
    jobs: list[ReplyJob] = []
    step = steps.add_step(actor, convo_id, data, queue=jobs.append)
    [job] = jobs
    return step, job


@dataclass(frozen=True)
class _Raised:
    error: BaseException


_DONE = object()


def _is_idle(message: Message) -> bool:
    message_type, payload = message
    return message_type == "convoStatus" and payload.get("status") == "idle"


def run(job: ReplyJob, *, deadline: float | None = None) -> Iterator[Message]:
    """Answer `job` on a thread and yield its messages as they are broadcast, up to `convoStatus`
    idle. `deadline` (a `time.monotonic()` value) ends an answer still running then as failed."""
    messages: queue.SimpleQueue[object] = queue.SimpleQueue()
    listening = threading.Event()
    listening.set()

    def listener(message_type: str, payload: dict[str, Any]) -> None:
        if listening.is_set():
            messages.put((message_type, payload))

    def work() -> None:
        try:
            replies.answer(job, deadline=deadline, listener=listener)
        except BaseException as error:  # the consumer raises it
            messages.put(_Raised(error))
        finally:
            messages.put(_DONE)

    threading.Thread(target=work, name="answer", daemon=True).start()
    try:
        while True:
            item = messages.get()
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.error
            message: Message = item  # type: ignore[assignment]
            yield message
            if _is_idle(message):
                return
    finally:
        # What comes after the consumer left (naming, or everything when it left early) still goes to
        # the convo's connections, not to this queue.
        listening.clear()
