"""The data source worker (workers.data_source) on the S3 event notifications moto's bucket really sends
to the data source queue (the template's notification wiring): every allowed type is processed end to
end, refused bytes never stay, late and duplicate events are harmless, malformed messages fail their record (to be dead-lettered)."""

from __future__ import annotations

import copy
import json
import time
from typing import Any
from uuid import uuid4

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from kallo.documents import bounded, extract
from kallo.documents.bm25 import Index
from kallo.settings import get_settings
from kallo.store import blobs, keys, objects
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support import documents
from tests.support.aws import s3_versions
from tests.support.data_source_worker import SAMPLE, delivered, record, run
from tests.support.world import make_data_source, make_user, ref_of

SAMPLES: dict[str, tuple[str, bytes, str]] = {
    "text/plain": ("notes.txt", b"The lighthouse keeper logs the tide twice a day.\n", "lighthouse keeper"),
    "text/markdown": (
        "guide.md",
        b"# Harbour guide\n\nThe **north pier** closes at dusk.\n\n- Moorings are free in winter.\n",
        "north pier",
    ),
    "text/csv": ("ports.csv", b"port,country,berths\nLisbon,Portugal,42\nGenoa,Italy,57\n", "Genoa"),
    "application/json": (
        "ship.json",
        b'{"ship": "Aurora", "captain": "Ines Duarte", "crew": 14, "route": ["Porto", "Vigo"]}',
        "Ines Duarte",
    ),
    "text/html": (
        "page.html",
        b"<!doctype html><html><head><title>Tides</title><script>var x = 1;</script></head>"
        b"<body><h1>Spring tides</h1><p>Spring tides follow the full moon.</p></body></html>",
        "Spring tides follow the full moon",
    ),
}


def s3_events(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if "Records" in json.loads(r["body"])]


def new_data_source(owner: Ref, name: str, mime_type: str, *, status: str = "processing") -> tuple[Ref, str]:
    """A data source item as an upload creates it (the bytes not stored yet); returns it and its location."""
    return make_data_source(owner, name=name, mimeType=mime_type, status=status)


@pytest.fixture
def owner(aws):
    user = make_user()
    delivered()  # the s3:TestEvent S3 sends when the notification is configured
    return ref_of(user)


@pytest.mark.parametrize("mime_type", [*SAMPLES, "application/pdf"])
def test_each_allowed_type_is_processed_end_to_end(owner, mime_type, aws_calls):
    if mime_type == "application/pdf":
        name, body, phrase = (
            "report.pdf",
            documents.pdf(["The harbour master inspects every hull."]),
            "harbour master",
        )
    else:
        name, body, phrase = SAMPLES[mime_type]
    source, location = new_data_source(owner, name, mime_type)
    blobs.put(location, body, content_type="application/octet-stream")
    messages = delivered()
    assert len(s3_events(messages)) == 1
    aws_calls.reset()
    assert run(*messages) == []
    # The item, the original, the text and index written, the item updated, the summary looked for.
    assert aws_calls["dynamodb:GetItem"] == 2 and aws_calls["s3:GetObject"] == 1
    assert aws_calls["s3:PutObject"] == 2 and aws_calls["dynamodb:UpdateItem"] == 1
    assert aws_calls.total == 6
    item = objects.get(source)
    assert item["status"] == "ready" and item["mimeType"] == mime_type and item["size"] == len(body)
    assert item["passages"] >= 1 and "error" not in item and item["processedAt"] == item["updatedAt"]
    text = blobs.get(blobs.key(location, blobs.TEXT)).decode()
    assert phrase in text
    index = Index.from_bytes(blobs.get(blobs.key(location, blobs.INDEX)))
    assert len(index.passages) == item["passages"]
    assert all(text[p.start : p.end] == p.text for p in index.passages)
    # Writing the text and the index sends no event: only originals start processing.
    assert delivered() == []


def test_a_text_pdf_of_several_pages_is_read_whole(owner):
    pages = [
        f"Page {n} tells of the {word} lighthouse." for n, word in enumerate(["red", "white", "green"], 1)
    ]
    source, location = new_data_source(owner, "lights.pdf", "application/pdf")
    blobs.put(location, documents.pdf(pages), content_type="application/pdf")
    assert run(*delivered()) == []
    text = blobs.get(blobs.key(location, blobs.TEXT)).decode()
    assert all(word in text for word in ("red", "white", "green"))
    assert objects.get(source)["status"] == "ready"


def test_a_disguised_executable_from_a_presigned_upload_is_failed_and_deleted(owner, aws_calls):
    # A presigned POST lands whatever the client sends at the key; the item says what was declared.
    source, location = new_data_source(owner, "invoice.pdf", "application/pdf", status="awaiting_upload")
    blobs.put(location, documents.ELF + bytes(200), content_type="application/pdf")
    messages = delivered()
    aws_calls.reset()
    assert run(*messages) == []
    # The item, `processing` (item and owner grant lose their ttl), the bytes, their versions listed
    # and deleted, `failed`.
    assert aws_calls["dynamodb:UpdateItem"] == 3 and aws_calls["s3:GetObject"] == 1
    assert aws_calls["s3:ListObjectVersions"] == 1 and aws_calls["s3:DeleteObjects"] == 1
    assert aws_calls.total == 7
    item = objects.get(source)
    assert item["status"] == "failed" and item["error"]["code"] == "unsupported_media_type"
    assert item["error"]["message"] and item["mimeType"] == "application/pdf" and "passages" not in item
    assert s3_versions(blobs.prefix(owner, source.id)) == []


def test_an_empty_file_is_failed_and_deleted(owner):
    source, location = new_data_source(owner, "empty.txt", "text/plain")
    blobs.put(location, b"", content_type="text/plain")
    assert run(*delivered()) == []
    item = objects.get(source)
    assert item["status"] == "failed" and item["error"]["code"] == "empty_file" and item["size"] == 0
    assert s3_versions(blobs.prefix(owner, source.id)) == []


def test_a_file_beyond_the_cap_is_failed_and_deleted(owner, monkeypatch):
    monkeypatch.setenv("KALLO_PRESIGNED_UPLOAD_MAX_BYTES", "64")
    get_settings.cache_clear()
    source, location = new_data_source(owner, "big.txt", "text/plain")
    blobs.put(location, b"word " * 20, content_type="text/plain")
    assert run(*delivered()) == []
    item = objects.get(source)
    assert item["status"] == "failed" and item["error"]["code"] == "file_too_large" and item["size"] == 100
    assert s3_versions(blobs.prefix(owner, source.id)) == []


def test_an_unreadable_document_is_failed_and_deleted(owner):
    source, location = new_data_source(owner, "broken.pdf", "application/pdf")
    broken = b"%PDF-1.7\n" + b"garbage " * 50 + b"\n%%EOF\n"
    blobs.put(location, broken, content_type="application/pdf")
    assert run(*delivered()) == []
    item = objects.get(source)
    assert item["status"] == "failed" and item["error"]["code"] == "unreadable_document"
    assert item["mimeType"] == "application/pdf"
    assert s3_versions(blobs.prefix(owner, source.id)) == []  # a failed file is never served


def test_a_pdf_in_front_of_a_zip_is_failed_and_deleted(owner):
    source, location = new_data_source(owner, "report.pdf", "application/pdf")
    blobs.put(location, documents.pdf_zip_polyglot(), content_type="application/pdf")
    assert run(*delivered()) == []
    item = objects.get(source)
    assert item["status"] == "failed" and item["error"]["code"] == "unsupported_media_type"
    assert s3_versions(blobs.prefix(owner, source.id)) == []


def test_a_document_over_the_bound_fails_too_complex_and_the_next_one_is_processed(owner, monkeypatch):
    """I11: one tenant's costly PDF holds up the batch no longer than the per-document bound."""
    slow, slow_location = new_data_source(owner, "slow.pdf", "application/pdf")
    other = make_user()
    fine, fine_location = new_data_source(ref_of(other), "notes.txt", "text/plain")
    blobs.put(slow_location, documents.pdf(["Looks innocent."]), content_type="application/pdf")
    blobs.put(fine_location, SAMPLES["text/plain"][1], content_type="text/plain")
    original = extract.text_of

    def costly(data: bytes, media_type: str) -> str:
        if media_type == "application/pdf":
            while True:  # a parser stuck in a loop: only the CPU limit ends it
                pass
        return original(data, media_type)

    monkeypatch.setattr(extract, "text_of", costly)
    monkeypatch.setattr(bounded, "LIMITS", bounded.Limits(cpu_seconds=1, wall_seconds=10))
    started = time.monotonic()
    assert run(*s3_events(delivered())) == []
    assert time.monotonic() - started < 8
    item = objects.get(slow)
    assert item["status"] == "failed" and item["error"]["code"] == "too_complex"
    assert s3_versions(blobs.prefix(owner, slow.id)) == []
    assert objects.get(fine)["status"] == "ready"


def test_a_late_event_of_a_deleted_data_source_deletes_its_bytes(owner, aws_calls):
    source, location = new_data_source(owner, "gone.txt", "text/plain")
    blobs.put(location, b"Soon gone.", content_type="text/plain")
    table().delete(keys.object_key(source))
    messages = delivered()
    aws_calls.reset()
    assert run(*messages) == []
    assert aws_calls["dynamodb:GetItem"] == 1 and aws_calls["s3:ListObjectVersions"] == 1
    assert aws_calls["s3:DeleteObjects"] == 1 and aws_calls.total == 3
    assert s3_versions(blobs.prefix(owner, source.id)) == []


def test_the_same_event_twice_gives_the_same_result(owner):
    source, location = new_data_source(owner, "notes.txt", "text/plain")
    blobs.put(location, SAMPLES["text/plain"][1], content_type="text/plain")
    (event,) = s3_events(delivered())
    assert run(event) == []
    first = objects.get(source)
    first_text = blobs.get(blobs.key(location, blobs.TEXT))
    first_index = blobs.get(blobs.key(location, blobs.INDEX))
    assert run(record(event["body"]), record(event["body"])) == []
    again = objects.get(source)
    assert {k: v for k, v in again.items() if k not in ("processedAt", "updatedAt")} == {
        k: v for k, v in first.items() if k not in ("processedAt", "updatedAt")
    }
    assert blobs.get(blobs.key(location, blobs.TEXT)) == first_text
    assert blobs.get(blobs.key(location, blobs.INDEX)) == first_index


def test_a_requested_summary_is_queued_once_processing_ends(owner):
    source, location = new_data_source(owner, "notes.txt", "text/plain")
    table().put(
        {**keys.summary_key(source.id), "status": "pending", "requestedAt": "2026-11-22T10:00:00.000Z"}
    )
    blobs.put(location, SAMPLES["text/plain"][1], content_type="text/plain")
    assert run(*delivered()) == []
    jobs = [json.loads(r["body"]) for r in delivered()]
    assert jobs == [{"type": "summarize", "dataSourceId": source.id}]
    # A summary written already is kept: processing the upload again queues nothing.
    table().update(keys.summary_key(source.id), {"status": "ready"})
    blobs.put(location, SAMPLES["text/plain"][1], content_type="text/plain")
    assert run(*delivered()) == []
    assert delivered() == []


def test_malformed_messages_fail_their_record_and_test_events_are_ignored(owner):
    malformed = [
        record(body)
        for body in (
            "not json",
            "[]",
            '{"type": "summarize", "dataSourceId": "not-a-uuid"}',
            '{"Records": [{"eventName": "ObjectCreated:Put"}]}',
        )
    ]
    test_event = record('{"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "x"}')
    # SQS delivers the failed records again, then moves them to the dead-letter queue.
    assert run(*malformed, test_event) == [r["messageId"] for r in malformed]


def test_events_that_are_not_an_original_upload_are_ignored(owner, aws_calls):
    source, location = new_data_source(owner, "notes.txt", "text/plain")
    body = json.loads(SAMPLE["body"])
    stranger = copy.deepcopy(body)
    stranger["Records"][0]["s3"]["bucket"]["name"] = "someone-elses-bucket"
    stranger["Records"][0]["s3"]["object"]["key"] = location
    removed = copy.deepcopy(stranger)
    removed["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    removed["Records"][0]["s3"]["bucket"]["name"] = blobs.bucket()
    text_part = copy.deepcopy(removed)
    text_part["Records"][0]["eventName"] = "ObjectCreated:Put"
    text_part["Records"][0]["s3"]["object"]["key"] = blobs.key(location, blobs.TEXT)
    aws_calls.reset()
    assert run(*[record(json.dumps(b)) for b in (stranger, removed, text_part)]) == []
    assert aws_calls.total == 0
    assert objects.get(source)["status"] == "processing"


def test_an_error_fails_its_record_alone(owner, monkeypatch):
    source, location = new_data_source(owner, "notes.txt", "text/plain")
    blobs.put(location, SAMPLES["text/plain"][1], content_type="text/plain")
    (good,) = s3_events(delivered())
    broken = json.loads(good["body"])
    broken["Records"][0]["s3"]["object"]["key"] = blobs.prefix(owner, str(uuid4())) + blobs.ORIGINAL
    failing = record(json.dumps(broken))

    original_get = table().get

    def flaky(key: dict[str, str], *, consistent: bool = False) -> dict[str, Any] | None:
        if key["PK"] != keys.object_pk(source) and key["SK"] == keys.META:
            raise RuntimeError("DynamoDB is unavailable")
        return original_get(key, consistent=consistent)

    monkeypatch.setattr(table(), "get", flaky)
    assert run(good, failing) == [failing["messageId"]]
    assert objects.get(source)["status"] == "ready"
    with pytest.raises(BatchProcessingError):
        run(failing)
