"""The local mailbox: the emails the stack "sent" (exports, invitations), readable in a browser.

The embedded SES (moto) sends nothing; it keeps every accepted email in its backend, which lives in this
process because moto's server runs in a thread of the stack. Two routes read it:
- `GET /_local/mail`: the emails, newest first, as JSON `[{id, source, destinations, subject, sentAt}]`;
- `GET /_local/mail/{id}`: one email's body, as text/html (as text/plain when it has no HTML part).

moto records no sending time, so `sentAt` is when the mailbox first saw the email (its first listing or
reading after the send). A body is served under a Content-Security-Policy sandbox: an email is
untrusted content, and whatever script it might hold must not run on the stack's origin. Like every
`/_local` path, the mailbox answers this machine only (`local.loopback`).
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from local import template
from local.parts import Stack

_SANDBOX = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"


@dataclass(frozen=True)
class Mail:
    id: str
    source: str
    destinations: list[str]
    subject: str
    body: str
    is_html: bool


def _addresses(destinations: Any) -> list[str]:
    """SES's Destination (`{ToAddresses, CcAddresses, BccAddresses}`) or a raw email's list, flat and
    without repeats (moto lists a raw email's recipients from both its headers and the request)."""
    if isinstance(destinations, dict):
        destinations = [
            a for key in ("ToAddresses", "CcAddresses", "BccAddresses") for a in destinations.get(key, [])
        ]
    return list(dict.fromkeys(destinations or []))


def _looks_like_html(body: str) -> bool:
    return body.lstrip()[:15].lower().startswith(("<!doctype html", "<html"))


def _from_raw(message_id: str, source: str, destinations: Any, raw: str) -> Mail:
    # With the default policy the parser builds EmailMessage objects.
    parsed = cast(EmailMessage, email.message_from_string(raw, policy=email.policy.default))
    part = parsed.get_body(preferencelist=("html", "plain"))
    body = part.get_content() if part is not None else ""
    is_html = part is not None and part.get_content_type() == "text/html"
    return Mail(message_id, source, _addresses(destinations), str(parsed["subject"] or ""), body, is_html)


def _mail(sent: Any) -> Mail | None:
    """A sent message of moto's SES backend as a Mail (templated messages have no body to show)."""
    if hasattr(sent, "raw_data"):
        return _from_raw(sent.id, sent.source or "", sent.destinations, sent.raw_data)
    if hasattr(sent, "subject"):
        body = sent.body or ""
        return Mail(
            sent.id, sent.source, _addresses(sent.destinations), sent.subject, body, _looks_like_html(body)
        )
    return None


class Mailbox:
    """Reads the embedded SES's sent messages; remembers when it first saw each one."""

    def __init__(self, account: str = template.ACCOUNT, region: str = template.REGION) -> None:
        self.account = account
        self.region = region
        self._seen: dict[str, str] = {}

    def messages(self) -> list[tuple[Mail, str]]:
        """Every email with its `sentAt`, newest first."""
        from moto.ses.models import ses_backends

        found = [m for m in map(_mail, ses_backends[self.account][self.region].sent_messages) if m]
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        for mail in found:
            self._seen.setdefault(mail.id, now)
        return [(m, self._seen[m.id]) for m in reversed(found)]

    async def index(self, request: Request) -> Response:
        return JSONResponse(
            [
                {
                    "id": m.id,
                    "source": m.source,
                    "destinations": m.destinations,
                    "subject": m.subject,
                    "sentAt": sent_at,
                }
                for m, sent_at in self.messages()
            ]
        )

    async def show(self, request: Request) -> Response:
        wanted = request.path_params["id"]
        mail = next((m for m, _ in self.messages() if m.id == wanted), None)
        if mail is None:
            return JSONResponse({"code": "not_found", "message": f"no email {wanted}"}, status_code=404)
        response_type = HTMLResponse if mail.is_html else PlainTextResponse
        return response_type(mail.body, headers={"content-security-policy": _SANDBOX})

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/_local/mail", self.index, methods=["GET"]),
            Route("/_local/mail/{id}", self.show, methods=["GET"]),
        ]


def routes(stack: Stack) -> list[BaseRoute]:
    """The stack's route factory for the mailbox."""
    return Mailbox().routes()
