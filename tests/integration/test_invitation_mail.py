"""Add Grantee with `inviteEmail` mails the invitee a link that accepts the invitation (SES, moto)."""

import re

import pytest
from moto.ses.models import ses_backends

from kallo import aws as kallo_aws
from kallo.settings import get_settings
from kallo.store import invitations, objects
from kallo.store.keys import Ref
from tests.support.api import invoke
from tests.support.world import make_object, make_service_account, make_user, ref_of

LINK = re.compile(r"https://[^\s\"<]+#/invitations\?accept=[a-z_]+:[0-9a-f-]+")


def mailbox() -> list:
    return ses_backends["123456789012"]["us-east-1"].sent_messages


def invite(inviter, obj: Ref, email: str, role: str = "member"):
    return invoke(
        "auth.add_grantee",
        inviter,
        query={"objectType": obj.type, "objectId": obj.id, "inviteEmail": email},
        body={"type": "user", "role": role},
    )


@pytest.fixture
def tenant():
    account, _ = make_service_account("acme")
    return account


def test_an_invitation_is_mailed_with_a_link_that_accepts_it(aws, aws_calls, tenant):
    owner = make_user(admin=tenant, name="Dana Owner")
    team = make_object("team", ref_of(owner), name="Lisbon trip")
    aws_calls.reset()
    result = invite(owner, team, "new.person@example.com")
    assert result.status == 201, result.body
    # The check (BatchGetItem), the inviter's invitation emails of the day (UpdateItem, I9), the
    # invitation (TransactWriteItems), then its email: the inviter's name and the team's (BatchGetItem)
    # and SES.
    assert dict(aws_calls.calls) == {
        "dynamodb:BatchGetItem": 2,
        "dynamodb:UpdateItem": 1,
        "dynamodb:TransactWriteItems": 1,
        "ses:SendEmail": 1,
    }
    [message] = mailbox()
    assert message.source == get_settings().mail_from
    assert message.destinations["ToAddresses"] == ["new.person@example.com"]
    assert message.subject == "You are invited to a team on Kallo"
    link = f"https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/v1/console/#/invitations?accept=team:{team.id}"
    # moto keeps the HTML part (the text part says the same: see test_render_is_text_and_html).
    said = "Dana Owner invited you to the team <strong>\u201cLisbon trip\u201d</strong> on Kallo, as member."
    assert said in message.body
    assert link in message.body
    # The invitee accepts through the link's objectType and objectId.
    invitee = make_user(email="new.person@example.com")
    object_type, object_id = LINK.search(message.body).group(0).split("accept=")[1].split(":")
    accepted = invoke(
        "users.accept_invitation", invitee, query={"objectType": object_type, "objectId": object_id}
    )
    assert accepted.status == 200, accepted.body
    assert accepted.json == {"id": invitee.user_id, "type": "user", "role": "member"}


def test_the_console_url_setting_wins(aws, tenant, monkeypatch):
    monkeypatch.setenv("KALLO_CONSOLE_URL", "https://chat.example.com/console")
    get_settings.cache_clear()
    owner = make_user(admin=tenant)
    convo = make_object("convo", ref_of(owner))
    assert invite(owner, convo, "x@example.com", "viewer").status == 201
    [message] = mailbox()
    assert f"https://chat.example.com/console/#/invitations?accept=convo:{convo.id}" in message.body
    assert message.subject == "You are invited to a conversation on Kallo"


def test_a_mail_failure_keeps_the_invitation_and_answers_201(aws, tenant, caplog):
    owner = make_user(admin=tenant)
    team = make_object("team", ref_of(owner))
    kallo_aws.client("ses").delete_identity(Identity=get_settings().mail_from)  # SES refuses the sender
    result = invite(owner, team, "someone@example.com")
    assert result.status == 201 and result.json["inviteEmail"] == "someone@example.com"
    assert invitations.get(team, "someone@example.com") is not None
    assert mailbox() == []
    assert any("mailing an invitation failed" in r.getMessage() for r in caplog.records)


def test_a_stack_without_a_sender_stores_the_invitation_and_mails_nothing(
    aws, tenant, monkeypatch, aws_calls
):
    monkeypatch.setenv("KALLO_MAIL_FROM", "")
    get_settings.cache_clear()
    owner = make_user(admin=tenant)
    team = make_object("team", ref_of(owner))
    aws_calls.reset()
    assert invite(owner, team, "someone@example.com").status == 201
    assert aws_calls.total == 2 and mailbox() == []


def set_mail_cap(monkeypatch, per_day: int) -> None:
    monkeypatch.setenv("KALLO_INVITATION_MAILS_PER_DAY", str(per_day))
    get_settings.cache_clear()


def test_past_the_days_invitation_emails_the_invitation_is_refused_and_nothing_is_stored(
    aws, tenant, monkeypatch
):
    """I9 (bounded rate): the inviter's third invitation of the day with a cap of 2 is 429
    `invitation_mail_limit` with Retry-After, stores nothing and mails nothing."""
    set_mail_cap(monkeypatch, 2)
    owner = make_user(admin=tenant)
    team = make_object("team", ref_of(owner))
    assert invite(owner, team, "one@example.com").status == 201
    assert invite(owner, team, "two@example.com").status == 201
    refused = invite(owner, team, "three@example.com")
    assert refused.status == 429, refused.body
    assert refused.json["code"] == "invitation_mail_limit"
    assert "invitation emails" in refused.json["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 86400
    assert invitations.get(team, "three@example.com") is None
    assert [m.destinations["ToAddresses"] for m in mailbox()] == [["one@example.com"], ["two@example.com"]]
    # Renewing an invitation mails it again, so it is counted too.
    assert invite(owner, team, "one@example.com").status == 429
    # A teammate of the same tenant has an allowance of its own.
    teammate = make_user(admin=tenant)
    convo = make_object("convo", ref_of(teammate))
    assert invite(teammate, convo, "three@example.com", "viewer").status == 201


def test_a_stack_without_a_sender_counts_no_invitation_emails(aws, tenant, monkeypatch):
    monkeypatch.setenv("KALLO_MAIL_FROM", "")
    set_mail_cap(monkeypatch, 0)
    owner = make_user(admin=tenant)
    team = make_object("team", ref_of(owner))
    assert invite(owner, team, "someone@example.com").status == 201


# -- attacks ----------------------------------------------------------------------------------------------


def test_attack_markup_in_names_is_escaped_in_the_mail(aws, tenant):
    """An object and an inviter named with markup: the HTML part shows it as text, never as markup."""
    owner = make_user(admin=tenant, name="<img src=x onerror=alert(1)>")
    team = make_object(
        "team", ref_of(owner), name="<script>alert('x')</script><a href=\"https://evil.example\">Claim</a>"
    )
    assert invite(owner, team, "victim@example.com").status == 201
    [message] = mailbox()
    html = message.body
    assert "<script>" not in html and "<img" not in html and 'href="https://evil.example"' not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    # The only link is ours.
    assert re.findall(r'href="([^"]+)"', html) == [
        f"https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/v1/console/#/invitations?accept=team:{team.id}"
    ]
    # The subject is ours alone (I9): no caller text reaches it.
    assert message.subject == "You are invited to a team on Kallo"


def test_attack_the_mail_reveals_nothing_of_the_inviters_tenant(aws, tenant):
    """Tenant isolation: the invitee learns the inviter's display name, the object's name and the role,
    what accepting shows; never the inviter's email address, its service account, or other ids."""
    owner = make_user(admin=tenant, email="dana.private@acme.internal", name="")
    team = make_object("team", ref_of(owner), name="Lisbon trip")
    assert invite(owner, team, "outsider@example.com").status == 201
    [message] = mailbox()
    body = message.body
    assert "A Kallo user invited you to the team <strong>" in body
    assert "acme" not in body and "dana.private" not in body
    assert owner.user_id not in body and tenant.user_id not in body
    ids = set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", body))
    assert ids == {team.id}


def test_attack_no_mail_for_an_invitation_the_caller_may_not_make(aws, tenant):
    """An outsider (another tenant's user) naming my team: 404, nothing stored, nothing mailed."""
    owner = make_user(admin=tenant)
    team = make_object("team", ref_of(owner), name="Lisbon trip")
    other_tenant, _ = make_service_account("other")
    intruder = make_user(admin=other_tenant)
    result = invite(intruder, team, "victim@example.com")
    assert result.status == 404
    assert invitations.get(team, "victim@example.com") is None and mailbox() == []
    assert objects.get(team)["name"] == "Lisbon trip"


def test_attack_another_tenant_cannot_use_up_my_invitation_emails(aws, tenant, monkeypatch):
    """I9, tenant isolation: another tenant's users invite as much as their own allowance lets them,
    to their objects and to my address; my own allowance is untouched."""
    set_mail_cap(monkeypatch, 2)
    owner = make_user(admin=tenant)
    team = make_object("team", ref_of(owner))
    other_tenant, _ = make_service_account("other")
    for attacker in (other_tenant, make_user(admin=other_tenant)):
        theirs = make_object("team", ref_of(attacker))
        for n in range(3):
            invite(attacker, theirs, f"victim{n}@example.com")
        # Naming my team is 404 (it cannot see it), and is no charge of mine either.
        assert invite(attacker, team, "victim@example.com").status == 404
    assert len(mailbox()) == 4  # two each, the third of each refused
    assert invite(owner, team, "a@example.com").status == 201
    assert invite(owner, team, "b@example.com").status == 201


def test_attack_inviting_to_other_objects_does_not_bypass_the_cap(aws, tenant, monkeypatch):
    """I9: the allowance is the inviting user's, not the object's: spreading invitations over many teams
    and convos, or many addresses, never gets past it."""
    set_mail_cap(monkeypatch, 3)
    owner = make_user(admin=tenant)
    objects_ = [make_object(kind, ref_of(owner)) for kind in ("team", "convo", "team", "convo", "team")]
    answers = [
        invite(owner, obj, f"p{n}@example.com", "viewer" if obj.type == "convo" else "member")
        for n, obj in enumerate(objects_)
    ]
    assert [a.status for a in answers] == [201, 201, 201, 429, 429]
    assert {a.json["code"] for a in answers[3:]} == {"invitation_mail_limit"}
    assert len(mailbox()) == 3
    assert [invitations.get(obj, f"p{n}@example.com") is not None for n, obj in enumerate(objects_)] == [
        True,
        True,
        True,
        False,
        False,
    ]
