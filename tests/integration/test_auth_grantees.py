"""Query / Add / Set / Remove Grantee: GET, POST, PUT, DELETE /auth/grantees, through the handlers."""

import json
from dataclasses import replace
from uuid import uuid4

import pytest

from kallo.auth.principal import Principal
from kallo.store import grants, invitations, keys, objects
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of


def on(obj: Ref, **extra: str) -> dict[str, str]:
    return {"objectType": obj.type, "objectId": obj.id, **extra}


def team_owner(team: Ref) -> dict[str, str]:
    return {"id": team.id, "type": "team", "role": "owner"}


def member(user: Principal, role: str) -> dict[str, str]:
    return {"id": user.user_id or "", "type": "user", "role": role}


def role_of(obj: Ref, grantee: Ref | Principal) -> str | None:
    ref = grantee if isinstance(grantee, Ref) else ref_of(grantee)
    found = grants.get(obj, ref)
    return found["role"] if found else None


def assert_client_error(result, status: int | None = None, code: str | None = None) -> None:
    assert 400 <= result.status < 500, (result.status, result.body)
    assert {"code", "message"} <= set(result.json), result.body
    if status is not None:
        assert result.status == status, result.body
    if code is not None:
        assert result.json["code"] == code, result.body


@pytest.fixture
def tenant(aws) -> Principal:
    """The service account whose users the tests' users are: grantees named by id are of one's tenant."""
    return make_service_account("tenant")[0]


@pytest.fixture
def team_world(tenant):
    """A team: its owner, an admin and a member, and an outsider, all users of one tenant."""
    owner, admin, mate, outsider = (make_user(admin=tenant) for _ in range(4))
    team = make_object("team", ref_of(owner))
    grant(team, admin, "admin")
    grant(team, mate, "member")
    return team, owner, admin, mate, outsider


# -- Query Grantees ---------------------------------------------------------------------------------


def test_query_grantees_lists_direct_grants(team_world, aws_calls):
    team, owner, admin, mate, _ = team_world
    aws_calls.reset()
    result = invoke("auth.query_grantees", mate, query=on(team))
    assert result.status == 200, result.body
    assert sorted(result.json, key=lambda g: g["role"]) == sorted(
        [member(owner, "owner"), member(admin, "admin"), member(mate, "member")], key=lambda g: g["role"]
    )
    assert "x-next-token" not in result.headers
    # The team check (its grant, 1 BatchGetItem) and the grants (1 Query).
    assert aws_calls["dynamodb:BatchGetItem"] == 1 and aws_calls["dynamodb:Query"] == 1
    assert aws_calls.total == 2


def test_query_grantees_pages(team_world):
    team, owner, *_ = team_world
    first = invoke("auth.query_grantees", owner, query=on(team, limit="2"))
    assert first.status == 200 and len(first.json) == 2
    token = first.headers["x-next-token"]
    second = invoke("auth.query_grantees", owner, query=on(team, limit="2", nextToken=token))
    assert second.status == 200 and len(second.json) == 1
    assert {g["id"] for g in first.json + second.json} == {g["granteeId"] for g in grants.all_of_object(team)}
    # A cursor is bound to its object's grants.
    other = make_object("team", ref_of(owner))
    assert_client_error(
        invoke("auth.query_grantees", owner, query=on(other, limit="2", nextToken=token)),
        400,
        "invalid_next_token",
    )


def test_query_grantees_of_a_convo_shows_structural_grants_first(aws, aws_calls):
    alice, bob = make_user(), make_user()
    team = make_object("team", ref_of(alice))
    grant(team, bob, "member")
    topic = make_object("topic", team)
    convo = make_object("convo", topic, createdBy=alice.user_id)
    grant(convo, alice, "admin")
    aws_calls.reset()
    result = invoke("auth.query_grantees", bob, query=on(convo))
    assert result.status == 200, result.body
    assert result.json == [
        {"id": topic.id, "type": "topic", "role": "owner"},
        {"id": alice.user_id, "type": "user", "role": "admin"},
    ]
    # Bob's view of the convo: a Query per inheriting object (convo, topic), 1 BatchGetItem; then the grants.
    assert aws_calls["dynamodb:Query"] == 3 and aws_calls["dynamodb:BatchGetItem"] == 1
    assert aws_calls.total == 4


def test_query_grantees_of_hidden_or_unknown_objects_is_404(team_world):
    team, _, _, _, outsider = team_world
    for obj in (team, Ref("team", str(uuid4())), Ref("convo", str(uuid4()))):
        assert_client_error(invoke("auth.query_grantees", outsider, query=on(obj)), 404, "not_found")


def test_query_grantees_bad_input(team_world):
    team, owner, *_ = team_world
    for query in (
        {},
        {"objectType": "team"},
        {"objectType": "group", "objectId": team.id},
        {"objectType": "team", "objectId": "not-a-uuid"},
        {"objectType": "team", "objectId": "x" * 5000},
        on(team, limit="0"),
        on(team, limit="101"),
        on(team, limit="ten"),
        on(team, nextToken="%%%"),
        on(team, nextToken="x" * 2000),
    ):
        assert_client_error(invoke("auth.query_grantees", owner, query=query))


# -- Add Grantee --------------------------------------------------------------------------------------


def test_owner_adds_a_member(team_world, tenant, aws_calls):
    team, owner, *_ = team_world
    newcomer = make_user(admin=tenant)
    aws_calls.reset()
    result = invoke("auth.add_grantee", owner, query=on(team), body=member(newcomer, "member"))
    assert result.status == 201, result.body
    assert result.json == member(newcomer, "member")
    # Check (1 BatchGetItem), the grantee with its current grant and the caller's user for the tenant
    # check (1 BatchGetItem), the write.
    assert aws_calls["dynamodb:BatchGetItem"] == 2 and aws_calls["dynamodb:TransactWriteItems"] == 1
    assert aws_calls.total == 3
    assert role_of(team, newcomer) == "member"


def test_adding_the_role_held_again_writes_nothing(team_world, aws_calls):
    team, owner, _, mate, _ = team_world
    aws_calls.reset()
    result = invoke("auth.add_grantee", owner, query=on(team), body=member(mate, "member"))
    assert result.status == 201 and result.json == member(mate, "member")
    assert aws_calls.total == 2 and aws_calls["dynamodb:TransactWriteItems"] == 0


def test_a_grantee_changes_role(aws):
    owner, admin, reader = make_user(), make_user(), make_user()
    source = make_object("data_source", ref_of(owner))
    grant(source, admin, "admin")
    grant(source, reader, "viewer")
    team = make_object("team", ref_of(admin))
    shared = invoke(
        "auth.add_grantee", admin, query=on(source), body={"id": team.id, "type": "team", "role": "member"}
    )
    assert shared.status == 201, shared.body
    # The owner cannot view the admin's team, yet may change the role it already holds.
    changed = invoke(
        "auth.add_grantee", owner, query=on(source), body={"id": team.id, "type": "team", "role": "viewer"}
    )
    assert changed.status == 201, changed.body
    assert role_of(source, team) == "viewer"
    promoted = invoke("auth.add_grantee", admin, query=on(source), body=member(reader, "admin"))
    assert promoted.status == 201 and role_of(source, reader) == "admin"
    # A viewer may not change roles.
    grant(source, reader, "viewer")
    assert_client_error(
        invoke("auth.add_grantee", reader, query=on(source), body=member(admin, "viewer")), 403
    )
    assert role_of(source, admin) == "admin"


def test_the_owner_role_is_only_changed_by_put(team_world):
    team, owner, admin, *_ = team_world
    assert_client_error(
        invoke("auth.add_grantee", owner, query=on(team), body=member(admin, "owner")),
        400,
        "use_put_for_owner",
    )
    # Nor can an owner be demoted here.
    assert_client_error(
        invoke("auth.add_grantee", owner, query=on(team), body=member(owner, "admin")),
        400,
        "use_put_for_owner",
    )
    assert role_of(team, owner) == "owner"


def test_links_are_refused_with_the_endpoint_to_use(aws):
    alice = make_user()
    topic = make_object("topic", ref_of(alice))
    convo = make_object("convo", ref_of(alice))
    source = make_object("data_source", ref_of(alice))
    prompt = make_object("prompt", ref_of(alice))
    for obj, body, endpoint in (
        (source, {"id": convo.id, "type": "convo", "role": "viewer"}, "data-sources"),
        (source, {"id": topic.id, "type": "topic", "role": "dependent"}, "data-sources"),
        (prompt, {"id": topic.id, "type": "topic", "role": "viewer"}, "/prompts/"),
        (topic, {"id": alice.user_id, "type": "user", "role": "dependent"}, "PUT /topics"),
    ):
        result = invoke("auth.add_grantee", alice, query=on(obj), body=body)
        assert_client_error(result, 400, "use_link_endpoint")
        assert endpoint in result.json["message"]


def test_a_viewer_cannot_link_a_prompt_through_the_grantee_endpoints(aws):
    """I5 (finding 10): a `dependent` grant is a link, made only by Set Topic Prompt (which needs
    `can_add_dependent` on the prompt); Add and Set Grantees refuse it, and the owner's prompt keeps
    exactly its grants."""
    alice, mallory = make_user(), make_user()
    prompt = make_object("prompt", ref_of(alice))
    grant(prompt, mallory, "viewer")
    mallorys_topic = make_object("topic", ref_of(mallory))
    link = {"id": mallorys_topic.id, "type": "topic", "role": "dependent"}
    added = invoke("auth.add_grantee", mallory, query=on(prompt), body=link)
    assert_client_error(added, 400, "use_link_endpoint")
    # Replacing the grantees is the owner's alone: the viewer is refused before its body is read.
    replaced = invoke("auth.set_grantees", mallory, query=on(prompt), body=[member(mallory, "owner"), link])
    assert_client_error(replaced, 403, "permission_denied")
    linked = invoke(
        "topics.set_topic_prompt", mallory, path={"topicId": mallorys_topic.id, "promptId": prompt.id}
    )
    assert_client_error(linked, 403, "permission_denied")
    assert {(g["granteeId"], g["role"]) for g in grants.all_of_object(prompt)} == {
        (alice.user_id, "owner"),
        (mallory.user_id, "viewer"),
    }


def test_grants_outside_the_policy_are_refused(aws):
    alice = make_user()
    team = make_object("team", ref_of(alice))
    convo = make_object("convo", ref_of(alice))
    other = make_object("team", ref_of(alice))
    for obj, body in (
        (team, {"id": other.id, "type": "team", "role": "member"}),
        (team, {"id": alice.user_id, "type": "user", "role": "participant"}),
        (convo, {"id": alice.user_id, "type": "user", "role": "member"}),
        (convo, {"id": str(uuid4()), "type": "topic", "role": "admin"}),
    ):
        assert_client_error(
            invoke("auth.add_grantee", alice, query=on(obj), body=body), 400, "grant_not_supported"
        )


def test_who_may_add(team_world, tenant):
    team, _, admin, mate, outsider = team_world
    newcomer = make_user(admin=tenant)
    assert_client_error(
        invoke("auth.add_grantee", mate, query=on(team), body=member(newcomer, "viewer")),
        403,
        "permission_denied",
    )
    # Hidden objects are unknown: outsiders cannot add themselves.
    assert_client_error(
        invoke("auth.add_grantee", outsider, query=on(team), body=member(outsider, "admin")), 404
    )
    assert role_of(team, outsider) is None
    assert invoke("auth.add_grantee", admin, query=on(team), body=member(newcomer, "admin")).status == 201


def test_grantees_must_exist_and_be_visible(aws):
    alice, mallory = make_user(), make_user()
    topic = make_object("topic", ref_of(alice))
    secret_team = make_object("team", ref_of(mallory))
    own_team = make_object("team", ref_of(alice))
    for body in (
        {"id": str(uuid4()), "type": "user", "role": "viewer"},
        {"id": str(uuid4()), "type": "team", "role": "viewer"},
        {"id": secret_team.id, "type": "team", "role": "viewer"},
    ):
        assert_client_error(invoke("auth.add_grantee", alice, query=on(topic), body=body), 404, "not_found")
    assert grants.get(topic, secret_team) is None
    added = invoke(
        "auth.add_grantee", alice, query=on(topic), body={"id": own_team.id, "type": "team", "role": "member"}
    )
    assert added.status == 201, added.body
    assert role_of(topic, own_team) == "member"


def test_adding_to_a_deleted_object_is_404(tenant):
    alice, bob = make_user(admin=tenant), make_user(admin=tenant)
    team = make_object("team", ref_of(alice))
    table().delete(keys.object_key(team))  # its grants wait for the purge worker
    assert_client_error(invoke("auth.add_grantee", alice, query=on(team), body=member(bob, "member")), 404)
    assert role_of(team, bob) is None


def test_a_token_scoped_elsewhere_cannot_add(team_world, tenant):
    team, owner, *_ = team_world
    other = make_object("team", ref_of(owner))
    scoped = Principal(user_id=owner.user_id, scheme="access_token", scope=(other,))
    newcomer = make_user(admin=tenant)
    assert_client_error(
        invoke("auth.add_grantee", scoped, query=on(team), body=member(newcomer, "member")), 404
    )
    assert (
        invoke(
            "auth.add_grantee",
            replace(scoped, scope=(team,)),
            query=on(team),
            body=member(newcomer, "member"),
        ).status
        == 201
    )


def test_invitation_of_an_unknown_email_is_stored(team_world, aws_calls):
    team, owner, *_ = team_world
    aws_calls.reset()
    result = invoke(
        "auth.add_grantee",
        owner,
        query=on(team, inviteEmail="New.Person@Example.com"),
        body={"type": "user", "role": "member"},
    )
    assert result.status == 201, result.body
    invitation = result.json
    assert invitation["inviteEmail"] == "new.person@example.com"
    assert (invitation["objectType"], invitation["objectId"], invitation["role"]) == (
        "team",
        team.id,
        "member",
    )
    assert invitation["createdBy"] == owner.user_id and invitation["createdAt"].endswith("Z")
    # Check (1 BatchGetItem), the inviter's invitation emails of the day (1 UpdateItem, I9), the
    # invitation (1 TransactWriteItems): no one's address is looked up; then its email (the inviter's
    # and the team's names: 1 BatchGetItem; SES).
    assert aws_calls["dynamodb:BatchGetItem"] == 2 and aws_calls["dynamodb:TransactWriteItems"] == 1
    assert aws_calls["dynamodb:UpdateItem"] == 1
    assert aws_calls["ses:SendEmail"] == 1 and aws_calls.total == 5
    stored = invitations.get(team, "new.person@example.com")
    assert stored is not None and stored["ttl"] > 0


def test_inviting_a_registered_address_answers_as_an_unknown_one(team_world, aws_calls):
    """I2 from the inviter's side: inviting the address another tenant's OIDC user verified grants
    nothing and answers exactly as inviting an address no one has (status, fields, cost)."""
    team, owner, *_ = team_world
    known = make_user(email="known@example.com")
    answers = []
    for email in ("KNOWN@example.com", "unknown@example.com"):
        aws_calls.reset()
        result = invoke(
            "auth.add_grantee",
            owner,
            query=on(team, inviteEmail=email),
            body={"type": "user", "role": "viewer"},
        )
        shown = {k: v for k, v in result.json.items() if k not in ("inviteEmail", "createdAt")}
        answers.append((result.status, sorted(result.json), shown, dict(aws_calls.calls)))
    assert answers[0] == answers[1] and answers[0][0] == 201
    assert role_of(team, known) is None
    assert invitations.get(team, "known@example.com")["role"] == "viewer"


def test_an_invitation_never_matches_a_service_accounts_user(team_world):
    """I2, from the inviter's side: a user another tenant created with the address is not its owner;
    the invitation waits for the person (verified email)."""
    team, owner, *_ = team_world
    other_tenant, _ = make_service_account("other")
    theirs = invoke("users.get_or_create_user", other_tenant, query={"email": "local@example.com"})
    assert theirs.status == 201
    result = invoke(
        "auth.add_grantee",
        owner,
        query=on(team, inviteEmail="local@example.com"),
        body={"type": "user", "role": "member"},
    )
    assert result.status == 201 and result.json["inviteEmail"] == "local@example.com"
    assert grants.get(team, Ref("user", theirs.json["id"])) is None
    assert invitations.get(team, "local@example.com") is not None


def test_invitation_rules(team_world):
    team, owner, _, mate, _ = team_world
    topic = make_object("topic", ref_of(owner))
    invite = {"inviteEmail": "someone@example.com"}
    cases = (
        (on(topic, **invite), {"type": "user", "role": "member"}, 400, "not_invitable"),
        (
            on(team, **invite),
            {"id": mate.user_id, "type": "user", "role": "member"},
            400,
            "invalid_invitation",
        ),
        (on(team, **invite), {"type": "team", "role": "member"}, 400, "grant_not_supported"),
        (on(team, **invite), {"type": "user", "role": "owner"}, 400, "use_put_for_owner"),
        (on(team, inviteEmail="not-an-email"), {"type": "user", "role": "member"}, 422, None),
        (on(team, inviteEmail="a" * 300 + "@example.com"), {"type": "user", "role": "member"}, 422, None),
    )
    for query, body, status, code in cases:
        assert_client_error(invoke("auth.add_grantee", owner, query=query, body=body), status, code)
    # Only who may grant the role may invite.
    denied = invoke(
        "auth.add_grantee", mate, query=on(team, **invite), body={"type": "user", "role": "member"}
    )
    assert_client_error(denied, 403)
    assert invitations.of_object(team) == []


def test_add_grantee_bad_input(team_world):
    team, owner, *_ = team_world
    good = json.dumps({"id": str(uuid4()), "type": "user", "role": "member"})
    for query, raw in (
        (on(team), "{bad"),
        (on(team), "[]"),
        (on(team), '{"type": "user", "role": "member"}'),  # no id
        (on(team), '{"id": "nope", "type": "user", "role": "member"}'),
        (on(team), '{"id": "' + "9" * 100000 + '", "type": "user", "role": "member"}'),
        (on(team), '{"id": 5, "type": "user", "role": "member"}'),
        (on(team), '{"id": null, "type": "robot", "role": "member"}'),
        (on(team), '{"type": "user", "role": "boss"}'),
        (on(team), '{"type": "user", "role": "member", "extra": 1}'),
        ({"objectType": "team"}, good),
        ({"objectType": "nope", "objectId": team.id}, good),
        ({"objectType": "team", "objectId": "1"}, good),
    ):
        assert_client_error(invoke("auth.add_grantee", owner, query=query, raw_body=raw))


# -- Set Grantees -------------------------------------------------------------------------------------


def test_owner_transfers_a_team_only_to_a_user_it_acts_for(aws, aws_calls):
    service, _ = make_service_account()
    pat, mate, stranger = make_user(admin=service), make_user(), make_user()
    team = make_object("team", ref_of(service))
    grant(team, pat, "admin")
    grant(team, mate, "member")
    before = {grants.grantee_ref(g): g["role"] for g in grants.all_of_object(team)}
    # I5: a new user owner is the caller or a user it has authority over; anyone else reads as unknown.
    refused = invoke(
        "auth.set_grantees",
        service,
        query=on(team),
        body=[member(stranger, "owner"), member(service, "admin")],
    )
    assert_client_error(refused, 404, "not_found")
    assert {grants.grantee_ref(g): g["role"] for g in grants.all_of_object(team)} == before
    body = [member(pat, "owner"), member(service, "admin"), member(mate, "member")]
    aws_calls.reset()
    result = invoke("auth.set_grantees", service, query=on(team), body=body)
    assert result.status == 200, result.body
    assert result.json == body
    # Check (1 BatchGetItem), the grants (1 Query), the authority over the new owner (1 GetItem: its
    # user item), the write: both grantees held grants already.
    assert aws_calls["dynamodb:BatchGetItem"] == 1 and aws_calls["dynamodb:Query"] == 1
    assert aws_calls["dynamodb:GetItem"] == 1
    assert aws_calls["dynamodb:TransactWriteItems"] == 1 and aws_calls.total == 4
    assert {grants.grantee_ref(g): g["role"] for g in grants.all_of_object(team)} == {
        ref_of(pat): "owner",
        ref_of(service): "admin",
        ref_of(mate): "member",
    }
    # The former owner is an admin now: it may not replace the grantees any more.
    assert_client_error(
        invoke("auth.set_grantees", service, query=on(team), body=[member(service, "owner")]), 403
    )


def test_a_viewer_cannot_move_its_topic_into_a_team(aws):
    """I5 (finding 9): making a team the owner of one's topic takes what creating a topic in the team
    takes (`can_edit`): a team one only views or belongs to is 403, one one cannot see 404, and the
    team's members gain nothing."""
    owner, mallory, mate = make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, mate, "member")
    hidden = make_object("team", ref_of(owner))
    topic = make_object("topic", ref_of(mallory))
    for role in ("viewer", "member"):
        grant(team, mallory, role)
        moved = invoke("auth.set_grantees", mallory, query=on(topic), body=[team_owner(team)])
        assert_client_error(moved, 403, "permission_denied")
    assert_client_error(invoke("auth.set_grantees", mallory, query=on(topic), body=[team_owner(hidden)]), 404)
    assert role_of(topic, mallory) == "owner" and role_of(topic, team) is None
    assert "teamId" not in objects.get(topic)
    assert grants.all_of_grantee(team, object_type="topic") == []
    assert invoke("convos.create_convo", mate, query={"topicId": topic.id}).status == 404


def test_set_grantees_vets_newcomers_in_one_read(team_world, tenant, aws_calls):
    team, owner, admin, mate, _ = team_world
    newcomers = [make_user(admin=tenant) for _ in range(3)]
    body = [member(owner, "owner"), member(admin, "viewer")] + [member(u, "member") for u in newcomers]
    aws_calls.reset()
    result = invoke("auth.set_grantees", owner, query=on(team), body=body)
    assert result.status == 200, result.body
    # Check, the grants, the three newcomers (1 BatchGetItem whatever their number), the write.
    assert aws_calls["dynamodb:BatchGetItem"] == 2 and aws_calls["dynamodb:Query"] == 1
    assert aws_calls["dynamodb:TransactWriteItems"] == 1 and aws_calls.total == 4
    assert role_of(team, mate) is None and role_of(team, admin) == "viewer"
    assert all(role_of(team, u) == "member" for u in newcomers)


def test_set_grantees_removes_the_unlisted(team_world):
    team, owner, _, mate, _ = team_world
    result = invoke("auth.set_grantees", owner, query=on(team), body=[member(owner, "owner")])
    assert result.status == 200 and result.json == [member(owner, "owner")]
    assert [grants.grantee_ref(g) for g in grants.all_of_object(team)] == [ref_of(owner)]
    assert_client_error(invoke("auth.query_grantees", mate, query=on(team)), 404)


def test_only_the_owner_sets_grantees(team_world):
    team, owner, admin, mate, outsider = team_world
    body = [member(admin, "owner")]
    assert_client_error(
        invoke("auth.set_grantees", admin, query=on(team), body=body), 403, "permission_denied"
    )
    assert_client_error(invoke("auth.set_grantees", mate, query=on(team), body=body), 403)
    assert_client_error(
        invoke("auth.set_grantees", outsider, query=on(team), body=[member(outsider, "owner")]), 404
    )
    assert role_of(team, owner) == "owner" and role_of(team, outsider) is None


def test_set_grantees_body_rules(team_world):
    team, owner, admin, *_ = team_world
    topic = make_object("topic", ref_of(owner))
    cases = (
        (team, [], "exactly_one_owner"),
        (team, [member(owner, "admin")], "exactly_one_owner"),
        (team, [member(owner, "owner"), member(admin, "owner")], "exactly_one_owner"),
        (
            team,
            [member(owner, "owner"), member(admin, "admin"), member(admin, "member")],
            "duplicate_grantee",
        ),
        (team, [member(owner, "owner"), {"type": "user", "role": "member"}], "grantee_id_required"),
        (
            team,
            [member(owner, "owner"), {"id": str(uuid4()), "type": "team", "role": "member"}],
            "grant_not_supported",
        ),
        (
            topic,
            [member(owner, "owner"), {"id": str(uuid4()), "type": "topic", "role": "dependent"}],
            "use_link_endpoint",
        ),
    )
    for obj, body, code in cases:
        assert_client_error(invoke("auth.set_grantees", owner, query=on(obj), body=body), 400, code)
    assert role_of(team, admin) == "admin"


def test_set_grantees_new_grantees_must_exist(team_world):
    team, owner, *_ = team_world
    stranger = {"id": str(uuid4()), "type": "user", "role": "member"}
    assert_client_error(
        invoke("auth.set_grantees", owner, query=on(team), body=[member(owner, "owner"), stranger]), 404
    )
    assert len(grants.all_of_object(team)) == 3


def test_set_grantees_keeps_links_and_moves_a_prompt_to_a_team(aws, aws_calls):
    alice = make_user()
    team = make_object("team", ref_of(alice))
    prompt = make_object("prompt", ref_of(alice))
    topic = make_object("topic", ref_of(alice))
    grant(prompt, topic, "dependent")
    aws_calls.reset()
    result = invoke(
        "auth.set_grantees", alice, query=on(prompt), body=[{"id": team.id, "type": "team", "role": "owner"}]
    )
    assert result.status == 200, result.body
    assert result.json == [
        {"id": team.id, "type": "team", "role": "owner"},
        {"id": topic.id, "type": "topic", "role": "dependent"},
    ]
    # Check (a Query for the prompt and one for the topic it is linked to, 1 BatchGetItem), the grants
    # (1 Query), the new owner's check (1 BatchGetItem), the team with alice's grant on it
    # (1 BatchGetItem), the write.
    assert aws_calls["dynamodb:Query"] == 3 and aws_calls["dynamodb:BatchGetItem"] == 3
    assert aws_calls["dynamodb:TransactWriteItems"] == 1 and aws_calls.total == 7
    assert role_of(prompt, topic) == "dependent" and role_of(prompt, alice) is None
    assert objects.get(prompt)["teamId"] == team.id
    # Alice, a team owner, still owns the prompt through the team; back to her, the field goes.
    back = invoke("auth.set_grantees", alice, query=on(prompt), body=[member(alice, "owner")])
    assert back.status == 200, back.body
    assert "teamId" not in objects.get(prompt) and role_of(prompt, team) is None


def test_set_grantees_moves_a_convo_from_a_topic_to_a_team(aws):
    alice = make_user()
    team = make_object("team", ref_of(alice))
    topic = make_object("topic", ref_of(alice))
    convo = make_object("convo", topic, createdBy=alice.user_id, topicId=topic.id)
    grant(convo, alice, "admin")
    # Alice owns the convo through the topic she owns.
    body = [{"id": team.id, "type": "team", "role": "owner"}, member(alice, "admin")]
    result = invoke("auth.set_grantees", alice, query=on(convo), body=body)
    assert result.status == 200, result.body
    stored = objects.get(convo)
    assert stored["teamId"] == team.id and "topicId" not in stored and "updatedAt" in stored
    back = invoke(
        "auth.set_grantees", alice, query=on(convo), body=[{"id": topic.id, "type": "topic", "role": "owner"}]
    )
    assert back.status == 200, back.body
    stored = objects.get(convo)
    assert stored["topicId"] == topic.id and "teamId" not in stored


def test_set_grantees_too_many_writes(aws, aws_calls):
    alice = make_user()
    team = make_object("team", ref_of(alice))
    for _ in range(60):
        grant(team, Ref("user", str(uuid4())), "member")
    body = [member(alice, "owner")] + [
        {"id": str(uuid4()), "type": "user", "role": "viewer"} for _ in range(50)
    ]
    aws_calls.reset()
    result = invoke("auth.set_grantees", alice, query=on(team), body=body)
    assert_client_error(result, 400, "too_many_grantees")
    # Refused after the check and the grants, before reading any grantee.
    assert aws_calls.total == 2
    assert len(grants.all_of_object(team)) == 61


def test_set_grantees_on_a_deleted_object_is_404(aws):
    alice = make_user()
    topic = make_object("topic", ref_of(alice))
    table().delete(keys.object_key(topic))
    assert_client_error(
        invoke("auth.set_grantees", alice, query=on(topic), body=[member(alice, "owner")]), 404
    )


def test_set_grantees_bad_input(team_world):
    team, owner, *_ = team_world
    too_many = [{"id": str(uuid4()), "type": "user", "role": "viewer"} for _ in range(100)]
    for raw in (
        "{bad",
        "{}",
        '"owner"',
        "[1]",
        '[{"id": "x", "type": "user", "role": "owner"}]',
        '[{"id": "' + "f" * 70000 + '", "type": "user", "role": "owner"}]',
        json.dumps(too_many),
    ):
        assert_client_error(invoke("auth.set_grantees", owner, query=on(team), raw_body=raw))
    assert_client_error(
        invoke("auth.set_grantees", owner, query={"objectType": "team"}, body=[member(owner, "owner")])
    )


# -- Remove Grantee -----------------------------------------------------------------------------------


def removal(obj: Ref, grantee: Ref | Principal, role: str) -> dict[str, str]:
    ref = grantee if isinstance(grantee, Ref) else ref_of(grantee)
    return on(obj, granteeId=ref.id, granteeType=ref.type, granteeRole=role)


def test_admin_removes_a_member(team_world, aws_calls):
    team, _, admin, mate, _ = team_world
    aws_calls.reset()
    result = invoke("auth.remove_grantee", admin, query=removal(team, mate, "member"))
    assert result.status == 204 and result.body == ""
    # Check (1 BatchGetItem), the grant (1 GetItem), 1 DeleteItem.
    assert aws_calls["dynamodb:GetItem"] == 1 and aws_calls["dynamodb:DeleteItem"] == 1
    assert aws_calls.total == 3
    assert role_of(team, mate) is None


def test_members_may_leave_but_not_remove_others(team_world):
    team, _, admin, mate, _ = team_world
    assert_client_error(invoke("auth.remove_grantee", mate, query=removal(team, admin, "admin")), 403)
    assert invoke("auth.remove_grantee", mate, query=removal(team, mate, "member")).status == 204
    assert role_of(team, mate) is None and role_of(team, admin) == "admin"


def test_remove_needs_exactly_that_role(team_world):
    team, owner, admin, mate, outsider = team_world
    assert_client_error(invoke("auth.remove_grantee", owner, query=removal(team, mate, "admin")), 404)
    assert_client_error(invoke("auth.remove_grantee", owner, query=removal(team, outsider, "member")), 404)
    assert_client_error(
        invoke("auth.remove_grantee", owner, query=removal(team, owner, "owner")), 400, "use_put_for_owner"
    )
    assert_client_error(
        invoke("auth.remove_grantee", owner, query=removal(team, mate, "dependent")), 400, "use_link_endpoint"
    )
    # Outsiders learn nothing, not even about their own grant.
    assert_client_error(invoke("auth.remove_grantee", outsider, query=removal(team, mate, "member")), 404)
    assert role_of(team, mate) == "member" and role_of(team, admin) == "admin"


def test_remove_a_team_from_a_topic(aws, aws_calls):
    alice = make_user()
    topic = make_object("topic", ref_of(alice))
    team = make_object("team", ref_of(alice))
    grant(topic, team, "viewer")
    aws_calls.reset()
    assert invoke("auth.remove_grantee", alice, query=removal(topic, team, "viewer")).status == 204
    # The team's grant is structural: the check read it (1 Query + 1 BatchGetItem), then 1 DeleteItem.
    assert aws_calls["dynamodb:GetItem"] == 0 and aws_calls.total == 3
    assert role_of(topic, team) is None


def test_remove_grantee_bad_input(team_world):
    team, owner, _, mate, _ = team_world
    good = removal(team, mate, "member")
    for query in (
        {},
        {**good, "granteeRole": "boss"},
        {**good, "granteeType": "robot"},
        {**good, "granteeId": "nope"},
        {**good, "objectType": "thing"},
        {k: v for k, v in good.items() if k != "granteeRole"},
        {**good, "granteeId": "a" * 10000},
    ):
        assert_client_error(invoke("auth.remove_grantee", owner, query=query))
    assert role_of(team, mate) == "member"
