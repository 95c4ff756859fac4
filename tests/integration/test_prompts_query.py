"""Query Prompts: GET /prompts?topicId= | userId=."""

from uuid import uuid4

from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.models.prompts import PromptCreate
from kallo.models.topics import TopicCreate
from kallo.services import prompts, topics
from kallo.store.keys import Ref
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of


def new_prompt(owner: Principal, team: Ref | None = None) -> str:
    data = PromptCreate(text="Be brief.")
    return prompts.create_prompt(Access(owner), data, team_id=team.id if team else None)["id"]


def ids(result) -> list[str]:
    assert result.status == 200, result.body
    return [p["id"] for p in result.json]


def test_a_topics_prompt_is_visible_to_the_topics_users(aws, aws_calls):
    owner, admin, member, outsider = make_user(), make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, admin, "admin")
    grant(team, member, "member")
    topic = topics.create_topic(Access(owner), TopicCreate(name="T", description=""), team_id=team.id)["id"]
    query = {"topicId": topic}
    assert ids(invoke("prompts.query_prompts", member, query=query)) == []
    # The admin's own prompt, set on the team's topic: the member reads it through the topic.
    prompt = new_prompt(admin)
    topics.set_topic_prompt(Access(admin), topic, prompt)
    aws_calls.reset()
    result = invoke("prompts.query_prompts", member, query=query)
    assert ids(result) == [prompt] and result.json[0]["text"] == "Be brief."
    # Topic check (Query + BatchGetItem), the topic (GetItem), prompt check (Query + BatchGetItem),
    # the prompt (GetItem).
    assert aws_calls.total == 6 and aws_calls["dynamodb:GetItem"] == 2
    assert invoke("prompts.query_prompts", outsider, query=query).status == 404
    assert invoke("prompts.query_prompts", member, query={"topicId": str(uuid4())}).status == 404


def test_a_users_prompts_include_its_teams(aws, aws_calls):
    alice, bob = make_user(), make_user()
    team = make_object("team", ref_of(bob))
    grant(team, alice, "member")
    own, team_prompt, shared = new_prompt(alice), new_prompt(bob, team), new_prompt(bob)
    grant(Ref("prompt", shared), alice, "viewer")
    new_prompt(bob)  # not alice's
    aws_calls.reset()
    result = invoke("prompts.query_prompts", alice, query={})
    assert ids(result) == sorted([own, team_prompt, shared])
    # Alice's teams, her grants, the team's grants (3 Queries), the prompts (1 BatchGetItem).
    assert aws_calls.total == 4 and aws_calls["dynamodb:BatchGetItem"] == 1
    assert ids(invoke("prompts.query_prompts", alice, query={"userId": alice.user_id})) == sorted(
        [own, team_prompt, shared]
    )


def test_pages_and_cursors(aws):
    alice = make_user()
    expected = sorted(new_prompt(alice) for _ in range(5))
    first = invoke("prompts.query_prompts", alice, query={"limit": "2"})
    token = first.headers["x-next-token"]
    second = invoke("prompts.query_prompts", alice, query={"limit": "2", "nextToken": token})
    rest = invoke("prompts.query_prompts", alice, query={"nextToken": second.headers["x-next-token"]})
    assert ids(first) + ids(second) + ids(rest) == expected
    assert "x-next-token" not in rest.headers
    # A prompts cursor means nothing to the topics listing.
    assert invoke("topics.query_topics", alice, query={"nextToken": token}).status == 400


def test_other_users_prompts_need_authority(aws):
    service, _ = make_service_account()
    pat, stranger = make_user(admin=service), make_user()
    pats = new_prompt(pat)
    new_prompt(service)
    assert ids(invoke("prompts.query_prompts", service, query={"userId": pat.user_id})) == [pats]
    assert invoke("prompts.query_prompts", service, query={"userId": stranger.user_id}).status == 404
    assert invoke("prompts.query_prompts", stranger, query={"userId": pat.user_id}).status == 404


def test_query_prompts_bad_input(aws):
    alice = make_user()
    for query in (
        {"topicId": str(uuid4()), "userId": alice.user_id},
        {"topicId": "nope"},
        {"userId": "42"},
        {"limit": "-1"},
        {"nextToken": "%%%"},
    ):
        result = invoke("prompts.query_prompts", alice, query=query)
        assert 400 <= result.status < 500, (query, result.status)
        assert {"code", "message"} <= set(result.json), result.body
    both = invoke("prompts.query_prompts", alice, query={"topicId": str(uuid4()), "userId": alice.user_id})
    assert both.status == 400 and both.json["code"] == "ambiguous_filter"
