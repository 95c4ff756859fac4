"""Every Teams operation against callers who cannot see the team (404, exactly as for a team that does
not exist), missing credentials (401) and bad input (4xx with `{code, message}`, never 5xx).

Every probe builds its own users and teams, so they share one moto account (provisioning one per
test would dominate the run time).
"""

import json
from collections.abc import Iterator
from uuid import uuid4

import pytest

from kallo.auth.principal import Principal
from kallo.store import grants, objects
from tests.support.api import invoke
from tests.support.aws import fresh_account
from tests.support.world import grant, make_object, make_user, ref_of


@pytest.fixture(scope="module", autouse=True)
def account() -> Iterator[None]:
    with fresh_account():
        yield


TEAM = "{team}"
USER = "{user}"
# (handler, path parameters, body)
OPERATIONS = [
    ("teams.update_team", {"teamId": TEAM}, {"name": "Taken over"}),
    ("teams.delete_team", {"teamId": TEAM}, None),
    ("teams.get_team_users", {"teamId": TEAM}, None),
    ("teams.add_team_user", {"teamId": TEAM, "userId": USER}, None),
    ("teams.remove_team_user", {"teamId": TEAM, "userId": USER}, None),
]
IDS = [handler.split(".")[1] for handler, _, _ in OPERATIONS]


def fill(params: dict[str, str], team: str, user: str) -> dict[str, str]:
    return {k: v.format(team=team, user=user) for k, v in params.items()}


def call(handler: str, principal, path: dict[str, str], body=None, query=None):
    return invoke(handler, principal, path=path, body=body, query=query if query is not None else {})


def without_id(result) -> dict:
    return {"status": result.status, "code": result.json["code"]}


@pytest.mark.parametrize(("handler", "params", "body"), OPERATIONS, ids=IDS)
def test_outsiders_get_404_like_a_missing_team(handler, params, body):
    owner, member, outsider = make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner), name="Private")
    grant(team, member, "member")
    absent = str(uuid4())
    hidden = call(handler, outsider, fill(params, team.id, member.user_id), body)
    missing = call(handler, outsider, fill(params, absent, member.user_id), body)
    assert hidden.status == 404, hidden.body
    assert without_id(hidden) == without_id(missing)
    assert hidden.json["message"].replace(team.id, "X") == missing.json["message"].replace(absent, "X")
    # Nothing changed.
    assert objects.get(team)["name"] == "Private"
    assert {g["granteeId"] for g in grants.all_of_object(team)} == {owner.user_id, member.user_id}
    # A token scoped to another of the owner's teams does not reach this one either.
    scoped = Principal(
        user_id=owner.user_id, scheme="access_token", scope=(make_object("team", ref_of(owner)),)
    )
    assert call(handler, scoped, fill(params, team.id, member.user_id), body).status == 404


@pytest.mark.parametrize(("handler", "params", "body"), OPERATIONS, ids=IDS)
def test_no_credentials_is_401(handler, params, body):
    result = call(handler, None, fill(params, str(uuid4()), str(uuid4())), body)
    assert result.status == 401 and result.json["code"] == "unauthorized"


BAD_IDS = ["not-a-uuid", "x" * 5000, "1234", "' OR 1=1 --", "%00"]


@pytest.mark.parametrize(("handler", "params", "body"), OPERATIONS, ids=IDS)
@pytest.mark.parametrize("bad", BAD_IDS, ids=["word", "huge", "short", "sql", "nul"])
def test_bad_path_ids_are_422(handler, params, body, bad):
    owner = make_user()
    for which in params:
        path = fill(params, str(uuid4()), owner.user_id) | {which: bad}
        result = call(handler, owner, path, body)
        assert result.status == 422, (which, result.status, result.body)
        assert result.json["code"] == "validation_error" and result.json["message"]


@pytest.mark.parametrize(
    "raw",
    [
        "{bad",
        "[]",
        "null",
        '"name"',
        '{"name": 1}',
        '{"name": ""}',
        '{"name": null}',
        "{}",
        '{"name": "' + "x" * 300 + '"}',
        '{"name": "a", "id": "b"}',
        '{"name": "' + "x" * 200_000 + '"}',
    ],
    ids=[
        "malformed",
        "array",
        "null",
        "string",
        "number",
        "empty",
        "null-name",
        "no-name",
        "long",
        "extra",
        "huge",
    ],
)
def test_bad_update_bodies(raw):
    owner = make_user()
    team = make_object("team", ref_of(owner), name="Kept")
    result = invoke("teams.update_team", owner, path={"teamId": team.id}, raw_body=raw)
    assert 400 <= result.status < 500, result.body
    assert {"code", "message"} <= set(result.json)
    assert objects.get(team)["name"] == "Kept"


@pytest.mark.parametrize(
    ("handler", "query"),
    [
        ("teams.query_teams", {"limit": "0"}),
        ("teams.query_teams", {"limit": "101"}),
        ("teams.query_teams", {"limit": "ten"}),
        ("teams.query_teams", {"userId": "me"}),
        ("teams.query_teams", {"nextToken": "x" * 2000}),
        ("teams.get_team_users", {"limit": "-1"}),
        ("teams.get_team_users", {"limit": "1e9"}),
        ("teams.get_team_users", {"nextToken": "x" * 2000}),
    ],
    ids=lambda v: v if isinstance(v, str) else json.dumps(v)[:40],
)
def test_bad_query_parameters_are_422(handler, query):
    owner = make_user()
    team = make_object("team", ref_of(owner))
    path = {"teamId": team.id} if "users" in handler else None
    result = invoke(handler, owner, path=path, query=query)
    assert result.status == 422, result.body
    assert result.json["code"] == "validation_error"


@pytest.mark.parametrize(
    "token", ["!!!", "Zm9v", "eyJQSyI6MX0", "W10"], ids=["chars", "text", "object", "list"]
)
def test_forged_cursors_are_400(token):
    owner = make_user()
    team = make_object("team", ref_of(owner))
    for handler, path in (("teams.query_teams", None), ("teams.get_team_users", {"teamId": team.id})):
        result = invoke(handler, owner, path=path, query={"nextToken": token})
        assert result.status == 400 and result.json["code"] == "invalid_next_token", result.body
