"""Delete a Data Source: DELETE /data-sources/{dataSourceId} → 204 — its item, grants, links, summary, its
id in its topics' lists and every version of its files in S3; the same DELETE finishes an interrupted one."""

from uuid import uuid4

import pytest

from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.models.convos import ConvoCreate
from kallo.models.topics import TopicCreate
from kallo.services import convos, data_source_links, topics
from kallo.store import blobs, grants, keys, objects
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.api import invoke
from tests.support.aws import s3_versions
from tests.support.world import grant, make_object, make_user, ref_of


def new_data_source(owner: Ref, *, uploaded_by: Ref | None = None, created_by: str | None = None) -> Ref:
    """A processed data source whose files are in S3 under `uploaded_by` (default: its owner), with two
    versions of its original (a re-upload) and its summary."""
    fields = {"type": "upload", "mimeType": "text/plain", "status": "ready"}
    ref = make_object("data_source", owner, createdBy=created_by or owner.id, **fields)
    location = blobs.location(uploaded_by or owner, ref.id)
    objects.update(ref, {"location": location})
    for body in (b"first", b"second"):
        blobs.put(location, body, content_type="text/plain")
    blobs.put(blobs.key(location, blobs.TEXT), b"second", content_type="text/plain")
    blobs.put(blobs.key(location, blobs.INDEX), b"{}", content_type="application/json")
    table().put({**keys.summary_key(ref.id), "status": "ready", "content": {"text": "Second."}})
    return ref


def delete(principal: Principal, data_source: Ref):
    return invoke("data_sources.delete_data_source", principal, path={"dataSourceId": data_source.id})


def new_topic(owner: Principal, ids: list[str]) -> Ref:
    """A topic with `ids` linked to it."""
    topic = Ref("topic", topics.create_topic(Access(owner), TopicCreate(name="T", description=""))["id"])
    for data_source_id in ids:
        data_source_links.add_topic_data_source(Access(owner), topic.id, data_source_id)
    return topic


def test_owner_deletes_everything(aws, aws_calls):
    alice, viewer = make_user(), make_user()
    source, other = new_data_source(ref_of(alice)), new_data_source(ref_of(alice))
    grant(source, viewer, "viewer")
    me = Access(alice)
    topic = new_topic(alice, [other.id])
    data_source_links.add_topic_data_source(me, topic.id, source.id)
    convo = Ref("convo", convos.create_convo(me, ConvoCreate())["id"])
    data_source_links.add_convo_data_source(me, convo.id, source.id)
    own_prefix = blobs.prefix(ref_of(alice), source.id)
    assert len(s3_versions(own_prefix)) == 4
    aws_calls.reset()
    result = delete(alice, source)
    assert result.status == 204 and result.body == ""
    # The check (the structural grants of the data source and of its topic and convo, the caller's
    # grants on them), its partition, its topic, one transaction, S3's versions listed and deleted, and
    # the owner grant last.
    assert aws_calls["dynamodb:Query"] == 4 and aws_calls["dynamodb:BatchGetItem"] == 2
    assert aws_calls["dynamodb:TransactWriteItems"] == 1 and aws_calls["dynamodb:DeleteItem"] == 1
    assert aws_calls["s3:ListObjectVersions"] == 1 and aws_calls["s3:DeleteObjects"] == 1
    assert aws_calls.total == 10
    assert objects.get(source) is None
    assert table().query_all(keys.object_pk(source)) == []
    assert s3_versions(own_prefix) == []
    assert objects.get(topic)["dataSourceIds"] == [other.id]
    assert grants.all_of_grantee(convo, object_type="data_source") == []
    assert grants.all_of_grantee(ref_of(viewer), object_type="data_source") == []
    # The other data source is untouched.
    assert objects.get(other) is not None and len(s3_versions(blobs.prefix(ref_of(alice), other.id))) == 4
    assert delete(alice, source).status == 404


def test_an_unlinked_data_source_costs_less(aws, aws_calls):
    alice = make_user()
    source = new_data_source(ref_of(alice))
    aws_calls.reset()
    assert delete(alice, source).status == 204
    # The check (Query + BatchGetItem), its partition, one transaction, S3 (2), the owner grant.
    assert aws_calls["dynamodb:BatchGetItem"] == 1 and aws_calls.total == 7
    assert s3_versions(blobs.prefix(ref_of(alice), source.id)) == []


def test_an_interrupted_delete_is_finished_by_the_same_delete(aws, aws_calls, monkeypatch):
    owner = make_user()
    team = make_object("team", ref_of(owner))
    # Uploaded under its creator, then handed to a team (Set Grantees): the files stay where they were.
    source = new_data_source(team, uploaded_by=ref_of(owner), created_by=owner.user_id)
    uploaded = blobs.prefix(ref_of(owner), source.id)
    topic = new_topic(owner, [])
    data_source_links.add_topic_data_source(Access(owner), topic.id, source.id)

    def unavailable(prefix: str) -> int:
        raise RuntimeError("S3 is unavailable")

    monkeypatch.setattr(blobs, "delete_all", unavailable)
    with pytest.raises(RuntimeError):
        delete(owner, source)
    # The data source is gone for everyone at once; its owner grant and files are left.
    assert objects.get(source) is None and objects.get(topic)["dataSourceIds"] == []
    assert [g["SK"] for g in table().query_all(keys.object_pk(source))] == [keys.grant_sk(team)]
    assert len(s3_versions(uploaded)) == 4
    monkeypatch.undo()
    aws_calls.reset()
    assert delete(owner, source).status == 204
    # Nothing left in the table but the owner grant: no topic to read, no transaction but the first.
    assert aws_calls["dynamodb:BatchGetItem"] == 1 and aws_calls["dynamodb:TransactWriteItems"] == 1
    assert s3_versions(uploaded) == []
    assert table().query_all(keys.object_pk(source)) == []
    assert delete(owner, source).status == 404


def test_a_location_naming_anything_else_is_not_trusted(aws):
    alice = make_user()
    victim, source = new_data_source(ref_of(alice)), new_data_source(ref_of(alice))
    victims_location = objects.get(victim)["location"]
    for bad in (victims_location, "", "tenants/", "tenants/user/x/data-sources/y/original"):
        assert data_source_links.blob_prefix(source, bad, ref_of(alice)) == blobs.prefix(
            ref_of(alice), source.id
        )
    assert data_source_links.blob_prefix(source, None, None) is None
    objects.update(source, {"location": victims_location})
    assert delete(alice, source).status == 204
    assert s3_versions(blobs.prefix(ref_of(alice), source.id)) == []
    assert len(s3_versions(blobs.prefix(ref_of(alice), victim.id))) == 4


def test_who_may_delete_a_data_source(aws):
    owner, admin, member, viewer, participant, outsider = (make_user() for _ in range(6))
    team = make_object("team", ref_of(owner))
    grant(team, admin, "admin")
    grant(team, member, "member")
    source = new_data_source(team, created_by=owner.user_id)
    grant(source, viewer, "viewer")
    convo = Ref("convo", convos.create_convo(Access(member), ConvoCreate())["id"])
    data_source_links.add_convo_data_source(Access(member), convo.id, source.id)
    grant(convo, participant, "participant")
    assert delete(outsider, source).status == 404
    for user in (admin, member, viewer, participant):
        result = delete(user, source)
        assert result.status == 403 and result.json["code"] == "permission_denied"
    assert objects.get(source) is not None
    assert delete(owner, source).status == 204
    assert objects.get(source) is None
    assert s3_versions(blobs.prefix(team, source.id)) == []
    assert delete(owner, Ref("data_source", str(uuid4()))).status == 404
    bad = invoke("data_sources.delete_data_source", owner, path={"dataSourceId": "nope"})
    assert bad.status == 422 and {"code", "message"} <= set(bad.json)
