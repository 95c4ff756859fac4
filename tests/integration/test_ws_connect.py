"""$connect and $disconnect through their handlers (ws.connect, ws.disconnect) with API Gateway's
WebSocket events (events/ws/connect.json, disconnect.json)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from uuid import uuid4

import pytest

from kallo.authz import access
from kallo.authz.access import Access
from kallo.clock import iso, now
from kallo.models.auth import AccessTokenCreate
from kallo.models.convos import ConvoCreate
from kallo.services import access_tokens, convos
from kallo.settings import get_settings
from kallo.store import connections, keys
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support import ws
from tests.support.oidc import OidcIssuer
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of

sockets = ws.sockets


@pytest.fixture(scope="module")
def issuer() -> Iterator[OidcIssuer]:
    issuer = OidcIssuer()
    yield issuer
    issuer.close()


@pytest.fixture
def svc(aws):
    return make_service_account()


def token_for(svc, user, scope: list[dict[str, str]] | None = None) -> str:
    data = AccessTokenCreate.model_validate(
        {
            "userId": user.user_id,
            "scopeObjects": scope or [{"type": "user", "id": user.user_id}],
            "expiresAt": iso(now() + timedelta(hours=1)),
        }
    )
    return access_tokens.create_access_token(Access(svc[0]), data)["jwt"]


def connect(connection_id: str, headers: dict[str, str], query: dict[str, str] | None) -> dict:
    return ws.invoke("connect", connection_id, headers={"Host": "localhost", **headers}, query=query or {})


def refused(answer: dict, status: int, code: str) -> None:
    assert answer["statusCode"] == status, answer
    assert json.loads(answer["body"])["code"] == code


def test_the_three_schemes_connect_and_the_connection_is_stored(svc, aws_calls):
    account, key = svc
    user = make_user(admin=account)
    convo_id = convos.create_convo(Access(user), ConvoCreate())["id"]
    grant(Ref("convo", convo_id), account, "viewer")
    jwt = token_for(svc, user)
    aws_calls.reset()
    assert connect("k1=", {"x-api-key": key}, {"convoId": convo_id}) == {"statusCode": 200}
    # The key, the convo's structural grants with the caller's own (a viewer's: enough) in one Query,
    # the two connection items.
    assert dict(aws_calls.calls) == {
        "dynamodb:GetItem": 1,
        "dynamodb:Query": 1,
        "dynamodb:TransactWriteItems": 1,
    }
    aws_calls.reset()
    assert connect("k2=", {"x-api-key": key}, {"convoId": convo_id}) == {"statusCode": 200}
    # The key is kept for a minute (revocation bound), the convo's chain remembered: the grants in one
    # BatchGetItem, and the write.
    assert dict(aws_calls.calls) == {"dynamodb:BatchGetItem": 1, "dynamodb:TransactWriteItems": 1}
    assert connect("b1=", {"Authorization": f"Bearer {jwt}"}, {"convoId": convo_id}) == {"statusCode": 200}
    assert connect("t1=", {}, {"convoId": convo_id, "token": jwt}) == {"statusCode": 200}
    stored = {c["connectionId"]: c for c in connections.of_convo(convo_id)}
    assert set(stored) == {"k1=", "k2=", "b1=", "t1="}
    assert stored["k1="]["userId"] == account.user_id and stored["k1="]["principal"]["scheme"] == "api_key"
    assert stored["t1="]["principal"]["scheme"] == "access_token"
    assert json.loads(stored["t1="]["principal"]["scope"]) == [["user", user.user_id]]
    assert connections.get("b1=")["convoId"] == convo_id


def test_a_team_member_connects_with_two_calls_from_a_cold_process_and_a_warm_one(svc, aws_calls):
    account, key = svc
    owner = make_user(admin=account)
    team = make_object("team", ref_of(owner))
    grant(team, account, "member")
    topic = make_object("topic", team)
    convo_id = convos.create_convo(Access(owner), ConvoCreate(), topic_id=topic.id)["id"]
    connect("m0=", {"x-api-key": key}, {"convoId": str(uuid4())})  # the key is read and kept
    access.forget_edges()  # a process that has checked nothing
    aws_calls.reset()
    assert connect("m1=", {"x-api-key": key}, {"convoId": convo_id}) == {"statusCode": 200}
    # The convo's structural grants with the member's own (none) in one Query: its owner grant carries
    # the topic's edges as a hint, so the topic's grant to the team and the member's grant on the team
    # are the connection's transaction's conditions.
    assert dict(aws_calls.calls) == {"dynamodb:Query": 1, "dynamodb:TransactWriteItems": 1}
    aws_calls.reset()
    assert connect("m2=", {"x-api-key": key}, {"convoId": convo_id}) == {"statusCode": 200}
    # The process remembers the convo's chain: its edges' grants and the member's on every object of
    # it in one BatchGetItem (`Access.direct`), the connection.
    assert dict(aws_calls.calls) == {"dynamodb:BatchGetItem": 1, "dynamodb:TransactWriteItems": 1}


def test_a_remembered_chain_lets_in_no_one_its_grants_no_longer_do(svc):
    """ATTACK (I8): a member removed from the team, or a convo moved out of the team's topic, cannot
    connect, though the process remembers the chain it connected through a moment before."""
    account, key = svc
    owner = make_user(admin=account)
    team = make_object("team", ref_of(owner))
    grant(team, account, "member")
    topic = make_object("topic", team)
    convo = Ref("convo", convos.create_convo(Access(owner), ConvoCreate(), topic_id=topic.id)["id"])
    assert connect("r1=", {"x-api-key": key}, {"convoId": convo.id}) == {"statusCode": 200}
    table().delete(keys.grant_key(team, ref_of(account)))
    refused(connect("r2=", {"x-api-key": key}, {"convoId": convo.id}), 404, "not_found")
    grant(team, account, "member")
    assert connect("r3=", {"x-api-key": key}, {"convoId": convo.id}) == {"statusCode": 200}
    table().delete(keys.grant_key(convo, topic))
    grant(convo, owner, "owner")
    refused(connect("r4=", {"x-api-key": key}, {"convoId": convo.id}), 404, "not_found")


def team_convo(account) -> tuple:
    """A team of its own (`account` a member), its topic, and a convo of the topic made as Create a
    Convo makes it (its owner grant carries the topic's edges as a hint)."""
    owner = make_user(admin=account)
    team = make_object("team", ref_of(owner))
    grant(team, account, "member")
    topic = make_object("topic", team)
    convo = Ref("convo", convos.create_convo(Access(owner), ConvoCreate(), topic_id=topic.id)["id"])
    return owner, team, topic, convo


def stored(connection_id: str) -> bool:
    return connections.get(connection_id) is not None


def test_a_removed_member_is_refused_by_the_write_and_nothing_is_stored(svc, aws_calls):
    """ATTACK (I8): from a cold process, a member's grants are conditions of the connection's write; a
    member removed from the team, or a convo moved out of the team's topic, makes the write fail, and
    the whole check refuses them: no connection item is left."""
    account, key = svc
    owner, team, topic, convo = team_convo(account)
    connect("w0=", {"x-api-key": key}, {"convoId": str(uuid4())})  # the key is read and kept
    table().delete(keys.grant_key(team, ref_of(account)))
    access.forget_edges()
    aws_calls.reset()
    refused(connect("w1=", {"x-api-key": key}, {"convoId": convo.id}), 404, "not_found")
    # The Query, the write refused by its conditions, then the rest of the whole check.
    assert dict(aws_calls.calls) == {
        "dynamodb:Query": 2,
        "dynamodb:TransactWriteItems": 1,
        "dynamodb:BatchGetItem": 1,
    }
    assert not stored("w1=") and connections.of_convo(convo.id) == []
    grant(team, account, "viewer")  # a viewer of the team views its topics' convos
    access.forget_edges()
    assert connect("w2=", {"x-api-key": key}, {"convoId": convo.id}) == {"statusCode": 200}
    table().delete(keys.grant_key(convo, topic))
    grant(convo, owner, "owner")
    for cold in (True, False):  # the old chain remembered, or not
        if cold:
            access.forget_edges()
        refused(connect("w3=", {"x-api-key": key}, {"convoId": convo.id}), 404, "not_found")
        assert not stored("w3=")


def test_a_hint_naming_another_tenants_team_lets_no_one_in(aws, aws_calls):
    """ATTACK (I1, I8): a convo whose owner grant's hint names another tenant's team (a stale or forged
    hint) admits no member of that team: the topic's grant to the team is a condition of the write,
    it does not exist, and the whole check refuses. The hint only ever named what to check."""
    mine, _ = make_service_account("mine")
    theirs, their_key = make_service_account("theirs")
    _, _, topic, convo = team_convo(mine)
    their_team = make_object("team", ref_of(theirs))
    hinted = table().get(keys.grant_key(convo, topic))
    table().put({**hinted, "chainHint": [f"team#{their_team.id}"]})
    connect("h0=", {"x-api-key": their_key}, {"convoId": str(uuid4())})
    access.forget_edges()
    aws_calls.reset()
    refused(connect("h1=", {"x-api-key": their_key}, {"convoId": convo.id}), 404, "not_found")
    assert aws_calls["dynamodb:TransactWriteItems"] == 1  # refused by its conditions: nothing written
    assert not stored("h1=") and connections.of_convo(convo.id) == []
    # From a process that now remembers the hinted edge too.
    refused(connect("h2=", {"x-api-key": their_key}, {"convoId": convo.id}), 404, "not_found")
    assert not stored("h2=")


def test_someone_on_the_topic_but_not_in_its_team_gets_the_whole_check(svc, aws_calls):
    """The write supposes the team: a participant of the topic who is not in it is let in by the whole
    check after the write is refused."""
    account, key = svc
    owner = make_user(admin=account)
    team = make_object("team", ref_of(owner))
    topic = make_object("topic", team)
    grant(topic, account, "participant")
    convo = convos.create_convo(Access(owner), ConvoCreate(), topic_id=topic.id)["id"]
    connect("p0=", {"x-api-key": key}, {"convoId": str(uuid4())})
    access.forget_edges()
    aws_calls.reset()
    assert connect("p1=", {"x-api-key": key}, {"convoId": convo}) == {"statusCode": 200}
    assert dict(aws_calls.calls) == {
        "dynamodb:Query": 2,
        "dynamodb:TransactWriteItems": 2,
        "dynamodb:BatchGetItem": 1,
    }
    assert stored("p1=")


def test_a_team_scoped_token_is_checked_on_its_scope_from_a_cold_process(svc, aws_calls):
    """I3 (scope): a token scoped to the member's team reaches the team's topic's convo; one scoped to
    another team of theirs does not, though the write's conditions (the team path) would hold."""
    account, _ = svc
    member = make_user(admin=account)
    _, team, _, convo = team_convo(account)
    grant(team, member, "member")
    other = make_object("team", ref_of(member))
    scoped = token_for(svc, member, scope=[{"type": "team", "id": team.id}])
    elsewhere = token_for(svc, member, scope=[{"type": "team", "id": other.id}])
    for cold in (True, False):
        if cold:
            access.forget_edges()
        answer = connect("s1=", {"Authorization": f"Bearer {elsewhere}"}, {"convoId": convo.id})
        refused(answer, 404, "not_found")
        assert not stored("s1=")
        assert connect("s2=", {"Authorization": f"Bearer {scoped}"}, {"convoId": convo.id}) == {
            "statusCode": 200
        }
    access.forget_edges()
    aws_calls.reset()
    assert connect("s3=", {"Authorization": f"Bearer {scoped}"}, {"convoId": convo.id}) == {"statusCode": 200}
    # The scope needs the topic's grant to the team to be an owner grant: a condition of the write.
    assert dict(aws_calls.calls) == {"dynamodb:Query": 1, "dynamodb:TransactWriteItems": 1}
    # ATTACK (I3): a topic merely shared with the team (its grant to the team a member's, not an owner's)
    # is not the team's: the write's condition fails, and the whole check refuses the team's token.
    sharer = make_user(admin=account)
    shared = make_object("topic", ref_of(sharer))
    grant(shared, team, "member")
    convo_of_shared = convos.create_convo(Access(sharer), ConvoCreate(), topic_id=shared.id)
    # Unscoped, the member views it through the team (so the refusal below is the scope's).
    assert connect("s5=", {"x-api-key": svc[1]}, {"convoId": convo_of_shared["id"]}) == {"statusCode": 200}
    access.forget_edges()
    answer = connect("s4=", {"Authorization": f"Bearer {scoped}"}, {"convoId": convo_of_shared["id"]})
    refused(answer, 404, "not_found")
    assert not stored("s4=")


def test_a_narrow_token_is_checked_on_its_scope_not_only_on_its_grant(svc):
    """I3 (scope): a token scoped to another convo is refused on a convo its user holds a grant on."""
    account, _ = svc
    user = make_user(admin=account)
    mine = convos.create_convo(Access(user), ConvoCreate())["id"]
    other = convos.create_convo(Access(user), ConvoCreate())["id"]
    narrow = token_for(svc, user, scope=[{"type": "convo", "id": other}])
    refused(connect("n1=", {"Authorization": f"Bearer {narrow}"}, {"convoId": mine}), 404, "not_found")
    assert connect("n2=", {"Authorization": f"Bearer {narrow}"}, {"convoId": other}) == {"statusCode": 200}


def test_a_viewer_connects_an_outsider_does_not(svc):
    account, key = svc
    owner = make_user()
    convo_id = convos.create_convo(Access(owner), ConvoCreate())["id"]
    refused(connect("o1=", {"x-api-key": key}, {"convoId": convo_id}), 404, "not_found")
    refused(connect("o2=", {"x-api-key": key}, {"convoId": str(uuid4())}), 404, "not_found")
    grant(Ref("convo", convo_id), account, "viewer")
    assert connect("o3=", {"x-api-key": key}, {"convoId": convo_id}) == {"statusCode": 200}
    assert [c["connectionId"] for c in connections.of_convo(convo_id)] == ["o3="]


def test_bad_credentials_and_convo_ids_are_refused(svc, aws_calls):
    account, key = svc
    convo_id = convos.create_convo(Access(account), ConvoCreate())["id"]
    aws_calls.reset()
    refused(connect("x1=", {}, {"convoId": convo_id}), 401, "unauthorized")
    refused(connect("x2=", {"Authorization": "Bearer not.a.jwt"}, {"convoId": convo_id}), 401, "unauthorized")
    refused(connect("x3=", {}, {"convoId": convo_id, "token": "garbage"}), 401, "unauthorized")
    assert aws_calls.total == 0  # refused before any read
    refused(connect("x4=", {"x-api-key": "kallo_" + "0" * 40}, {"convoId": convo_id}), 401, "unauthorized")
    refused(connect("x5=", {"x-api-key": key}, None), 400, "invalid_convo_id")
    refused(connect("x6=", {"x-api-key": key}, {"convoId": "1; drop"}), 400, "invalid_convo_id")
    refused(connect("x7=", {"x-api-key": key}, {"convoId": "x" * 5000}), 400, "invalid_convo_id")
    assert connections.of_convo(convo_id) == []


def test_an_oidc_identity_without_a_user_is_forbidden(aws, issuer, monkeypatch):
    monkeypatch.setenv("KALLO_OIDC_ISSUERS", issuer.configuration())
    get_settings.cache_clear()
    owner = make_user(firebase_id="fb-owner")
    convo_id = convos.create_convo(Access(owner), ConvoCreate())["id"]
    stranger = issuer.mint("fb-nobody")
    refused(
        connect("f1=", {"Authorization": f"Bearer {stranger}"}, {"convoId": convo_id}),
        403,
        "user_not_registered",
    )
    known = issuer.mint("fb-owner")
    assert connect("f2=", {}, {"convoId": convo_id, "token": known}) == {"statusCode": 200}


def test_disconnect_forgets_the_connection(svc, sockets, aws_calls):
    account, key = svc
    convo_id = convos.create_convo(Access(account), ConvoCreate())["id"]
    connect("d1=", {"x-api-key": key}, {"convoId": convo_id})
    connect("d2=", {"x-api-key": key}, {"convoId": convo_id})
    aws_calls.reset()
    assert ws.invoke("disconnect", "d1=") == {"statusCode": 200}
    assert dict(aws_calls.calls) == {"dynamodb:GetItem": 1, "dynamodb:BatchWriteItem": 1}
    assert [c["connectionId"] for c in connections.of_convo(convo_id)] == ["d2="]
    assert connections.get("d1=") is None
    aws_calls.reset()
    assert ws.invoke("disconnect", "d1=") == {"statusCode": 200}  # API Gateway may repeat it
    assert dict(aws_calls.calls) == {"dynamodb:GetItem": 1}
    # A dropped connection's next message is told so.
    ws.send("d1=", "convoNewStep", {"content": {"text": "hello?"}}, request_id="late")
    assert sockets.errors("d1=") == [
        {"code": "connection_unknown", "message": sockets.errors("d1=")[0]["message"], "requestId": "late"}
    ]
