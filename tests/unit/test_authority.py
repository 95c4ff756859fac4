"""A service account's authority over team members needs someone else to have made them members."""

from kallo.authz.access import Access
from kallo.clock import now_iso
from kallo.services import authority, invitations
from kallo.store import grants
from kallo.store import invitations as invitation_store
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.world import make_object, make_service_account, make_user, ref_of


def test_members_the_service_account_added_itself_give_no_authority(aws):
    service, _ = make_service_account()
    victim = make_user()
    team = make_object("team", ref_of(service))
    table().put(grants.item(team, ref_of(victim), "member", created_by=service.user_id, created_at=now_iso()))
    assert authority.has_authority(Access(service), victim.user_id) is False


def test_members_who_accepted_an_invitation_give_authority(aws):
    service, _ = make_service_account()
    team = make_object("team", ref_of(service))
    invitation_store.put(
        invitation_store.item(
            team, "new@example.com", "member", created_by=service.user_id, created_at=now_iso(), ttl=2**31
        )
    )
    newcomer = make_user(email="new@example.com")
    assert invitations.accept_invitations(newcomer.user_id, "new@example.com") == 1
    grant = grants.get(team, Ref("user", newcomer.user_id))
    assert grant["createdBy"] == newcomer.user_id and grant["invitedBy"] == service.user_id
    assert authority.has_authority(Access(service), newcomer.user_id) is True


def test_members_added_by_a_user_the_service_account_controls_give_no_authority(aws):
    service, _ = make_service_account()
    proxy, victim = make_user(admin=service), make_user()
    team = make_object("team", ref_of(service))
    table().put(grants.item(team, ref_of(proxy), "admin", created_by=service.user_id, created_at=now_iso()))
    table().put(grants.item(team, ref_of(victim), "member", created_by=proxy.user_id, created_at=now_iso()))
    assert authority.has_authority(Access(service), victim.user_id) is False
