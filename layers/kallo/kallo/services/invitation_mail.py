"""The invitation email: Add Grantee with `inviteEmail` mails the invitee a link that accepts it.

The link is `<console URL>#/invitations?accept=<objectType>:<objectId>`: the console's invitations view,
which (once the invitee has signed in) accepts with `POST /invitations/accept?objectType=&objectId=`
(`kallo.services.invitations`, I2: only the owner of the verified address can). The console URL is
`KALLO_CONSOLE_URL` (the `PublicConsoleUrl` stack parameter) when set, else the REST API's own
`/console/` (`kallo.web.console_url`).

What the email says, and why (I9, outbound mail; tenant isolation):
- the subject is ours alone, naming only the kind of object (`You are invited to a team on Kallo`):
  no caller text reaches a subject line, where a phishing mail would put its bait;
- the body names the inviter (its display name, else "A Kallo user": never its email address, which
  accepting does not show), the object's name and the role: exactly what the invitee sees on
  accepting, and nothing of the inviter's tenant beyond it;
- every name goes through `html.escape` in the HTML part (an object named `<script>` shows as text),
  and the link is built by us from ids the server made.

I9's bounded rate: each invitation to be mailed is counted first against the inviting user's invitation
emails of the UTC day (`KALLO_INVITATION_MAILS_PER_DAY`, 50 by default; `kallo.quotas`); past it, Add
Grantee answers 429 `invitation_mail_limit` with `Retry-After` and stores nothing.

Sending comes after the invitation is stored, and a failure never loses it (nor fails the request):
it is logged and counted (metric `InvitationMailFailures`), and the answer is 201 as usual; the
inviter can send it again by adding the grantee again (the invitation is renewed). A stack without a
sender address (`KALLO_MAIL_FROM` empty) sends none.

Costs in AWS calls: 1 BatchGetItem (the inviter's user item and the object) + 1 SES SendEmail.
"""

from __future__ import annotations

import html
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from kallo import mail, metrics
from kallo.clock import iso
from kallo.settings import get_settings
from kallo.store import objects
from kallo.store.keys import Ref

logger = logging.getLogger(__name__)
SOMEONE = "A Kallo user"
UNNAMED = {"team": "an unnamed team", "convo": "an unnamed convo"}
KINDS = {"team": "team", "convo": "conversation"}

_BODY = "font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1f2328;margin:0;padding:24px;"
_P = "font-size:15px;line-height:1.5;margin:0 0 16px 0;"
_BUTTON = (
    "display:inline-block;padding:10px 18px;background:#0969da;color:#ffffff;border-radius:6px;"
    "text-decoration:none;font-weight:600;"
)
_SMALL = "font-size:12px;color:#57606a;margin:24px 0 0 0;"


def accept_link(console_url: str, object_type: str, object_id: str) -> str:
    """The console's invitations view, asked to accept this invitation."""
    base = console_url if console_url.endswith("/") else f"{console_url}/"
    return f"{base}#/invitations?accept={quote(object_type)}:{quote(object_id)}"


def _one_line(value: str) -> str:
    return " ".join(value.split())


def render(
    *, inviter: str, object_type: str, object_name: str, role: str, link: str, expires_at: str
) -> mail.Email:
    """The invitation email, in text and HTML (every name escaped in the HTML)."""
    kind = KINDS.get(object_type, object_type)
    who = _one_line(inviter) or SOMEONE
    name = _one_line(object_name)
    what = f"the {kind} \u201c{name}\u201d" if name else UNNAMED.get(object_type, f"a {kind}")
    expires = expires_at[:10]
    subject = f"You are invited to a {kind} on Kallo"
    sentence = f"{who} invited you to {what} on Kallo, as {role}."
    text = (
        f"{sentence}\n\nAccept the invitation:\n{link}\n\n"
        f"Sign in with this email address to accept it. The invitation expires on {expires}. "
        "If you did not expect it, ignore this email.\n"
    )
    what_html = (
        f"the {kind} <strong>\u201c{html.escape(name)}\u201d</strong>"
        if name
        else html.escape(UNNAMED.get(object_type, f"a {kind}"))
    )
    body = (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title></head>"
        f'<body style="{_BODY}">'
        f'<p style="{_P}">{html.escape(who)} invited you to {what_html} on Kallo, as '
        f"{html.escape(role)}.</p>"
        f'<p style="{_P}"><a href="{html.escape(link, quote=True)}" style="{_BUTTON}">Accept the invitation</a></p>'
        f'<p style="{_P}">Or open this link: {html.escape(link)}</p>'
        f'<p style="{_SMALL}">Sign in with this email address to accept it. The invitation expires on '
        f"{html.escape(expires)}. If you did not expect it, ignore this email.</p>"
        "</body></html>"
    )
    return mail.Email(subject=subject, html=body, text=text, complete=True)


def _display_name(user: dict[str, Any] | None) -> str:
    return str((user or {}).get("displayName") or "")


def can_send() -> bool:
    """Whether this stack mails invitations at all (it has a sender address)."""
    return bool(get_settings().mail_from)


def send(invitation: dict[str, Any], *, console_url: str, expires_at: int) -> bool:
    """Mail a stored invitation (`{objectType, objectId, inviteEmail, role, createdBy}`) to its
    invitee; True when SES took it. Never raises: a failure is logged and counted (see the module)."""
    source = get_settings().mail_from
    if not source:
        logger.info("invitation not mailed: this stack has no sender address")
        return False
    obj = Ref(invitation["objectType"], invitation["objectId"])
    try:
        found = objects.batch_get([Ref("user", invitation["createdBy"]), obj])
        email = render(
            inviter=_display_name(found.get(Ref("user", invitation["createdBy"]))),
            object_type=obj.type,
            object_name=str((found.get(obj) or {}).get("name") or ""),
            role=invitation["role"],
            link=accept_link(console_url, obj.type, obj.id),
            expires_at=iso_of(expires_at),
        )
        mail.send(source=source, to=[invitation["inviteEmail"]], email=email)
    except Exception:
        logger.exception(
            "mailing an invitation failed: it is stored, and adding the grantee again resends it",
            extra={"objectType": obj.type, "objectId": obj.id},
        )
        metrics.count(metrics.INVITATION_MAIL_FAILURES)
        return False
    return True


def iso_of(epoch: int) -> str:
    return iso(datetime.fromtimestamp(epoch, UTC))
