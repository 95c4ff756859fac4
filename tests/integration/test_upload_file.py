"""Upload New File: POST /data-sources/uploads[?userId= | teamId=], multipart/form-data or JSON."""

import base64
import io
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
from pypdf import PdfWriter

from kallo import aws as kallo_aws
from kallo.settings import get_settings
from kallo.store import blobs, grants, keys, objects
from kallo.store.keys import Ref
from kallo.store.table import table
from tests.support import documents
from tests.support.api import LambdaContext, Result, sample_event
from tests.support.world import grant, make_object, make_service_account, make_user, ref_of

BOUNDARY = "----KalloTestBoundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def form(*parts: tuple[str, str | None, str | None, bytes]) -> bytes:
    """A multipart/form-data body of (field name, file name, content type, bytes) parts."""
    body = b""
    for name, filename, content_type, data in parts:
        disposition = f'Content-Disposition: form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += f"--{BOUNDARY}\r\n{disposition}\r\n".encode()
        if content_type:
            body += f"Content-Type: {content_type}\r\n".encode()
        body += b"\r\n" + data + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def post(
    principal: Any,
    body: bytes,
    *,
    content_type: str | None = MULTIPART,
    query: dict[str, str] | None = None,
    binary: bool = True,
) -> Result:
    """The handler with the proxy event API Gateway sends: multipart/form-data, a binary media type of
    the API, arrives base64-encoded; JSON as text."""
    from functions.data_sources import upload_file

    event = sample_event("data_sources.upload_file")
    headers = {"accept": "application/json", **({"content-type": content_type} if content_type else {})}
    event["headers"], event["multiValueHeaders"] = headers, {k: [v] for k, v in headers.items()}
    event["queryStringParameters"] = query or None
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in (query or {}).items()} or None
    event["body"] = base64.b64encode(body).decode() if binary else body.decode()
    event["isBase64Encoded"] = binary
    event["requestContext"]["authorizer"] = {"principalId": principal.user_id, **principal.to_context()}
    response = upload_file.lambda_handler(event, LambdaContext())
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    headers.update({k.lower(): v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()})
    return Result(response["statusCode"], headers, response.get("body") or "")


def upload(
    principal: Any, data: bytes, filename: str | None = "notes.txt", declared: str | None = None, **kw
):
    return post(principal, form(("file", filename, declared, data)), **kw)


def pdf_bytes() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def s3() -> Any:
    return kallo_aws.client("s3")


def stored_keys() -> list[str]:
    return [o["Key"] for o in s3().list_objects_v2(Bucket=blobs.bucket()).get("Contents", [])]


SAMPLES = [
    ("notes.txt", "text/plain", b"Plain notes.\nSecond line.\n", "text/plain"),
    ("readme.md", "text/markdown", b"# Readme\n\nSome *markdown*.\n", "text/markdown"),
    ("table.csv", "text/csv", b"name,qty\nbolts,3\nnuts,4\n", "text/csv"),
    ("data.json", "application/json", b'{"answer": 42, "items": [1, 2]}', "application/json"),
    ("page.html", "text/html", b"<!doctype html><html><body><p>Hello</p></body></html>", "text/html"),
    ("paper.pdf", "application/pdf", None, "application/pdf"),
]


@pytest.mark.parametrize(("filename", "declared", "data", "expected"), SAMPLES)
def test_upload_each_allowed_type(aws, aws_calls, filename, declared, data, expected):
    alice = make_user()
    data = data if data is not None else pdf_bytes()
    aws_calls.reset()
    result = upload(alice, data, filename, declared)
    assert result.status == 201, result.body
    created = result.json
    assert aws_calls.total == 4, aws_calls.calls
    assert aws_calls["dynamodb:TransactWriteItems"] == 1 and aws_calls["s3:PutObject"] == 1
    # Its versionId, and the day's upload bytes (I10).
    assert aws_calls["dynamodb:UpdateItem"] == 2 and aws_calls["sqs:SendMessage"] == 0
    assert created["name"] == filename and created["mimeType"] == expected and created["size"] == len(data)
    assert created["status"] == "processing" and created["type"] == "upload"
    assert created["createdBy"] == alice.user_id and "versionId" not in created and "teamId" not in created
    location = f"tenants/user/{alice.user_id}/data-sources/{created['id']}/original"
    assert created["location"] == location
    stored = s3().get_object(Bucket=blobs.bucket(), Key=location)
    assert stored["Body"].read() == data and stored["ContentType"] == expected
    assert objects.get(Ref("data_source", created["id"]))["versionId"] == stored["VersionId"]
    assert grants.get(Ref("data_source", created["id"]), ref_of(alice))["role"] == "owner"


def test_the_s3_event_reaches_the_data_source_queue(aws):
    alice = make_user()
    created = upload(alice, b"hello").json
    queue = aws["DataSourceQueue"]["Ref"]
    messages = kallo_aws.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    records = [r for m in messages for r in json.loads(m["Body"]).get("Records", [])]
    assert [blobs.event_key(r["s3"]["object"]["key"]) for r in records] == [created["location"]]


def test_the_sample_event_uploads_a_markdown_file(aws):
    from functions.data_sources import upload_file

    event = sample_event("data_sources.upload_file")
    alice = make_user()
    event["requestContext"]["authorizer"] = {"principalId": alice.user_id, **alice.to_context()}
    response = upload_file.lambda_handler(event, LambdaContext())
    assert response["statusCode"] == 201, response["body"]
    assert json.loads(response["body"])["name"] == "meeting-notes.md"


def test_disguised_executables_are_refused_before_anything_is_stored(aws, aws_calls):
    alice = make_user()
    aws_calls.reset()
    for data in (
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 64,
        b"\x7fELF\x02\x01\x01",
        documents.pdf_zip_polyglot(),
    ):
        result = upload(alice, data, "report.pdf", "application/pdf")
        assert result.status == 415 and result.json["code"] == "unsupported_media_type", result.body
    assert aws_calls.total == 0 and stored_keys() == []


@pytest.mark.parametrize(
    ("filename", "name"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\x.txt", "x.txt"),
        ("/abs/name.md", "name.md"),
        ("..", "upload"),
    ],
)
def test_path_traversal_names_stay_display_names(aws, filename, name):
    alice = make_user()
    result = upload(alice, b"just text", filename, "text/plain")
    assert result.status == 201, result.body
    assert result.json["name"] == name
    assert stored_keys() == [f"tenants/user/{alice.user_id}/data-sources/{result.json['id']}/original"]


def test_upload_refusals(aws, aws_calls, monkeypatch):
    monkeypatch.setenv("KALLO_UPLOAD_MAX_BYTES", "64")
    get_settings.cache_clear()
    alice = make_user()
    aws_calls.reset()
    too_large = upload(alice, b"x" * 65)
    assert too_large.status == 413 and too_large.json["code"] == "file_too_large"
    assert "64 bytes" in too_large.json["message"]
    assert upload(alice, b"x" * 64).status == 201
    aws_calls.reset()
    cases = [
        (form(("file", "a.txt", "text/plain", b"")), MULTIPART, True, 400, "empty_file"),
        (form(("document", "a.txt", "text/plain", b"x")), MULTIPART, True, 400, "missing_file"),
        (
            form(("file", "a.txt", None, b"a"), ("file", "b.txt", None, b"b")),
            MULTIPART,
            True,
            400,
            "multiple_files",
        ),
        (b"not a form at all", MULTIPART, True, 400, "malformed_multipart"),
        (form(("file", "a.txt", None, b"x")), "multipart/form-data", True, 400, "malformed_multipart"),
        (form(("file", "a.txt", None, b"x"))[:-12], MULTIPART, True, 400, "malformed_multipart"),
        (b"hello", "text/plain", False, 415, "unsupported_media_type"),
        (b"hello", "application/octet-stream", True, 415, "unsupported_media_type"),
        (b"hello", None, False, 415, "unsupported_media_type"),
        (b"name=a.txt", "application/x-www-form-urlencoded", False, 415, "unsupported_media_type"),
    ]
    for body, content_type, binary, status, code in cases:
        result = post(alice, body, content_type=content_type, binary=binary)
        assert (result.status, result.json["code"]) == (status, code), (body[:30], content_type, result.body)
        assert set(result.json) >= {"code", "message"}
    assert aws_calls.total == 0 and len(stored_keys()) == 1


def test_owner_by_team_or_by_user(aws, aws_calls):
    owner, admin, member, outsider = make_user(), make_user(), make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, admin, "admin")
    grant(team, member, "member")
    aws_calls.reset()
    result = upload(admin, b"team notes", query={"teamId": team.id})
    assert result.status == 201, result.body
    # + the team check, and the bytes charged to the uploader and the team in one transaction.
    assert aws_calls.total == 5 and aws_calls["dynamodb:BatchGetItem"] == 1
    assert aws_calls["dynamodb:TransactWriteItems"] == 2
    assert result.json["teamId"] == team.id and result.json["createdBy"] == admin.user_id
    assert result.json["location"].startswith(f"tenants/team/{team.id}/data-sources/")
    assert grants.get(Ref("data_source", result.json["id"]), team)["role"] == "owner"
    assert upload(member, b"x", query={"teamId": team.id}).status == 403
    assert upload(outsider, b"x", query={"teamId": team.id}).status == 404
    both = upload(owner, b"x", query={"teamId": team.id, "userId": owner.user_id})
    assert both.status == 400 and both.json["code"] == "ambiguous_owner"

    service, _ = make_service_account()
    pat = make_user(admin=service)
    for_pat = upload(service, b"pat's notes", query={"userId": pat.user_id})
    assert for_pat.status == 201 and for_pat.json["createdBy"] == pat.user_id
    assert for_pat.json["location"].startswith(f"tenants/user/{pat.user_id}/")
    assert upload(service, b"x", query={"userId": outsider.user_id}).status == 404
    assert upload(outsider, b"x", query={"userId": pat.user_id}).status == 404
    assert upload(outsider, b"x", query={"teamId": "not-a-uuid"}).status == 422


def test_presigned_upload(aws, aws_calls):
    alice = make_user()
    request = {"name": "C:\\docs\\Big report.pdf", "mimeType": "application/pdf", "size": 30 * 1024 * 1024}
    aws_calls.reset()
    result = post(alice, json.dumps(request).encode(), content_type="application/json", binary=False)
    assert result.status == 201, result.body
    # The data source, and its declared size charged to the day's upload bytes.
    assert aws_calls.total == 2 and aws_calls["dynamodb:TransactWriteItems"] == 1
    assert aws_calls["dynamodb:UpdateItem"] == 1
    created = result.json
    assert created["status"] == "awaiting_upload" and created["name"] == "Big report.pdf"
    assert created["mimeType"] == "application/pdf" and created["size"] == request["size"]
    assert set(created["upload"]) == {"url", "fields", "expiresAt"}
    fields = created["upload"]["fields"]
    assert fields["key"] == created["location"] and fields["Content-Type"] == "application/pdf"
    assert created["location"] == f"tenants/user/{alice.user_id}/data-sources/{created['id']}/original"
    assert stored_keys() == []
    # Never uploaded, the data source and its owner grant expire a day after the upload URL.
    source = Ref("data_source", created["id"])
    expires = datetime.fromisoformat(created["upload"]["expiresAt"]) + timedelta(days=1)
    ttl = table().get(keys.object_key(source))["ttl"]
    assert ttl == int(expires.timestamp()) and "ttl" not in created
    assert table().get(keys.grant_key(source, ref_of(alice)))["ttl"] == ttl

    # A browser-style POST to the target stores the original under the exact key.
    data = pdf_bytes()
    posted = requests.post(
        created["upload"]["url"],
        data=fields,
        files={"file": ("anything.pdf", data, "application/pdf")},
        timeout=10,
    )
    assert posted.status_code in (200, 201, 204), posted.text
    assert s3().get_object(Bucket=blobs.bucket(), Key=created["location"])["Body"].read() == data


def test_presigned_upload_bad_input(aws):
    alice = make_user()
    good = {"name": "a.pdf", "mimeType": "application/pdf", "size": 10}
    for raw, status in (
        ("{bad", 400),
        ("", 422),
        ("[]", 422),
        (json.dumps({**good, "size": 0}), 422),
        (json.dumps({**good, "size": 50 * 1024 * 1024 + 1}), 422),
        (json.dumps({**good, "mimeType": "application/x-msdownload"}), 422),
        (json.dumps({**good, "location": "tenants/user/x"}), 422),
        (json.dumps({"mimeType": "text/plain", "size": 3}), 422),
    ):
        result = post(alice, raw.encode(), content_type="application/json", binary=False)
        assert result.status == status, (raw, result.body)
        assert {"code", "message"} <= set(result.json)
    assert stored_keys() == []


# -- I10: daily upload allowances ------------------------------------------------------------------------


def presign(principal: Any, size: int, **kw: Any) -> Result:
    request = {"name": "big.pdf", "mimeType": "application/pdf", "size": size}
    return post(principal, json.dumps(request).encode(), content_type="application/json", binary=False, **kw)


def test_uploads_past_the_users_daily_bytes_are_429(aws, monkeypatch):
    monkeypatch.setenv("KALLO_USER_UPLOAD_BYTES_PER_DAY", "100")
    get_settings.cache_clear()
    alice, bob = make_user(), make_user()
    assert upload(alice, b"x" * 60).status == 201
    refused = upload(alice, b"y" * 60)  # 120 bytes would pass the allowance
    assert refused.status == 429 and refused.json["code"] == "quota_exceeded"
    assert 0 < int(refused.headers["retry-after"]) <= 86400
    assert len(stored_keys()) == 1  # nothing stored for the refused upload
    # The presigned request counts the size it declares.
    assert presign(alice, 41).status == 429
    assert presign(alice, 40).status == 201
    assert upload(alice, b"z").status == 429
    # Another user's allowance is its own.
    assert upload(bob, b"y" * 60).status == 201


def test_a_teams_daily_bytes_bound_all_its_uploaders(aws, monkeypatch):
    monkeypatch.setenv("KALLO_TEAM_UPLOAD_BYTES_PER_DAY", "100")
    get_settings.cache_clear()
    owner, admin = make_user(), make_user()
    team = make_object("team", ref_of(owner))
    grant(team, admin, "admin")
    assert upload(owner, b"x" * 70, query={"teamId": team.id}).status == 201
    refused = presign(admin, 31, query={"teamId": team.id})
    assert refused.status == 429 and refused.json["code"] == "quota_exceeded"
    assert "team" in refused.json["message"]
    # Nothing was charged to the admin by the refused request: its own uploads go on.
    assert presign(admin, 1000).status == 201
