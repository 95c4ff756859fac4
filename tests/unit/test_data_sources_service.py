"""The data sources service and models: names, uploads and their rollback, presigned POSTs, queries,
download URLs."""

import base64
import json
from datetime import UTC, datetime
from typing import get_args
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError

from kallo import aws as kallo_aws
from kallo import documents
from kallo.authz.access import Access
from kallo.errors import BadRequest, Conflict, NotFound
from kallo.models.data_sources import (
    DataSource,
    DataSourceUpdate,
    MediaType,
    PresignedUploadRequest,
    safe_name,
)
from kallo.services import data_sources
from kallo.store import blobs, grants, keys, objects
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support.world import grant, make_object, make_user, ref_of

MIB = 1024 * 1024


def test_safe_name_keeps_the_base_name_only():
    cases = {
        "../../etc/passwd": "passwd",
        "..\\..\\x.txt": "x.txt",
        "/abs/name.md": "name.md",
        "C:\\Users\\pat\\r\u00e9sum\u00e9.pdf": "r\u00e9sum\u00e9.pdf",
        "..": "upload",
        "dir/": "upload",
        "": "upload",
        None: "upload",
        "  .hidden.txt ": "hidden.txt",
        "evil\u202etxt.exe": "eviltxt.exe",
        "line\r\nbreak\x00.txt": "linebreak.txt",
        "x" * 300 + ".txt": "x" * 255,
    }
    for given, expected in cases.items():
        assert safe_name(given) == expected, given


def test_presigned_upload_request_bounds():
    ok = PresignedUploadRequest.model_validate({"name": "a/b.pdf", "mimeType": "application/pdf", "size": 1})
    assert (ok.name, ok.mime_type, ok.size) == ("b.pdf", "application/pdf", 1)
    assert PresignedUploadRequest.model_validate({"name": "x", "mimeType": "text/csv", "size": 50 * MIB}).size
    for bad in (
        {"name": "x", "mimeType": "text/plain", "size": 0},
        {"name": "x", "mimeType": "text/plain", "size": 50 * MIB + 1},
        {"name": "x", "mimeType": "application/x-msdownload", "size": 10},
        {"name": "", "mimeType": "text/plain", "size": 10},
        {"name": "x", "mimeType": "text/plain"},
        {"name": "x", "mimeType": "text/plain", "size": 1, "location": "tenants/elsewhere"},
    ):
        with pytest.raises(ValidationError):
            PresignedUploadRequest.model_validate(bad)
    with pytest.raises(ValidationError):
        DataSourceUpdate.model_validate({})
    assert DataSourceUpdate.model_validate({"name": "../q3.pdf"}).changes() == {"name": "q3.pdf"}


def test_the_media_types_are_those_the_documents_library_reads():
    assert get_args(MediaType) == documents.ALLOWED_TYPES


def test_the_response_model_leaves_internal_fields_out():
    stored = {
        "id": "i",
        "name": "n",
        "type": "upload",
        "location": "tenants/user/u/data-sources/i/original",
        "mimeType": "text/plain",
        "size": 3,
        "status": "ready",
        "createdBy": "u",
        "createdAt": "t",
        "updatedAt": "t",
        "versionId": "v1",
        "passages": 2,
    }
    dumped = DataSource.model_validate(stored).model_dump(by_alias=True)
    assert "versionId" not in dumped and "passages" not in dumped and "error" not in dumped
    assert dumped["status"] == "ready" and dumped["mimeType"] == "text/plain"


def test_content_disposition_has_an_ascii_fallback_and_the_exact_name():
    assert data_sources.content_disposition("notes.txt") == (
        "attachment; filename=\"notes.txt\"; filename*=UTF-8''notes.txt"
    )
    value = data_sources.content_disposition('R\u00e9sum\u00e9 "final"\\v2 \u65e5\u672c.pdf')
    fallback, exact = value.split("; filename*=UTF-8''")
    assert fallback == 'attachment; filename="Resume _final__v2 .pdf"'
    assert unquote(exact) == 'R\u00e9sum\u00e9 "final"\\v2 \u65e5\u672c.pdf'
    assert all(c.isascii() for c in value) and '"' not in exact and ";" not in exact
    assert data_sources.content_disposition("\u65e5\u672c").startswith('attachment; filename="download";')


def _partition(ref: Ref) -> list[dict]:
    return table().query_all(keys.object_pk(ref))


def test_a_failed_put_leaves_no_data_source(aws, monkeypatch):
    alice = make_user()

    def refuse(*args, **kwargs):
        raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "PutObject")

    monkeypatch.setattr(blobs, "put", refuse)
    with pytest.raises(ClientError):
        data_sources.upload_file(Access(alice), b"hello", filename="a.txt", declared_type="text/plain")
    assert grants.all_of_grantee(ref_of(alice), object_type="data_source") == []
    listed, _ = data_sources.query_data_sources(Access(alice))
    assert listed == []


def test_upload_writes_the_item_then_the_object_then_its_version(aws):
    alice = make_user()
    created = data_sources.upload_file(
        Access(alice), b"# Title\n\nBody.\n", filename="../notes.md", declared_type="text/markdown"
    )
    ref = Ref("data_source", created["id"])
    assert created["name"] == "notes.md" and created["status"] == "processing" and created["size"] == 15
    assert created["location"] == blobs.prefix(ref_of(alice), ref.id) + "original"
    head = kallo_aws.client("s3").head_object(Bucket=blobs.bucket(), Key=created["location"])
    assert created["versionId"] == head["VersionId"] and objects.get(ref)["versionId"] == head["VersionId"]
    assert head["ContentType"] == created["mimeType"]
    assert [i["SK"] for i in _partition(ref)] == ["#META", f"GRANT#user#{alice.user_id}"]


def test_an_upload_deleted_before_its_version_is_recorded_leaves_no_bytes(aws, monkeypatch):
    alice = make_user()
    original_put = blobs.put

    def put_then_delete_item(object_key, body, *, content_type):
        version = original_put(object_key, body, content_type=content_type)
        data_source_id = blobs.parse(object_key)[1]
        table().delete(keys.object_key(Ref("data_source", data_source_id)))
        return version

    monkeypatch.setattr(blobs, "put", put_then_delete_item)
    with pytest.raises(NotFound):
        data_sources.upload_file(Access(alice), b"hello", filename="a.txt", declared_type="text/plain")
    listed = kallo_aws.client("s3").list_object_versions(Bucket=blobs.bucket(), Prefix="tenants/")
    assert listed.get("Versions", []) == [] and listed.get("DeleteMarkers", []) == []


def test_presigned_post_is_bound_to_the_key_type_and_size(aws):
    alice = make_user()
    request = PresignedUploadRequest(name="big.pdf", mimeType="application/pdf", size=20 * MIB)
    before = datetime.now(UTC)
    created = data_sources.presign_upload(Access(alice), request)
    assert created["status"] == "awaiting_upload" and created["size"] == 20 * MIB
    upload = created["upload"]
    assert upload["fields"]["key"] == created["location"]
    assert upload["fields"]["Content-Type"] == "application/pdf"
    policy = json.loads(base64.b64decode(upload["fields"]["policy"]))
    assert ["content-length-range", 1, 20 * MIB] in policy["conditions"]
    assert {"Content-Type": "application/pdf"} in policy["conditions"]
    assert {"key": created["location"]} in policy["conditions"]
    expires = datetime.fromisoformat(upload["expiresAt"].replace("Z", "+00:00"))
    assert 890 <= (expires - before).total_seconds() <= 910
    assert objects.get(Ref("data_source", created["id"]))["status"] == "awaiting_upload"


def test_download_url_is_pinned_and_refused_before_the_upload(aws):
    alice = make_user()
    waiting = make_object("data_source", ref_of(alice), status="awaiting_upload", mimeType="text/plain")
    with pytest.raises(Conflict) as error:
        data_sources.download_url(Access(alice), waiting.id)
    assert error.value.code == "not_uploaded"
    location = blobs.prefix(ref_of(alice), "0" * 8) + "original"
    unversioned = make_object(
        "data_source", ref_of(alice), status="ready", mimeType="text/csv", location=location, name="t.csv"
    )
    url = data_sources.download_url(Access(alice), unversioned.id)
    query = parse_qs(urlsplit(url).query)
    assert "versionId" not in query and query["response-content-type"] == ["text/csv"]
    assert urlsplit(url).path.endswith("/" + location)


def test_query_filters_are_exclusive_and_links_keep_the_topic_order(aws):
    alice, bob = make_user(), make_user()
    topic = make_object("topic", ref_of(alice))
    first, second, third = (make_object("data_source", ref_of(alice), name=n) for n in "abc")
    hidden = make_object("data_source", ref_of(bob))
    for data_source in (first, second, third):
        grant(data_source, topic, "dependent")
    objects.update(topic, {"dataSourceIds": [third.id, first.id]})
    access = Access(alice)
    linked, token = data_sources.query_data_sources(access, topic_id=topic.id)
    assert [d["id"] for d in linked] == [third.id, first.id, second.id] and token is None
    among, _ = data_sources.query_data_sources(access, data_source_ids=[second.id, hidden.id, first.id])
    assert [d["id"] for d in among] == [second.id, first.id]
    with pytest.raises(BadRequest) as error:
        data_sources.query_data_sources(access, topic_id=topic.id, user_id=alice.user_id)
    assert error.value.code == "ambiguous_filter"
    with pytest.raises(NotFound):
        data_sources.query_data_sources(Access(bob), topic_id=topic.id)
