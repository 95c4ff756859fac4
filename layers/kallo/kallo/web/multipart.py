"""Reading the one file of a `multipart/form-data` request body (Upload New File).

API Gateway hands the body over whole (base64-encoded, `multipart/form-data` being a binary media type
of the REST API), so parsing happens in memory, with python-multipart's streaming parser: the file
part's bytes are kept, up to the cap and no further, and every other field is skipped.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from kallo.errors import BadRequest, PayloadTooLarge

MULTIPART = "multipart/form-data"
FILE_FIELD = "file"
# A part's headers are few and short (Content-Disposition, Content-Type): bounds for hostile bodies.
_MAX_HEADERS = 8
_MAX_HEADER_BYTES = 4096


@dataclass(frozen=True)
class FilePart:
    """The `file` field of a form: its bytes, the client's file name and declared content type."""

    data: bytes
    filename: str | None
    content_type: str | None


def body_bytes(raw_body: str | None, *, base64_encoded: bool) -> bytes:
    """A proxy event's body as bytes: binary media types arrive base64-encoded, others as UTF-8 text."""
    if not raw_body:
        return b""
    if not base64_encoded:
        return raw_body.encode()
    try:
        return base64.b64decode(raw_body, validate=True)
    except binascii.Error as error:
        raise _malformed("the body is not valid base64") from error


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, lower-cased, without its parameters ("" when absent)."""
    return parse_options_header(content_type or "")[0].decode("latin-1")


@dataclass
class _Part:
    headers: dict[str, bytes] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    is_file: bool = False


def _malformed(detail: str) -> BadRequest:
    return BadRequest(f"the body is not valid multipart/form-data: {detail}", code="malformed_multipart")


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the file exceeds {max_bytes} bytes, the cap of an upload through the API; "
        "ask for a presigned upload (a JSON body with name, mimeType and size) for larger files",
        code="file_too_large",
    )


def read_file(body: bytes, content_type: str | None, *, max_bytes: int) -> FilePart:
    """The single `file` part of a multipart/form-data body.

    Raises `BadRequest` `malformed_multipart` (no boundary, a body that does not parse or ends early),
    `multiple_files`, `missing_file` (no `file` part), `empty_file` (a `file` part with no bytes),
    and `PayloadTooLarge` `file_too_large` beyond `max_bytes`.
    """
    _, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if not boundary:
        raise _malformed("the Content-Type has no boundary")
    parts: list[_Part] = []
    header_name = bytearray()
    header_value = bytearray()
    ended = False

    def on_part_begin() -> None:
        parts.append(_Part())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        parts[-1].headers[header_name.decode("latin-1").lower()] = bytes(header_value)
        header_name.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        part = parts[-1]
        _, disposition = parse_options_header(part.headers.get("content-disposition"))
        part.is_file = disposition.get(b"name") == FILE_FIELD.encode()
        if part.is_file and sum(p.is_file for p in parts) > 1:
            raise BadRequest(f"give exactly one {FILE_FIELD!r} field", code="multiple_files")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = parts[-1]
        if not part.is_file:
            return
        part.size += end - start
        if part.size > max_bytes:
            raise _too_large(max_bytes)
        part.chunks.append(data[start:end])

    def on_end() -> None:
        nonlocal ended
        ended = True

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_end": on_end,
        },
        max_header_count=_MAX_HEADERS,
        max_header_size=_MAX_HEADER_BYTES,
    )
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as error:
        raise _malformed(str(error)) from error
    if not ended:
        raise _malformed("the body ends before its closing boundary")
    file_part = next((p for p in parts if p.is_file), None)
    if file_part is None:
        raise BadRequest(f"the form has no {FILE_FIELD!r} field", code="missing_file")
    if file_part.size == 0:
        raise BadRequest("the file is empty", code="empty_file")
    _, disposition = parse_options_header(file_part.headers.get("content-disposition"))
    filename = disposition.get(b"filename")
    declared = file_part.headers.get("content-type")
    return FilePart(
        data=b"".join(file_part.chunks),
        filename=filename.decode("utf-8", errors="replace") if filename is not None else None,
        content_type=media_type(declared.decode("latin-1")) if declared else None,
    )
