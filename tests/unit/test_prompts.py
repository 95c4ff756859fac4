"""The prompts service and models."""

import pytest
from pydantic import ValidationError

from kallo.authz.access import Access
from kallo.authz.policy import Permission
from kallo.errors import BadRequest, Forbidden, NotFound
from kallo.models.prompts import Prompt, PromptCreate, PromptUpdate
from kallo.models.topics import TopicCreate
from kallo.services import prompts, topics
from kallo.store import grants, keys, objects
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.world import grant, make_object, make_user, ref_of


def test_prompt_text_is_kept_verbatim_but_never_blank():
    assert PromptCreate(text="  Be brief.\n").text == "  Be brief.\n"
    assert PromptUpdate(text="x" * 32768).changes() == {"text": "x" * 32768}
    for bad in ({"text": ""}, {"text": " \n\t"}, {"text": "x" * 32769}, {}, {"text": None}):
        with pytest.raises(ValidationError):
            PromptCreate.model_validate(bad)
    with pytest.raises(ValidationError):
        PromptUpdate.model_validate({})
    assert set(Prompt.model_json_schema(by_alias=True)["required"]) == {
        "id",
        "text",
        "createdBy",
        "createdAt",
    }


def test_team_prompt_lifecycle(aws):
    owner, admin = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, admin, "admin")
    created = prompts.create_prompt(Access(admin), PromptCreate(text="Be brief."), team_id=team.id)
    ref = Ref("prompt", created["id"])
    assert created["teamId"] == team.id and created["createdBy"] == admin.user_id
    assert Access(admin).can(ref, Permission.can_edit) and not Access(admin).can(ref, Permission.can_delete)
    updated = prompts.update_prompt(Access(admin), ref.id, PromptUpdate(text="Be thorough."))
    assert updated["text"] == "Be thorough." and updated["teamId"] == team.id
    with pytest.raises(Forbidden):
        prompts.delete_prompt(Access(admin), ref.id)
    prompts.delete_prompt(Access(owner), ref.id)
    # The team's owner grant (a structural one) went with it.
    assert objects.get(ref) is None and grants.get(ref, team) is None


def test_the_prompt_of_a_topic(aws):
    alice = make_user()
    me = Access(alice)
    topic = topics.create_topic(me, TopicCreate(name="T", description=""))["id"]
    assert prompts.query_prompts(me, topic_id=topic) == ([], None)
    prompt = prompts.create_prompt(me, PromptCreate(text="Be brief."))
    topics.set_topic_prompt(me, topic, prompt["id"])
    assert prompts.query_prompts(Access(alice), topic_id=topic) == ([prompt], None)
    # A prompt deleted behind the topic's back shows as none.
    table().delete(keys.object_key(Ref("prompt", prompt["id"])))
    assert prompts.query_prompts(Access(alice), topic_id=topic) == ([], None)
    with pytest.raises(BadRequest):
        prompts.query_prompts(me, topic_id=topic, user_id=alice.user_id)
    with pytest.raises(NotFound):
        prompts.query_prompts(Access(make_user()), topic_id=topic)


def test_listing_pages(aws):
    alice = make_user()
    made = sorted(prompts.create_prompt(Access(alice), PromptCreate(text=str(i)))["id"] for i in range(3))
    page, token = prompts.query_prompts(Access(alice), limit=2)
    assert [p["id"] for p in page] == made[:2] and token
    page, token = prompts.query_prompts(Access(alice), limit=2, next_token=token)
    assert [p["id"] for p in page] == made[2:] and token is None


def test_deleting_again_finishes_an_interrupted_delete(aws):
    alice, viewer = make_user(), make_user()
    prompt = Ref("prompt", prompts.create_prompt(Access(alice), PromptCreate(text="x"))["id"])
    grant(prompt, viewer, "viewer")
    # As if a chunked delete stopped after its first transaction.
    table().delete(keys.object_key(prompt))
    prompts.delete_prompt(Access(alice), prompt.id)
    assert grants.all_of_object(prompt) == []
    with pytest.raises(NotFound):
        prompts.delete_prompt(Access(alice), prompt.id)
