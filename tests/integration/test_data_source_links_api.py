"""Add / Remove Topic Data Source (PUT/DELETE /topics/{topicId}/data-sources/{dataSourceId}) and Add /
Remove Convo Data Source (PUT/DELETE /convos/{convoId}/data-sources/{dataSourceId}): the data source's
`dependent` grant to the topic or convo, and a topic's `dataSourceIds`, together."""

from uuid import uuid4

from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.authz.policy import Permission
from kallo.models.convos import ConvoCreate
from kallo.models.topics import TopicCreate
from kallo.services import convos, purge, topics
from kallo.store import grants, keys, objects
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_user, ref_of


def new_topic(owner: Principal, team: Ref | None = None, **fields) -> Ref:
    data = TopicCreate(name="T", description="", **fields)
    return Ref("topic", topics.create_topic(Access(owner), data, team_id=team.id if team else None)["id"])


def new_convo(owner: Principal, topic: Ref | None = None) -> Ref:
    created = convos.create_convo(Access(owner), ConvoCreate(), topic_id=topic.id if topic else None)
    return Ref("convo", created["id"])


def new_data_source(owner: Ref, created_by: str | None = None) -> Ref:
    """A processed data source with its owner grant (links do not read its files)."""
    fields = {"type": "upload", "mimeType": "text/plain", "size": 5, "status": "ready"}
    if created_by:
        fields["createdBy"] = created_by
    return make_object("data_source", owner, **fields)


def link(principal: Principal, target: Ref, data_source: Ref):
    handler = (
        "data_sources.add_topic_data_source" if target.type == "topic" else "convos.add_convo_data_source"
    )
    return invoke(handler, principal, path={f"{target.type}Id": target.id, "dataSourceId": data_source.id})


def unlink(principal: Principal, target: Ref, data_source: Ref):
    handler = (
        "data_sources.remove_topic_data_source"
        if target.type == "topic"
        else "convos.remove_convo_data_source"
    )
    return invoke(handler, principal, path={f"{target.type}Id": target.id, "dataSourceId": data_source.id})


def linked_sources(target: Ref) -> list[str]:
    """The data sources of a topic or convo, as Query Data Sources finds them (GSI1)."""
    return [g["objectId"] for g in grants.all_of_grantee(target, object_type="data_source")]


def test_topic_owner_links_and_unlinks(aws, aws_calls):
    alice = make_user()
    first, second = new_data_source(ref_of(alice)), new_data_source(ref_of(alice))
    topic = new_topic(alice)
    aws_calls.reset()
    result = link(alice, topic, first)
    assert result.status == 204 and result.body == ""
    # The checks (the topic's and the data source's structural grants, the caller's grants on both in
    # one BatchGetItem), the topic's item, one transaction.
    assert aws_calls["dynamodb:Query"] == 2 and aws_calls["dynamodb:BatchGetItem"] == 1
    assert aws_calls["dynamodb:GetItem"] == 1 and aws_calls["dynamodb:TransactWriteItems"] == 1
    assert aws_calls.total == 5
    assert grants.get(first, topic)["role"] == "dependent"
    assert objects.get(topic)["dataSourceIds"] == [first.id]
    assert linked_sources(topic) == [first.id]

    # Linking again is a no-op.
    aws_calls.reset()
    assert link(alice, topic, first).status == 204
    assert aws_calls["dynamodb:TransactWriteItems"] == 0 and aws_calls.total == 4

    # Order is kept, without duplicates.
    assert link(alice, topic, second).status == 204
    assert link(alice, topic, first).status == 204
    assert objects.get(topic)["dataSourceIds"] == [first.id, second.id]

    aws_calls.reset()
    assert unlink(alice, topic, first).status == 204
    assert aws_calls["dynamodb:TransactWriteItems"] == 1 and aws_calls.total == 5
    assert grants.get(first, topic) is None
    assert objects.get(topic)["dataSourceIds"] == [second.id]
    assert linked_sources(topic) == [second.id]

    aws_calls.reset()
    missing = unlink(alice, topic, first)
    assert missing.status == 404 and missing.json["code"] == "not_linked"
    assert aws_calls["dynamodb:TransactWriteItems"] == 0


def test_query_grantees_lists_the_link_as_dependent(aws):
    alice = make_user()
    source, topic = new_data_source(ref_of(alice)), new_topic(alice)
    assert link(alice, topic, source).status == 204
    listed = invoke("auth.query_grantees", alice, query={"objectType": "data_source", "objectId": source.id})
    assert listed.status == 200
    assert {"id": topic.id, "type": "topic", "role": "dependent"} in listed.json
    assert {"id": alice.user_id, "type": "user", "role": "owner"} in listed.json


def test_a_topic_list_edited_by_update_topic_is_put_back_in_step(aws):
    alice = make_user()
    source, topic = new_data_source(ref_of(alice)), new_topic(alice)
    assert link(alice, topic, source).status == 204
    # A list out of step with the links (written before Update Topic refused dataSourceIds).
    objects.update(topic, {"dataSourceIds": []})
    # Linking again restores the id (the link is there already: it is not rewritten).
    created_at = grants.get(source, topic)["createdAt"]
    assert link(alice, topic, source).status == 204
    assert objects.get(topic)["dataSourceIds"] == [source.id]
    assert grants.get(source, topic)["createdAt"] == created_at
    # Unlinking a data source no longer in the list still removes the link.
    objects.update(topic, {"dataSourceIds": []})
    assert unlink(alice, topic, source).status == 204
    assert grants.get(source, topic) is None and objects.get(topic)["dataSourceIds"] == []


def test_a_topic_holds_at_most_500_data_sources(aws):
    alice = make_user()
    topic = new_topic(alice)
    objects.update(topic, {"dataSourceIds": [str(uuid4()) for _ in range(500)]})
    source = new_data_source(ref_of(alice))
    result = link(alice, topic, source)
    assert result.status == 409 and result.json["code"] == "too_many_data_sources"
    assert grants.get(source, topic) is None and len(objects.get(topic)["dataSourceIds"]) == 500


def test_convo_link_shares_the_data_source_with_the_convo(aws, aws_calls):
    alice, bob = make_user(), make_user()
    source, convo = new_data_source(ref_of(alice)), new_convo(alice)
    grant(convo, bob, "participant")
    assert not Access(bob).can(source, Permission.can_view)
    aws_calls.reset()
    assert link(alice, convo, source).status == 204
    # The checks (2 Queries, 1 BatchGetItem) and one transaction: a convo keeps no list.
    assert aws_calls["dynamodb:TransactWriteItems"] == 1 and aws_calls.total == 4
    assert grants.get(source, convo)["role"] == "dependent"
    assert linked_sources(convo) == [source.id]
    # Everyone on the convo reads it through the link, and no more than that.
    assert Access(bob).permissions(source) == {Permission.can_view}
    aws_calls.reset()
    assert link(alice, convo, source).status == 204
    assert aws_calls["dynamodb:TransactWriteItems"] == 0 and aws_calls.total == 3

    aws_calls.reset()
    assert unlink(alice, convo, source).status == 204
    assert aws_calls["dynamodb:TransactWriteItems"] == 1 and aws_calls.total == 4
    assert not Access(bob).can(source, Permission.can_view)
    assert linked_sources(convo) == []


def test_team_members_link_team_data_sources_to_their_convos(aws):
    owner, member = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    source = new_data_source(team, created_by=owner.user_id)
    convo = new_convo(member)
    assert link(member, convo, source).status == 204
    assert unlink(member, convo, source).status == 204
    # A team topic: only its admins and owners manage its data sources.
    topic = new_topic(owner, team)
    denied = link(member, topic, source)
    assert denied.status == 403 and denied.json["code"] == "permission_denied"
    assert link(owner, topic, source).status == 204
    denied = unlink(member, topic, source)
    assert denied.status == 403 and denied.json["code"] == "permission_denied"


def test_cross_tenant_probes_are_not_found(aws):
    alice, mallory = make_user(), make_user()
    alices_topic, alices_convo = new_topic(alice), new_convo(alice)
    alices_source = new_data_source(ref_of(alice))
    mallorys_topic, mallorys_convo = new_topic(mallory), new_convo(mallory)
    mallorys_source = new_data_source(ref_of(mallory))
    for target in (mallorys_topic, mallorys_convo):
        result = link(mallory, target, alices_source)
        assert result.status == 404 and result.json["code"] == "not_found"
    for target in (alices_topic, alices_convo):
        assert link(mallory, target, mallorys_source).status == 404
    assert link(alice, alices_topic, alices_source).status == 204
    assert link(alice, alices_convo, alices_source).status == 204
    for target in (alices_topic, alices_convo):
        assert unlink(mallory, target, alices_source).status == 404
        assert unlink(mallory, target, mallorys_source).status == 404
    for principal, target, source in (
        (alice, Ref("topic", str(uuid4())), alices_source),
        (alice, Ref("convo", str(uuid4())), alices_source),
        (alice, alices_topic, Ref("data_source", str(uuid4()))),
        (alice, alices_convo, Ref("data_source", str(uuid4()))),
    ):
        assert link(principal, target, source).status == 404
        assert unlink(principal, target, source).status == 404
    assert linked_sources(mallorys_topic) == [] and linked_sources(mallorys_convo) == []
    assert objects.get(mallorys_topic)["dataSourceIds"] == []
    assert linked_sources(alices_topic) == [alices_source.id]


def test_who_may_link_convo_viewers_and_link_readers_may_not(aws):
    alice, viewer = make_user(), make_user()
    source, convo = new_data_source(ref_of(alice)), new_convo(alice)
    grant(convo, viewer, "viewer")
    # A viewer sees the convo but may not add to it.
    denied = link(viewer, convo, new_data_source(ref_of(viewer)))
    assert denied.status == 403 and denied.json["code"] == "permission_denied"
    # Someone who sees the data source only through a link may not pass it on to their own convo.
    assert link(alice, convo, source).status == 204
    own_convo = new_convo(viewer)
    denied = link(viewer, own_convo, source)
    assert denied.status == 403 and denied.json["code"] == "permission_denied"
    # A data source hidden from the caller is a 404 even where the caller may not add (no probing).
    hidden = new_data_source(ref_of(make_user()))
    assert link(viewer, convo, hidden).status == 404
    # A viewer of the convo cannot unlink either; its owner can.
    denied = unlink(viewer, convo, source)
    assert denied.status == 403 and denied.json["code"] == "permission_denied"
    assert linked_sources(own_convo) == [] and linked_sources(convo) == [source.id]


def test_a_data_source_can_be_linked_to_many_topics_and_convos(aws):
    alice = make_user()
    source = new_data_source(ref_of(alice))
    targets = [new_topic(alice), new_topic(alice), new_convo(alice), new_convo(alice)]
    for target in targets:
        assert link(alice, target, source).status == 204
    assert {grants.grantee_ref(g) for g in grants.structural(source)} == set(targets)
    assert unlink(alice, targets[0], source).status == 204
    assert all(linked_sources(t) == [source.id] for t in targets[1:])


def test_deleted_objects_are_not_linked(aws):
    alice = make_user()
    source, topic, convo = new_data_source(ref_of(alice)), new_topic(alice), new_convo(alice)
    # The data source's item is gone, its owner grant lingers.
    table().delete(keys.object_key(source))
    for target in (topic, convo):
        result = link(alice, target, source)
        assert result.status == 404 and result.json["code"] == "not_found"
        assert grants.get(source, target) is None
    assert objects.get(topic)["dataSourceIds"] == []
    # A topic deleted behind a user grant that outlives it until the purge.
    other, admin = new_data_source(ref_of(alice)), make_user()
    grant(topic, admin, "admin")
    grant(other, admin, "admin")
    table().delete(keys.object_key(topic))
    assert link(admin, topic, other).status == 404 and grants.get(other, topic) is None


def test_a_deleted_convos_links_go_with_its_purge(aws):
    alice = make_user()
    source, convo, kept = new_data_source(ref_of(alice)), new_convo(alice), new_convo(alice)
    assert link(alice, convo, source).status == 204
    assert link(alice, kept, source).status == 204
    assert invoke("convos.delete_convo", alice, path={"convoId": convo.id}).status == 204
    # Until the purge runs the link is left, but leads to no convo.
    assert grants.get(source, convo) is not None
    purge.purge(convo)
    assert grants.get(source, convo) is None and linked_sources(convo) == []
    assert grants.get(source, kept) is not None and objects.get(source) is not None


def test_link_bad_input(aws):
    alice = make_user()
    source, topic, convo = new_data_source(ref_of(alice)), new_topic(alice), new_convo(alice)
    for handler, key, target in (
        ("data_sources.add_topic_data_source", "topicId", topic),
        ("data_sources.remove_topic_data_source", "topicId", topic),
        ("convos.add_convo_data_source", "convoId", convo),
        ("convos.remove_convo_data_source", "convoId", convo),
    ):
        for path in ({key: "x", "dataSourceId": source.id}, {key: target.id, "dataSourceId": "1234"}):
            result = invoke(handler, alice, path=path)
            assert result.status == 422 and {"code", "message"} <= set(result.json)
        assert invoke(handler, None, path={key: target.id, "dataSourceId": source.id}).status == 401
