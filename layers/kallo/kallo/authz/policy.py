"""Roles → permissions, as data. This is the one place that says who may do what; the docs print it.

A role on an object comes from a direct grant, or is inherited along a structural grant: when object O
grants role R to a team, topic or convo G, whoever holds role S on G holds min(R, S) on O (ranked
below). So a team member (member on the team) is a member of the team's topics (the team holds owner on
them) and of those topics' convos; a data source linked to a convo (a `dependent` grant) is readable by
everyone on the convo.
"""

from __future__ import annotations

from enum import StrEnum


class ObjectType(StrEnum):
    convo = "convo"
    data_source = "data_source"
    prompt = "prompt"
    team = "team"
    topic = "topic"
    user = "user"


class GranteeType(StrEnum):
    convo = "convo"
    team = "team"
    topic = "topic"
    user = "user"


class Role(StrEnum):
    admin = "admin"
    dependent = "dependent"
    member = "member"
    owner = "owner"
    participant = "participant"
    viewer = "viewer"


class Permission(StrEnum):
    can_add_admin = "can_add_admin"
    can_add_data_source = "can_add_data_source"
    can_add_member = "can_add_member"
    can_add_owner = "can_add_owner"
    can_add_participant = "can_add_participant"
    can_add_viewer = "can_add_viewer"
    can_chat = "can_chat"
    can_delete = "can_delete"
    can_delete_steps = "can_delete_steps"
    can_edit = "can_edit"
    can_remove_admin = "can_remove_admin"
    can_remove_data_source = "can_remove_data_source"
    can_remove_member = "can_remove_member"
    can_remove_owner = "can_remove_owner"
    can_remove_participant = "can_remove_participant"
    can_remove_viewer = "can_remove_viewer"
    can_view = "can_view"
    can_add_dependent = "can_add_dependent"
    can_add_prompt = "can_add_prompt"
    can_remove_dependent = "can_remove_dependent"
    can_remove_prompt = "can_remove_prompt"


# Inherited roles are the lesser of the grant's role and the role held on the grantee.
ROLE_RANK: dict[Role, int] = {
    Role.dependent: 1,
    Role.viewer: 2,
    Role.participant: 3,
    Role.member: 4,
    Role.admin: 5,
    Role.owner: 6,
}

# How deep inheritance is followed: data source → convo → topic → team is the longest chain.
MAX_INHERITANCE_DEPTH = 3

STRUCTURAL_GRANTEE_TYPES = frozenset({GranteeType.convo, GranteeType.team, GranteeType.topic})


def _perms(*names: str) -> frozenset[Permission]:
    return frozenset(Permission(n) for n in names)


_MANAGE = ("add", "remove")


def _manage(*roles: str) -> tuple[str, ...]:
    return tuple(f"can_{verb}_{role}" for role in roles for verb in _MANAGE)


_VIEW = ("can_view",)
_CHAT = ("can_view", "can_chat")

# Data sources and prompts: objects that other objects link to (a topic's or convo's `dependent` grant).
_LINKABLE: dict[Role, frozenset[Permission]] = {
    Role.owner: _perms(
        *_VIEW, "can_edit", "can_delete", *_manage("owner", "admin", "member", "viewer", "dependent")
    ),
    # `member` is for teams (ALLOWED_GRANTS): their users may view and link the object.
    Role.admin: _perms(*_VIEW, "can_edit", *_manage("admin", "member", "viewer", "dependent")),
    Role.member: _perms(*_VIEW, "can_add_dependent"),
    Role.viewer: _perms(*_VIEW),
    Role.dependent: _perms(*_VIEW),
}

PERMISSIONS: dict[ObjectType, dict[Role, frozenset[Permission]]] = {
    ObjectType.team: {
        Role.owner: _perms(*_CHAT, "can_edit", "can_delete", *_manage("owner", "admin", "member", "viewer")),
        Role.admin: _perms(*_CHAT, "can_edit", *_manage("admin", "member", "viewer")),
        Role.member: _perms(*_CHAT),
        Role.viewer: _perms(*_VIEW),
    },
    ObjectType.topic: {
        Role.owner: _perms(
            *_CHAT,
            "can_edit",
            "can_delete",
            "can_delete_steps",
            *_manage(
                "owner", "admin", "member", "participant", "viewer", "data_source", "prompt", "dependent"
            ),
        ),
        Role.admin: _perms(
            *_CHAT,
            "can_edit",
            "can_delete_steps",
            *_manage("admin", "member", "participant", "viewer", "data_source", "prompt", "dependent"),
        ),
        Role.member: _perms(*_CHAT),
        Role.participant: _perms(*_CHAT),
        Role.viewer: _perms(*_VIEW),
    },
    ObjectType.convo: {
        Role.owner: _perms(
            *_CHAT,
            "can_edit",
            "can_delete",
            "can_delete_steps",
            *_manage("owner", "admin", "participant", "viewer", "data_source", "dependent"),
        ),
        Role.admin: _perms(
            *_CHAT,
            "can_edit",
            "can_delete_steps",
            *_manage("admin", "participant", "viewer", "data_source", "dependent"),
        ),
        Role.member: _perms(*_CHAT),
        Role.participant: _perms(*_CHAT),
        Role.viewer: _perms(*_VIEW),
    },
    ObjectType.data_source: _LINKABLE,
    ObjectType.prompt: _LINKABLE,
    ObjectType.user: {
        # A user owns their own user object; a service account that created a user is its admin.
        # These are permissions on the object (its grantees) only: acting for the user, its profile
        # included, is authority, which no grant gives (I1, `services.authority`).
        Role.owner: _perms(*_VIEW, "can_edit", *_manage("admin")),
        Role.admin: _perms(*_VIEW, "can_edit"),
    },
}

# Which grantee types may hold which roles on each object type (anything else is refused with 400).
# `dependent` grants are made only by the dedicated link operations (Add Topic/Convo Data Source,
# Set Topic Prompt), never through the grantee endpoints.
ALLOWED_GRANTS: dict[ObjectType, dict[GranteeType, frozenset[Role]]] = {
    ObjectType.team: {GranteeType.user: frozenset({Role.owner, Role.admin, Role.member, Role.viewer})},
    ObjectType.topic: {
        GranteeType.user: frozenset({Role.owner, Role.admin, Role.member, Role.participant, Role.viewer}),
        GranteeType.team: frozenset({Role.owner, Role.admin, Role.member, Role.participant, Role.viewer}),
    },
    ObjectType.convo: {
        GranteeType.user: frozenset({Role.owner, Role.admin, Role.participant, Role.viewer}),
        GranteeType.team: frozenset({Role.owner, Role.admin, Role.participant, Role.viewer}),
        GranteeType.topic: frozenset({Role.owner}),
    },
    ObjectType.data_source: {
        GranteeType.user: frozenset({Role.owner, Role.admin, Role.viewer}),
        GranteeType.team: frozenset({Role.owner, Role.admin, Role.member, Role.viewer}),
        GranteeType.convo: frozenset({Role.dependent}),
        GranteeType.topic: frozenset({Role.dependent}),
    },
    ObjectType.prompt: {
        GranteeType.user: frozenset({Role.owner, Role.admin, Role.viewer}),
        GranteeType.team: frozenset({Role.owner, Role.admin, Role.member, Role.viewer}),
        GranteeType.topic: frozenset({Role.dependent}),
    },
    ObjectType.user: {GranteeType.user: frozenset({Role.owner, Role.admin})},
}

# Object types that can have invitations (seed: Get Invitations).
INVITABLE_TYPES = frozenset({ObjectType.convo, ObjectType.team})


def permissions_of(object_type: ObjectType, role: Role | None) -> frozenset[Permission]:
    if role is None:
        return frozenset()
    return PERMISSIONS[object_type].get(role, frozenset())


def lesser(first: Role, second: Role) -> Role:
    return first if ROLE_RANK[first] <= ROLE_RANK[second] else second


def greater(first: Role | None, second: Role | None) -> Role | None:
    if first is None or second is None:
        return first or second
    return first if ROLE_RANK[first] >= ROLE_RANK[second] else second


def add_permission(role: Role) -> Permission | None:
    """The permission needed to grant `role` (None: no one may grant it through the grantee API)."""
    return Permission.__members__.get(f"can_add_{role.value}")


def remove_permission(role: Role) -> Permission | None:
    return Permission.__members__.get(f"can_remove_{role.value}")
