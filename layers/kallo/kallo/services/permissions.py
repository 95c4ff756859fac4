"""Query Permissions: which of a list of permissions a user holds on an object.

The caller asks about itself (its access token's scope applies, as to everything it does) or about a
user it has authority over (`services.authority`), on an object it can view itself; a hidden or unknown
object then is a 404, as anywhere. About itself, a hidden or unknown object simply holds no permission.

Costs in AWS calls: the evaluation (one Query per object of the ownership chain that can inherit, plus
one BatchGetItem, see `kallo.authz.access`) + 1 GetItem proving the object exists when a permission is
held; another user adds the authority check (1 GetItem, the user item, `services.authority`) and its
own evaluation (1 BatchGetItem, the chain being read already).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kallo.authz.access import Access
from kallo.models.auth import PermissionsQuery
from kallo.services import authority
from kallo.store import objects
from kallo.store.keys import Ref


def _access_of(access: Access, user_id: str | None, obj: Ref) -> Access:
    """The access whose permissions are asked for: the caller's own, or another user's."""
    if user_id is None or user_id == access.principal.user_id:
        return access
    acting = authority.acting_for(access, user_id)
    access.require(obj)
    # The caller's scope covers the object (checked just above). A token limits what its holder
    # reaches, not what another user holds: that user's permissions are evaluated without it.
    return Access(dataclasses.replace(acting.principal, scope=None))


def query_permissions(access: Access, query: PermissionsQuery) -> dict[str, Any]:
    """The query with `permissions` narrowed to those the user holds, in the order asked."""
    obj = Ref(query.object_type.value, query.object_id)
    target = _access_of(access, query.user_id, obj)
    held = target.permissions(obj)
    # Grants can outlive a deleted object until the purge worker runs: none hold on a missing object.
    if held and objects.get(obj) is None:
        held = frozenset()
    return {
        "userId": target.principal.user_id,
        "objectId": obj.id,
        "objectType": obj.type,
        "permissions": [p for p in query.permissions if p in held],
    }
