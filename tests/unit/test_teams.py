"""The teams service and models: the teams of a user, edits, membership and deletion against the
permission model."""

from dataclasses import replace
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.clock import now_iso
from kallo.errors import BadRequest, Conflict, Forbidden, NotFound
from kallo.models.teams import Team, TeamCreate, TeamUpdate, TeamUser
from kallo.services import teams
from kallo.store import grants, invitations, keys, objects
from kallo.store.keys import Ref
from kallo.store.table import Table, table
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of


def new_team(owner: Principal, name: str = "Team") -> Ref:
    return Ref("team", teams.create_team(Access(owner), TeamCreate(name=name))["id"])


def team_ids(found: list[dict]) -> list[str]:
    return [t["id"] for t in found]


# -- models -----------------------------------------------------------------------------------------


def test_team_update_needs_a_name():
    assert TeamUpdate.model_validate({"name": "  Red  "}).name == "Red"
    for bad in (
        {},
        {"name": None},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 257},
        {"name": "a", "id": "b"},
    ):
        with pytest.raises(ValidationError):
            TeamUpdate.model_validate(bad)


def test_team_user_view_and_models():
    grant_item = grants.item(
        Ref("team", "t"), Ref("user", "u"), "admin", created_by="x", created_at="2026-01-01T00:00:00.000Z"
    )
    view = teams.team_user(grant_item)
    assert view == {"teamId": "t", "userId": "u", "isOwner": False, "createdAt": "2026-01-01T00:00:00.000Z"}
    assert TeamUser.model_validate(view).model_dump(by_alias=True) == view
    stored = {"id": "t", "name": "n", "createdBy": "u", "createdAt": "c", "updatedAt": "d"}
    assert Team.model_validate(stored).model_dump(by_alias=True) == {
        k: v for k, v in stored.items() if k != "updatedAt"
    }


# -- Query Teams ------------------------------------------------------------------------------------


def test_query_teams_lists_every_role_and_nothing_else(aws):
    alice, bob = make_user(), make_user()
    mine = new_team(alice)
    teams_of_bob = [new_team(bob) for _ in range(4)]
    for team, role in zip(teams_of_bob, ("admin", "member", "viewer"), strict=False):
        grant(team, alice, role)
    found, token = teams.query_teams(Access(alice))
    assert sorted(team_ids(found)) == team_ids(found)  # by id
    assert set(team_ids(found)) == {mine.id, *(t.id for t in teams_of_bob[:3])}
    assert token is None
    # A topic grant, or a team that is gone (its grants not yet deleted), lists nothing.
    grant(make_object("topic", ref_of(bob)), alice, "viewer")
    table().delete(keys.object_key(teams_of_bob[0]))
    assert len(teams.query_teams(Access(alice))[0]) == 3


def test_query_teams_pages(aws):
    alice = make_user()
    made = sorted(new_team(alice).id for _ in range(5))
    seen, token, pages = [], None, 0
    while True:
        found, token = teams.query_teams(Access(alice), limit=2, next_token=token)
        seen += team_ids(found)
        pages += 1
        if not token:
            break
    assert seen == made and pages == 3
    # A cursor is bound to its query: another user's cursor, or anything but a cursor, is refused.
    _, alices_token = teams.query_teams(Access(alice), limit=1)
    for bad in (alices_token, "garbage", "e30"):
        with pytest.raises(BadRequest):
            teams.query_teams(Access(make_user()), next_token=bad)


def test_query_teams_for_another_user_needs_authority(aws):
    service, _ = make_service_account()
    created = make_user(admin=service)
    stranger = make_user()
    team = new_team(created)
    new_team(stranger)
    assert team_ids(teams.query_teams(Access(service), created.user_id)[0]) == [team.id]
    for caller, user in ((service, stranger), (stranger, created), (created, service)):
        with pytest.raises(NotFound):
            teams.query_teams(Access(caller), user.user_id)
    # Naming oneself is the same as naming no one.
    assert team_ids(teams.query_teams(Access(created), created.user_id)[0]) == [team.id]


def test_query_teams_keeps_to_the_token_scope(aws):
    alice = make_user()
    red, blue = new_team(alice), new_team(alice)
    scoped = Principal(user_id=alice.user_id, scheme="access_token", scope=(red,))
    assert team_ids(teams.query_teams(Access(scoped))[0]) == [red.id]
    whole = replace(scoped, scope=(ref_of(alice),))
    assert set(team_ids(teams.query_teams(Access(whole))[0])) == {red.id, blue.id}


# -- Update a Team -----------------------------------------------------------------------------------


def test_update_team_by_admins_only(aws):
    owner, admin, member, outsider = make_user(), make_user(), make_user(), make_user()
    team = new_team(owner, "Old")
    grant(team, admin, "admin")
    grant(team, member, "member")
    updated = teams.update_team(Access(admin), team.id, TeamUpdate(name="New"))
    assert updated["name"] == "New" and updated["createdBy"] == owner.user_id
    assert objects.get(team)["name"] == "New"
    with pytest.raises(Forbidden):
        teams.update_team(Access(member), team.id, TeamUpdate(name="X"))
    with pytest.raises(NotFound):
        teams.update_team(Access(outsider), team.id, TeamUpdate(name="X"))
    # A grant that outlives its team does not bring the team back.
    table().delete(keys.object_key(team))
    with pytest.raises(NotFound):
        teams.update_team(Access(owner), team.id, TeamUpdate(name="X"))
    assert objects.get(team) is None


# -- Delete a Team ----------------------------------------------------------------------------------


def _partition(ref: Ref) -> list[dict]:
    return table().query_all(keys.object_pk(ref))


def test_delete_team_removes_it_with_members_invitations_and_its_grants(aws):
    owner, admin, member = make_user(), make_user(), make_user()
    team = new_team(owner)
    grant(team, admin, "admin")
    grant(team, member, "member")
    invitations.put(
        invitations.item(
            team, "new@example.com", "member", created_by=owner.user_id, created_at=now_iso(), ttl=2**31
        )
    )
    others_topic = make_object("topic", ref_of(admin))
    grant(others_topic, team, "viewer")
    teams.delete_team(Access(owner), team.id)
    assert _partition(team) == []
    assert grants.all_of_grantee(team) == []
    assert invitations.for_email("new@example.com") == []
    assert grants.all_of_grantee(ref_of(member), object_type="team") == []
    # The topic it was granted stays, with its owner.
    assert objects.get(others_topic) and grants.get(others_topic, ref_of(admin))
    with pytest.raises(NotFound):
        teams.delete_team(Access(owner), team.id)


@pytest.mark.parametrize("kind", ["topic", "convo", "prompt", "data_source"])
def test_delete_team_refuses_while_it_owns_objects(aws, kind):
    owner = make_user()
    team = new_team(owner)
    owned = make_object(kind, team)
    with pytest.raises(Conflict) as error:
        teams.delete_team(Access(owner), team.id)
    assert error.value.code == "team_not_empty"
    assert error.value.details == [{"objectType": kind, "count": 1}]
    assert objects.get(team) and objects.get(owned)
    # Once the object has another owner, the team can go.
    table().delete(keys.grant_key(owned, team))
    grant(owned, owner, "owner")
    teams.delete_team(Access(owner), team.id)
    assert objects.get(team) is None and objects.get(owned)


def test_delete_team_is_for_the_owner(aws):
    owner, admin, outsider = make_user(), make_user(), make_user()
    team = new_team(owner)
    grant(team, admin, "admin")
    with pytest.raises(Forbidden):
        teams.delete_team(Access(admin), team.id)
    with pytest.raises(NotFound):
        teams.delete_team(Access(outsider), team.id)
    scoped = Principal(user_id=owner.user_id, scheme="access_token", scope=(new_team(owner),))
    with pytest.raises(NotFound):
        teams.delete_team(Access(scoped), team.id)
    assert objects.get(team)


# -- Get a Team's Users -------------------------------------------------------------------------------


def test_get_team_users_pages_every_role(aws):
    owner, outsider = make_user(), make_user()
    team = new_team(owner)
    others = [make_user() for _ in range(4)]
    for user, role in zip(others, ("admin", "member", "viewer", "member"), strict=True):
        grant(team, user, role)
    first, token = teams.get_team_users(Access(others[2]), team.id, limit=3)
    rest, end = teams.get_team_users(Access(others[2]), team.id, limit=3, next_token=token)
    listed = first + rest
    assert end is None and len(first) == 3
    assert [u["userId"] for u in listed] == sorted(u.user_id for u in [owner, *others])
    assert {u["userId"] for u in listed if u["isOwner"]} == {owner.user_id}
    assert {u["teamId"] for u in listed} == {team.id}
    with pytest.raises(NotFound):
        teams.get_team_users(Access(outsider), team.id)
    # A cursor of another team is refused.
    other = new_team(owner)
    with pytest.raises(BadRequest):
        teams.get_team_users(Access(owner), other.id, next_token=token)


# -- Add a Team User --------------------------------------------------------------------------------


def test_add_team_user_makes_a_member_once(aws):
    tenant, _ = make_service_account()
    owner, admin, newcomer = (make_user(admin=tenant) for _ in range(3))
    team = new_team(owner)
    grant(team, admin, "admin")
    added = teams.add_team_user(Access(admin), team.id, newcomer.user_id)
    assert added["userId"] == newcomer.user_id and added["isOwner"] is False
    assert grants.get(team, ref_of(newcomer))["role"] == "member"
    again = teams.add_team_user(Access(owner), team.id, newcomer.user_id)
    assert again == added
    # Roles already held are kept, the owner's included.
    assert teams.add_team_user(Access(owner), team.id, admin.user_id)["isOwner"] is False
    assert grants.get(team, ref_of(admin))["role"] == "admin"
    assert teams.add_team_user(Access(admin), team.id, owner.user_id)["isOwner"] is True


def test_add_team_user_refusals(aws):
    owner, member, outsider, someone = make_user(), make_user(), make_user(), make_user()
    team = new_team(owner)
    grant(team, member, "member")
    with pytest.raises(NotFound):  # unknown user
        teams.add_team_user(Access(owner), team.id, str(uuid4()))
    with pytest.raises(Forbidden):  # members may not add
        teams.add_team_user(Access(member), team.id, someone.user_id)
    with pytest.raises(NotFound):  # hidden team
        teams.add_team_user(Access(outsider), team.id, someone.user_id)
    assert grants.get(team, ref_of(someone)) is None
    # A deleted team whose owner grant is still there: nothing is written.
    table().delete(keys.object_key(team))
    with pytest.raises(NotFound):
        teams.add_team_user(Access(owner), team.id, someone.user_id)
    assert grants.get(team, ref_of(someone)) is None


def test_adding_a_user_to_a_service_accounts_team_gives_it_no_authority(aws):
    """Otherwise a service account could add anyone whose id it knows to a team it owns, then act for
    them (services.authority counts only memberships someone else granted)."""
    service, _ = make_service_account()
    own = make_user(admin=service)
    team = new_team(service)
    teams.add_team_user(Access(service), team.id, own.user_id)
    assert grants.get(team, ref_of(own))["createdBy"] == service.user_id
    # A membership of the user's own making gives the service account nothing over it either.
    victim = make_user()
    victims_team = new_team(victim)
    grant(victims_team, service, "member")
    with pytest.raises(NotFound):
        teams.query_teams(Access(service), victim.user_id)


def _refusal(*args: Any) -> tuple[type, str]:
    with pytest.raises(NotFound) as caught:
        teams.add_team_user(*args)
    return type(caught.value), str(caught.value)


@pytest.mark.parametrize("victim_kind", ["other_tenants_user", "self_registered", "other_service_account"])
def test_another_tenants_user_is_as_missing_as_an_unknown_id(aws, victim_kind):
    """I1/I4: tenant A adding B's user to A's team learns nothing (the 404 is the one a random id gets)
    and pushes nothing onto it; nor does a user of A acting by itself."""
    tenant_a, _ = make_service_account("a")
    tenant_b, _ = make_service_account("b")
    victim = {
        "other_tenants_user": lambda: make_user(admin=tenant_b).user_id,
        "self_registered": lambda: make_user(email="pat@b.example").user_id,
        "other_service_account": lambda: tenant_b.user_id,
    }[victim_kind]()
    a_user = make_user(admin=tenant_a)
    for caller in (tenant_a, a_user):
        team = new_team(caller)
        unknown = str(uuid4())
        refused = _refusal(Access(caller), team.id, victim)
        missing = _refusal(Access(caller), team.id, unknown)
        assert refused == (missing[0], missing[1].replace(unknown, victim))
        assert grants.get(team, Ref("user", victim)) is None


def test_a_tenants_users_add_each_other_and_themselves(aws):
    tenant, _ = make_service_account()
    alice, bob = make_user(admin=tenant), make_user(admin=tenant)
    team = new_team(alice)
    assert teams.add_team_user(Access(alice), team.id, bob.user_id)["userId"] == bob.user_id
    assert teams.add_team_user(Access(alice), team.id, tenant.user_id)["userId"] == tenant.user_id
    own = new_team(tenant)
    assert teams.add_team_user(Access(tenant), own.id, alice.user_id)["userId"] == alice.user_id
    # A self-registered user is a tenant of its own: itself only.
    pat = make_user(email="pat@example.com")
    pats = new_team(pat)
    assert teams.add_team_user(Access(pat), pats.id, pat.user_id)["isOwner"] is True
    with pytest.raises(NotFound):
        teams.add_team_user(Access(pat), pats.id, alice.user_id)


def test_add_team_user_concurrent_grant_wins(aws, monkeypatch):
    """A role granted between the read and the write is kept: the write only creates a new grant."""
    tenant, _ = make_service_account()
    owner, user = make_user(admin=tenant), make_user(admin=tenant)
    team = new_team(owner)
    grant(team, user, "admin")
    hidden = keys.grant_key(team, ref_of(user))
    real = Table.batch_get
    # The read misses the grant, as it would when the grant is written just after it.
    monkeypatch.setattr(
        Table, "batch_get", lambda self, wanted: [i for i in real(self, wanted) if i["SK"] != hidden["SK"]]
    )
    added = teams.add_team_user(Access(owner), team.id, user.user_id)
    assert added["userId"] == user.user_id
    assert grants.get(team, ref_of(user))["role"] == "admin"


# -- Remove a Team User -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remover", "removed", "allowed"),
    [
        ("owner", "admin", True),
        ("owner", "member", True),
        ("admin", "admin", True),
        ("admin", "member", True),
        ("admin", "viewer", True),
        ("member", "member", False),
        ("member", "viewer", False),
        ("viewer", "member", False),
    ],
    ids=lambda v: str(v).lower(),
)
def test_remove_team_user_by_role(aws, remover, removed, allowed):
    owner = make_user()
    team = new_team(owner)
    caller, target = (owner if remover == "owner" else make_user()), make_user()
    if remover != "owner":
        grant(team, caller, remover)
    grant(team, target, removed)
    if allowed:
        teams.remove_team_user(Access(caller), team.id, target.user_id)
        assert grants.get(team, ref_of(target)) is None
    else:
        with pytest.raises(Forbidden):
            teams.remove_team_user(Access(caller), team.id, target.user_id)
        assert grants.get(team, ref_of(target))["role"] == removed


@pytest.mark.parametrize("role", ["admin", "member", "viewer"])
def test_remove_team_user_leaving(aws, role):
    owner, user = make_user(), make_user()
    team = new_team(owner)
    grant(team, user, role)
    teams.remove_team_user(Access(user), team.id, user.user_id)
    assert grants.get(team, ref_of(user)) is None
    with pytest.raises(NotFound):  # gone: the team is hidden now
        teams.remove_team_user(Access(user), team.id, user.user_id)


def test_remove_team_user_refusals(aws):
    owner, admin, outsider = make_user(), make_user(), make_user()
    team = new_team(owner)
    grant(team, admin, "admin")
    for caller in (owner, admin):
        with pytest.raises(Conflict) as error:
            teams.remove_team_user(Access(caller), team.id, owner.user_id)
        assert error.value.code == "owner_cannot_be_removed"
    with pytest.raises(NotFound):  # not a user of the team
        teams.remove_team_user(Access(owner), team.id, outsider.user_id)
    with pytest.raises(NotFound):  # hidden team
        teams.remove_team_user(Access(outsider), team.id, admin.user_id)
    assert grants.get(team, ref_of(owner))["role"] == "owner"
    assert grants.get(team, ref_of(admin))["role"] == "admin"
