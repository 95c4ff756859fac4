"""Delete Prompt: DELETE /prompts/{promptId} — the prompt, all its grants, and its place on every topic
that uses it."""

from uuid import uuid4

import pytest

from kallo.authz.access import Access
from kallo.models.prompts import PromptCreate
from kallo.models.topics import TopicCreate
from kallo.services import prompts, topics
from kallo.store import grants, keys, objects
from kallo.store import table as table_module
from kallo.store.keys import Ref
from kallo.store.table import Table
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_user, ref_of


def new_topic(access: Access) -> Ref:
    return Ref("topic", topics.create_topic(access, TopicCreate(name="T", description=""))["id"])


def test_delete_prompt_takes_it_off_its_topics(aws, aws_calls):
    alice, viewer = make_user(), make_user()
    me = Access(alice)
    prompt = Ref("prompt", prompts.create_prompt(me, PromptCreate(text="Be brief."))["id"])
    grant(prompt, viewer, "viewer")
    using = [new_topic(me), new_topic(me)]
    for topic in using:
        topics.set_topic_prompt(me, topic.id, prompt.id)
    # A link whose topic has since moved to another prompt (as a race could leave it).
    moved, other = new_topic(me), Ref("prompt", prompts.create_prompt(me, PromptCreate(text="x"))["id"])
    topics.set_topic_prompt(me, moved.id, other.id)
    grant(prompt, moved, "dependent")
    aws_calls.reset()
    result = invoke("prompts.delete_prompt", alice, path={"promptId": prompt.id})
    assert result.status == 204 and result.body == ""
    # The check: the prompt's structural grants and those of its 3 topics (4 Queries) and the caller's
    # grants on them (BatchGetItem); its user grants (Query); the topics (BatchGetItem); 1 transaction.
    assert aws_calls["dynamodb:Query"] == 5 and aws_calls["dynamodb:BatchGetItem"] == 2
    assert aws_calls["dynamodb:TransactWriteItems"] == 1 and aws_calls.total == 8
    assert objects.get(prompt) is None
    assert grants.all_of_object(prompt) == []
    assert all("promptId" not in objects.get(t) for t in using)
    assert objects.get(moved)["promptId"] == other.id and grants.get(other, moved) is not None
    assert invoke("prompts.delete_prompt", alice, path={"promptId": prompt.id}).status == 404


def test_a_large_delete_goes_in_chunks_prompt_first(aws, aws_calls, monkeypatch):
    alice = make_user()
    me = Access(alice)
    prompt = Ref("prompt", prompts.create_prompt(me, PromptCreate(text="Be brief."))["id"])
    using = [new_topic(me), new_topic(me)]
    for topic in using:
        topics.set_topic_prompt(me, topic.id, prompt.id)
    for _ in range(3):
        grant(prompt, make_user(), "viewer")
    # 1 prompt + 2 * (topic update + link) + 4 user grants = 9 writes; chunks of 4 keep the test fast.
    monkeypatch.setattr(table_module, "TRANSACT_LIMIT", 4)
    real_transact, calls = Table.transact, []

    def interrupted(self, operations):
        calls.append(operations)
        if len(calls) == 2:
            raise RuntimeError("the function timed out")
        real_transact(self, operations)

    monkeypatch.setattr(Table, "transact", interrupted)
    with pytest.raises(RuntimeError):
        invoke("prompts.delete_prompt", alice, path={"promptId": prompt.id})
    # The first chunk took the prompt away: it shows nowhere, though grants are left.
    assert calls[0][0] == {"delete": keys.object_key(prompt)} and objects.get(prompt) is None
    assert grants.all_of_object(prompt) != []
    monkeypatch.setattr(Table, "transact", real_transact)
    aws_calls.reset()
    # The same DELETE again finishes the job, in chunks of at most 4.
    assert invoke("prompts.delete_prompt", alice, path={"promptId": prompt.id}).status == 204
    assert aws_calls["dynamodb:TransactWriteItems"] == 2
    assert grants.all_of_object(prompt) == []
    assert not any("promptId" in t for t in objects.batch_get(using).values())


def test_who_may_delete_a_prompt(aws):
    owner, admin, member, outsider = make_user(), make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, admin, "admin")
    grant(team, member, "member")
    prompt_id = prompts.create_prompt(Access(owner), PromptCreate(text="x"), team_id=team.id)["id"]
    path = {"promptId": prompt_id}
    assert invoke("prompts.delete_prompt", outsider, path=path).status == 404
    for user in (admin, member):
        result = invoke("prompts.delete_prompt", user, path=path)
        assert result.status == 403 and result.json["code"] == "permission_denied"
    assert invoke("prompts.delete_prompt", owner, path=path).status == 204
    assert invoke("prompts.delete_prompt", owner, path={"promptId": str(uuid4())}).status == 404
    bad = invoke("prompts.delete_prompt", owner, path={"promptId": "nope"})
    assert bad.status == 422 and {"code", "message"} <= set(bad.json)
