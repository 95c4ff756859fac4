"""Grant items: who holds which role on which object (access patterns 3 to 6)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kallo.errors import Conflict
from kallo.store import keys, objects
from kallo.store.keys import Ref
from kallo.store.table import Page, table


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
    grantee: Ref, *, object_type: str | None = None, limit: int | None = None, start_key: dict | None = None
) -> Page:
    prefix = f"{object_type}#" if object_type else None
    return table().query(
        keys.grantee_pk(grantee), index="GSI1", prefix=prefix, limit=limit, start_key=start_key
    )


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
