"""A team's deletion: its partition (PK=`OBJ#team#<id>`: the team item, its members' grants and its
invitations) and the grants it holds on others' objects."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kallo.store import grants, keys, objects
from kallo.store.keys import Ref
from kallo.store.table import table


def delete_with_partition(team: Ref, held: Iterable[dict[str, Any]]) -> None:
    """Delete a team with its whole partition and `held` (the grants it holds on others' objects, as read
    by `grants.all_of_grantee`): 1 Query (the partition), then the team item and its owner grant in one
    transaction conditioned on the team existing (`objects.delete_with_grants`: `Conflict` when it is
    gone, and nothing else is deleted), so the team disappears at once; then the rest, 25 per
    BatchWriteItem (not atomic: leftovers are grants and invitations naming a team that is gone)."""
    partition = objects.partition(team)
    owner = grants.owner_of([i for i in partition if i.get("entity") == "grant"])
    owner_grantees = [owner] if owner else []
    objects.delete_with_grants(team, owner_grantees)
    done = [keys.object_key(team), *(keys.grant_key(team, o) for o in owner_grantees)]
    rest = [key for key in (_key_of(i) for i in [*partition, *held]) if key not in done]
    if rest:
        table().batch_delete(rest)


def _key_of(item: dict[str, Any]) -> dict[str, str]:
    return {"PK": item["PK"], "SK": item["SK"]}
