"""The Query Permissions model and service: validation, order, whose permissions under which scope."""

from uuid import uuid4

import pytest
from pydantic import ValidationError

from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.authz.policy import Permission
from kallo.errors import NotFound
from kallo.models.auth import PermissionsQuery, PermissionsResult
from kallo.services import permissions
from kallo.store.keys import Ref
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of


def query(obj: Ref, asked: list[str], user_id: str | None = None) -> PermissionsQuery:
    body = {"objectId": obj.id, "objectType": obj.type, "permissions": asked}
    if user_id:
        body["userId"] = user_id
    return PermissionsQuery.model_validate(body)


def test_the_query_model():
    object_id = str(uuid4())
    parsed = PermissionsQuery.model_validate(
        {"objectId": object_id.upper(), "objectType": "convo", "permissions": ["can_view", "can_chat"]}
    )
    assert parsed.object_id == object_id and parsed.user_id is None
    assert parsed.permissions == [Permission.can_view, Permission.can_chat]
    assert (
        len(
            PermissionsQuery.model_validate(
                {**parsed.model_dump(by_alias=True), "permissions": list(Permission)}
            ).permissions
        )
        == 21
    )
    for bad in (
        {"permissions": []},
        {"permissions": ["can_view", "can_view"]},
        {"permissions": ["can_view"] * 22},
        {"permissions": ["CAN_VIEW"]},
        {"objectType": "step"},
        {"objectId": "1234"},
        {"userId": "me"},
        {"unknown": True},
    ):
        with pytest.raises(ValidationError):
            PermissionsQuery.model_validate({**parsed.model_dump(by_alias=True), **bad})


def test_the_result_model_drops_nothing_it_documents():
    result = {"userId": "u", "objectId": "o", "objectType": "team", "permissions": ["can_edit"]}
    assert PermissionsResult.model_validate(result).model_dump(by_alias=True, mode="json") == result


def test_own_permissions_keep_the_order_asked(aws):
    alice = make_user()
    convo = make_object("convo", ref_of(alice))
    asked = ["can_remove_viewer", "can_view", "can_add_member", "can_delete", "can_chat"]
    answer = permissions.query_permissions(Access(alice), query(convo, asked))
    # A convo has no members: the owner cannot add one.
    assert answer == {
        "userId": alice.user_id,
        "objectId": convo.id,
        "objectType": "convo",
        "permissions": ["can_remove_viewer", "can_view", "can_delete", "can_chat"],
    }


def test_a_user_about_its_own_user_object(aws):
    alice = make_user()
    me = ref_of(alice)
    assert permissions.query_permissions(Access(alice), query(me, ["can_edit", "can_delete"]))[
        "permissions"
    ] == ["can_edit"]


def test_another_users_permissions_are_theirs_not_the_tokens(aws):
    """A token limits what its holder reaches; the user asked about is evaluated without that limit,
    once the token has shown it covers the object."""
    service, _ = make_service_account()
    pat = make_user(admin=service)
    team = make_object("team", ref_of(service))
    grant(team, pat, "member")
    whole = Principal(user_id=service.user_id, scheme="access_token", scope=(ref_of(service),))
    answer = permissions.query_permissions(Access(whole), query(team, ["can_chat", "can_edit"], pat.user_id))
    assert answer["userId"] == pat.user_id and answer["permissions"] == ["can_chat"]
    # A token confined to another team covers neither this team nor (so) pat's view of it.
    other = make_object("team", ref_of(service))
    confined = Principal(user_id=service.user_id, scheme="access_token", scope=(other, ref_of(pat)))
    with pytest.raises(NotFound):
        permissions.query_permissions(Access(confined), query(team, ["can_view"], pat.user_id))


def test_someone_else_without_authority_is_unknown(aws):
    alice, bob = make_user(), make_user()
    team = make_object("team", ref_of(alice))
    grant(team, bob, "admin")
    with pytest.raises(NotFound):
        permissions.query_permissions(Access(alice), query(team, ["can_view"], bob.user_id))
    with pytest.raises(NotFound):
        permissions.query_permissions(Access(alice), query(team, ["can_view"], str(uuid4())))
