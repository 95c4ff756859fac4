"""Get Dashboard User Stats: GET /users/stats?userId=."""

from uuid import uuid4

from tests.support.api import invoke
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of

STATS = "users.get_user_stats"


def test_counts_of_the_callers_convos_teams_and_sources(aws, aws_calls):
    pat = make_user()
    for kind, count in (("convo", 2), ("team", 1), ("data_source", 3), ("topic", 1)):
        for _ in range(count):
            make_object(kind, ref_of(pat))
    grant(make_object("team", ref_of(make_user())), pat, "viewer")
    aws_calls.reset()
    result = invoke(STATS, pat, query={})
    assert result.status == 200, result.body
    assert result.json == {"convos": 2, "teams": 2, "sources": 3}
    # Three Select=COUNT queries; no item is read.
    assert aws_calls.total == 3 and aws_calls["dynamodb:Query"] == 3
    assert invoke(STATS, pat, query={"userId": pat.user_id}).json == result.json


def test_another_users_stats_need_authority(aws, aws_calls):
    account, _ = make_service_account()
    pat = make_user(admin=account)
    make_object("team", ref_of(pat))
    aws_calls.reset()
    result = invoke(STATS, account, query={"userId": pat.user_id})
    assert result.status == 200 and result.json == {"convos": 0, "teams": 1, "sources": 0}
    # The authority check (its admin grant on the user, 1 BatchGetItem) and the counts.
    assert aws_calls.total == 4
    for caller, user_id in ((make_user(), pat.user_id), (account, str(uuid4()))):
        result = invoke(STATS, caller, query={"userId": user_id})
        assert result.status == 404 and result.json["code"] == "not_found"


def test_bad_input(aws):
    for query in ({"userId": "nope"}, {"userId": "x" * 5000}):
        result = invoke(STATS, make_user(), query=query)
        assert result.status == 422 and {"code", "message"} <= set(result.json)
