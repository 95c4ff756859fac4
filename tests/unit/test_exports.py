"""Export Data: the request model, the email's rendering (escaping, citations, subject, size cap) and the
send service (what the creator may still view, outcomes recorded once, SES refusals)."""

from __future__ import annotations

import html
from uuid import uuid4

import pytest
from moto.ses.models import ses_backends
from pydantic import ValidationError

from kallo import aws as kallo_aws
from kallo import mail
from kallo.authz.access import Access
from kallo.clock import now_iso
from kallo.errors import Conflict, NotFound
from kallo.models.exports import Export, ExportCreate
from kallo.models.steps import Step
from kallo.services import exports
from kallo.settings import get_settings
from kallo.store import exports as export_items
from kallo.store import keys, steps, users
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.world import add_user_step, grant, make_object, make_user, ref_of

CONVO = "7b0e3c5a-2f4e-4a43-9a51-3f0a3d9d2c11"


def body(**changes) -> dict:
    return {
        "format": "html-email",
        "sources": {"convoIds": [CONVO]},
        "destinations": [{"type": "email", "address": "Pat@Example.com"}],
        **changes,
    }


def sent_messages() -> list:
    return ses_backends["123456789012"]["us-east-1"].sent_messages


# -- the request model ---------------------------------------------------------------------------------


def test_a_valid_export_request():
    data = ExportCreate.model_validate(body(createdBy=str(uuid4()), createdAt="2019-08-24T14:15:22Z"))
    assert data.sources.convo_ids == [CONVO]
    assert data.destinations[0].address == "pat@example.com"  # compared case-insensitively
    fifty = [str(uuid4()) for _ in range(50)]
    five = [{"type": "email", "address": f"p{n}@example.com"} for n in range(5)]
    assert (
        len(ExportCreate.model_validate(body(sources={"convoIds": fifty}, destinations=five)).destinations)
        == 5
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"format": "pdf"},
        {"format": None},
        {"sources": {"convoIds": []}},
        {"sources": {"convoIds": ["not-a-uuid"]}},
        {"sources": {"convoIds": [CONVO, CONVO]}},
        {"sources": {"convoIds": [str(uuid4()) for _ in range(51)]}},
        {"sources": {"convoIds": [CONVO], "topicIds": []}},
        {"sources": {}},
        {"id": str(uuid4())},
        {"destinations": []},
        {"destinations": [{"type": "email", "address": f"p{n}@example.com"} for n in range(6)]},
        {"destinations": [{"type": "email", "address": f"p{n}@example.com"} for n in range(30)]},
        {"destinations": [{"type": "sms", "address": "pat@example.com"}]},
        {"destinations": [{"type": "email", "address": "not an address"}]},
        {"destinations": [{"type": "email", "address": "pat@example.com", "name": "Pat"}]},
        {
            "destinations": [
                {"type": "email", "address": "pat@example.com"},
                {"type": "email", "address": "PAT@example.com"},
            ]
        },
        {"id": "x"},
        {"status": "sent"},
    ],
)
def test_bad_export_requests_are_refused(changes):
    with pytest.raises(ValidationError):
        ExportCreate.model_validate(body(**changes))


def test_the_export_response_leaves_out_what_it_does_not_have():
    stored = {
        "id": str(uuid4()),
        "format": "html-email",
        "sources": {"convoIds": [CONVO]},
        "destinations": [{"type": "email", "address": "pat@example.com"}],
        "createdAt": now_iso(),
        "createdBy": str(uuid4()),
        "status": "queued",
        "creatorScope": [["topic", str(uuid4())]],
        "messageId": "m",
    }
    shown = Export.model_validate(stored).model_dump(by_alias=True)
    assert set(shown) == {"id", "format", "sources", "destinations", "createdAt", "createdBy", "status"}


# -- rendering -----------------------------------------------------------------------------------------


def entry(text: str, **fields) -> mail.Entry:
    return mail.Entry(
        author=fields.pop("author", "Pat"), created_at="2026-11-22T10:00:00.000Z", text=text, **fields
    )


def test_user_text_is_escaped_everywhere():
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    email = mail.render(
        [
            mail.Section(
                name=f"Plans {attack}",
                entries=[
                    entry(f"Hello {attack}", author=f"Eve {attack}"),
                    entry(
                        "Answer",
                        author="Kallo",
                        is_llm=True,
                        citations=(mail.Citation(f"notes {attack}.txt", f"quote {attack}"),),
                    ),
                ],
            )
        ],
        exported_by=f"Mallory {attack}",
        exported_at="2026-11-22T10:05:00.000Z",
    )
    assert "<script" not in email.html and "<img" not in email.html
    assert html.escape(attack) in email.html
    # The creator, the convo name, the author, the text, the source and the quote (the title is the
    # subject, which holds no caller text).
    assert email.html.count(html.escape(attack)) == 6
    assert attack not in email.subject and "Plans" not in email.subject
    # The plain-text part is text: nothing to escape, and nothing escaped.
    assert f"Hello {attack}" in email.text and "&lt;" not in email.text


def test_citations_become_footnotes_numbered_per_convo():
    email = mail.render(
        [
            mail.Section(
                name="One",
                entries=[
                    entry("Q"),
                    entry(
                        "The sky is blue.",
                        author="Kallo",
                        is_llm=True,
                        citations=(mail.Citation("sky.md", "blue sky"), mail.Citation("sea.pdf", "the sea")),
                    ),
                ],
            ),
            mail.Section(
                name="Two",
                entries=[entry("A", citations=(mail.Citation("grass.txt", "green"),))],
            ),
        ],
        exported_by="Pat",
        exported_at="2026-11-22T10:05:00.000Z",
    )
    assert "The sky is blue.<sup>[1]</sup><sup>[2]</sup>" in email.html
    assert "<li><em>sky.md</em>: &ldquo;blue sky&rdquo;</li><li><em>sea.pdf</em>" in email.html
    assert "A<sup>[1]</sup>" in email.html  # the second convo starts again at 1
    assert "The sky is blue. [1] [2]\n" in email.text
    assert "[1] sky.md: “blue sky”\n[2] sea.pdf: “the sea”\n" in email.text
    assert "[1] grass.txt: “green”" in email.text
    assert "Pat · 2026-11-22 10:00 UTC\nQ\n" in email.text
    assert email.complete


def test_the_subject_is_a_count_and_a_date_never_caller_text():
    """I9: the subject line is ours. A convo named like a phishing lure, or with a header injection,
    reaches the body (escaped) and never the subject."""
    assert mail.subject_for(1, "2026-11-22T23:59:59.000Z") == "Kallo export: 1 convo, 2026-11-22"
    assert mail.subject_for(3, "2026-11-22T10:00:00.000Z") == "Kallo export: 3 convos, 2026-11-22"
    lure = "Your account is locked: sign in at https://evil.example\r\nBcc: eve@example.com"
    email = mail.render(
        [mail.Section(lure, [entry("hi")]), mail.Section("Second", [])],
        exported_by="Mallory https://evil.example",
        exported_at="2026-11-22T10:05:00.000Z",
    )
    assert email.subject == "Kallo export: 2 convos, 2026-11-22"
    assert "Your account is locked" in email.html


def test_a_large_export_is_cut_to_the_size_cap_and_says_so():
    entries = [entry(f"{n} " + "x" * 1000) for n in range(100)]
    email = mail.render(
        [mail.Section("Big", entries)], exported_by="Pat", exported_at=now_iso(), max_bytes=20_000
    )
    size = len(email.html.encode()) + len(email.text.encode())
    assert size <= 20_000
    assert not email.complete and "cut short" in email.html and "cut short" in email.text
    assert "0 xxx" in email.html and "99 xxx" not in email.html
    whole = mail.render([mail.Section("Big", entries[:3])], exported_by="Pat", exported_at=now_iso())
    assert whole.complete and "cut short" not in whole.html


def test_an_empty_convo_says_so():
    email = mail.render([mail.Section("", [])], exported_by="Pat", exported_at=now_iso())
    assert "Untitled convo</h2>" in email.html and "No messages yet." in email.html
    assert "== Untitled convo ==\n\nNo messages yet.\n" in email.text


# -- the send service ----------------------------------------------------------------------------------


def llm_step(convo: Ref, text: str, annotations: list[dict], *, alternate: bool = False) -> dict:
    at = now_iso()
    return steps.add(
        Step(
            id=str(uuid4()),
            convoId=convo.id,
            authorType="llm",
            content={"text": text},
            annotations=annotations,
            isAlternate=alternate,
            createdAt=at,
            updatedAt=at,
        ).record()
    )


def queue(access: Access, convos: list[Ref], to: str = "team@example.com") -> dict:
    """Export the convos to `to`, made the verified email of a user who may view them (I9)."""
    reader = make_user(email=to, name="Reader")
    for convo in convos:
        grant(convo, reader, "viewer")
    data = ExportCreate.model_validate(
        body(sources={"convoIds": [c.id for c in convos]}, destinations=[{"type": "email", "address": to}])
    )
    return exports.export_data(access, data)


def test_the_email_holds_what_the_creator_may_still_view(aws):
    alice, bob = make_user(name="Alice"), make_user(name="Bob")
    mine = make_object("convo", ref_of(alice), name="Mine")
    shared = make_object("convo", ref_of(bob), name="Shared with me")
    grant(shared, alice, "viewer")
    add_user_step(mine, alice, "Hello <b>there</b>")
    add_user_step(shared, bob, "A secret plan")
    export = queue(Access(alice), [mine, shared])
    # Bob stops sharing before the worker runs.
    table().delete(keys.grant_key(shared, ref_of(alice)))

    assert exports.send_export(export["id"]) == "sent"
    [message] = sent_messages()
    assert message.subject.startswith("Kallo export: 1 convo, ")
    assert "Hello &lt;b&gt;there&lt;/b&gt;" in message.body and "Alice" in message.body
    assert "secret" not in message.body and "Shared with me" not in message.body
    stored = export_items.get(export["id"])
    assert stored["status"] == "sent" and stored["messageId"] == message.id and stored["sentAt"]


def test_alternates_are_left_out_and_citations_name_only_visible_sources(aws):
    alice, bob = make_user(name="Alice"), make_user()
    convo = make_object("convo", ref_of(alice), name="Cited")
    visible = make_object("data_source", ref_of(alice), name="handbook.pdf")
    hidden = make_object("data_source", ref_of(bob), name="bobs-private.txt")
    add_user_step(convo, alice, "What is the policy?")
    llm_step(
        convo,
        "Ten days a year.",
        [
            {"type": "citation", "dataSourceId": visible.id, "text": "ten days", "start": 3, "end": 11},
            {"type": "citation", "dataSourceId": hidden.id, "text": "private words"},
        ],
    )
    llm_step(convo, "An alternate answer", [], alternate=True)
    export = queue(Access(alice), [convo])
    # The recipient may view the handbook too (a source is named only when every reader may view it).
    grant(visible, Ref("user", users.find_by_email("team@example.com")["id"]), "viewer")
    assert exports.send_export(export["id"]) == "sent"
    [message] = sent_messages()
    assert "<em>handbook.pdf</em>: &ldquo;ten days&rdquo;" in message.body
    assert "<em>a data source</em>: &ldquo;private words&rdquo;" in message.body
    assert "bobs-private" not in message.body and "alternate" not in message.body
    assert '<strong style="color:#1f2328;">Kallo</strong>' in message.body


def test_an_export_is_sent_once_and_then_left_alone(aws):
    alice = make_user()
    convo = make_object("convo", ref_of(alice), name="Once")
    export = queue(Access(alice), [convo])
    assert exports.send_export(export["id"]) == "sent"
    assert exports.send_export(export["id"]) == "sent"
    assert len(sent_messages()) == 1
    with pytest.raises(Conflict):
        export_items.finish(export["id"], {"status": "failed"})
    assert exports.send_export(str(uuid4())) == "missing"


def test_nothing_left_to_view_fails_the_export_without_mail(aws):
    alice, bob = make_user(), make_user()
    convo = make_object("convo", ref_of(bob))
    grant(convo, alice, "viewer")
    export = queue(Access(alice), [convo])
    table().delete(keys.grant_key(convo, ref_of(alice)))
    assert exports.send_export(export["id"]) == "failed"
    assert export_items.get(export["id"])["error"]["code"] == "nothing_to_export"
    assert sent_messages() == []


def test_a_refused_sender_fails_the_export_for_good(aws):
    alice = make_user()
    convo = make_object("convo", ref_of(alice))
    export = queue(Access(alice), [convo])
    kallo_aws.client("ses").delete_identity(Identity=get_settings().mail_from)
    assert exports.send_export(export["id"]) == "failed"
    error = export_items.get(export["id"])["error"]
    assert error["code"] == "mail_rejected" and "MessageRejected" in error["message"]
    assert sent_messages() == []


def test_a_hidden_convo_is_not_found_and_not_named(aws):
    alice, bob = make_user(), make_user()
    mine, theirs = make_object("convo", ref_of(alice)), make_object("convo", ref_of(bob))
    with pytest.raises(NotFound) as raised:
        queue(Access(alice), [mine, theirs])
    assert theirs.id not in raised.value.message and mine.id not in raised.value.message


def test_a_source_the_recipient_may_not_view_is_not_named(aws):
    """I9: the recipient sees what it may view. The creator's own document is cited, unnamed."""
    alice = make_user(name="Alice")
    convo = make_object("convo", ref_of(alice), name="Cited")
    private = make_object("data_source", ref_of(alice), name="alice-salary.xlsx")
    llm_step(convo, "Yes.", [{"type": "citation", "dataSourceId": private.id, "text": "a quote"}])
    export = queue(Access(alice), [convo])
    assert exports.send_export(export["id"]) == "sent"
    [message] = sent_messages()
    assert "alice-salary" not in message.body and "<em>a data source</em>" in message.body
