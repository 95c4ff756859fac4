"""Data sources (API.md, Schemas: dataSource): uploaded files that ground LLM answers with citations.

A data source's display name comes from the client (a file name or a JSON field) and is only ever shown:
the bytes are stored under a key built from the owner and the data source's id (`kallo.store.blobs`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from kallo.models.common import ApiModel, Line, ResponseModel
from kallo.models.steps import ConvoAnnotation
from kallo.models.topics import OwnedObject, Patch, TopicIds
from kallo.settings import get_settings

# The media types a data source may have; `kallo.documents` extracts text from each of them.
MediaType = Literal[
    "text/plain", "text/markdown", "text/csv", "application/json", "text/html", "application/pdf"
]
DataSourceStatus = Literal["awaiting_upload", "processing", "ready", "failed"]
NAME_LIMIT = 255
DEFAULT_NAME = "upload"
# Control, format (e.g. right-to-left overrides that disguise an extension) and line separators.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def safe_name(file_name: str | None) -> str:
    """A display name from a client's file name: its last path segment (clients send `C:\\x\\a.pdf` or
    `../../a.pdf`), without control or format characters and leading dots, at most 255 characters;
    `upload` when nothing is left."""
    base = re.split(r"[\\/]", file_name or "")[-1]
    cleaned = "".join(c for c in base if unicodedata.category(c) not in _HIDDEN_CATEGORIES)
    cleaned = cleaned.strip().lstrip(".").strip()
    return cleaned[:NAME_LIMIT].rstrip() or DEFAULT_NAME


def _file_size(value: int) -> int:
    cap = get_settings().presigned_upload_max_bytes
    if value > cap:
        raise ValueError(f"must be at most {cap} bytes")
    return value


# A name a client gives in JSON: refused with control or bidirectional characters (I11), then reduced
# to its base name. The file name of a multipart upload is cleaned by `safe_name` instead, since
# browsers send whatever the file is called.
DataSourceName = Annotated[Line(1024), AfterValidator(safe_name)]


class DataSourceError(ResponseModel):
    """Why processing failed (e.g. `unreadable_document`, `unsupported_media_type`)."""

    code: str
    message: str


class DataSource(OwnedObject):
    name: str
    type: Literal["upload"] = "upload"
    location: str = Field(description="Where the original bytes are stored (an S3 key of the uploads bucket)")
    mime_type: str = Field(alias="mimeType")
    size: int | None = Field(default=None, description="The original's size in bytes")
    status: DataSourceStatus = Field(
        description="awaiting_upload: a presigned upload not received yet; processing: text being "
        "extracted and indexed; ready: usable in answers; failed: see error"
    )
    error: DataSourceError | None = None
    topic_id: str | None = Field(
        default=None,
        alias="topicId",
        description="Kept for the seed's shape; a data source's topics are its links "
        "(GET /data-sources?topicId=, PUT /topics/{topicId}/data-sources/{dataSourceId})",
    )


class DataSourceUpdate(Patch):
    name: DataSourceName | None = None


class PresignedUploadRequest(ApiModel):
    """Upload New File with a JSON body: a presigned POST for uploading the bytes straight to S3 (for
    files above the API's own cap)."""

    name: DataSourceName = Field(description="The display name (a file name is reduced to its base name)")
    mime_type: MediaType = Field(alias="mimeType")
    size: Annotated[int, Field(ge=1), AfterValidator(_file_size)] = Field(
        description="The file's exact size in bytes: the upload is refused unless it carries 1..size bytes"
    )


class UploadTarget(ResponseModel):
    """Where and how to POST the file: a multipart/form-data request to `url` with every field of
    `fields` and then the file as the `file` field, before `expiresAt`."""

    url: str
    fields: dict[str, str]
    expires_at: str = Field(alias="expiresAt")


class PresignedUpload(DataSource):
    upload: UploadTarget


# `dataSourceIds=a,b` (or repeated): at most 100 ids, duplicates dropped, like Query Topics' topicIds.
DataSourceIds = TopicIds


class SummaryContent(ResponseModel):
    text: str


class Summary(ResponseModel):
    content: SummaryContent
    annotations: list[ConvoAnnotation] = Field(
        description="Citations: for sentences of the summary, the passage of the data source that supports "
        "them (start and end are offsets in the data source's extracted text)"
    )


class SummaryPending(ResponseModel):
    retry_after: str = Field(alias="retryAfter", description="When to ask again (RFC 3339)")
