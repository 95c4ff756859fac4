"""Set Topic Prompt (PUT /topics/{topicId}/prompts/{promptId}) and Remove Topic Prompt
(DELETE /topics/{topicId}/prompt): the topic's promptId and the prompt's dependent grant, together."""

from uuid import uuid4

from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.models.prompts import PromptCreate
from kallo.models.topics import TopicCreate
from kallo.services import prompts, topics
from kallo.store import grants, keys, objects
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_user, ref_of


def new_topic(owner: Principal, team: Ref | None = None) -> Ref:
    data = TopicCreate(name="T", description="")
    return Ref("topic", topics.create_topic(Access(owner), data, team_id=team.id if team else None)["id"])


def new_prompt(owner: Principal, team: Ref | None = None) -> Ref:
    data = PromptCreate(text="Be brief.")
    return Ref("prompt", prompts.create_prompt(Access(owner), data, team_id=team.id if team else None)["id"])


def set_prompt(principal: Principal, topic: Ref, prompt: Ref):
    return invoke("topics.set_topic_prompt", principal, path={"topicId": topic.id, "promptId": prompt.id})


def remove_prompt(principal: Principal, topic: Ref):
    return invoke("topics.remove_topic_prompt", principal, path={"topicId": topic.id})


def test_set_topic_prompt_links_and_is_idempotent(aws, aws_calls):
    alice = make_user()
    topic, first, second = new_topic(alice), new_prompt(alice), new_prompt(alice)
    aws_calls.reset()
    result = set_prompt(alice, topic, first)
    assert result.status == 204 and result.body == ""
    # Checks on the topic and the prompt (a Query each, one BatchGetItem for both), the topic, one
    # transaction.
    assert aws_calls["dynamodb:TransactWriteItems"] == 1 and aws_calls["dynamodb:GetItem"] == 1
    assert aws_calls["dynamodb:BatchGetItem"] == 1 and aws_calls.total == 5
    assert objects.get(topic)["promptId"] == first.id
    assert grants.get(first, topic)["role"] == "dependent"

    aws_calls.reset()
    assert set_prompt(alice, topic, first).status == 204
    assert aws_calls["dynamodb:TransactWriteItems"] == 0

    # Another prompt replaces it, and the first one's link goes.
    assert set_prompt(alice, topic, second).status == 204
    assert objects.get(topic)["promptId"] == second.id
    assert grants.get(second, topic) is not None and grants.get(first, topic) is None


def test_team_admins_set_team_prompts_members_do_not(aws):
    owner, admin, member = make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, admin, "admin")
    grant(team, member, "member")
    topic, prompt = new_topic(owner, team), new_prompt(owner, team)
    denied = set_prompt(member, topic, prompt)
    assert denied.status == 403 and denied.json["code"] == "permission_denied"
    assert set_prompt(admin, topic, prompt).status == 204
    denied = remove_prompt(member, topic)
    assert denied.status == 403 and denied.json["code"] == "permission_denied"
    assert remove_prompt(admin, topic).status == 204
    assert "promptId" not in objects.get(topic)


def test_cross_tenant_probes_are_not_found(aws):
    alice, mallory = make_user(), make_user()
    alices_topic, alices_prompt = new_topic(alice), new_prompt(alice)
    mallorys_topic, mallorys_prompt = new_topic(mallory), new_prompt(mallory)
    # Linking someone else's prompt to your topic, or your prompt to someone else's topic.
    assert set_prompt(mallory, mallorys_topic, alices_prompt).status == 404
    assert set_prompt(mallory, alices_topic, mallorys_prompt).status == 404
    assert remove_prompt(mallory, alices_topic).status == 404
    assert set_prompt(alice, alices_topic, Ref("prompt", str(uuid4()))).status == 404
    assert set_prompt(alice, Ref("topic", str(uuid4())), alices_prompt).status == 404
    assert "promptId" not in objects.get(mallorys_topic)


def test_viewing_a_prompt_is_not_enough_to_link_it(aws):
    """I5: linking a prompt passes it on to everyone on the topic, so it needs `can_add_dependent` on
    the prompt, which neither a viewer nor a participant of a topic that uses it holds."""
    alice, mallory, member = make_user(), make_user(), make_user()
    alices_topic, alices_prompt = new_topic(alice), new_prompt(alice)
    assert set_prompt(alice, alices_topic, alices_prompt).status == 204
    grant(alices_topic, mallory, "participant")  # mallory reads the prompt through alice's topic
    mallorys_topic = new_topic(mallory)
    through_topic = set_prompt(mallory, mallorys_topic, alices_prompt)
    assert through_topic.status == 403 and through_topic.json["code"] == "permission_denied"
    grant(alices_prompt, mallory, "viewer")
    shared = set_prompt(mallory, mallorys_topic, alices_prompt)
    assert shared.status == 403 and shared.json["code"] == "permission_denied"
    assert "promptId" not in objects.get(mallorys_topic)
    assert grants.get(alices_prompt, mallorys_topic) is None
    # Alice's prompt keeps exactly its grants: her ownership, her topic's link, mallory's viewer role.
    assert {(g["granteeId"], g["role"]) for g in grants.all_of_object(alices_prompt)} == {
        (alice.user_id, "owner"),
        (alices_topic.id, "dependent"),
        (mallory.user_id, "viewer"),
    }
    # A team that owns a prompt lets its members link it (as with data sources).
    team = make_object("team", ref_of(alice))
    grant(team, member, "member")
    team_prompt = new_prompt(alice, team)
    assert set_prompt(member, new_topic(member), team_prompt).status == 204


def test_a_deleted_prompt_cannot_be_set(aws):
    alice = make_user()
    topic, prompt = new_topic(alice), new_prompt(alice)
    # The prompt item is gone but its owner grant lingers.
    table().delete(keys.object_key(prompt))
    result = set_prompt(alice, topic, prompt)
    assert result.status == 404 and result.json["code"] == "not_found"
    assert "promptId" not in objects.get(topic) and grants.get(prompt, topic) is None


def test_remove_topic_prompt(aws, aws_calls):
    alice = make_user()
    topic, prompt = new_topic(alice), new_prompt(alice)
    assert set_prompt(alice, topic, prompt).status == 204
    aws_calls.reset()
    assert remove_prompt(alice, topic).status == 204
    # The check (Query + BatchGetItem), the topic, one transaction.
    assert aws_calls.total == 4 and aws_calls["dynamodb:TransactWriteItems"] == 1
    assert "promptId" not in objects.get(topic) and grants.get(prompt, topic) is None
    aws_calls.reset()
    assert remove_prompt(alice, topic).status == 204
    assert aws_calls.total == 3 and aws_calls["dynamodb:TransactWriteItems"] == 0


def test_topic_prompt_bad_input(aws):
    alice = make_user()
    topic, prompt = new_topic(alice), new_prompt(alice)
    for path in ({"topicId": "x", "promptId": prompt.id}, {"topicId": topic.id, "promptId": "1234"}):
        result = invoke("topics.set_topic_prompt", alice, path=path)
        assert result.status == 422 and {"code", "message"} <= set(result.json)
    result = invoke("topics.remove_topic_prompt", alice, path={"topicId": "x"})
    assert result.status == 422 and {"code", "message"} <= set(result.json)
