"""The grantees service against the permission model: input rules, role changes, owner transfers and
the fields that follow the owner, leaving, invitations."""

import time
from uuid import uuid4

import pytest
from pydantic import ValidationError

from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.authz.policy import (
    ALLOWED_GRANTS,
    PERMISSIONS,
    GranteeType,
    ObjectType,
    Permission,
    Role,
    add_permission,
    remove_permission,
)
from kallo.errors import BadRequest, Forbidden, NotFound
from kallo.models.common import Grantee
from kallo.services import grantees
from kallo.settings import get_settings
from kallo.store import grants, invitations, keys, objects
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of


def user_grantee(user, role: str) -> Grantee:
    return Grantee(id=user.user_id, type=GranteeType.user, role=Role(role))


# -- the policy the service relies on ------------------------------------------------------------------


def test_every_allowed_grant_can_be_made_and_undone_by_some_role():
    """Add and Remove Grantee need can_add_<role> / can_remove_<role>: a grant the policy allows but no
    role may make would be reachable only by replacing all grantees."""
    for object_type, by_type in ALLOWED_GRANTS.items():
        for roles in by_type.values():
            for role in roles - {Role.owner, Role.dependent}:
                by_role = PERMISSIONS[object_type]
                assert any(add_permission(role) in held for held in by_role.values()), (object_type, role)
                assert any(remove_permission(role) in held for held in by_role.values()), (object_type, role)
    # Owners change through Set Grantees, which needs both owner permissions on the object.
    for object_type in ALLOWED_GRANTS:
        if object_type != ObjectType.user:
            owner = PERMISSIONS[object_type][Role.owner]
            assert {Permission.can_add_owner, Permission.can_remove_owner} <= owner, object_type


def test_the_input_rules_refuse_before_any_aws_call(aws, aws_calls):
    """Every (object type, grantee type, role): a refused combination is a 400 with its code and costs
    nothing; an accepted one goes on to the object (unknown here: 404)."""
    alice = make_user()
    aws_calls.reset()
    for object_type in ObjectType:
        obj = Ref(object_type.value, str(uuid4()))
        allowed = ALLOWED_GRANTS[object_type]
        for grantee_type in GranteeType:
            for role in Role:
                body = Grantee(id=str(uuid4()), type=grantee_type, role=role)
                linked = object_type in (ObjectType.data_source, ObjectType.prompt) and grantee_type in (
                    GranteeType.convo,
                    GranteeType.topic,
                )
                if role == Role.owner:
                    expected = "use_put_for_owner"
                elif role == Role.dependent or linked:
                    expected = "use_link_endpoint"
                elif role not in allowed.get(grantee_type, frozenset()):
                    expected = "grant_not_supported"
                else:
                    expected = None
                calls = aws_calls.total
                if expected is None:
                    with pytest.raises(NotFound):
                        grantees.add_grantee(Access(alice), obj, body)
                else:
                    with pytest.raises(BadRequest) as refused:
                        grantees.add_grantee(Access(alice), obj, body)
                    assert refused.value.code == expected, (object_type, grantee_type, role)
                    assert aws_calls.total == calls


def test_grantee_model():
    assert Grantee.model_validate({"type": "user", "role": "member"}).id is None
    upper = str(uuid4()).upper()
    assert Grantee.model_validate({"id": upper, "type": "team", "role": "viewer"}).id == upper.lower()
    for bad in (
        {"id": "x", "type": "user", "role": "member"},
        {"type": "group", "role": "member"},
        {"type": "user", "role": "king"},
        {"type": "user"},
        {"type": "user", "role": "member", "name": "extra"},
    ):
        with pytest.raises(ValidationError):
            Grantee.model_validate(bad)


# -- Add Grantee ----------------------------------------------------------------------------------------


def test_a_role_change_needs_removing_the_old_role(aws, aws_calls, monkeypatch):
    owner, admin, mate = make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, admin, "admin")
    grant(team, mate, "member")
    narrowed = PERMISSIONS[ObjectType.team][Role.admin] - {Permission.can_remove_member}
    monkeypatch.setitem(PERMISSIONS[ObjectType.team], Role.admin, narrowed)
    aws_calls.reset()
    with pytest.raises(Forbidden) as denied:
        grantees.add_grantee(Access(admin), team, user_grantee(mate, "viewer"))
    assert "can_remove_member" in denied.value.message
    assert aws_calls["dynamodb:TransactWriteItems"] == 0
    assert grants.get(team, ref_of(mate))["role"] == "member"
    # Whoever may remove members may.
    assert grantees.add_grantee(Access(owner), team, user_grantee(mate, "viewer"))["role"] == "viewer"


def test_add_grantee_to_an_object_deleted_meanwhile(aws):
    tenant, _ = make_service_account()
    alice, bob = make_user(admin=tenant), make_user(admin=tenant)
    topic = make_object("topic", ref_of(alice))
    # Its grants wait for the purge worker, so the permission check still passes.
    table().delete(keys.object_key(topic))
    with pytest.raises(NotFound):
        grantees.add_grantee(Access(alice), topic, user_grantee(bob, "viewer"))
    assert grants.get(topic, ref_of(bob)) is None


def _not_found(call, *args) -> tuple[int, str, str]:
    with pytest.raises(NotFound) as caught:
        call(*args)
    return caught.value.status, caught.value.code, caught.value.message


@pytest.mark.parametrize("object_type", ["convo", "team", "topic"])
def test_another_tenants_user_is_no_grantee_and_answers_like_an_unknown_id(aws, aws_calls, object_type):
    """I1/I4: tenant A (its service account, or one of its users) naming B's user by id as a grantee of
    A's object learns nothing (the very 404 of a random id) and writes nothing; Set Grantees likewise."""
    tenant_a, _ = make_service_account("a")
    tenant_b, _ = make_service_account("b")
    victims = [make_user(admin=tenant_b).user_id, make_user(email="b@b.example").user_id, tenant_b.user_id]
    for caller in (tenant_a, make_user(admin=tenant_a)):
        obj = make_object(object_type, ref_of(caller))
        role = "viewer"
        for victim in victims:
            unknown = str(uuid4())
            body = Grantee(id=victim, type=GranteeType.user, role=Role(role))
            aws_calls.reset()
            refused = _not_found(grantees.add_grantee, Access(caller), obj, body)
            assert aws_calls["dynamodb:TransactWriteItems"] == 0
            missing = _not_found(
                grantees.add_grantee, Access(caller), obj, body.model_copy(update={"id": unknown})
            )
            assert refused == (*missing[:2], missing[2].replace(unknown, victim))
            whole = [user_grantee(caller, "owner"), body]
            assert _not_found(grantees.set_grantees, Access(caller), obj, whole) == refused
            assert grants.get(obj, Ref("user", victim)) is None


def test_a_tenants_users_share_with_each_other(aws):
    tenant, _ = make_service_account()
    alice, bob = make_user(admin=tenant), make_user(admin=tenant)
    convo = make_object("convo", ref_of(alice))
    assert grantees.add_grantee(Access(alice), convo, user_grantee(bob, "participant")) == {
        "id": bob.user_id,
        "type": "user",
        "role": "participant",
    }
    grantees.set_grantees(
        Access(alice),
        convo,
        [user_grantee(alice, "owner"), user_grantee(bob, "viewer"), user_grantee(tenant, "viewer")],
    )
    assert grants.get(convo, ref_of(tenant))["role"] == "viewer"


def test_inviting_an_address_someone_verified_only_stores_an_invitation(aws, aws_calls):
    """I2: no oracle on who is registered: inviting the address of a registered (verified) user answers
    exactly as inviting an unknown one, and grants nothing until that user accepts."""
    tenant, _ = make_service_account()
    pat = make_user(email="pat@b.example")
    convo = make_object("convo", ref_of(tenant))
    body = Grantee(type=GranteeType.user, role=Role.participant)
    answers, costs = [], []
    for email in ("pat@b.example", "nobody@b.example"):
        aws_calls.reset()
        answer = grantees.add_grantee(Access(tenant), convo, body, invite_email=email)
        answers.append({k: v for k, v in answer.items() if k not in ("inviteEmail", "createdAt")})
        costs.append(dict(aws_calls.calls))
    # The same answer at the same cost: the convo's check and the invitation's write, no user lookup.
    assert answers[0] == answers[1] and costs[0] == costs[1]
    assert costs[0]["dynamodb:TransactWriteItems"] == 1 and "dynamodb:GetItem" not in costs[0]
    assert grants.get(convo, ref_of(pat)) is None
    assert invitations.get(convo, "pat@b.example")["role"] == "participant"


def test_an_invitation_expires_after_the_configured_days(aws):
    alice = make_user()
    convo = make_object("convo", ref_of(alice))
    before = int(time.time())
    invitation = grantees.add_grantee(
        Access(alice),
        convo,
        Grantee(type=GranteeType.user, role=Role.participant),
        invite_email="guest@example.com",
    )
    assert set(invitation) == {"objectType", "objectId", "inviteEmail", "role", "createdBy", "createdAt"}
    stored = invitations.get(convo, "guest@example.com")
    days = get_settings().invitation_ttl_days * 86400
    assert before + days <= stored["ttl"] <= int(time.time()) + days
    assert stored["role"] == "participant" and stored["createdBy"] == alice.user_id
    # Inviting again renews the one invitation.
    grantees.add_grantee(
        Access(alice),
        convo,
        Grantee(type=GranteeType.user, role=Role.viewer),
        invite_email="guest@example.com",
    )
    assert [i["role"] for i in invitations.of_object(convo)] == ["viewer"]


# -- Set Grantees -------------------------------------------------------------------------------------


def test_set_grantees_moves_a_convo_between_owners_and_keeps_its_fields_right(aws):
    alice = make_user()
    topic = make_object("topic", ref_of(alice))
    convo = make_object("convo", ref_of(alice))
    topic_owner = Grantee(id=topic.id, type=GranteeType.topic, role=Role.owner)
    result = grantees.set_grantees(Access(alice), convo, [topic_owner, user_grantee(alice, "admin")])
    assert result == [
        {"id": topic.id, "type": "topic", "role": "owner"},
        {"id": alice.user_id, "type": "user", "role": "admin"},
    ]
    assert objects.get(convo)["topicId"] == topic.id
    assert grants.owner_of(grants.all_of_object(convo)) == topic
    # Unchanged owner: the item is left as it is.
    updated = objects.get(convo)["updatedAt"]
    grantees.set_grantees(Access(alice), convo, [topic_owner])
    assert objects.get(convo)["updatedAt"] == updated
    grantees.set_grantees(Access(alice), convo, [user_grantee(alice, "owner")])
    assert "topicId" not in objects.get(convo) and "teamId" not in objects.get(convo)


def test_set_grantees_on_objects_that_do_not_name_their_owner(aws):
    service, _ = make_service_account()
    bob = make_user(admin=service)
    for kind in ("team", "data_source"):
        obj = make_object(kind, ref_of(service))
        before = objects.get(obj)
        grantees.set_grantees(
            Access(service), obj, [user_grantee(bob, "owner"), user_grantee(service, "admin")]
        )
        assert objects.get(obj) == before
        assert grants.get(obj, ref_of(bob))["role"] == "owner"


def test_set_grantees_refuses_listing_a_link(aws, monkeypatch):
    alice = make_user()
    source = make_object("data_source", ref_of(alice))
    topic = make_object("topic", ref_of(alice))
    grant(source, topic, "dependent")
    # Even should the policy one day let a topic hold another role on a data source.
    widened = {**ALLOWED_GRANTS[ObjectType.data_source], GranteeType.topic: frozenset({Role.viewer})}
    monkeypatch.setitem(ALLOWED_GRANTS, ObjectType.data_source, widened)
    monkeypatch.setattr(grantees, "_LINK_ENDPOINTS", {})
    body = [user_grantee(alice, "owner"), Grantee(id=topic.id, type=GranteeType.topic, role=Role.viewer)]
    with pytest.raises(BadRequest) as refused:
        grantees.set_grantees(Access(alice), source, body)
    assert refused.value.code == "use_link_endpoint"
    assert grants.get(source, topic)["role"] == "dependent"


def team_owner(team: Ref) -> Grantee:
    return Grantee(id=team.id, type=GranteeType.team, role=Role.owner)


def test_a_new_owner_team_takes_what_creating_in_it_takes(aws):
    """I5: moving a topic into a team needs `can_edit` on the team, as Create New Topic `teamId` does;
    a team the caller cannot see is 404, one it only views or chats in is 403."""
    alice, mallory = make_user(), make_user()
    topic = make_object("topic", ref_of(alice))
    hidden = make_object("team", ref_of(mallory))
    with pytest.raises(NotFound):
        grantees.set_grantees(Access(alice), topic, [team_owner(hidden)])
    for role in ("viewer", "member"):
        team = make_object("team", ref_of(mallory))
        grant(team, alice, role)
        with pytest.raises(Forbidden):
            grantees.set_grantees(Access(alice), topic, [team_owner(team)])
        assert grants.all_of_grantee(team, object_type="topic") == []
    assert grants.owner_of(grants.all_of_object(topic)) == ref_of(alice)
    assert "teamId" not in objects.get(topic)
    managed = make_object("team", ref_of(mallory))
    grant(managed, alice, "admin")
    grantees.set_grantees(Access(alice), topic, [team_owner(managed)])
    assert objects.get(topic)["teamId"] == managed.id


def test_a_convo_moves_only_into_a_topic_its_mover_may_chat_in(aws):
    alice, mallory = make_user(), make_user()
    convo = make_object("convo", ref_of(alice))
    watched = make_object("topic", ref_of(mallory))
    grant(watched, alice, "viewer")
    with pytest.raises(Forbidden):
        grantees.set_grantees(
            Access(alice), convo, [Grantee(id=watched.id, type=GranteeType.topic, role=Role.owner)]
        )
    assert grants.all_of_grantee(watched, object_type="convo") == []
    assert grants.owner_of(grants.all_of_object(convo)) == ref_of(alice)


def test_a_new_owner_user_is_the_caller_or_under_its_authority(aws):
    service, _ = make_service_account()
    own, stranger = make_user(admin=service), make_user()
    topic = make_object("topic", ref_of(service))
    with pytest.raises(NotFound):
        grantees.set_grantees(Access(service), topic, [user_grantee(stranger, "owner")])
    assert grants.get(topic, ref_of(stranger)) is None
    grantees.set_grantees(Access(service), topic, [user_grantee(own, "owner")])
    assert grants.owner_of(grants.all_of_object(topic)) == ref_of(own)


def test_a_narrow_token_cannot_move_its_topic_to_another_owner(aws):
    alice = make_user()
    team, other_team = make_object("team", ref_of(alice)), make_object("team", ref_of(alice))
    topic = make_object("topic", team)
    scoped = Access(Principal(user_id=alice.user_id, scheme="access_token", scope=(topic,)))
    # Another team is outside the token's scope: hidden.
    with pytest.raises(NotFound):
        grantees.set_grantees(scoped, topic, [team_owner(other_team)])
    # Owning as oneself needs the whole-user scope.
    with pytest.raises(Forbidden) as refused:
        grantees.set_grantees(scoped, topic, [user_grantee(alice, "owner")])
    assert refused.value.code == "out_of_scope"
    assert grants.owner_of(grants.all_of_object(topic)) == team


def test_topic_and_convo_grantees_are_links_only_through_the_link_operations(aws):
    """I5: a `dependent` grant (a prompt or data source linked to a topic or convo) is never made by
    Add / Set Grantees, whatever the caller holds; the link operations check both objects."""
    alice = make_user()
    topic = make_object("topic", ref_of(alice))
    convo = make_object("convo", ref_of(alice))
    for kind in ("prompt", "data_source"):
        obj = make_object(kind, ref_of(alice))
        for target, role in ((topic, Role.dependent), (topic, Role.viewer), (convo, Role.dependent)):
            link = Grantee(id=target.id, type=GranteeType(target.type), role=role)
            with pytest.raises(BadRequest) as added:
                grantees.add_grantee(Access(alice), obj, link)
            with pytest.raises(BadRequest) as replaced:
                grantees.set_grantees(Access(alice), obj, [user_grantee(alice, "owner"), link])
            assert added.value.code == replaced.value.code == "use_link_endpoint"
            assert grants.get(obj, target) is None


# -- Remove Grantee -----------------------------------------------------------------------------------


def test_anyone_may_leave(aws):
    alice, bob = make_user(), make_user()
    convo = make_object("convo", ref_of(alice))
    grant(convo, bob, "viewer")
    grantees.remove_grantee(Access(bob), convo, ref_of(bob), Role.viewer)
    assert grants.get(convo, ref_of(bob)) is None
    # Gone, bob no longer sees the convo at all.
    with pytest.raises(NotFound):
        grantees.remove_grantee(Access(bob), convo, ref_of(bob), Role.viewer)


def test_query_grantees_pages_through_the_service(aws):
    alice = make_user()
    team = make_object("team", ref_of(alice))
    for _ in range(4):
        grant(team, Ref("user", str(uuid4())), "member")
    seen, token, pages = [], None, 0
    while True:
        page, token = grantees.query_grantees(Access(alice), team, limit=2, next_token=token)
        seen += page
        pages += 1
        if not token:
            break
    assert len(seen) == 5 and len({g["id"] for g in seen}) == 5 and pages == 3
