"""The local mailbox (`/_local/mail`): the emails moto's SES kept, listed and shown."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage

import boto3
import pytest
from moto import mock_aws
from starlette.applications import Starlette
from starlette.testclient import TestClient

from local import http_gateway, mailbox, stack, template

SENDER = "kallo@example.com"


@pytest.fixture
def ses() -> Iterator[object]:
    with mock_aws():
        client = boto3.client("ses", region_name=template.REGION)
        client.verify_email_identity(EmailAddress=SENDER)
        yield client


@pytest.fixture
def client(ses) -> TestClient:
    return TestClient(Starlette(routes=mailbox.Mailbox().routes()))


def send(ses, subject: str, *, html: str | None = None, text: str = "plain") -> str:
    body = {"Text": {"Data": text}}
    if html is not None:
        body["Html"] = {"Data": html}
    response = ses.send_email(
        Source=SENDER,
        Destination={"ToAddresses": ["pat@example.com"], "CcAddresses": ["sam@example.com"]},
        Message={"Subject": {"Data": subject}, "Body": body},
    )
    return response["MessageId"]


def test_the_mailbox_lists_sent_emails_newest_first(ses, client):
    assert client.get("/_local/mail").json() == []
    first = send(ses, "Kallo export: One", html="<!DOCTYPE html><html><body>1</body></html>")
    second = send(ses, "Kallo export: Two", html="<html><body>2</body></html>")
    listed = client.get("/_local/mail").json()
    assert [m["id"] for m in listed] == [second, first]
    assert listed[1] == {
        "id": first,
        "source": SENDER,
        "destinations": ["pat@example.com", "sam@example.com"],
        "subject": "Kallo export: One",
        "sentAt": listed[1]["sentAt"],
    }
    assert listed[1]["sentAt"].endswith("Z")
    # The time is when the mailbox first saw the email: it does not move.
    assert client.get("/_local/mail").json() == listed


def test_an_email_is_shown_as_html_in_a_sandbox(ses, client):
    page = "<!DOCTYPE html><html><body><p>Hello &lt;script&gt;</p></body></html>"
    message_id = send(ses, "Kallo export: One", html=page)
    shown = client.get(f"/_local/mail/{message_id}")
    assert shown.status_code == 200
    assert shown.headers["content-type"].startswith("text/html")
    assert shown.text == page
    assert shown.headers["content-security-policy"].startswith("sandbox")


def test_a_text_only_email_is_shown_as_text(ses, client):
    message_id = send(ses, "Plain", text="<b>not markup</b>")
    shown = client.get(f"/_local/mail/{message_id}")
    assert shown.headers["content-type"].startswith("text/plain") and shown.text == "<b>not markup</b>"


def test_a_raw_email_is_listed_and_shown(ses, client):
    raw = EmailMessage()
    raw["Subject"] = "Raw one"
    raw["From"] = SENDER
    raw["To"] = "pat@example.com"
    raw.set_content("text part")
    raw.add_alternative("<html><body>html part</body></html>", subtype="html")
    message_id = ses.send_raw_email(
        Source=SENDER, Destinations=["pat@example.com"], RawMessage={"Data": raw.as_bytes()}
    )["MessageId"]
    [listed] = client.get("/_local/mail").json()
    assert (listed["id"], listed["subject"], listed["destinations"]) == (
        message_id,
        "Raw one",
        ["pat@example.com"],
    )
    shown = client.get(f"/_local/mail/{message_id}")
    assert shown.headers["content-type"].startswith("text/html") and "html part" in shown.text


def test_an_unknown_email_is_404(client):
    missing = client.get("/_local/mail/nope")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_the_stack_serves_the_mailbox_before_the_rest_gateway():
    factories = stack.ROUTE_FACTORIES
    assert factories.index(mailbox.routes) < factories.index(http_gateway.routes)
