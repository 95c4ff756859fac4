"""Processing uploads (kallo.services.ingest) called directly against moto: reading S3 event
notifications, the statuses an upload goes through, duplicates, and data sources deleted meanwhile."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from kallo.documents.bm25 import Index
from kallo.services import ingest
from kallo.store import blobs, keys, objects
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.api import EVENTS
from tests.support.aws import s3_versions
from tests.support.world import make_data_source, make_object, make_user, ref_of

NOTIFICATION = json.loads(
    json.loads((EVENTS / "workers" / "data_source.json").read_text())["Records"][0]["body"]
)
TEXT = b"Gulls nest on the cliffs. The ferry leaves at noon.\n\nTickets are sold on board."


def notification(key: str, *, event: str = "ObjectCreated:Put", bucket: str | None = None) -> dict[str, Any]:
    body = copy.deepcopy(NOTIFICATION)
    entry = body["Records"][0]
    entry["eventName"] = event
    entry["s3"]["bucket"]["name"] = bucket or blobs.bucket()
    entry["s3"]["object"]["key"] = key
    return body


def new_data_source(owner: Ref, *, status: str = "processing", **fields: Any) -> tuple[Ref, str]:
    return make_data_source(owner, name="ferry.txt", mimeType="text/plain", status=status, **fields)


@pytest.fixture
def owner(aws) -> Ref:
    return ref_of(make_user())


# -- reading notifications -----------------------------------------------------------------------------


def test_a_notification_gives_its_decoded_keys_versions_and_sizes(aws):
    body = notification("tenants/user/a%20b/data-sources/x+y/original")
    (upload,) = ingest.uploads_of(body)
    assert upload == ingest.Upload(
        "tenants/user/a b/data-sources/x y/original", "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd", 10240
    )


def test_test_events_removals_and_other_buckets_give_nothing(aws):
    assert ingest.uploads_of({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}) == []
    assert ingest.uploads_of(notification("k", event="ObjectRemoved:Delete")) == []
    assert ingest.uploads_of(notification("k", bucket="another-bucket")) == []


@pytest.mark.parametrize(
    "message", [[], "text", {"Records": []}, {"Records": [{"eventName": "ObjectCreated:Put"}]}]
)
def test_anything_else_is_refused(aws, message):
    with pytest.raises(ValidationError):
        ingest.uploads_of(message)


# -- processing ----------------------------------------------------------------------------------------


def test_a_processed_upload_is_ready_with_the_events_version(owner):
    source, location = new_data_source(owner)
    version = blobs.put(location, TEXT, content_type="text/plain")
    assert ingest.process(location, version, size=len(TEXT)) == "ready"
    item = objects.get(source)
    assert item["versionId"] == version and item["passages"] == len(
        Index.from_bytes(blobs.get(blobs.key(location, blobs.INDEX))).passages
    )
    assert blobs.get(blobs.key(location, blobs.TEXT)).decode().startswith("Gulls nest")


def test_a_version_processed_already_is_not_read_again(owner, aws_calls):
    _, location = new_data_source(owner, status="ready", versionId="v1")
    aws_calls.reset()
    assert ingest.process(location, "v1") == "ready"
    assert aws_calls["dynamodb:GetItem"] == 1 and aws_calls.total == 1


def test_a_presigned_upload_goes_through_processing(owner, monkeypatch):
    source, location = new_data_source(owner, status="awaiting_upload")
    blobs.put(location, TEXT, content_type="text/plain")
    seen = []
    real_split = ingest.passages.split
    monkeypatch.setattr(
        ingest.passages, "split", lambda text: seen.append(objects.get(source)["status"]) or real_split(text)
    )
    assert ingest.process(location, None) == "ready"
    assert seen == ["processing"]


def test_an_arrived_presigned_upload_no_longer_expires(owner):
    source, location = new_data_source(owner, status="awaiting_upload")
    table().update(keys.object_key(source), {"ttl": 1_900_000_000})
    table().update(keys.grant_key(source, owner), {"ttl": 1_900_000_000})
    blobs.put(location, TEXT, content_type="text/plain")
    assert ingest.process(location, None) == "ready"
    assert "ttl" not in table().get(keys.object_key(source))
    assert "ttl" not in table().get(keys.grant_key(source, owner))


def test_an_upload_whose_owner_changed_is_still_processed(owner):
    source, location = new_data_source(owner, status="awaiting_upload")
    table().delete(keys.grant_key(source, owner))  # ownership moved to someone else meanwhile
    blobs.put(location, TEXT, content_type="text/plain")
    assert ingest.process(location, None) == "ready"


def test_the_passages_are_embedded_when_a_model_is_configured(owner, monkeypatch):
    _, location = new_data_source(owner)
    blobs.put(location, TEXT, content_type="text/plain")
    asked: list[list[str]] = []

    def embed(texts: list[str]) -> None:
        asked.append(texts)

    monkeypatch.setattr(ingest.embeddings, "embed", embed)
    ingest.process(location, None)
    index = Index.from_bytes(blobs.get(blobs.key(location, blobs.INDEX)))
    assert asked == [[p.text for p in index.passages]]


def test_a_data_source_deleted_while_processing_leaves_no_files(owner, monkeypatch):
    source, location = new_data_source(owner)
    blobs.put(location, TEXT, content_type="text/plain")
    real_split = ingest.passages.split

    def deleting(text: str):
        table().delete(keys.object_key(source))
        return real_split(text)

    monkeypatch.setattr(ingest.passages, "split", deleting)
    assert ingest.process(location, None) is None
    assert s3_versions(blobs.prefix(owner, source.id)) == []
    assert table().get(keys.object_key(source)) is None


def test_bytes_at_a_key_that_is_not_the_items_location_are_deleted(owner):
    team = make_object("team", owner)
    source, _ = new_data_source(owner)
    elsewhere = blobs.location(team, source.id)
    blobs.put(elsewhere, TEXT, content_type="text/plain")
    assert ingest.process(elsewhere, None) is None
    assert s3_versions(blobs.prefix(team, source.id)) == []
    assert objects.get(source)["status"] == "processing"


def test_a_size_beyond_the_cap_is_refused_without_reading(owner, aws_calls):
    source, location = new_data_source(owner)
    blobs.put(location, TEXT, content_type="text/plain")
    aws_calls.reset()
    cap = ingest.get_settings().presigned_upload_max_bytes
    assert ingest.process(location, "v2", size=cap + 1) == "failed"
    assert aws_calls["s3:GetObject"] == 0
    item = objects.get(source)
    assert item["error"]["code"] == "file_too_large" and item["size"] == cap + 1 and item["versionId"] == "v2"
    assert s3_versions(blobs.prefix(owner, source.id)) == []


def test_an_event_for_a_version_deleted_since_is_ignored(owner):
    source, location = new_data_source(owner, status="processing")
    version = blobs.put(location, TEXT, content_type="text/plain")
    blobs.delete_all(blobs.key(location, blobs.ORIGINAL))
    assert ingest.process(location, version) is None
    assert objects.get(source)["status"] == "processing"


def test_keys_outside_the_layout_are_ignored(owner, aws_calls):
    aws_calls.reset()
    assert ingest.process("tenants/user/elsewhere/file.txt", None) is None
    assert (
        ingest.process(blobs.prefix(owner, "0b1d3f5a-7c9e-4b2d-8f6a-1c3e5a7b9d0f") + blobs.TEXT, None) is None
    )
    assert aws_calls.total == 0


def test_a_reprocessed_document_loses_its_old_error(owner):
    error = {"code": "unreadable_document", "message": "old"}
    source, location = new_data_source(owner, status="failed", error=error)
    version = blobs.put(location, TEXT, content_type="text/plain")
    assert ingest.process(location, version) == "ready"
    assert "error" not in objects.get(source)
