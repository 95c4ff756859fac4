"""What is written beside a convo item: its owner grant and its creator's, a participant's grant, and
the deletion of the convo with its grants. Its steps are `kallo.store.steps`; a grantee's convos,
newest first, are `kallo.store.grants.of_grantee`."""

from __future__ import annotations

from typing import Any

from kallo.store import objects
from kallo.store.keys import Ref
from kallo.store.table import TRANSACT_LIMIT, table


def create(
    item: dict[str, Any],
    owner_grant: dict[str, Any],
    *,
    creator_grant: dict[str, Any] | None = None,
    owner: Ref | None = None,
) -> None:
    """Write a new convo (`objects.item`) and its owner grant (`kallo.store.grants.item`) in one
    transaction, each only if it does not exist yet (the ids are new, I4: a guard against a broken
    generator); with `creator_grant` (a topic or team owns it), that grant too, on the same condition,
    and the check that `owner` still exists (its grants can outlive a deleted topic or team). Raises
    `Conflict` when a condition fails."""
    operations: list[dict[str, Any]] = [
        {"put": item, "new": True},
        {"put": owner_grant, "new": True},
    ]
    if creator_grant is not None and owner is not None:
        operations += [{"put": creator_grant, "new": True}, objects.exists_check(owner)]
    table().transact(operations)


def delete(convo: Ref, grantees: list[Ref]) -> None:
    """Delete a convo, which must exist, with its grants to `grantees` in one transaction
    (`objects.delete_with_grants`): those that fit in it, in the order given (the owner first), the
    rest being left to the purge worker. Raises `Conflict` when the convo is gone."""
    objects.delete_with_grants(convo, grantees[: TRANSACT_LIMIT - 1])


def join(grant: dict[str, Any]) -> None:
    """Write a user's grant on a convo (`kallo.store.grants.item`) only if they hold none (PutItem on
    `attribute_not_exists`); raises `Conflict` when they do (two first steps at once)."""
    table().put(grant, must_not_exist=True)
