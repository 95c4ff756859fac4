"""Teams: creation with the owner grant, membership, and deletion."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from kallo.authz.access import Access
from kallo.clock import now_iso
from kallo.models.teams import TeamCreate
from kallo.store import grants, objects
from kallo.store.keys import Ref
from kallo.store.table import table


def create_team(access: Access, data: TeamCreate) -> dict[str, Any]:
    """A new team owned by the caller; the team and its owner grant are written in one transaction."""
    user_id = access.principal.user_id
    access.require_scope_for_owner(Ref("user", user_id))
    team = {"id": data.id or str(uuid4()), "name": data.name, "createdBy": user_id, "createdAt": now_iso()}
    ref = Ref("team", team["id"])
    owner_grant = grants.item(
        ref, Ref("user", user_id), "owner", created_by=user_id, created_at=team["createdAt"]
    )
    table().transact([{"put": objects.item(ref, team), "new": True}, {"put": owner_grant}])
    return team
