"""What is written beside a topic item: the prompt it uses (its `promptId`, and the prompt's
`dependent` grant to the topic, `OBJ#prompt#<id>` / `GRANT#topic#<id>`, through which the topic's users
may read the prompt), always changed together in one transaction."""

from __future__ import annotations

from typing import Any

from kallo.clock import now_iso
from kallo.store import keys, objects
from kallo.store.keys import Ref
from kallo.store.table import table


def set_prompt(topic: Ref, prompt: Ref, link: dict[str, Any], *, previous: str | None, at: str) -> None:
    """Use a prompt for a topic, in one transaction: the topic's `promptId` (and `updatedAt`: `at`),
    only while the topic exists; `link` (the prompt's `dependent` grant to the topic,
    `kallo.store.grants.item`) put; the prompt's existence checked (its grants can outlive a deleted
    prompt: a topic is never linked to a missing one); the `previous` prompt's grant to the topic
    deleted. Raises `Conflict` when the topic or the prompt is gone."""
    operations: list[dict[str, Any]] = [
        {"update": keys.object_key(topic), "set": {"promptId": prompt.id, "updatedAt": at}},
        {"put": link},
        objects.exists_check(prompt),
    ]
    if previous:
        operations.append({"delete": keys.grant_key(Ref("prompt", previous), topic)})
    table().transact(operations)


def unset_prompt(topic: Ref, prompt_id: str) -> None:
    """Take a prompt off a topic in one transaction (`prompt_removal`). Raises `Conflict` when the
    topic is gone."""
    table().transact(prompt_removal(topic, prompt_id))


def prompt_removal(topic: Ref, prompt_id: str) -> list[dict[str, Any]]:
    """The writes that take a prompt off a topic: its `promptId` removed (and `updatedAt` now), only
    while the topic exists, and the prompt's grant to it deleted."""
    return [
        {"update": keys.object_key(topic), "set": {"updatedAt": now_iso()}, "remove": ["promptId"]},
        {"delete": keys.grant_key(Ref("prompt", prompt_id), topic)},
    ]
