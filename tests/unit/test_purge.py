"""The purge service: job messages, what a purge deletes (and what it leaves), counts and repeats."""

import json
from uuid import uuid4

import pytest
from pydantic import ValidationError

from kallo import aws as kallo_aws
from kallo import jobs
from kallo.jobs import PurgeJob
from kallo.services import purge
from kallo.settings import get_settings
from kallo.store import grants, keys, objects
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.world import grant, make_object, make_user, ref_of


def test_a_purge_job_is_one_message(aws, aws_calls):
    ref = Ref("topic", str(uuid4()))
    aws_calls.reset()
    jobs.send(PurgeJob.of(ref))
    assert aws_calls.total == 1 and aws_calls["sqs:SendMessage"] == 1
    sqs = kallo_aws.client("sqs")
    (message,) = sqs.receive_message(QueueUrl=get_settings().purge_queue_url)["Messages"]
    assert json.loads(message["Body"]) == {"type": "topic", "id": ref.id}
    assert PurgeJob.model_validate_json(message["Body"]).ref == ref


@pytest.mark.parametrize(
    "body",
    [
        "",
        "[]",
        '{"type": "convo"}',
        '{"type": "planet", "id": "7b0e3c5a-2f4e-4a43-9a51-3f0a3d9d2c11"}',
        '{"type": "convo", "id": "x"}',
        '{"type": "convo", "id": "7b0e3c5a-2f4e-4a43-9a51-3f0a3d9d2c11", "extra": 1}',
    ],
)
def test_bad_jobs_are_refused(body):
    with pytest.raises(ValidationError):
        PurgeJob.model_validate_json(body)


def delete_item(ref: Ref, owner: Ref) -> None:
    """What a Delete operation does before it schedules the purge."""
    table().transact([{"delete": keys.object_key(ref)}, {"delete": keys.grant_key(ref, owner)}])


def test_a_team_purge_goes_down_the_whole_ownership_tree(aws):
    alice, bob = make_user(), make_user()
    team = make_object("team", ref_of(alice))
    grant(team, bob, "member")
    topic = make_object("topic", team)
    convo = make_object("convo", topic)
    team_convo = make_object("convo", team)
    foreign = make_object("topic", ref_of(bob))
    grant(foreign, team, "viewer")  # shared with the team, not owned by it
    delete_item(team, ref_of(alice))
    # Team: bob's grant; topic: item + owner grant; 2 convos: item + owner grant; the viewer link.
    assert purge.purge(team) == 1 + 2 + 2 * 2 + 1
    for gone in (team, topic, convo, team_convo):
        assert table().query_all(keys.object_pk(gone)) == []
        assert table().query_all(keys.grantee_pk(gone), index="GSI1") == []
    assert objects.get(foreign) is not None and grants.get(foreign, ref_of(bob))["role"] == "owner"
    assert grants.all_of_grantee(ref_of(bob)) == [grants.get(foreign, ref_of(bob))]
    assert purge.purge(team) == 0


def test_links_to_a_purged_object_go_the_linked_objects_stay(aws):
    alice = make_user()
    convo = make_object("convo", ref_of(alice))
    source = make_object("data_source", ref_of(alice))
    grant(source, convo, "dependent")
    delete_item(convo, ref_of(alice))
    assert purge.purge(convo) == 1
    assert grants.get(source, convo) is None and objects.get(source) is not None


def test_a_job_for_a_live_object_is_refused_and_deletes_nothing(aws, aws_calls):
    """No Delete sends a job for an object that exists (I4: ids are never reused), so such a job is
    forged or corrupt: it fails (to be dead-lettered), and the live object keeps everything."""
    alice = make_user()
    convo = make_object("convo", ref_of(alice))
    source = make_object("data_source", ref_of(alice))
    grant(source, convo, "dependent")
    aws_calls.reset()
    with pytest.raises(purge.LiveObject):
        purge.purge(convo)
    assert aws_calls.total == 1  # one consistent read
    assert grants.get(convo, ref_of(alice)) is not None and grants.get(source, convo) is not None
