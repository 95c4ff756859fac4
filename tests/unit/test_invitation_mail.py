"""The invitation email (kallo.services.invitation_mail): its link, its text and HTML, and what it
never shows."""

from __future__ import annotations

from kallo.services import invitation_mail

LINK = "https://x.example/v1/console/#/invitations?accept=convo:abc"


def render(**overrides: str):
    fields = {
        "inviter": "Dana",
        "object_type": "convo",
        "object_name": "Plans  for\nLisbon",
        "role": "viewer",
        "link": LINK,
        "expires_at": "2027-01-02T03:04:05.000Z",
    }
    return invitation_mail.render(**{**fields, **overrides})


def test_the_accept_link_points_at_the_consoles_invitations_view():
    expected = "https://h.example/v1/console/#/invitations?accept=team:t-1"
    assert invitation_mail.accept_link("https://h.example/v1/console/", "team", "t-1") == expected
    assert invitation_mail.accept_link("https://h.example/v1/console", "team", "t-1") == expected


def test_text_and_html_say_who_invited_to_what_as_what():
    email = render()
    assert email.subject == "You are invited to a conversation on Kallo"
    assert email.text.startswith(
        "Dana invited you to the conversation \u201cPlans for Lisbon\u201d on Kallo, as viewer."
    )
    assert LINK in email.text and "expires on 2027-01-02" in email.text
    assert f'href="{LINK}"' in email.html and "expires on 2027-01-02" in email.html


def test_markup_is_escaped_in_the_html_and_never_reaches_the_subject():
    email = render(
        inviter="<b>Boss</b>", object_name='<script>alert(1)</script><a href="https://evil.example">x</a>'
    )
    assert "<script>" not in email.html and "<b>" not in email.html and 'evil.example"' not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html and "&lt;b&gt;Boss&lt;/b&gt;" in email.html
    assert email.subject == "You are invited to a conversation on Kallo"


def test_no_inviter_name_and_no_object_name_read_as_such():
    email = render(inviter=" ", object_name="", object_type="team")
    assert email.text.startswith("A Kallo user invited you to an unnamed team on Kallo, as viewer.")
