"""`Access.admission`: which grants a write must carry as conditions for a permission the principal's
reads do not give yet (kallo.authz.access), and when there is no such plan."""

from __future__ import annotations

from kallo.authz import access
from kallo.authz.access import Access
from kallo.authz.policy import Permission
from kallo.models.convos import ConvoCreate
from kallo.services import convos
from kallo.store import keys
from kallo.store.keys import Ref
from tests.support.world import make_object, make_user, ref_of

VIEWING = sorted(["viewer", "participant", "member", "admin", "owner"])


def cold(principal, convo: Ref) -> Access:
    access.forget_edges()
    checked = Access(principal)
    checked.structural_with_own(convo)
    return checked


def test_a_grant_of_ones_own_needs_no_condition(aws, aws_calls):
    owner = make_user()
    convo = Ref("convo", convos.create_convo(Access(owner), ConvoCreate())["id"])
    aws_calls.reset()
    assert cold(owner, convo).admission(convo, Permission.can_view) == []
    assert aws_calls.calls == {"dynamodb:Query": 1}


def test_a_team_member_is_admitted_on_the_path_to_the_hinted_team(aws, aws_calls):
    owner, member = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    topic = make_object("topic", team)
    convo = Ref("convo", convos.create_convo(Access(owner), ConvoCreate(), topic_id=topic.id)["id"])
    aws_calls.reset()
    checks = cold(member, convo).admission(convo, Permission.can_view)
    assert aws_calls.calls == {"dynamodb:Query": 1}
    # The topic's grant to the team and the member's on the team, each of a role that lets one view
    # (`dependent` does not): the convo's owner grant was read.
    assert checks == [
        {"check": keys.grant_key(topic, team), "exists": True, "one_of": ("role", VIEWING)},
        {"check": keys.grant_key(team, ref_of(member)), "exists": True, "one_of": ("role", VIEWING)},
    ]


def test_a_team_owned_convo_needs_the_membership_alone(aws):
    owner, member = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    convo = make_object("convo", team)
    checks = cold(member, convo).admission(convo, Permission.can_chat)
    # can_chat on a convo: participant and up.
    rank = sorted(["participant", "member", "admin", "owner"])
    assert checks == [
        {"check": keys.grant_key(team, ref_of(member)), "exists": True, "one_of": ("role", rank)}
    ]


def test_no_plan_without_a_hint_a_team_or_a_user(aws):
    owner, member = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    topic = make_object("topic", team)
    unhinted = make_object("convo", topic)
    assert cold(member, unhinted).admission(unhinted, Permission.can_view) is None
    mine = Ref("convo", convos.create_convo(Access(owner), ConvoCreate())["id"])
    assert cold(member, mine).admission(mine, Permission.can_view) is None  # a user's convo: no team


def test_a_scope_that_follows_the_supposed_edge_needs_it_to_be_an_owner_grant(aws):
    """I3: a team-scoped token reaches the topic's convo only through the topic's owner grant to the
    team: the plan requires that grant to be an owner grant; a token scoped to another team gets none."""
    from kallo.auth.principal import Principal

    owner, member = make_user(), make_user()
    team, other = make_object("team", ref_of(owner)), make_object("team", ref_of(member))
    topic = make_object("topic", team)
    convo = Ref("convo", convos.create_convo(Access(owner), ConvoCreate(), topic_id=topic.id)["id"])
    scoped = Principal(user_id=member.user_id, scheme="access_token", scope=(Ref("team", team.id),))
    assert cold(scoped, convo).admission(convo, Permission.can_view) == [
        {"check": keys.grant_key(topic, team), "exists": True, "one_of": ("role", ["owner"])},
        {"check": keys.grant_key(team, ref_of(member)), "exists": True, "one_of": ("role", VIEWING)},
    ]
    elsewhere = Principal(user_id=member.user_id, scheme="access_token", scope=(Ref("team", other.id),))
    assert cold(elsewhere, convo).admission(convo, Permission.can_view) is None
