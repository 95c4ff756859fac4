"""The export email: convos rendered as HTML with a plain-text alternative, sent through SES.

The subject is fixed by us (`subject_for`: a count and a date), never a convo name or caller text (I9).

Everything people wrote (convo names, display names, step text, quotes, data source names) reaches the
HTML through `html.escape` and nothing else, so a step containing `<script>` or a crafted link shows as
text. Styles are inline because mail clients drop `<style>` blocks. SES takes messages of at most 10 MB
after encoding (base64 or quoted-printable, up to 4/3 larger), so both bodies together are kept under
`MAX_EMAIL_BYTES`; steps that would not fit are left out and the email says so.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from kallo import aws

MAX_EMAIL_BYTES = 5_000_000
# SES answers these (HTTP 400) when the account sends too fast: worth retrying, unlike other 4xx.
_TRANSIENT_CODES = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException"})
UNTITLED = "Untitled convo"

_BODY = "font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1f2328;margin:0;padding:24px;"
_H1 = "font-size:20px;margin:0 0 4px 0;"
_META = "font-size:12px;color:#57606a;margin:0 0 24px 0;"
_H2 = "font-size:17px;margin:24px 0 12px 0;padding-bottom:4px;border-bottom:1px solid #d0d7de;"
_STEP = "margin:0 0 14px 0;padding:6px 12px;border-left:3px solid {color};"
_STEP_HEAD = "font-size:12px;color:#57606a;margin:0 0 4px 0;"
_STEP_TEXT = "white-space:pre-wrap;font-size:14px;line-height:1.5;margin:0;"
_NOTES = "font-size:12px;color:#57606a;margin:8px 0 0 0;padding-left:20px;"
_NOTICE = "font-size:12px;color:#9a6700;margin:24px 0 0 0;"
_USER_COLOR, _LLM_COLOR = "#0969da", "#8250df"
_EMPTY = "No messages yet."
_CUT_SHORT = "This export was cut short to keep the email small: later steps are not included."


@dataclass(frozen=True)
class Citation:
    """A quote an answer cites, and the name of the data source it comes from."""

    source: str
    text: str


@dataclass(frozen=True)
class Entry:
    """One step as the email shows it."""

    author: str
    created_at: str
    text: str
    is_llm: bool = False
    status: str = "completed"
    citations: tuple[Citation, ...] = ()


@dataclass(frozen=True)
class Section:
    """One convo: its name and its primary steps, oldest first. `complete` is False when steps were
    left unread to bound the email's size."""

    name: str
    entries: list[Entry] = field(default_factory=list)
    complete: bool = True


@dataclass(frozen=True)
class Email:
    subject: str
    html: str
    text: str
    complete: bool  # False when steps were left out to stay under MAX_EMAIL_BYTES


class MailRejected(Exception):
    """SES refused the email for a reason that retrying will not fix (e.g. an unverified sender)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _one_line(value: str) -> str:
    return " ".join(value.split())


def subject_for(convos: int, exported_at: str) -> str:
    """`Kallo export: 2 convos, 2026-12-03`. I9: the subject is ours alone: no convo name or any other
    text a caller wrote reaches it (a subject line is what a phishing mail would choose)."""
    day = _when(exported_at)[:10]
    return f"Kallo export: {convos} convo{'' if convos == 1 else 's'}, {day}"


def _when(moment: str) -> str:
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return moment
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _status_note(status: str) -> str:
    return {"running": " (still being written)", "failed": " (failed)"}.get(status, "")


def _entry_html(entry: Entry, first_note: int) -> tuple[str, list[str]]:
    """The step's block and its footnotes (numbered from `first_note` within the convo)."""
    refs = "".join(f"<sup>[{first_note + i}]</sup>" for i in range(len(entry.citations)))
    color = _LLM_COLOR if entry.is_llm else _USER_COLOR
    block = (
        f'<div style="{_STEP.format(color=color)}">'
        f'<p style="{_STEP_HEAD}"><strong style="color:#1f2328;">{html.escape(entry.author)}</strong>'
        f" &middot; {html.escape(_when(entry.created_at))}{html.escape(_status_note(entry.status))}</p>"
        f'<p style="{_STEP_TEXT}">{html.escape(entry.text)}{refs}</p></div>'
    )
    notes = [
        f"<li><em>{html.escape(c.source)}</em>: &ldquo;{html.escape(c.text)}&rdquo;</li>"
        for c in entry.citations
    ]
    return block, notes


def _entry_text(entry: Entry, first_note: int) -> tuple[str, list[str]]:
    refs = "".join(f" [{first_note + i}]" for i in range(len(entry.citations)))
    block = f"{entry.author} · {_when(entry.created_at)}{_status_note(entry.status)}\n{entry.text}{refs}\n\n"
    notes = [f"[{first_note + i}] {c.source}: “{c.text}”\n" for i, c in enumerate(entry.citations)]
    return block, notes


def _size(*parts: str | list[str]) -> int:
    return sum(len(p.encode()) if isinstance(p, str) else sum(len(s.encode()) for s in p) for p in parts)


def render(
    sections: list[Section], *, exported_by: str, exported_at: str, max_bytes: int = MAX_EMAIL_BYTES
) -> Email:
    """The email of an export: one part per convo, its steps, and its citations as footnotes."""
    subject = subject_for(len(sections), exported_at)
    heading = f"Exported by {exported_by} on {_when(exported_at)}"
    html_parts = [
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title></head>"
        f'<body style="{_BODY}"><h1 style="{_H1}">Kallo export</h1>'
        f'<p style="{_META}">{html.escape(heading)}</p>'
    ]
    text_parts = [f"Kallo export\n{heading}\n"]
    used = _size(html_parts, text_parts) + 400  # and the closing tags and the cut-short notice
    complete = True
    for section in sections:
        name = _one_line(section.name) or UNTITLED
        title_html = f'<h2 style="{_H2}">{html.escape(name)}</h2>'
        title_text = f"\n== {name} ==\n\n"
        if not section.entries and section.complete:
            title_html += f'<p style="{_STEP_HEAD}">{_EMPTY}</p>'
            title_text += f"{_EMPTY}\n"
        used += _size(title_html, title_text)
        if used > max_bytes:
            complete = False
            break
        html_parts.append(title_html)
        text_parts.append(title_text)
        html_notes: list[str] = []
        text_notes: list[str] = []
        for entry in section.entries:
            block_html, notes_html = _entry_html(entry, len(html_notes) + 1)
            block_text, notes_text = _entry_text(entry, len(text_notes) + 1)
            cost = _size(block_html, notes_html, block_text, notes_text)
            if used + cost > max_bytes:
                complete = False
                break
            used += cost
            html_parts.append(block_html)
            text_parts.append(block_text)
            html_notes.extend(notes_html)
            text_notes.extend(notes_text)
        if html_notes:
            notes_html = f'<ol style="{_NOTES}">{"".join(html_notes)}</ol>'
            notes_text = "Sources\n" + "".join(text_notes)
            # The notes themselves were counted with their steps; their wrappers are counted here.
            used += _size(notes_html, notes_text) - _size(html_notes, text_notes)
            html_parts.append(notes_html)
            text_parts.append(notes_text)
        complete = complete and section.complete
        if not complete:
            break
    if not complete:
        html_parts.append(f'<p style="{_NOTICE}">{_CUT_SHORT}</p>')
        text_parts.append(f"\n{_CUT_SHORT}\n")
    html_parts.append("</body></html>")
    return Email(subject=subject, html="".join(html_parts), text="".join(text_parts), complete=complete)


def send(*, source: str, to: list[str], email: Email) -> str:
    """Send the email with SES; returns its message id. Raises `MailRejected` when SES refuses it for
    good (unverified sender, sandbox recipient, paused account...); throttling and SES's own failures
    propagate as they are, to be retried."""
    message = {
        "Subject": {"Data": email.subject, "Charset": "UTF-8"},
        "Body": {
            "Html": {"Data": email.html, "Charset": "UTF-8"},
            "Text": {"Data": email.text, "Charset": "UTF-8"},
        },
    }
    try:
        response = aws.client("ses").send_email(
            Source=source, Destination={"ToAddresses": to}, Message=message
        )
    except ClientError as error:
        details = error.response.get("Error", {})
        code = details.get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
        if status < 500 and code not in _TRANSIENT_CODES:
            raise MailRejected(code, details.get("Message", "")) from error
        raise
    return response["MessageId"]
