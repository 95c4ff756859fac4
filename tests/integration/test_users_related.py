"""Get Related Users: GET /users/{userId}/related."""

from uuid import uuid4

from kallo.store.keys import Ref
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of

RELATED = "users.get_related_users"


def ids(result) -> list[str]:
    assert result.status == 200, result.body
    return [u["id"] for u in result.json]


def test_users_sharing_a_team_topic_or_convo(aws, aws_calls):
    pat, teammate, topic_peer, convo_peer = (make_user() for _ in range(4))
    team = make_object("team", ref_of(pat))
    grant(team, teammate, "member")
    topic = make_object("topic", ref_of(topic_peer))
    grant(topic, pat, "member")
    grant(topic, teammate, "viewer")
    convo = make_object("convo", ref_of(convo_peer))
    grant(convo, pat, "participant")
    aws_calls.reset()
    result = invoke(RELATED, pat, path={"userId": pat.user_id}, query={})
    assert ids(result) == sorted(p.user_id for p in (teammate, topic_peer, convo_peer))
    assert set(result.json[0]) >= {"id", "isServiceAccount", "createdAt"}
    # Pat's grants (1 Query), each object's user grants (3 Queries), the users (1 BatchGetItem).
    assert aws_calls.total == 5 and aws_calls["dynamodb:Query"] == 4
    assert aws_calls["dynamodb:BatchGetItem"] == 1 and aws_calls["dynamodb:Scan"] == 0
    assert "x-next-token" not in result.headers


def test_a_loner_has_none_and_costs_one_query(aws, aws_calls):
    loner = make_user()
    aws_calls.reset()
    assert ids(invoke(RELATED, loner, path={"userId": loner.user_id}, query={})) == []
    assert aws_calls.total == 1


def test_pages(aws):
    pat = make_user()
    team = make_object("team", ref_of(pat))
    members = sorted(make_user().user_id for _ in range(3))
    for member in members:
        grant(team, Ref("user", member), "member")
    first = invoke(RELATED, pat, path={"userId": pat.user_id}, query={"limit": "2"})
    token = first.headers["x-next-token"]
    rest = invoke(RELATED, pat, path={"userId": pat.user_id}, query={"limit": "2", "nextToken": token})
    assert ids(first) + ids(rest) == members and "x-next-token" not in rest.headers


def test_others_need_authority(aws):
    account, _ = make_service_account()
    pat, peer = make_user(admin=account), make_user()
    grant(make_object("team", ref_of(peer)), pat, "member")
    assert ids(invoke(RELATED, account, path={"userId": pat.user_id}, query={})) == [peer.user_id]
    for caller, user_id in ((peer, pat.user_id), (make_user(), pat.user_id), (pat, str(uuid4()))):
        result = invoke(RELATED, caller, path={"userId": user_id}, query={})
        assert result.status == 404 and result.json["code"] == "not_found"


def test_bad_input(aws):
    pat = make_user()
    for path, query in (
        ({"userId": "nope"}, {}),
        ({"userId": pat.user_id}, {"limit": "0"}),
        ({"userId": pat.user_id}, {"limit": "101"}),
        ({"userId": pat.user_id}, {"limit": "many"}),
        ({"userId": pat.user_id}, {"nextToken": "%%%"}),
        ({"userId": pat.user_id}, {"nextToken": "x" * 2000}),
    ):
        result = invoke(RELATED, pat, path=path, query=query)
        assert 400 <= result.status < 500, (path, query, result.body)
        assert {"code", "message"} <= set(result.json)
