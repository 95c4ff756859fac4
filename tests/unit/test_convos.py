"""The convos service: owners and grants on creation, the scope filter of listings, deletion, users."""

import json
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from kallo import aws as kallo_aws
from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.errors import BadRequest, Forbidden, NotFound
from kallo.models.convos import ConvoCreate, ConvoPatch
from kallo.models.steps import Step
from kallo.services import convos
from kallo.settings import get_settings
from kallo.store import grants, keys, objects, steps
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.world import grant, make_object, make_user, ref_of


def convo_of(owner: Principal, **where: str) -> Ref:
    return Ref("convo", convos.create_convo(Access(owner), ConvoCreate(), **where)["id"])


def grantees(obj: Ref) -> dict[Ref, str]:
    return {grants.grantee_ref(g): g["role"] for g in table().query_all(keys.object_pk(obj), prefix="GRANT#")}


def test_server_ids_are_time_ordered_uuids():
    ids = [convos.new_convo_id() for _ in range(50)]
    assert all(UUID(i).version == 7 and UUID(i).variant == "specified in RFC 4122" for i in ids)
    # They increase, even within one millisecond.
    assert ids == sorted(ids) and len(set(ids)) == 50


def test_a_convo_without_owner_parameters_is_the_callers(aws):
    alice = make_user()
    convo = convos.create_convo(Access(alice), ConvoCreate(name="  Plans  "))
    ref = Ref("convo", convo["id"])
    assert convo["name"] == "Plans" and convo["createdBy"] == alice.user_id
    assert "topicId" not in convo and "teamId" not in convo
    assert grantees(ref) == {ref_of(alice): "owner"}
    assert convos.create_convo(Access(alice), ConvoCreate())["name"] == ""


def test_a_topic_or_team_convo_also_makes_its_creator_admin(aws):
    alice, bob = make_user(), make_user()
    team = make_object("team", ref_of(alice))
    grant(team, bob, "member")
    topic = make_object("topic", team)
    in_topic = convo_of(bob, topic_id=topic.id)
    in_team = convo_of(bob, team_id=team.id)
    assert grantees(in_topic) == {topic: "owner", ref_of(bob): "admin"}
    assert grantees(in_team) == {team: "owner", ref_of(bob): "admin"}
    assert objects.get(in_topic)["topicId"] == topic.id and objects.get(in_team)["teamId"] == team.id


def test_owner_parameters_are_checked(aws):
    alice, viewer, outsider = make_user(), make_user(), make_user()
    topic = make_object("topic", ref_of(alice))
    grant(topic, viewer, "viewer")
    with pytest.raises(BadRequest):
        convo_of(alice, topic_id=topic.id, team_id=str(uuid4()))
    with pytest.raises(Forbidden):  # a viewer may read the topic, not chat in it
        convo_of(viewer, topic_id=topic.id)
    with pytest.raises(NotFound):
        convo_of(outsider, topic_id=topic.id)
    with pytest.raises(NotFound):  # no authority over alice
        convo_of(outsider, user_id=alice.user_id)


def test_a_service_account_creates_convos_for_its_users(aws):
    from tests.support.world import make_service_account

    service, _ = make_service_account()
    pat = make_user(admin=service)
    ref = convo_of(service, user_id=pat.user_id)
    assert grantees(ref) == {ref_of(pat): "owner"}
    assert objects.get(ref)["createdBy"] == pat.user_id


def test_no_convo_in_a_deleted_topic(aws):
    alice = make_user()
    topic = make_object("topic", ref_of(alice))
    # As after Delete Topic: the item is gone, a direct grant waits for the purge.
    table().delete(keys.object_key(topic))
    with pytest.raises(NotFound):
        convo_of(alice, topic_id=topic.id)


def test_a_client_cannot_choose_a_convo_id():
    with pytest.raises(ValidationError) as refused:
        ConvoCreate.model_validate({"id": str(uuid4())})
    assert refused.value.errors()[0]["type"] == "id_not_allowed"


def test_token_scope_limits_the_owner(aws):
    alice = make_user()
    topic, other = make_object("topic", ref_of(alice)), make_object("topic", ref_of(alice))
    scoped = Principal(user_id=alice.user_id, scheme="access_token", scope=(topic,))
    assert convo_of(scoped, topic_id=topic.id)
    with pytest.raises(NotFound):  # out of scope reads as hidden
        convo_of(scoped, topic_id=other.id)
    with pytest.raises(Forbidden):  # owning a convo as oneself needs the whole-user scope
        convo_of(scoped)


def test_the_scope_filter_agrees_with_access_in_scope(aws):
    """`_within_scope` evaluates a page at once what `Access.in_scope` says convo by convo."""
    alice = make_user()
    me = ref_of(alice)
    team, other_team = make_object("team", me), make_object("team", me)
    team_topic, my_topic, shared_topic = (
        make_object("topic", team),
        make_object("topic", me),
        make_object("topic", me),
    )
    grant(shared_topic, team, "member")  # a topic granted to a team it does not belong to
    mine = convo_of(alice)
    shared_with_team = convo_of(alice)
    grant(shared_with_team, team, "viewer")
    made = [
        mine,
        shared_with_team,
        convo_of(alice, topic_id=team_topic.id),
        convo_of(alice, topic_id=my_topic.id),
        convo_of(alice, topic_id=shared_topic.id),
        convo_of(alice, team_id=team.id),
        convo_of(alice, team_id=other_team.id),
    ]
    page = [objects.get(r) for r in made]
    scopes = [(team,), (other_team,), (my_topic,), (team_topic,), (mine,), (my_topic, other_team), (me,)]
    counts = []
    for scope in scopes:
        access = Access(Principal(user_id=alice.user_id, scheme="access_token", scope=scope))
        expected = [c["id"] for c in page if access.in_scope(Ref("convo", c["id"]))]
        assert [c["id"] for c in convos._within_scope(access, page)] == expected, scope
        counts.append(len(expected))
    # The team covers what it owns and what its topics own, not what is only shared with it (the
    # convo granted to it as viewer, the topic granted to it as member); the user scope covers all.
    assert counts == [2, 1, 1, 1, 1, 2, 7]
    assert len(convos._within_scope(Access(alice), page)) == len(page)


def test_query_convos_refuses_two_filters(aws):
    with pytest.raises(BadRequest):
        convos.query_convos(Access(make_user()), topic_id=str(uuid4()), user_id=str(uuid4()))


def test_patch_renames(aws):
    alice = make_user()
    ref = convo_of(alice)
    before = objects.get(ref)
    after = convos.patch_convo(Access(alice), ref.id, ConvoPatch(name=" New name "))
    assert after["name"] == "New name" and after["updatedAt"] >= before["updatedAt"]
    assert after["createdAt"] == before["createdAt"]


def received_jobs() -> list[dict]:
    sqs = kallo_aws.client("sqs")
    messages = sqs.receive_message(QueueUrl=get_settings().purge_queue_url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def test_delete_removes_the_convo_and_every_grant_then_schedules_the_purge(aws):
    alice, bob, carol = make_user(), make_user(), make_user()
    team = make_object("team", ref_of(alice))
    topic = make_object("topic", team)
    ref = convo_of(alice, topic_id=topic.id)
    grant(ref, bob, "participant")
    grant(ref, carol, "viewer")
    steps.add(
        Step(
            id=str(uuid4()),
            convoId=ref.id,
            authorType="user",
            authorId=bob.user_id,
            createdAt="2026-11-22T10:00:00.000Z",
            updatedAt="2026-11-22T10:00:00.000Z",
        ).record()
    )
    convos.delete_convo(Access(alice), ref.id)
    assert objects.get(ref) is None and grantees(ref) == {}
    # Gone for everyone at once, steps included, although the purge has not run yet.
    for user in (alice, bob, carol):
        with pytest.raises(NotFound):
            convos.query_convo_steps(Access(user), ref.id)
    assert received_jobs() == [{"type": "convo", "id": ref.id}]


def test_only_owners_delete(aws):
    alice, bob = make_user(), make_user()
    topic = make_object("topic", ref_of(alice))
    grant(topic, bob, "member")
    ref = convo_of(bob, topic_id=topic.id)  # bob is the convo's admin, the topic owns it
    with pytest.raises(Forbidden):
        convos.delete_convo(Access(bob), ref.id)
    convos.delete_convo(Access(alice), ref.id)
    with pytest.raises(NotFound):
        convos.delete_convo(Access(alice), ref.id)


def test_users_of_a_convo(aws):
    owner, member, topic_user, participant, writer = (make_user() for _ in range(5))
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    topic = make_object("topic", team)
    grant(topic, topic_user, "participant")
    ref = convo_of(topic_user, topic_id=topic.id)
    grant(ref, participant, "participant")
    grant(ref, writer, "viewer")
    steps.add(
        Step(
            id=str(uuid4()),
            convoId=ref.id,
            authorType="user",
            authorId=writer.user_id,
            createdAt="2026-11-22T10:00:00.000Z",
            updatedAt="2026-11-22T10:00:00.000Z",
        ).record()
    )
    access = Access(participant)
    direct = sorted(u.user_id for u in (topic_user, participant, writer))
    assert convos.query_convo_users(access, ref.id) == direct
    assert convos.query_convo_users(access, ref.id, contributors=True) == [writer.user_id]
    everyone = sorted({*direct, owner.user_id, member.user_id})
    assert convos.query_convo_users(access, ref.id, everyone=True) == everyone
    with pytest.raises(BadRequest):
        convos.query_convo_users(access, ref.id, contributors=True, everyone=True)


def test_topic_config(aws):
    alice = make_user()
    defaults = {"model": "bedrock:amazon.nova-lite-v1:0", "temperature": 0.2, "reply": True}
    topic = make_object("topic", ref_of(alice), config={"defaults": defaults}, description="")
    assert convos.get_topic_config(Access(alice), convo_of(alice, topic_id=topic.id).id) == {
        "defaults": defaults
    }
    assert convos.get_topic_config(Access(alice), convo_of(alice).id) == {"defaults": {}}
    bare = make_object("topic", ref_of(alice))  # a topic stored without a config
    assert convos.get_topic_config(Access(alice), convo_of(alice, topic_id=bare.id).id) == {"defaults": {}}
