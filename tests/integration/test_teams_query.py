"""Query Teams: GET /teams[?userId=] — the teams the user holds any role on, paged, in two AWS calls."""

from kallo.auth.principal import Principal
from kallo.store.keys import Ref
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of


def ids(result) -> list[str]:
    assert result.status == 200, result.body
    return [t["id"] for t in result.json]


def test_lists_the_callers_teams(aws, aws_calls):
    alice, bob = make_user(), make_user()
    mine = make_object("team", ref_of(alice), name="Mine")
    joined = make_object("team", ref_of(bob))
    grant(joined, alice, "member")
    make_object("team", ref_of(bob))  # not alice's
    aws_calls.reset()
    result = invoke("teams.query_teams", alice, query={})
    assert ids(result) == sorted([mine.id, joined.id])
    assert set(result.json[0]) == {"id", "name", "createdBy", "createdAt"}
    assert "x-next-token" not in result.headers
    # Her team grants (1 Query) and the teams (1 BatchGetItem), whatever their number.
    assert aws_calls["dynamodb:Query"] == 1 and aws_calls["dynamodb:BatchGetItem"] == 1
    assert aws_calls.total == 2
    for _ in range(10):
        grant(make_object("team", ref_of(bob)), alice, "viewer")
    aws_calls.reset()
    assert len(ids(invoke("teams.query_teams", alice, query={}))) == 12
    assert aws_calls.total == 2


def test_no_teams_costs_one_query(aws, aws_calls):
    loner = make_user()
    aws_calls.reset()
    assert ids(invoke("teams.query_teams", loner, query={})) == []
    assert aws_calls.total == 1 and aws_calls["dynamodb:Query"] == 1


def test_pages_with_limit_and_next_token(aws, aws_calls):
    alice = make_user()
    made = sorted(make_object("team", ref_of(alice)).id for _ in range(5))
    seen, query = [], {"limit": "2"}
    aws_calls.reset()
    for _ in range(3):
        result = invoke("teams.query_teams", alice, query=query)
        seen += ids(result)
        query = {"limit": "2", "nextToken": result.headers.get("x-next-token", "")}
    assert seen == made and not query["nextToken"]
    # 2 per page; the cursor key needs the signing secret once per container.
    assert aws_calls.total == 7 and aws_calls["secretsmanager:GetSecretValue"] == 1
    stale = invoke("teams.query_teams", make_user(), query={"nextToken": "Zm9v"})
    assert stale.status == 400 and stale.json["code"] == "invalid_next_token"


def test_service_account_acts_for_users_under_its_authority(aws, aws_calls):
    service, _ = make_service_account()
    created = make_user(admin=service)
    member, stranger = make_user(), make_user()
    owned = make_object("team", ref_of(service))
    grant(owned, member, "member")
    theirs = make_object("team", ref_of(created))
    aws_calls.reset()
    assert ids(invoke("teams.query_teams", service, query={"userId": created.user_id})) == [theirs.id]
    # The authority (1 GetItem: the user item names its creator), then the listing.
    assert aws_calls.total == 3 and aws_calls["dynamodb:GetItem"] == 1
    # I1: a member of a team it owns is not under its authority.
    for caller, user in ((service, member), (service, stranger), (stranger, created), (member, created)):
        result = invoke("teams.query_teams", caller, query={"userId": user.user_id})
        assert result.status == 404 and result.json["code"] == "not_found", result.body


def test_access_token_scope_filters_the_list(aws):
    alice = make_user()
    red, blue = make_object("team", ref_of(alice)), make_object("team", ref_of(alice))
    scoped = Principal(user_id=alice.user_id, scheme="access_token", scope=(red,))
    assert ids(invoke("teams.query_teams", scoped, query={})) == [red.id]
    topic_scoped = Principal(user_id=alice.user_id, scheme="access_token", scope=(Ref("topic", blue.id),))
    assert ids(invoke("teams.query_teams", topic_scoped, query={})) == []
