"""The data source links service: checks on both objects, access-token scopes, races with deletions,
and the S3 prefix a deletion trusts."""

from uuid import uuid4

import pytest

from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.errors import Forbidden, NotFound
from kallo.models.convos import ConvoCreate
from kallo.models.topics import TopicCreate
from kallo.services import convos, data_source_links, topics
from kallo.store import blobs, grants, keys, objects
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.world import grant, make_object, make_user, ref_of


def scoped(principal: Principal, *scope: Ref) -> Access:
    return Access(Principal(user_id=principal.user_id, scheme="access_token", scope=scope))


def test_both_objects_are_checked_hidden_before_forbidden(aws):
    alice, viewer = make_user(), make_user()
    convo = Ref("convo", convos.create_convo(Access(alice), ConvoCreate())["id"])
    grant(convo, viewer, "viewer")
    hidden = make_object("data_source", ref_of(alice))
    # The viewer may not add to the convo, but must not learn that the data source exists: 404 first.
    with pytest.raises(NotFound):
        data_source_links.add_convo_data_source(Access(viewer), convo.id, hidden.id)
    with pytest.raises(NotFound):
        data_source_links.remove_convo_data_source(Access(viewer), convo.id, hidden.id)
    grant(hidden, viewer, "viewer")
    # Now visible: the refusal is about the missing permission (a viewer of a data source may not link it).
    with pytest.raises(Forbidden):
        data_source_links.add_convo_data_source(Access(viewer), convo.id, hidden.id)
    own = Ref("convo", convos.create_convo(Access(viewer), ConvoCreate())["id"])
    with pytest.raises(Forbidden):
        data_source_links.add_convo_data_source(Access(viewer), own.id, hidden.id)
    assert grants.structural(hidden) == []


def test_access_token_scopes(aws):
    alice = make_user()
    me = Access(alice)
    topic = topics.create_topic(me, TopicCreate(name="T", description=""))["id"]
    convo = convos.create_convo(me, ConvoCreate(), topic_id=topic)["id"]
    source = make_object("data_source", ref_of(alice))
    # A token scoped to the topic covers the topic's convos, not the user's other data sources.
    with pytest.raises(NotFound):
        data_source_links.add_convo_data_source(scoped(alice, Ref("topic", topic)), convo, source.id)
    data_source_links.add_topic_data_source(scoped(alice, ref_of(alice)), topic, source.id)
    # Linked to the topic, the data source is within the topic's scope: it may go to the topic's convo.
    data_source_links.add_convo_data_source(scoped(alice, Ref("topic", topic)), convo, source.id)
    assert grants.get(source, Ref("convo", convo))["role"] == "dependent"


def test_a_link_removed_meanwhile_is_not_linked(aws):
    alice = make_user()
    me = Access(alice)
    convo = convos.create_convo(me, ConvoCreate())["id"]
    source = make_object("data_source", ref_of(alice))
    data_source_links.add_convo_data_source(me, convo, source.id)
    racing = Access(alice)
    racing.structural_grants(source)  # the check read the link ...
    table().delete(keys.grant_key(source, Ref("convo", convo)))  # ... which another request removed
    with pytest.raises(NotFound) as raised:
        data_source_links.remove_convo_data_source(racing, convo, source.id)
    assert raised.value.code == "not_linked"


def test_a_convo_deleted_meanwhile_is_not_found(aws):
    alice = make_user()
    me = Access(alice)
    convo = convos.create_convo(me, ConvoCreate())["id"]
    source = make_object("data_source", ref_of(alice))
    data_source_links.add_convo_data_source(me, convo, source.id)
    # The item goes first; its grants (the caller's owner grant) may still be read by the check.
    table().delete(keys.object_key(Ref("convo", convo)))
    with pytest.raises(NotFound) as raised:
        data_source_links.remove_convo_data_source(Access(alice), convo, source.id)
    assert raised.value.code == "not_found"
    with pytest.raises(NotFound) as raised:
        data_source_links.add_convo_data_source(
            Access(alice), convo, make_object("data_source", ref_of(alice)).id
        )
    assert raised.value.code == "not_found"


def test_only_owners_delete(aws):
    owner, admin = make_user(), make_user()
    source = make_object("data_source", ref_of(owner))
    grant(source, admin, "admin")
    with pytest.raises(Forbidden):
        data_source_links.delete_data_source(Access(admin), source.id)
    # No location (never uploaded): the owner's prefix is the one cleaned.
    data_source_links.delete_data_source(Access(owner), source.id)
    assert objects.get(source) is None and table().query_all(keys.object_pk(source)) == []
    with pytest.raises(NotFound):
        data_source_links.delete_data_source(Access(owner), source.id)


def test_the_prefix_a_deletion_trusts():
    source, owner, uploader = (
        Ref("data_source", str(uuid4())),
        Ref("team", str(uuid4())),
        Ref("user", str(uuid4())),
    )
    location = blobs.location(uploader, source.id)
    assert data_source_links.blob_prefix(source, location, owner) == blobs.prefix(uploader, source.id)
    assert data_source_links.blob_prefix(source, location, None) == blobs.prefix(uploader, source.id)
    other = blobs.prefix(uploader, str(uuid4())) + blobs.ORIGINAL
    for untrusted in (other, None, "", "tenants/", location + "/..", location.replace("tenants/", "")):
        assert data_source_links.blob_prefix(source, untrusted, owner) == blobs.prefix(owner, source.id)
        assert data_source_links.blob_prefix(source, untrusted, None) is None


def _racing_writer(monkeypatch, topic: Ref, other_id: str) -> list[int]:
    """Between this request's read of the topic and its first write, another request links `other_id`
    (as a concurrent Add Topic Data Source would). Returns the list of transaction attempts."""
    attempts: list[int] = []
    original = type(table()).transact

    def transact(self, operations):
        attempts.append(len(operations))
        if len(attempts) == 1:
            current = objects.get(topic).get("dataSourceIds") or []
            table().update(keys.object_key(topic), {"dataSourceIds": [*current, other_id]})
        return original(self, operations)

    monkeypatch.setattr(type(table()), "transact", transact)
    return attempts


def test_concurrent_links_to_a_topic_keep_every_id(aws, monkeypatch):
    alice = make_user()
    me = Access(alice)
    topic = topics.create_topic(me, TopicCreate(name="T", description=""))["id"]
    first, second = make_object("data_source", ref_of(alice)), make_object("data_source", ref_of(alice))
    data_source_links.add_topic_data_source(me, topic, first.id)
    other = str(uuid4())
    attempts = _racing_writer(monkeypatch, Ref("topic", topic), other)
    data_source_links.add_topic_data_source(Access(alice), topic, second.id)
    assert len(attempts) == 2  # the first write saw a changed list and was read again
    assert objects.get(Ref("topic", topic))["dataSourceIds"] == [first.id, other, second.id]


def test_an_unlink_racing_a_link_keeps_the_other_id(aws, monkeypatch):
    alice = make_user()
    me = Access(alice)
    topic = topics.create_topic(me, TopicCreate(name="T", description=""))["id"]
    source = make_object("data_source", ref_of(alice))
    data_source_links.add_topic_data_source(me, topic, source.id)
    other = str(uuid4())
    attempts = _racing_writer(monkeypatch, Ref("topic", topic), other)
    data_source_links.remove_topic_data_source(Access(alice), topic, source.id)
    assert len(attempts) == 2
    assert objects.get(Ref("topic", topic))["dataSourceIds"] == [other]
    assert grants.get(source, Ref("topic", topic)) is None
