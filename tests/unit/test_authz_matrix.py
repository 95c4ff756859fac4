"""The authorization matrix: `kallo.authz.access.Access` evaluated against the grants of a moto table,
checked against the table of `kallo.authz.policy` (the one source of who may do what).

Size: every (object type, role) pair `policy.PERMISSIONS` lists (26) x every permission (21) = 546
direct cases, each its own test (`test_direct_grant[topic-admin-can_edit]`), plus a set-equality test
per pair, 120 inheritance cases (12 users x 10 objects of one ownership graph,
`test_inherited_role[team_member->convo]`), access-token scopes, authority and the AWS-call budget of
a check: 745 tests in all. `MATRIX_SIZE` computes the first number; `test_matrix_size` pins both
so this docstring stays true.

Every test here reads one world built once per module (one moto account), so the whole file runs in
seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from uuid import uuid4

import pytest

from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.authz.policy import PERMISSIONS, ROLE_RANK, ObjectType, Permission, Role
from kallo.errors import Forbidden, NotFound
from kallo.services import authority
from kallo.store.keys import Ref
from tests.support.aws import fresh_account
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of

DIRECT = [(kind, role) for kind, roles in PERMISSIONS.items() for role in roles]
CASES = [(kind, role, permission) for kind, role in DIRECT for permission in Permission]
MATRIX_SIZE = len(CASES)


def _pair_id(kind: ObjectType, role: Role) -> str:
    return f"{kind.value}-{role.value}"


# -- the world -------------------------------------------------------------------------------------------

# The ownership graph of the inheritance cases: object → [(grantee object, role of the structural grant)].
# `team` owns `topic`, which owns `convo`; `source` (a data source) is linked to the convo, `prompt` and
# `topic_source` to the topic; `shared_topic` belongs to an outsider and is granted to the team as
# participant only (a grant below the team's roles, so min() decides); the team also owns a convo and a
# data source directly.
GRAPH: dict[str, tuple[ObjectType, list[tuple[str, Role]]]] = {
    "team": (ObjectType.team, []),
    "topic": (ObjectType.topic, [("team", Role.owner)]),
    "convo": (ObjectType.convo, [("topic", Role.owner)]),
    "source": (ObjectType.data_source, [("convo", Role.dependent)]),
    "topic_source": (ObjectType.data_source, [("topic", Role.dependent)]),
    "prompt": (ObjectType.prompt, [("topic", Role.dependent)]),
    "shared_topic": (ObjectType.topic, [("team", Role.participant)]),
    "shared_convo": (ObjectType.convo, [("shared_topic", Role.owner)]),
    "team_convo": (ObjectType.convo, [("team", Role.owner)]),
    "team_source": (ObjectType.data_source, [("team", Role.owner)]),
}
# The users of the inheritance cases and their direct grants.
USERS: dict[str, list[tuple[str, Role]]] = {
    "team_owner": [("team", Role.owner)],
    "team_admin": [("team", Role.admin)],
    "team_member": [("team", Role.member)],
    "team_viewer": [("team", Role.viewer)],
    "topic_admin": [("topic", Role.admin)],
    "topic_member": [("topic", Role.member)],
    "topic_participant": [("topic", Role.participant)],
    "topic_viewer": [("topic", Role.viewer)],
    "convo_admin": [("convo", Role.admin)],
    "convo_participant": [("convo", Role.participant)],
    "convo_viewer": [("convo", Role.viewer)],
    # Two paths to the convo: the greater role wins.
    "topic_viewer_team_admin": [("topic", Role.viewer), ("team", Role.admin)],
}


def _lesser(first: Role, second: Role) -> Role:
    return first if ROLE_RANK[first] <= ROLE_RANK[second] else second


def expected_role(user: str, node: str) -> Role | None:
    """The oracle: a direct grant, or min(structural grant's role, role on its grantee), the greatest
    over every path (policy.ROLE_RANK)."""
    candidates = [role for granted, role in USERS[user] if granted == node]
    for grantee, role in GRAPH[node][1]:
        inherited = expected_role(user, grantee)
        if inherited is not None:
            candidates.append(_lesser(role, inherited))
    return max(candidates, key=ROLE_RANK.__getitem__, default=None)


@dataclass
class World:
    # Direct cases: (type, role) → (object, holder).
    direct: dict[tuple[ObjectType, Role], tuple[Ref, Principal]] = field(default_factory=dict)
    nodes: dict[str, Ref] = field(default_factory=dict)
    users: dict[str, Principal] = field(default_factory=dict)
    stranger: Principal | None = None


def _build_direct(world: World) -> None:
    for kind, role in DIRECT:
        holder, other = make_user(), make_user()
        if kind == ObjectType.user:
            obj = ref_of(other)  # another user's user object
            grant(obj, holder, role.value)
        elif role == Role.owner:
            obj = make_object(kind.value, ref_of(holder))
        else:
            obj = make_object(kind.value, ref_of(other))
            grant(obj, holder, role.value)
        world.direct[(kind, role)] = (obj, holder)


def _build_graph(world: World) -> None:
    outsider = make_user(name="outsider")
    users = {name: make_user(name=name) for name in USERS}
    owner_of_team = users["team_owner"]
    for name, (kind, edges) in GRAPH.items():  # insertion order: grantees before their objects
        owners = [(world.nodes[g], role) for g, role in edges if role == Role.owner]
        owner = owners[0][0] if owners else (ref_of(owner_of_team) if name == "team" else ref_of(outsider))
        ref = make_object(kind.value, owner)
        world.nodes[name] = ref
        for grantee, role in edges:
            if role != Role.owner:
                grant(ref, world.nodes[grantee], role.value)
    for name, grants_of_user in USERS.items():
        for node, role in grants_of_user:
            if not (node == "team" and role == Role.owner):  # the team's owner grant exists already
                grant(world.nodes[node], users[name], role.value)
    world.users = users
    world.stranger = make_user(name="stranger")


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with fresh_account():
        built = World()
        _build_direct(built)
        _build_graph(built)
        yield built


# -- the policy table itself -------------------------------------------------------------------------------


def test_matrix_size():
    assert len(DIRECT) == 26 and len(Permission) == 21 and MATRIX_SIZE == 546
    assert len(INHERITED) == 120


def test_every_permission_is_granted_by_some_role():
    granted = {p for roles in PERMISSIONS.values() for held in roles.values() for p in held}
    assert granted == set(Permission)


@pytest.mark.parametrize(("kind", "role"), DIRECT, ids=[_pair_id(k, r) for k, r in DIRECT])
def test_every_role_can_view(kind, role):
    """Otherwise `Access.require` would answer 404 to someone who holds a role on the object."""
    assert Permission.can_view in PERMISSIONS[kind][role]


# -- direct grants: 26 x 21 ------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "role"), DIRECT, ids=[_pair_id(k, r) for k, r in DIRECT])
def test_direct_grant_holds_exactly_the_roles_permissions(world, kind, role):
    obj, holder = world.direct[(kind, role)]
    access = Access(holder)
    assert access.role(obj) == role
    assert access.permissions(obj) == PERMISSIONS[kind][role]


@pytest.mark.parametrize(
    ("kind", "role", "permission"), CASES, ids=[f"{_pair_id(k, r)}-{p.value}" for k, r, p in CASES]
)
def test_direct_grant(world, kind, role, permission):
    obj, holder = world.direct[(kind, role)]
    access = Access(holder)
    if permission in PERMISSIONS[kind][role]:
        assert access.can(obj, permission)
        assert permission in access.require(obj, permission)
    else:
        assert not access.can(obj, permission)
        # It can see the object, so the refusal is 403, not 404.
        with pytest.raises(Forbidden) as error:
            access.require(obj, permission)
        assert error.value.code == "permission_denied"


# -- inherited roles ---------------------------------------------------------------------------------------

INHERITED = [(user, node) for user in USERS for node in GRAPH]


def test_the_oracle_on_hand_picked_cases():
    """The expected roles of a few paths, spelled out (min along a path, max over paths)."""
    assert expected_role("team_member", "topic") == Role.member
    assert expected_role("team_member", "convo") == Role.member
    assert expected_role("team_owner", "source") == Role.dependent  # source → convo → topic → team
    assert expected_role("team_owner", "shared_topic") == Role.participant
    assert expected_role("team_viewer", "shared_convo") == Role.viewer
    assert expected_role("topic_participant", "convo") == Role.participant
    assert expected_role("convo_admin", "source") == Role.dependent
    assert expected_role("convo_admin", "topic") is None  # nothing flows up
    assert expected_role("topic_viewer_team_admin", "convo") == Role.admin
    assert expected_role("team_member", "team_source") == Role.member


@pytest.mark.parametrize(("user", "node"), INHERITED, ids=[f"{u}->{n}" for u, n in INHERITED])
def test_inherited_role(world, user, node):
    ref, kind = world.nodes[node], GRAPH[node][0]
    expected = expected_role(user, node)
    access = Access(world.users[user])
    assert access.role(ref) == expected
    assert access.permissions(ref) == (PERMISSIONS[kind][expected] if expected else frozenset())
    if expected is None:
        with pytest.raises(NotFound):
            access.require(ref)


# -- no grant ----------------------------------------------------------------------------------------------


def test_a_user_without_grants_holds_nothing(world):
    access = Access(world.stranger)
    objects = [*world.nodes.values(), *(obj for obj, _ in world.direct.values())]
    for obj in objects:
        assert access.role(obj) is None and access.permissions(obj) == frozenset(), obj
        for permission in (Permission.can_view, Permission.can_edit, Permission.can_delete):
            with pytest.raises(NotFound):  # hidden reads as missing, whatever was asked
                access.require(obj, permission)
    # Exactly as an object that does not exist.
    with pytest.raises(NotFound) as missing:
        access.require(Ref("team", str(uuid4())), Permission.can_edit)
    assert missing.value.code == "not_found"


def test_an_object_reached_through_another_is_hidden_as_that_one(world):
    """I7 (errors): a hidden object reached through the one the caller named (a step's convo) answers
    as that one missing; its own id is never told. The caller who can see it is told it (403)."""
    through = Ref("step", str(uuid4()))
    for obj, _ in world.direct.values():
        with pytest.raises(NotFound) as hidden:
            Access(world.stranger).require(obj, Permission.can_edit, hidden_as=through)
        assert str(hidden.value) == f"step {through.id} not found" and obj.id not in str(hidden.value)
    obj, holder = world.direct[(ObjectType.convo, Role.viewer)]
    with pytest.raises(Forbidden) as refused:
        Access(holder).require(obj, Permission.can_delete, hidden_as=through)
    assert obj.id in str(refused.value)


def test_no_user_holds_nothing(world):
    """An OIDC identity without a user yet reads nothing, and costs no call."""
    access = Access(Principal(user_id=None, scheme="oidc"))
    assert access.permissions(world.nodes["team"]) == frozenset()


# -- access-token scopes ---------------------------------------------------------------------------------


@dataclass
class ScopeWorld:
    alice: Principal
    team: Ref
    topic: Ref
    convo: Ref
    source: Ref
    other_team: Ref
    own_topic: Ref
    own_convo: Ref
    shared_topic: Ref


@pytest.fixture(scope="module")
def scoped(world) -> ScopeWorld:
    alice = make_user(name="alice")
    me = ref_of(alice)
    team = make_object("team", me)
    topic = make_object("topic", team)
    convo = make_object("convo", topic)
    source = make_object("data_source", me)
    grant(source, convo, "dependent")
    own_topic = make_object("topic", me)
    shared_topic = make_object("topic", me)
    grant(shared_topic, team, "viewer")  # shared with the team, not owned by it
    return ScopeWorld(
        alice=alice,
        team=team,
        topic=topic,
        convo=convo,
        source=source,
        other_team=make_object("team", me),
        own_topic=own_topic,
        own_convo=make_object("convo", own_topic),
        shared_topic=shared_topic,
    )


def _token(alice: Principal, *scope: Ref) -> Access:
    return Access(replace(alice, scheme="access_token", scope=scope))


def test_a_team_scope_covers_the_team_its_topics_and_their_convos(scoped):
    s = scoped
    token, full = _token(s.alice, s.team), Access(s.alice)
    for covered in (s.team, s.topic, s.convo):
        assert token.in_scope(covered)
        assert token.permissions(covered) == full.permissions(covered) != frozenset()
    # A data source linked to a covered convo is covered too ("or links", Access.in_scope).
    assert token.in_scope(s.source)
    for outside in (s.other_team, s.own_topic, s.own_convo):
        assert not token.in_scope(outside)
        assert full.permissions(outside) != frozenset() and token.permissions(outside) == frozenset()
        with pytest.raises(NotFound):
            token.require(outside)


def test_a_team_scope_does_not_cover_what_is_only_shared_with_the_team(scoped):
    assert not _token(scoped.alice, scoped.team).in_scope(scoped.shared_topic)


def test_a_topic_scope_covers_its_convos_not_its_team(scoped):
    s = scoped
    token = _token(s.alice, s.topic)
    assert token.in_scope(s.topic) and token.in_scope(s.convo)
    assert not token.in_scope(s.team) and token.permissions(s.team) == frozenset()
    assert not token.in_scope(s.own_convo)


def test_the_whole_user_scope_covers_everything(scoped):
    s = scoped
    token, full = _token(s.alice, ref_of(s.alice)), Access(s.alice)
    for obj in (s.team, s.topic, s.convo, s.source, s.other_team, s.own_topic, s.own_convo, s.shared_topic):
        assert token.in_scope(obj) and token.permissions(obj) == full.permissions(obj)
    # Another user's id as a scope object covers nothing of alice's.
    stranger_scope = _token(s.alice, Ref("user", str(uuid4())))
    assert stranger_scope.permissions(s.team) == frozenset()


def test_a_narrow_token_does_not_reach_its_own_user_object(scoped):
    """I3: the token's own user object (grantees, profile, stats, related users) is covered by the
    whole-user scope only, and acting for oneself by name needs it too."""
    s = scoped
    me = ref_of(s.alice)
    for token in (_token(s.alice, s.convo), _token(s.alice, s.team), _token(s.alice)):
        assert not token.in_scope(me) and token.permissions(me) == frozenset()
        with pytest.raises(NotFound):
            token.require(me)
        assert authority.has_authority(token, s.alice.user_id) is False
        with pytest.raises(NotFound):
            authority.acting_for(token, s.alice.user_id)
        # Unnamed, the caller is itself, bounded object by object by its scope.
        assert authority.acting_for(token, None) is token
    whole = _token(s.alice, me)
    assert whole.in_scope(me) and Permission.can_edit in whole.permissions(me)
    assert authority.acting_for(whole, s.alice.user_id) is whole


def test_require_scope_for_owner(scoped):
    s = scoped
    for access in (Access(s.alice), _token(s.alice, ref_of(s.alice))):
        for owner in (s.team, s.topic, ref_of(s.alice), s.other_team):
            access.require_scope_for_owner(owner)
    token = _token(s.alice, s.team)
    token.require_scope_for_owner(s.team)
    token.require_scope_for_owner(s.topic)  # e.g. a convo in one of the team's topics
    for owner in (ref_of(s.alice), s.other_team, s.own_topic):
        with pytest.raises(Forbidden) as error:
            token.require_scope_for_owner(owner)
        assert error.value.code == "out_of_scope"


# -- authority ---------------------------------------------------------------------------------------------


@dataclass
class AuthorityWorld:
    service: Principal
    created: Principal
    member_of_owned: Principal
    member_of_administered: Principal
    granted_admin: Principal
    stranger: Principal
    plain_owner: Principal
    plain_member: Principal


@pytest.fixture(scope="module")
def authorities(world) -> AuthorityWorld:
    service, _ = make_service_account()
    created = make_user(admin=service)
    member_of_owned, member_of_administered, stranger = make_user(), make_user(), make_user()
    owned = make_object("team", ref_of(service))
    grant(owned, member_of_owned, "member")
    administered = make_object("team", ref_of(stranger))
    grant(administered, service, "admin")
    grant(administered, member_of_administered, "member")
    # An admin grant on a user object, as Add Grantee makes one: a permission, not authority.
    granted_admin = make_user()
    grant(ref_of(granted_admin), service, "admin")
    plain_owner, plain_member = make_user(), make_user()
    grant(make_object("team", ref_of(plain_owner)), plain_member, "member")
    return AuthorityWorld(
        service,
        created,
        member_of_owned,
        member_of_administered,
        granted_admin,
        stranger,
        plain_owner,
        plain_member,
    )


@pytest.mark.parametrize(
    ("caller", "user", "expected"),
    [
        ("service", "service", True),
        ("service", "created", True),
        # I1: nothing but having created the user gives authority.
        ("service", "member_of_owned", False),
        ("service", "member_of_administered", False),
        ("service", "granted_admin", False),
        ("service", "stranger", False),
        ("plain_owner", "plain_member", False),
        ("created", "service", False),
        ("member_of_owned", "service", False),
    ],
    ids=lambda v: str(v),
)
def test_authority(authorities, caller, user, expected):
    caller_p, user_p = getattr(authorities, caller), getattr(authorities, user)
    access = Access(caller_p)
    assert authority.has_authority(access, user_p.user_id) is expected
    if expected:
        assert authority.acting_for(access, user_p.user_id).principal.user_id == user_p.user_id
    else:
        with pytest.raises(NotFound):
            authority.acting_for(access, user_p.user_id)


def test_acting_for_no_one_is_oneself(authorities):
    access = Access(authorities.service)
    assert authority.acting_for(access, None) is access
    assert authority.acting_for(access, authorities.service.user_id) is access


def test_acting_keeps_the_token_scope(authorities):
    """Acting for a user never widens a scope: the acting access carries the caller's."""
    team = Ref("team", str(uuid4()))
    token = Access(
        replace(authorities.service, scheme="access_token", scope=(team, ref_of(authorities.created)))
    )
    acting = authority.acting_for(token, authorities.created.user_id)
    assert acting.principal.scope == (team, ref_of(authorities.created))


# -- AWS-call budget of a check ------------------------------------------------------------------------------


def test_a_check_on_a_convo_in_a_team_topic_costs_three_calls(world, aws_calls):
    member, convo = world.users["team_member"], world.nodes["convo"]
    access = Access(member)
    aws_calls.reset()
    access.require(convo, Permission.can_chat)
    # The convo's structural grants, the topic's (Queries), the member's grants on the chain (1 batch).
    assert aws_calls["dynamodb:Query"] == 2 and aws_calls["dynamodb:BatchGetItem"] == 1
    assert aws_calls.total == 3
    # Further checks in the same request, on the convo or anything of its chain, are free.
    access.require(convo)
    access.permissions(convo)
    access.require(world.nodes["topic"], Permission.can_chat)
    access.require(world.nodes["team"])
    assert not access.can(convo, Permission.can_delete)
    assert aws_calls.total == 3


@pytest.mark.parametrize(
    ("node", "queries"),
    [("team", 0), ("topic", 1), ("convo", 2), ("source", 3), ("team_convo", 1), ("prompt", 2)],
)
def test_check_cost_by_chain_length(world, aws_calls, node, queries):
    """A Query per object of the chain that can inherit, and one BatchGetItem, whatever the role."""
    access = Access(world.users["team_owner"])
    aws_calls.reset()
    access.permissions(world.nodes[node])
    assert aws_calls["dynamodb:Query"] == queries and aws_calls["dynamodb:BatchGetItem"] == 1
    assert aws_calls.total == queries + 1
