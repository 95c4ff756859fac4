"""I8 (live access), attacked from the side of the one whose access ended: a connection hears a convo only
while its principal may view it. A removed grant, a revoked token, a deleted convo or a connection item
forged into the convo's partition: the connection hears nothing more, is forgotten and its socket closed.
`$connect` refusals never say why a credential failed."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import jwt as pyjwt
import pytest

from kallo.auth import api_keys
from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.clock import iso, now
from kallo.models.auth import AccessTokenCreate
from kallo.models.convos import ConvoCreate
from kallo.realtime import audience
from kallo.services import access_tokens, convos, purge
from kallo.store import connections, credentials
from kallo.store.keys import Ref
from tests.support import ws
from tests.support.api import invoke as invoke_api
from tests.support.world import grant, make_service_account, make_user

sockets = ws.sockets


@pytest.fixture
def tenants(aws) -> dict[str, Any]:
    """Tenant A's user owns a convo shared with tenant B's user as viewer; B's user holds a token."""
    svc_a, _ = make_service_account("a")
    svc_b, _ = make_service_account("b")
    owner, viewer = make_user(admin=svc_a), make_user(admin=svc_b)
    convo_id = convos.create_convo(Access(owner), ConvoCreate())["id"]
    grant(Ref("convo", convo_id), viewer, "viewer")
    data = AccessTokenCreate.model_validate(
        {
            "userId": viewer.user_id,
            "scopeObjects": [{"type": "convo", "id": convo_id}],
            "expiresAt": iso(now() + timedelta(hours=1)),
        }
    )
    token = access_tokens.create_access_token(Access(svc_b), data)
    by_token = Principal(
        user_id=viewer.user_id,
        scheme="access_token",
        token_id=token["id"],
        scope=(Ref("convo", convo_id),),
    )
    return {
        "svc_b": svc_b,
        "owner": owner,
        "viewer": viewer,
        "convo_id": convo_id,
        "token": token,
        "owner_connection": ws.connect(owner, convo_id),
        "viewer_connection": ws.connect(by_token, convo_id),
    }


def say(t: dict[str, Any], text: str) -> None:
    ws.send(t["owner_connection"], "convoNewStep", {"content": {"text": text}})


def heard(sockets: ws.Sockets, connection: str) -> list[str]:
    return [p["content"]["text"] for p in sockets.payloads(connection, "convoNewStep")]


def test_a_removed_grant_ends_delivery_and_closes_the_socket(tenants, sockets, aws_calls):
    t = tenants
    say(t, "before")
    assert heard(sockets, t["viewer_connection"]) == ["before"]
    removal = {
        "objectType": "convo",
        "objectId": t["convo_id"],
        "granteeId": t["viewer"].user_id,
        "granteeType": "user",
        "granteeRole": "viewer",
    }
    assert invoke_api("auth.remove_grantee", t["owner"], query=removal).status == 204
    audience.forget()  # the re-check interval (a few seconds) has passed
    aws_calls.reset()
    say(t, "after")
    assert heard(sockets, t["viewer_connection"]) == ["before"]
    assert heard(sockets, t["owner_connection"]) == ["before", "after"]
    assert sockets.closed == [t["viewer_connection"]]
    assert connections.get(t["viewer_connection"]) is None
    assert [c["connectionId"] for c in connections.of_convo(t["convo_id"])] == [t["owner_connection"]]
    # The sender's check (its grants), then at the broadcast the viewer's: its token record and its
    # grants, in one BatchGetItem.
    assert aws_calls["dynamodb:BatchGetItem"] == 2
    assert aws_calls["apigatewaymanagementapi:DeleteConnection"] == 1


def test_a_revoked_token_ends_delivery_and_closes_the_socket(tenants, sockets):
    t = tenants
    say(t, "before")
    path = {"accessTokenId": t["token"]["id"]}
    assert invoke_api("auth.revoke_access_token", t["svc_b"], path=path).status == 204
    say(t, "within the bound")  # a verdict is remembered for a few seconds
    audience.forget()
    say(t, "after")
    assert heard(sockets, t["viewer_connection"]) == ["before", "within the bound"]
    assert sockets.closed == [t["viewer_connection"]]
    assert connections.get(t["viewer_connection"]) is None
    # Its own messages are refused too: it is no longer known.
    ws.send(t["viewer_connection"], "convoNewStep", {"content": {"text": "still here?"}})
    assert "still here?" not in heard(sockets, t["owner_connection"])


def test_a_revoked_connection_that_sends_is_refused_and_closed(tenants, sockets):
    t = tenants
    writer = make_user()
    grant(Ref("convo", t["convo_id"]), writer, "participant")
    connection = ws.connect(writer, t["convo_id"])
    ws.send(connection, "convoNewStep", {"content": {"text": "mine"}})
    assert heard(sockets, t["owner_connection"]) == ["mine"]
    removal = {
        "objectType": "convo",
        "objectId": t["convo_id"],
        "granteeId": writer.user_id,
        "granteeType": "user",
        "granteeRole": "participant",
    }
    assert invoke_api("auth.remove_grantee", t["owner"], query=removal).status == 204
    audience.forget()
    ws.send(connection, "convoNewStep", {"content": {"text": "one more"}}, request_id="late")
    assert heard(sockets, t["owner_connection"]) == ["mine"]
    assert [(e["code"], e["requestId"]) for e in sockets.errors(connection)] == [("unauthorized", "late")]
    assert sockets.closed == [connection] and connections.get(connection) is None


def test_a_revoked_api_key_ends_delivery_and_closes_the_socket(tenants, sockets):
    t = tenants
    account, key = make_service_account("reader")
    grant(Ref("convo", t["convo_id"]), account, "viewer")
    connected = ws.invoke("connect", "by-key=", headers={"x-api-key": key}, query={"convoId": t["convo_id"]})
    assert connected == {"statusCode": 200}
    say(t, "before")
    credentials.delete_api_key(api_keys.hash_key(key))  # the key leaked: its owner revokes it
    audience.forget()
    say(t, "after")
    assert heard(sockets, "by-key=") == ["before"]
    assert sockets.closed == ["by-key="] and connections.get("by-key=") is None


def test_a_connection_forged_into_the_convo_is_never_posted_to(tenants, sockets):
    t = tenants
    attacker, key = make_service_account("attacker")
    # An item in the convo's partition for a principal, with a valid key, that never could view it.
    forged = ws.connect(attacker, t["convo_id"], api_key=key)
    say(t, "secret")
    assert sockets.to(forged) == []
    assert sockets.closed == [forged] and connections.get(forged) is None
    # Nor one whose stored principal is missing or names another user.
    bare = "bare-connection="
    connections.put({"connectionId": bare, "convoId": t["convo_id"], "userId": t["owner"].user_id}, ttl=2**31)
    posing = "posing="
    connections.put(
        {
            "connectionId": posing,
            "convoId": t["convo_id"],
            "userId": t["owner"].user_id,
            "principal": attacker.to_context(),
        },
        ttl=2**31,
    )
    say(t, "another secret")
    assert sockets.to(bare) == [] and sockets.to(posing) == []
    assert set(sockets.closed) == {forged, bare, posing}


def test_deleting_the_convo_ends_delivery_and_the_purge_closes_its_sockets(tenants, sockets):
    t = tenants
    assert invoke_api("convos.delete_convo", t["owner"], path={"convoId": t["convo_id"]}).status == 204
    audience.forget()
    say(t, "into the void")  # the owner's own connection is refused too: the convo is gone
    assert heard(sockets, t["viewer_connection"]) == [] and heard(sockets, t["owner_connection"]) == []
    # A connection the broadcasts did not meet yet is closed by the purge.
    late = ws.connect(t["owner"], t["convo_id"])
    purge.purge(Ref("convo", t["convo_id"]))
    assert late in sockets.closed and connections.get(late) is None


@pytest.mark.parametrize(
    "forge",
    [
        lambda token: token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),  # a bad signature
        lambda token: pyjwt.encode(
            {**pyjwt.decode(token, options={"verify_signature": False}), "exp": 1},
            "a guessed signing key of 32 bytes",
            "HS256",
        ),  # expired and signed with a guessed key
    ],
)
def test_connect_with_a_forged_or_expired_jwt_says_only_unauthorized(tenants, forge):
    t = tenants
    query = {"convoId": t["convo_id"], "token": forge(t["token"]["jwt"])}
    answer = ws.invoke("connect", "forged=", headers={"Host": "localhost"}, query=query)
    assert answer["statusCode"] == 401
    assert json.loads(answer["body"]) == {"code": "unauthorized", "message": "unauthorized"}
    assert connections.get("forged=") is None


def test_connect_to_a_hidden_convo_says_only_not_found(tenants):
    t = tenants
    _, key = make_service_account("stranger")
    answer = ws.invoke("connect", "hidden=", headers={"x-api-key": key}, query={"convoId": t["convo_id"]})
    assert answer["statusCode"] == 404
    assert json.loads(answer["body"]) == {"code": "not_found", "message": "not found"}
