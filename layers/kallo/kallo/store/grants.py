"""Grant items: who holds which role on which object (access patterns 3 to 6), and the writes that
change them beside their object.

A grant can outlive its object until the purge worker runs, so a write of a grant that must not outlive
it is one transaction with the object's existence check (`objects.exists_check`): it fails with
`Conflict` when the object is gone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from kallo.errors import Conflict
from kallo.store import keys, objects
from kallo.store.keys import Ref
from kallo.store.table import TRANSACT_LIMIT, Page, table

# The most writes `replace` makes (one transaction): the grants removed and written, and the object's.
REPLACE_LIMIT = TRANSACT_LIMIT


def item(obj: Ref, grantee: Ref, role: str, *, created_by: str, created_at: str) -> dict[str, Any]:
    """A grant item. A convo's owner grant to a topic may also carry `chainHint` (`["team#<id>", ...]`,
    the topic's structural grantees when the convo was made), which checks read as a hint only
    (`kallo.authz.access`)."""
    return {
        **keys.grant_key(obj, grantee),
        **keys.grant_index_keys(obj, grantee),
        "entity": "grant",
        "objectType": obj.type,
        "objectId": obj.id,
        "granteeType": grantee.type,
        "granteeId": grantee.id,
        "role": role,
        "createdBy": created_by,
        "createdAt": created_at,
    }


def get(obj: Ref, grantee: Ref) -> dict[str, Any] | None:
    return table().get(keys.grant_key(obj, grantee))


def batch_get(pairs: list[tuple[Ref, Ref]]) -> dict[tuple[Ref, Ref], dict[str, Any]]:
    """The grants that exist among (object, grantee) pairs."""
    found = table().batch_get(keys.grant_key(o, g) for o, g in pairs)
    return {(object_ref(g), grantee_ref(g)): g for g in found}


def batch_get_with_objects(
    pairs: list[tuple[Ref, Ref]], refs: list[Ref]
) -> tuple[dict[tuple[Ref, Ref], dict[str, Any]], dict[Ref, dict[str, Any]]]:
    """The grants that exist among (object, grantee) pairs and the objects that exist among `refs`
    (public fields), in one BatchGetItem (a check and the item it guards, `kallo.authz.access`)."""
    found = table().batch_get(
        [*(keys.grant_key(o, g) for o, g in pairs), *(keys.object_key(r) for r in refs)]
    )
    granted = {(object_ref(i), grantee_ref(i)): i for i in found if i.get("entity") == "grant"}
    items = {
        Ref(i["entity"], i["id"]): objects.public(i) for i in found if i["SK"] == keys.META and "id" in i
    }
    return granted, items


def put_while_object_exists(item: dict[str, Any], *, new: bool = False) -> None:
    """Write a grant item (`item`), or an invitation (`kallo.store.invitations.item`, a grant pending its
    invitee), in one transaction with the condition that its object exists (pattern 1's key); with
    `new`, also that the grant is not there yet. Raises `Conflict` when either fails."""
    put: dict[str, Any] = {"put": item, "new": True} if new else {"put": item}
    table().transact([put, objects.exists_check(object_ref(item))])


def replace(
    obj: Ref,
    removed: Iterable[Ref],
    written: Iterable[dict[str, Any]],
    *,
    set_fields: dict[str, Any] | None = None,
    remove_fields: Sequence[str] = (),
) -> None:
    """Replace grants on an object in one transaction: delete the grants of the `removed` grantees
    (pattern 3's keys), write the grant items `written` (new grantees and changed roles), then either
    check that the object exists or, with `set_fields`, update the object (set those fields, remove
    `remove_fields`: the fields naming its owner), which needs it to exist too. Raises `Conflict` when
    the object is gone; at most `REPLACE_LIMIT` writes in all."""
    operations: list[dict[str, Any]] = [{"delete": keys.grant_key(obj, grantee)} for grantee in removed]
    operations += [{"put": item} for item in written]
    if set_fields is None:
        operations.append(objects.exists_check(obj))
    else:
        operations.append({"update": keys.object_key(obj), "set": set_fields, "remove": list(remove_fields)})
    table().transact(operations)


def delete(obj: Ref, grantee: Ref) -> None:
    """Delete a grantee's grant on an object (pattern 3's key; nothing when there is none)."""
    table().delete(keys.grant_key(obj, grantee))


def role_check(obj: Ref, grantee: Ref, roles: Iterable[str]) -> dict[str, Any]:
    """A transaction's condition that the grantee holds one of `roles` on the object (directly)."""
    return {"check": keys.grant_key(obj, grantee), "exists": True, "one_of": ("role", sorted(roles))}


def structural(obj: Ref) -> list[dict[str, Any]]:
    """Grants whose grantee is a convo, team or topic: ownership by them, and dependent links."""
    return table().query_all(keys.object_pk(obj), between=keys.structural_grant_range())


def structural_and_own(obj: Ref, user: Ref) -> list[dict[str, Any]]:
    """The object's structural grants and the user's own grant on it, in one Query (access
    pattern 4b): the structural grants sort first, then the user grants up to the user's own;
    a filter keeps the structural ones and the user's (DynamoDB reads, and bills, the others between)."""
    return table().query_all(
        keys.object_pk(obj),
        between=(keys.structural_grant_range()[0], keys.grant_sk(user)),
        where_any=(("granteeType", "<>", "user"), ("granteeId", "=", user.id)),
    )


def set_chain_hint(convo: Ref, topic: Ref, hint: list[str]) -> bool:
    """Write the `chainHint` of a convo's owner grant to a topic, only while that grant stands (False:
    it is gone, or is no longer an owner grant). A migration's write (`tools.backfill_chain_hints`)."""
    try:
        table().update(keys.grant_key(convo, topic), {"chainHint": hint}, expect=(("role",), "owner"))
    except Conflict:
        return False
    return True


def of_object(
    obj: Ref, *, grantee_type: str | None = None, limit: int | None = None, start_key: dict | None = None
) -> Page:
    prefix = f"GRANT#{grantee_type}#" if grantee_type else "GRANT#"
    return table().query(keys.object_pk(obj), prefix=prefix, limit=limit, start_key=start_key)


def all_of_object(obj: Ref, *, grantee_type: str | None = None) -> list[dict[str, Any]]:
    prefix = f"GRANT#{grantee_type}#" if grantee_type else "GRANT#"
    return table().query_all(keys.object_pk(obj), prefix=prefix)


def of_grantee(
    grantee: Ref,
    *,
    object_type: str | None = None,
    limit: int | None = None,
    start_key: dict | None = None,
    newest_first: bool = False,
) -> Page:
    """A page of a grantee's grants (pattern 6), by object (descending with `newest_first`: newest first
    for time-ordered ids), from `start_key` (a page's `last_key`, or `position_of`)."""
    prefix = f"{object_type}#" if object_type else None
    return table().query(
        keys.grantee_pk(grantee),
        index="GSI1",
        prefix=prefix,
        limit=limit,
        start_key=start_key,
        newest_first=newest_first,
    )


def position_of(obj: Ref, grantee: Ref) -> dict[str, str]:
    """Where a grantee's grant on `obj` sits in the grantee's grants (pattern 6), whether or not it
    exists: the start key of an `of_grantee` page that begins right after it."""
    return {**keys.grant_key(obj, grantee), **keys.grant_index_keys(obj, grantee)}


def of_grantee_after(grantee: Ref, after: Ref, limit: int) -> Page:
    """Up to `limit` of a grantee's grants (pattern 6), by object, on the objects after `after`
    (`<type>#<id>` greater than its): every type from there on, so a caller that wants one type stops at
    the first grant on another."""
    return table().query(keys.grantee_pk(grantee), index="GSI1", after=str(after), limit=limit)


def all_of_grantee(grantee: Ref, *, object_type: str | None = None) -> list[dict[str, Any]]:
    prefix = f"{object_type}#" if object_type else None
    return table().query_all(keys.grantee_pk(grantee), index="GSI1", prefix=prefix)


def links_to(grantee: Ref, object_type: str) -> list[dict[str, Any]]:
    """The links from objects of a type to a topic or convo (their `dependent` grants), oldest first."""
    found = [g for g in all_of_grantee(grantee, object_type=object_type) if g["role"] == "dependent"]
    return sorted(found, key=lambda g: (g.get("createdAt", ""), g["objectId"]))


def count_of_grantee(grantee: Ref, object_type: str) -> int:
    return table().count(keys.grantee_pk(grantee), index="GSI1", prefix=f"{object_type}#")


def object_ref(grant: dict[str, Any]) -> Ref:
    return Ref(grant["objectType"], grant["objectId"])


def grantee_ref(grant: dict[str, Any]) -> Ref:
    return Ref(grant["granteeType"], grant["granteeId"])


def owner_of(grants: list[dict[str, Any]]) -> Ref | None:
    return next((grantee_ref(g) for g in grants if g["role"] == "owner"), None)
