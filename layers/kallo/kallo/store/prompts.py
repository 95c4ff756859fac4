"""The deletion of a prompt, with its grants and its place on the topics that use it."""

from __future__ import annotations

from typing import Any

from kallo.store import keys, topics
from kallo.store.keys import Ref
from kallo.store.table import table


def delete(prompt: Ref, *, unset_on: list[Ref], grantees: list[Ref]) -> None:
    """Delete a prompt, take it off the topics `unset_on` (`kallo.store.topics.prompt_removal`: their
    `promptId` and its grant to each), and delete its grants to `grantees` (which must not name those
    topics: a transaction touches an item once). One transaction when that is at most 100 writes, else
    several in that order, the first deleting the prompt; the prompt's deletion is unconditional, so
    the same deletion again finishes what a failed one left."""
    operations: list[dict[str, Any]] = [{"delete": keys.object_key(prompt)}]
    for topic in unset_on:
        operations.extend(topics.prompt_removal(topic, prompt.id))
    operations.extend({"delete": keys.grant_key(prompt, grantee)} for grantee in grantees)
    table().transact_in_batches(operations)
