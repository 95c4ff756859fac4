"""Query Topics: GET /topics[?topicIds=] — the listed topics, or a page of every topic the caller can
view (its own grants and its teams'), never a call per topic."""

from uuid import uuid4

from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.models.topics import TopicCreate
from kallo.services import topics
from kallo.store import keys
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_user, ref_of


def new_topic(owner: Principal, team: Ref | None = None, name: str = "Topic") -> str:
    data = TopicCreate(name=name, description="")
    return topics.create_topic(Access(owner), data, team_id=team.id if team else None)["id"]


def ids(result) -> list[str]:
    assert result.status == 200, result.body
    return [t["id"] for t in result.json]


def test_lists_own_shared_and_team_topics(aws, aws_calls):
    alice, bob, carol = make_user(), make_user(), make_user()
    red, blue = make_object("team", ref_of(bob)), make_object("team", ref_of(carol))
    grant(red, alice, "member")
    grant(blue, alice, "viewer")
    mine = new_topic(alice)
    shared = new_topic(bob)
    grant(Ref("topic", shared), alice, "participant")
    red_topics = [new_topic(bob, red) for _ in range(3)]
    blue_topic = new_topic(carol, blue)
    # Granted to alice directly and through a team: listed once.
    grant(Ref("topic", blue_topic), alice, "viewer")
    new_topic(bob)  # bob's own, not shared
    aws_calls.reset()
    result = invoke("topics.query_topics", alice, query={})
    assert ids(result) == sorted([mine, shared, *red_topics, blue_topic])
    assert "x-next-token" not in result.headers
    # Alice's teams, her grants and each team's grants (3 Queries), the topics in one BatchGetItem.
    assert aws_calls["dynamodb:Query"] == 4 and aws_calls["dynamodb:BatchGetItem"] == 1
    assert aws_calls.total == 5

    # Not N+1: ten more team topics cost nothing more.
    for _ in range(10):
        new_topic(bob, red)
    aws_calls.reset()
    assert len(ids(invoke("topics.query_topics", alice, query={}))) == 16
    assert aws_calls.total == 5


def test_outsiders_see_nothing(aws):
    owner, outsider = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    new_topic(owner, team)
    new_topic(owner)
    assert ids(invoke("topics.query_topics", outsider, query={})) == []


def test_pages_follow_the_next_token(aws, aws_calls):
    alice, bob = make_user(), make_user()
    team = make_object("team", ref_of(bob))
    grant(team, alice, "member")
    expected = sorted([new_topic(alice) for _ in range(4)] + [new_topic(bob, team) for _ in range(3)])
    seen, token, pages = [], None, 0
    while True:
        query = {"limit": "3", **({"nextToken": token} if token else {})}
        aws_calls.reset()
        result = invoke("topics.query_topics", alice, query=query)
        # Teams, 2 grant queries, 1 BatchGetItem; the first cursor reads the signing secret (its key).
        assert aws_calls.total == 4 + (pages == 0)
        assert aws_calls["secretsmanager:GetSecretValue"] == (pages == 0)
        assert len(result.json) <= 3
        seen += ids(result)
        pages += 1
        token = result.headers.get("x-next-token")
        if not token:
            break
    assert seen == expected and pages == 3


def test_deleted_topics_with_lingering_grants_are_absent(aws):
    alice, bob = make_user(), make_user()
    kept, deleted = new_topic(bob), new_topic(bob)
    for topic in (kept, deleted):
        grant(Ref("topic", topic), alice, "viewer")
    # What the purge worker has not cleaned yet: the member grant of a deleted topic.
    table().delete(keys.object_key(Ref("topic", deleted)))
    assert ids(invoke("topics.query_topics", alice, query={})) == [kept]
    listed = invoke("topics.query_topics", alice, query={"topicIds": f"{deleted},{kept}"})
    assert ids(listed) == [kept]


def test_scoped_token_lists_only_its_scope(aws):
    alice, bob = make_user(), make_user()
    team = make_object("team", ref_of(bob))
    grant(team, alice, "member")
    team_topic, own = new_topic(bob, team), new_topic(alice)
    scoped = Principal(user_id=alice.user_id, scheme="access_token", scope=(team,))
    assert ids(invoke("topics.query_topics", scoped, query={})) == [team_topic]
    assert ids(invoke("topics.query_topics", scoped, query={"topicIds": f"{own},{team_topic}"})) == [
        team_topic
    ]
    whole = Principal(user_id=alice.user_id, scheme="access_token", scope=(ref_of(alice),))
    assert ids(invoke("topics.query_topics", whole, query={})) == sorted([team_topic, own])


def test_topic_ids_in_request_order_without_hidden_ones(aws, aws_calls):
    alice, bob = make_user(), make_user()
    team = make_object("team", ref_of(bob))
    grant(team, alice, "member")
    first, second = new_topic(alice), new_topic(bob, team)
    hidden, unknown = new_topic(bob), str(uuid4())
    aws_calls.reset()
    result = invoke(
        "topics.query_topics", alice, query={"topicIds": f"{second}, {hidden},{unknown},{first},{second}"}
    )
    assert ids(result) == [second, first]
    # The topics (1 BatchGetItem), alice's teams (1 Query), the grants that decide (1 BatchGetItem).
    assert aws_calls["dynamodb:BatchGetItem"] == 2 and aws_calls["dynamodb:Query"] == 1
    assert aws_calls.total == 3

    many = [new_topic(alice) for _ in range(20)]
    aws_calls.reset()
    assert len(ids(invoke("topics.query_topics", alice, query={"topicIds": ",".join(many)}))) == 20
    assert aws_calls.total == 3


def test_empty_topic_ids_lists_nothing(aws, aws_calls):
    alice = make_user()
    new_topic(alice)
    aws_calls.reset()
    assert ids(invoke("topics.query_topics", alice, query={"topicIds": ""})) == []
    assert aws_calls.total == 0


def test_query_topics_bad_input(aws):
    alice = make_user()
    too_many = ",".join(str(uuid4()) for _ in range(101))
    for query in (
        {"topicIds": "not-a-uuid"},
        {"topicIds": f"{uuid4()},42"},
        {"topicIds": too_many},
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"nextToken": "garbage!"},
        {"nextToken": "eA"},
        {"nextToken": "x" * 2000},
    ):
        result = invoke("topics.query_topics", alice, query=query)
        assert 400 <= result.status < 500, (query, result.status)
        assert {"code", "message"} <= set(result.json), result.body
    assert (
        invoke("topics.query_topics", alice, query={"nextToken": "eA"}).json["code"] == "invalid_next_token"
    )
