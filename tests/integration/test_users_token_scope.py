"""I3 (scope) and I1 (authority) on the user object, attacked over the handlers: a convo-scoped token
reaches nothing of its own user, and an admin grant on a user object gives no authority."""

from datetime import UTC, datetime, timedelta

from kallo.auth.principal import Principal
from kallo.store import grants, users
from tests.support.api import invoke
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of


def token(user: Principal, *scope) -> Principal:
    return Principal(user_id=user.user_id, scheme="access_token", scope=tuple(scope), token_id="t")


def attempts(user_id: str, grantee_id: str) -> dict[str, dict]:
    """Every operation on the user object, by handler, with its request."""
    return {
        "auth.add_grantee": {
            "query": {"objectType": "user", "objectId": user_id},
            "body": {"type": "user", "id": grantee_id, "role": "admin"},
        },
        "auth.query_grantees": {"query": {"objectType": "user", "objectId": user_id}},
        "users.update_user": {"path": {"userId": user_id}, "body": {"displayName": "Hacked"}},
        "users.get_related_users": {"path": {"userId": user_id}, "query": {}},
        "users.get_user_stats": {"query": {}},
        "users.get_or_create_user": {"query": {"userId": user_id}},
    }


def test_a_convo_scoped_token_reaches_nothing_of_its_own_user(aws):
    """Finding 3, from the holder of a token scoped to one convo: each is 404, as out of scope."""
    account, _ = make_service_account()
    other, _ = make_service_account("other")
    pat = make_user(admin=account)
    convo = make_object("convo", ref_of(pat))
    narrow = token(pat, convo)
    for handler, request in attempts(pat.user_id, other.user_id).items():
        result = invoke(handler, narrow, **request)
        assert result.status == 404 and result.json["code"] == "not_found", (handler, result.body)
    stats_by_name = invoke("users.get_user_stats", narrow, query={"userId": pat.user_id})
    assert stats_by_name.status == 404
    permissions = invoke(
        "auth.query_permissions",
        narrow,
        body={"objectType": "user", "objectId": pat.user_id, "permissions": ["can_view", "can_add_admin"]},
    )
    assert permissions.status == 200 and permissions.json["permissions"] == []
    assert grants.get(ref_of(pat), ref_of(other)) is None
    assert users.get(pat.user_id)["displayName"] == "Pat"
    # The convo itself is within the token's reach.
    assert invoke("convos.get_convo", narrow, path={"convoId": convo.id}).status == 200


def test_the_whole_user_scope_reaches_the_user_object(aws):
    account, _ = make_service_account()
    pat = make_user(admin=account)
    whole = token(pat, ref_of(pat))
    for handler, request in attempts(pat.user_id, account.user_id).items():
        result = invoke(handler, whole, **request)
        assert result.status in (200, 201), (handler, result.body)


def test_an_admin_grant_on_a_user_object_gives_no_authority(aws):
    """From tenant A: pat (a user of tenant B) cannot name A as a grantee any more (another tenant's
    account is as unknown as a missing id), but should A hold an admin grant on pat's user object, A
    still cannot act for pat: no profile change, no token, no listing."""
    tenant_a, _ = make_service_account("a")
    tenant_b, _ = make_service_account("b")
    pat = make_user(admin=tenant_b)
    granted = invoke(
        "auth.add_grantee",
        token(pat, ref_of(pat)),
        query={"objectType": "user", "objectId": pat.user_id},
        body={"type": "user", "id": tenant_a.user_id, "role": "admin"},
    )
    assert granted.status == 404, granted.body
    grant(ref_of(pat), tenant_a, "admin")
    patch = invoke(
        "users.update_user", tenant_a, path={"userId": pat.user_id}, body={"displayName": "Mallory"}
    )
    assert patch.status == 404
    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    minted = invoke(
        "auth.create_access_token",
        tenant_a,
        body={
            "userId": pat.user_id,
            "scopeObjects": [{"type": "user", "id": pat.user_id}],
            "expiresAt": expires,
        },
    )
    assert minted.status == 404
    assert invoke("convos.query_convos", tenant_a, query={"userId": pat.user_id}).status == 404
    assert invoke("users.get_user_stats", tenant_a, query={"userId": pat.user_id}).status == 404
    assert users.get(pat.user_id)["displayName"] == "Pat"
