"""The purge worker (workers.purge): SQS batches of purge jobs; nothing of a purged object is left in the
table, a job delivered twice is harmless, and one failing job fails alone."""

import copy
import json
from typing import Any
from uuid import uuid4

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from workers import purge as worker

from kallo import aws as kallo_aws
from kallo import jobs
from kallo.authz.access import Access
from kallo.clock import now_iso
from kallo.models.convos import ConvoCreate
from kallo.models.steps import Step
from kallo.services import convos, purge
from kallo.settings import get_settings
from kallo.store import connections, grants, invitations, keys, objects, steps
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.api import EVENTS, LambdaContext
from tests.support.api import invoke as invoke_api
from tests.support.world import grant, make_object, make_user, ref_of

SAMPLE = json.loads((EVENTS / "workers" / "purge.json").read_text())["Records"][0]


def record(body: str) -> dict[str, Any]:
    return {**copy.deepcopy(SAMPLE), "messageId": str(uuid4()), "body": body}


def run(*records: dict[str, Any]) -> list[str]:
    """Invoke the worker with one batch; returns the ids of the messages it reports as failed."""
    response = worker.lambda_handler({"Records": list(records)}, LambdaContext())
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def queued() -> list[dict[str, Any]]:
    """The jobs waiting on the purge queue, as the worker would receive them."""
    sqs = kallo_aws.client("sqs")
    messages = sqs.receive_message(QueueUrl=get_settings().purge_queue_url, MaxNumberOfMessages=10)
    return [record(m["Body"]) for m in messages.get("Messages", [])]


def add_steps(convo: Ref, authors: list[str | None], count: int) -> list[str]:
    """`count` steps, written in turn by `authors` (None: the LLM)."""
    made = []
    for n in range(count):
        at = f"2026-11-22T10:{n // 60:02d}:{n % 60:02d}.000Z"
        author = authors[n % len(authors)]
        step = Step(
            id=str(uuid4()),
            convoId=convo.id,
            authorType="user" if author else "llm",
            authorId=author,
            createdAt=at,
            updatedAt=at,
        )
        made.append(steps.add(step.record())["id"])
    return made


def left_of(obj: Ref, step_ids: list[str] = ()) -> list[dict[str, Any]]:
    """Whatever the table still holds of an object: its partition, the grants naming it (GSI1), its
    steps by id (GSI1)."""
    found = table().query_all(keys.object_pk(obj))
    found += table().query_all(keys.grantee_pk(obj), index="GSI1")
    for step_id in step_ids:
        found += table().query_all(keys.step_index_pk(step_id), index="GSI1")
    return found


def busy_convo(owner, participant, steps_count: int = 30, **where: str) -> tuple[Ref, list[str]]:
    """A convo with everything that hangs off one: steps and contributors, grants, an invitation, a
    linked data source and a live connection."""
    ref = Ref("convo", convos.create_convo(Access(owner), ConvoCreate(name="busy"), **where)["id"])
    grant(ref, participant, "participant")
    # 30 by default: more than one batch (25) of deletes.
    made = add_steps(ref, [owner.user_id, participant.user_id, None], steps_count)
    invitations.put(
        invitations.item(
            ref, "guest@example.com", "viewer", created_by=owner.user_id, created_at=now_iso(), ttl=2**31
        )
    )
    source = make_object("data_source", ref_of(owner))
    grant(source, ref, "dependent")
    connections.put({"connectionId": "conn-1", "convoId": ref.id, "userId": owner.user_id}, ttl=2**31)
    return ref, made


def test_delete_a_convo_then_purge_it_completely(aws):
    alice, bob = make_user(), make_user()
    ref, made = busy_convo(alice, bob)
    assert invoke_api("convos.delete_convo", alice, path={"convoId": ref.id}).status == 204
    jobs = queued()
    assert [json.loads(j["body"]) for j in jobs] == [{"type": "convo", "id": ref.id}]
    assert run(*jobs) == []
    assert left_of(ref, made) == []
    assert grants.all_of_grantee(ref_of(bob), object_type="convo") == []
    # What the convo only linked to stays.
    assert objects.get(Ref("user", alice.user_id)) is not None


def test_a_job_delivered_twice_is_harmless(aws):
    alice, bob = make_user(), make_user()
    ref, made = busy_convo(alice, bob)
    convos.delete_convo(Access(alice), ref.id)
    (job,) = queued()
    assert run(job) == [] and run(job) == []
    assert left_of(ref, made) == []
    assert purge.purge(ref) == 0


def test_deleting_a_topic_purges_its_convos(aws):
    owner, member, guest = make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, member, "member")
    topic = make_object("topic", team)
    grant(topic, guest, "participant")
    prompt = make_object("prompt", team)
    grant(prompt, topic, "dependent")
    source = make_object("data_source", team)
    grant(source, topic, "dependent")
    busy = [busy_convo(member, guest, 3, topic_id=topic.id) for _ in range(2)]
    other_topic = make_object("topic", team)
    survivor, survivor_steps = busy_convo(member, guest, 3, topic_id=other_topic.id)
    # Delete Topic (the Topics area): the topic and its owner grant, then a purge job.
    table().transact([{"delete": keys.object_key(topic)}, {"delete": keys.grant_key(topic, team)}])
    jobs.send(jobs.PurgeJob.of(topic))

    assert run(*queued()) == []
    assert left_of(topic) == []
    for ref, made in busy:
        assert left_of(ref, made) == []
    # Only what belonged to the topic went.
    for kept in (team, prompt, source, other_topic, survivor):
        assert objects.get(kept) is not None
    assert len(steps.of_convo(survivor.id).items) == len(survivor_steps)
    assert grants.get(team, ref_of(member))["role"] == "member"
    assert [grants.object_ref(g) for g in grants.all_of_grantee(ref_of(guest), object_type="convo")] == [
        survivor
    ]


def test_an_interrupted_purge_finishes_when_the_job_comes_back(aws, monkeypatch):
    owner, guest = make_user(), make_user()
    topic = make_object("topic", ref_of(owner))
    ref, made = busy_convo(owner, guest, 3, topic_id=topic.id)
    table().transact([{"delete": keys.object_key(topic)}, {"delete": keys.grant_key(topic, ref_of(owner))}])
    jobs.send(jobs.PurgeJob.of(topic))
    (job,) = queued()

    real = steps.delete_all_of_convo

    def timeout(convo_id: str) -> int:
        raise TimeoutError("the worker ran out of time")

    monkeypatch.setattr(steps, "delete_all_of_convo", timeout)
    with pytest.raises(BatchProcessingError):  # its only job failed: the whole batch comes back
        run(job)
    # Half-way: the convo's item is gone, but its owner grant still leads the next attempt to it.
    assert objects.get(ref) is None and grants.get(ref, topic) is not None
    monkeypatch.setattr(steps, "delete_all_of_convo", real)
    assert run(job) == []
    assert left_of(topic) == [] and left_of(ref, made) == []


def test_partial_batch_failure(aws, monkeypatch):
    alice = make_user()
    good = [Ref("convo", convos.create_convo(Access(alice), ConvoCreate())["id"]) for _ in range(2)]
    failing = Ref("convo", convos.create_convo(Access(alice), ConvoCreate())["id"])
    for ref in (*good, failing):
        add_steps(ref, [alice.user_id], 3)
        convos.delete_convo(Access(alice), ref.id)
    queued()  # drained: the batch below is built by hand

    real = purge.purge

    def flaky(ref: Ref) -> int:
        if ref == failing:
            raise RuntimeError("throttled")
        return real(ref)

    monkeypatch.setattr(purge, "purge", flaky)
    batch = [
        record(json.dumps({"type": "convo", "id": good[0].id})),
        record("{not json"),
        record(json.dumps({"type": "spaceship", "id": str(uuid4())})),
        record(json.dumps({"type": "convo", "id": "not-a-uuid"})),
        record(json.dumps({"type": "convo", "id": failing.id})),
        record(json.dumps({"type": "convo", "id": good[1].id})),
    ]
    assert run(*batch) == [r["messageId"] for r in batch[1:5]]
    assert left_of(good[0]) == [] and left_of(good[1]) == []
    assert steps.of_convo(failing.id).items != []


def test_a_batch_that_fails_entirely_raises_so_it_is_retried(aws):
    with pytest.raises(BatchProcessingError):
        run(record("{not json"))


def test_a_job_for_a_live_object_fails_and_purges_nothing(aws):
    """No Delete sends a job for an object that exists, and no id names two objects (I4): such a job is
    forged or corrupt. It fails (to be retried, then dead-lettered) and takes nothing of the object."""
    alice = make_user()
    live = Ref("convo", convos.create_convo(Access(alice), ConvoCreate())["id"])
    made = add_steps(live, [alice.user_id], 2)
    gone = Ref("convo", convos.create_convo(Access(alice), ConvoCreate())["id"])
    convos.delete_convo(Access(alice), gone.id)
    (deleted_job,) = queued()
    forged = record(json.dumps({"type": "convo", "id": live.id}))
    assert run(forged, deleted_job) == [forged["messageId"]]
    assert objects.get(live) is not None and len(steps.of_convo(live.id).items) == len(made)
    assert grants.get(live, ref_of(alice))["role"] == "owner"
    assert left_of(gone) == []


def test_a_topic_created_right_after_a_delete_inherits_nothing(aws):
    """I4: nobody can re-claim a deleted topic's id before its purge (the server makes every id), so the
    purge takes all of the old topic's convos, steps and links, and a new topic starts empty."""
    alice, mallory = make_user(), make_user()
    created = invoke_api("topics.create_topic", alice, query={}, body={"name": "T", "description": ""})
    topic = Ref("topic", created.json["id"])
    ref, made = busy_convo(alice, make_user(), 3, topic_id=topic.id)
    source = make_object("data_source", ref_of(alice))
    grant(source, topic, "dependent")
    assert invoke_api("topics.delete_topic", alice, path={"topicId": topic.id}).status == 204
    # Before the purge runs, the old id cannot be asked for, by anyone.
    for who in (mallory, alice):
        claim = invoke_api(
            "topics.create_topic", who, query={}, body={"id": topic.id, "name": "T", "description": ""}
        )
        assert claim.status == 422 and claim.json["code"] == "validation_error"
    again = invoke_api("topics.create_topic", alice, query={}, body={"name": "T", "description": ""})
    assert again.status == 201 and again.json["id"] != topic.id
    assert run(*queued()) == []
    assert left_of(topic) == [] and left_of(ref, made) == []
    assert objects.get(source) is not None and grants.get(source, topic) is None
    fresh = Ref("topic", again.json["id"])
    listed = invoke_api("convos.query_convos", alice, query={"topicId": fresh.id})
    assert listed.status == 200 and listed.json == []
    assert table().query_all(keys.grantee_pk(fresh), index="GSI1") == []
