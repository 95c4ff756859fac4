"""The topics service and models: owners, the bulk listing against the permission model, the prompt
link, deletion."""

import random
import re
from uuid import uuid4

import pytest
from pydantic import TypeAdapter, ValidationError

from kallo import paging
from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.authz.policy import Permission
from kallo.errors import BadRequest, Forbidden, NotFound
from kallo.models.topics import LINK_OPERATION, Topic, TopicCreate, TopicIds, TopicUpdate, merge_patch
from kallo.services import owned, topics
from kallo.store import grants, objects
from kallo.store.keys import Ref
from tests.support.world import grant, make_object, make_user, ref_of

A, B = str(uuid4()), str(uuid4())


# -- models -----------------------------------------------------------------------------------------


def test_topic_ids_split_trim_and_dedupe():
    adapter = TypeAdapter(TopicIds)
    assert adapter.validate_python([f" {A},{B},,{A.upper()} "]) == [A, B]
    assert adapter.validate_python([A, B]) == [A, B]  # the parameter repeated
    assert adapter.validate_python([""]) == []
    for bad in ([f"{A},x"], [",".join(str(uuid4()) for _ in range(101))]):
        with pytest.raises(ValidationError):
            adapter.validate_python(bad)


def test_topic_config_accepts_only_a_valid_defaults():
    config = {"defaults": {"model": "bedrock:x", "temperature": 0.5, "maxTokens": 100, "reply": True}}
    assert (
        TopicCreate.model_validate({"name": "n", "description": "", "config": config}).config.stored()
        == config
    )
    for bad in (
        {"defaults": {}, "systemPrompt": "x"},
        {"defaults": {"temperature": 3}},
        {"defaults": {"maxTokens": 40000}},
        {"defaults": {"dataSourceIds": ["x"]}},
        {"defaults": {"colour": "red"}},
        {"defaults": []},
    ):
        with pytest.raises(ValidationError):
            TopicCreate.model_validate({"name": "n", "description": "", "config": bad})


def test_merge_patch_follows_rfc_7396():
    # The examples of RFC 7396, appendix A (a selection).
    for target, patch, result in (
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ):
        assert merge_patch(target, patch) == result


def test_topic_update_changes():
    # The config is a merge patch the service applies to the stored one: not among the fields set.
    update = TopicUpdate.model_validate({"config": {"defaults": {"reply": False, "model": None}}})
    assert update.changes() == {} and update.config == {"defaults": {"reply": False, "model": None}}
    assert TopicUpdate.model_validate({"name": " Trees "}).changes() == {"name": "Trees"}
    for bad in (
        {},
        {"name": None},
        {"dataSourceIds": [A, A]},
        {"dataSourceIds": None},
        {"dataSourceIds": [{}]},
        # Only the link operations write a topic's list, even to empty it.
        {"dataSourceIds": [A]},
        {"dataSourceIds": [{"id": A, "name": "a.pdf"}]},
        {"dataSourceIds": []},
    ):
        with pytest.raises(ValidationError):
            TopicUpdate.model_validate(bad)


def test_topic_create_takes_no_data_source_ids():
    """I5/I6: a create body may give the list empty (the seed's samples carry it), never with ids."""
    assert (
        TopicCreate.model_validate({"name": "n", "description": "", "dataSourceIds": []}).data_source_ids
        == []
    )
    for ids in ([A], [{"id": A, "name": "a.pdf"}]):
        with pytest.raises(ValidationError, match=re.escape(LINK_OPERATION)):
            TopicCreate.model_validate({"name": "n", "description": "", "dataSourceIds": ids})


def test_topic_response_leaves_out_unset_optionals():
    stored = {"id": A, "name": "n", "description": "", "config": {"defaults": {}}, "dataSourceIds": []}
    stored |= {"createdBy": B, "createdAt": "2026-01-01T00:00:00.000Z", "PK": "internal"}
    dumped = Topic.model_validate(stored).model_dump(by_alias=True)
    assert dumped == {k: v for k, v in stored.items() if k != "PK"}


# -- owners ------------------------------------------------------------------------------------------


def test_owner_for(aws):
    alice, bob = make_user(), make_user()
    team = make_object("team", ref_of(bob))
    grant(team, alice, "admin")
    me = Access(alice)
    assert owned.owner_for(me, "topic", user_id=None, team_id=None) == owned.Owner(
        ref_of(alice), alice.user_id
    )
    assert owned.owner_for(me, "topic", user_id=alice.user_id, team_id=None).ref == ref_of(alice)
    assert owned.owner_for(me, "topic", user_id=None, team_id=team.id) == owned.Owner(team, alice.user_id)
    with pytest.raises(BadRequest):
        owned.owner_for(me, "topic", user_id=alice.user_id, team_id=team.id)
    with pytest.raises(NotFound):
        owned.owner_for(me, "topic", user_id=bob.user_id, team_id=None)
    scoped = Access(Principal(user_id=alice.user_id, scheme="access_token", scope=(Ref("topic", A),)))
    with pytest.raises(Forbidden):
        owned.owner_for(scoped, "topic", user_id=None, team_id=None)


def test_require_can_own_is_what_creating_under_an_owner_takes(aws):
    alice, bob = make_user(), make_user()
    team = make_object("team", ref_of(bob))
    grant(team, alice, "member")
    topic = make_object("topic", team)
    me = Access(alice)
    for kind in ("topic", "prompt", "data_source"):
        with pytest.raises(Forbidden):
            owned.require_can_own(me, team, kind)
    assert owned.require_can_own(me, team, "convo") == owned.Owner(team, alice.user_id)
    assert owned.require_can_own(me, topic, "convo") == owned.Owner(topic, alice.user_id)
    with pytest.raises(BadRequest):
        owned.require_can_own(me, topic, "prompt")
    with pytest.raises(NotFound):
        owned.require_can_own(me, make_object("team", ref_of(bob)), "convo")


# -- listing: the same answer as the permission model, without a call per topic ----------------------


def _random_world(seed: int) -> tuple[Principal, list[Ref]]:
    """A caller on some teams, and topics reachable (or not) in every way a grant allows."""
    rng = random.Random(seed)
    caller, other = make_user(), make_user()
    teams = [make_object("team", ref_of(other)) for _ in range(4)]
    for team, role in zip(teams, ("member", "viewer", "admin"), strict=False):
        grant(team, caller, role)  # the fourth team is not the caller's
    created = []
    for _ in range(24):
        owner = rng.choice([ref_of(caller), ref_of(other), *teams])
        created.append(make_object("topic", owner, createdBy=other.user_id))
        if rng.random() < 0.3:
            grant(created[-1], caller, rng.choice(["viewer", "participant", "admin"]))
        if rng.random() < 0.3:
            grant(created[-1], rng.choice(teams), rng.choice(["member", "viewer", "admin"]))
    return caller, created


def _reference(access: Access, refs: list[Ref]) -> list[str]:
    return sorted(r.id for r in refs if access.can(r, Permission.can_view))


@pytest.mark.parametrize("seed", [1, 2])
def test_listing_matches_the_permission_model(aws, seed):
    caller, created = _random_world(seed)
    expected = _reference(Access(caller), created)
    assert expected  # the world is not trivially empty
    for limit in (1, 5, 100):
        listed, token = [], None
        while True:
            page, token = owned.list_viewable(Access(caller), "topic", limit=limit, next_token=token)
            assert len(page) <= limit
            listed += [t["id"] for t in page]
            if not token:
                break
        assert listed == expected, limit
    rng = random.Random(seed)
    asked = [*rng.sample([r.id for r in created], 12), str(uuid4())]
    found = owned.viewable_among(Access(caller), [Ref("topic", i) for i in asked])
    assert [t["id"] for t in found] == [i for i in asked if i in expected]


def test_cursors_are_checked(aws):
    alice = make_user()
    for _ in range(3):
        make_object("topic", ref_of(alice))
    _, token = owned.list_viewable(Access(alice), "topic", limit=1)
    assert token and owned.list_viewable(Access(alice), "topic", limit=1, next_token=token)[0]
    listing = owned._listing(Access(alice), "topic")
    forged = paging.encode_cursor({"after": 1}, kind=listing, principal=alice.user_id)
    for caller, kind, bad in (
        (alice, "topic", "x"),
        (alice, "topic", "%%"),
        (alice, "prompt", token),  # another listing
        (make_user(), "topic", token),  # another caller
        (alice, "topic", forged),  # not an id (only the server could have made it)
    ):
        with pytest.raises(BadRequest):
            owned.list_viewable(Access(caller), kind, next_token=bad)


# -- writes --------------------------------------------------------------------------------------------


def test_create_and_update(aws):
    alice = make_user()
    me = Access(alice)
    created = topics.create_topic(me, TopicCreate(name="Trees", description="d"))
    ref = Ref("topic", created["id"])
    assert objects.get(ref) == created
    assert grants.get(ref, ref_of(alice))["role"] == "owner"
    updated = topics.update_topic(me, ref.id, TopicUpdate(description="Antarctic"))
    assert updated["description"] == "Antarctic" and updated["name"] == "Trees"
    assert updated["updatedAt"] >= created["updatedAt"]


def test_set_and_remove_the_prompt(aws):
    alice = make_user()
    topic = Ref("topic", topics.create_topic(Access(alice), TopicCreate(name="T", description=""))["id"])
    first, second = make_object("prompt", ref_of(alice)), make_object("prompt", ref_of(alice))
    topics.set_topic_prompt(Access(alice), topic.id, first.id)
    topics.set_topic_prompt(Access(alice), topic.id, second.id)
    assert objects.get(topic)["promptId"] == second.id
    assert grants.get(first, topic) is None and grants.get(second, topic)["role"] == "dependent"
    topics.remove_topic_prompt(Access(alice), topic.id)
    topics.remove_topic_prompt(Access(alice), topic.id)
    assert "promptId" not in objects.get(topic) and grants.get(second, topic) is None


def test_team_topics_are_inherited_by_the_teams_users(aws):
    owner, admin, member, outsider = make_user(), make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, admin, "admin")
    grant(team, member, "member")
    topic = Ref(
        "topic",
        topics.create_topic(Access(admin), TopicCreate(name="T", description=""), team_id=team.id)["id"],
    )
    assert topics.query_topics(Access(member)) == ([objects.get(topic)], None)
    assert Access(member).can(topic, Permission.can_chat) and not Access(member).can(
        topic, Permission.can_edit
    )
    assert Access(admin).can(topic, Permission.can_edit) and not Access(admin).can(
        topic, Permission.can_delete
    )
    assert Access(owner).can(topic, Permission.can_delete)
    assert topics.query_topics(Access(outsider)) == ([], None)
    assert topics.query_topics(Access(outsider), [topic.id]) == ([], None)
    with pytest.raises(NotFound):
        topics.update_topic(Access(outsider), topic.id, TopicUpdate(name="x"))
