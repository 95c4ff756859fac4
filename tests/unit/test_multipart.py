"""Reading the `file` part of a multipart/form-data body (kallo.web.multipart)."""

import base64

import pytest

from kallo.errors import BadRequest, PayloadTooLarge
from kallo.web.multipart import body_bytes, media_type, read_file

BOUNDARY = "----b0undary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def form(*parts: tuple[list[str], bytes], end: bool = True) -> bytes:
    body = b""
    for headers, data in parts:
        body += f"--{BOUNDARY}\r\n".encode() + "".join(h + "\r\n" for h in headers).encode("utf-8")
        body += b"\r\n" + data + b"\r\n"
    return body + (f"--{BOUNDARY}--\r\n".encode() if end else b"")


def file_part(data: bytes, filename: str = "notes.txt", content_type: str | None = "text/plain"):
    headers = [f'Content-Disposition: form-data; name="file"; filename="{filename}"']
    if content_type:
        headers.append(f"Content-Type: {content_type}")
    return headers, data


def field(name: str, value: bytes):
    return [f'Content-Disposition: form-data; name="{name}"'], value


def test_reads_the_file_part_and_skips_other_fields():
    data = b"line one\r\n--not-the-boundary\r\n\x00\xff binary"
    body = form(
        field("purpose", b"grounding"), file_part(data, "r\u00e9sum\u00e9.txt", "Text/Plain; charset=utf-8")
    )
    found = read_file(body, CONTENT_TYPE, max_bytes=1024)
    assert found.data == data
    assert found.filename == "r\u00e9sum\u00e9.txt"
    assert found.content_type == "text/plain"


def test_a_file_part_without_a_name_or_type():
    found = read_file(
        form((['Content-Disposition: form-data; name="file"'], b"x")), CONTENT_TYPE, max_bytes=1
    )
    assert (found.data, found.filename, found.content_type) == (b"x", None, None)


def test_the_cap_is_inclusive():
    assert read_file(form(file_part(b"a" * 10)), CONTENT_TYPE, max_bytes=10).data == b"a" * 10
    with pytest.raises(PayloadTooLarge) as error:
        read_file(form(file_part(b"a" * 11)), CONTENT_TYPE, max_bytes=10)
    assert error.value.code == "file_too_large" and "10 bytes" in error.value.message


def test_refusals():
    cases = [
        (form(file_part(b"x")), "multipart/form-data", "malformed_multipart"),
        (form(file_part(b"x")), "multipart/form-data; boundary=other", "malformed_multipart"),
        (b"this is not a form", CONTENT_TYPE, "malformed_multipart"),
        (form(file_part(b"x"), end=False), CONTENT_TYPE, "malformed_multipart"),
        (b"", CONTENT_TYPE, "malformed_multipart"),
        (form(field("files", b"x")), CONTENT_TYPE, "missing_file"),
        (form(file_part(b"")), CONTENT_TYPE, "empty_file"),
        (form(file_part(b"a"), file_part(b"b")), CONTENT_TYPE, "multiple_files"),
    ]
    for body, content_type, code in cases:
        with pytest.raises(BadRequest) as error:
            read_file(body, content_type, max_bytes=100)
        assert error.value.code == code, (body[:40], content_type)


def test_too_many_part_headers_is_malformed():
    headers = [f"X-Header-{i}: v" for i in range(20)] + ['Content-Disposition: form-data; name="file"']
    with pytest.raises(BadRequest) as error:
        read_file(form((headers, b"x")), CONTENT_TYPE, max_bytes=100)
    assert error.value.code == "malformed_multipart"


def test_body_bytes_and_media_type():
    assert body_bytes(base64.b64encode(b"\x00\xff").decode(), base64_encoded=True) == b"\x00\xff"
    assert body_bytes('{"a": "\u00e9"}', base64_encoded=False) == '{"a": "\u00e9"}'.encode()
    assert body_bytes(None, base64_encoded=True) == b""
    with pytest.raises(BadRequest) as error:
        body_bytes("not base64!", base64_encoded=True)
    assert error.value.code == "malformed_multipart"
    assert media_type("Multipart/Form-Data; boundary=x") == "multipart/form-data"
    assert media_type(None) == ""
