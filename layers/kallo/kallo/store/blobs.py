"""The uploads bucket: where a data source's bytes and what is derived from them live.

Layout (one prefix per data source, under its owner; the client's file name is never part of a key):

| key                                                        | what                                      |
|------------------------------------------------------------|-------------------------------------------|
| `tenants/<ownerType>/<ownerId>/data-sources/<id>/original` | the uploaded bytes (the data source's `location`) |
| `tenants/<ownerType>/<ownerId>/data-sources/<id>/text`     | the extracted plain text (UTF-8)          |
| `tenants/<ownerType>/<ownerId>/data-sources/<id>/index`    | the retrieval index of its passages (JSON)|

An object created at `.../original` (through the API or a presigned POST) sends an S3 event to the data
source queue (the bucket's notification in `template.yaml`), which starts the data source's processing.
The bucket is versioned: deleting a data source deletes every version under its prefix, so no signed
URL (each is bound to one version) outlives it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_plus

from kallo import aws
from kallo.settings import get_settings
from kallo.store.keys import Ref

ORIGINAL, TEXT, INDEX = "original", "text", "index"
_PARTS = frozenset({ORIGINAL, TEXT, INDEX})
_KEY = re.compile(
    r"^tenants/(?P<owner_type>user|team)/(?P<owner_id>[0-9a-f-]{36})/data-sources/(?P<id>[0-9a-f-]{36})/"
    r"(?P<part>original|text|index)$"
)
_DELETE_BATCH = 1000


def prefix(owner: Ref, data_source_id: str) -> str:
    return f"tenants/{owner.type}/{owner.id}/data-sources/{data_source_id}/"


def location(owner: Ref, data_source_id: str) -> str:
    """The key of a data source's original: its `location`."""
    return prefix(owner, data_source_id) + ORIGINAL


def key(location: str, part: str) -> str:
    """The key of a part (`ORIGINAL`, `TEXT`, `INDEX`) of the data source stored at `location` (its
    original's key)."""
    if part not in _PARTS:
        raise ValueError(f"unknown part {part!r}")
    return location.rsplit("/", 1)[0] + "/" + part


def parse(object_key: str) -> tuple[Ref, str, str] | None:
    """(owner, data source id, part) of a key of this layout (S3 events give keys URL-encoded: pass
    them through `event_key` first); None for any other key."""
    found = _KEY.match(object_key)
    if not found:
        return None
    return Ref(found["owner_type"], found["owner_id"]), found["id"], found["part"]


def event_key(encoded: str) -> str:
    """An S3 event's object key, decoded (S3 encodes event keys like a form value)."""
    return unquote_plus(encoded)


class Missing(LookupError):
    """The object (or the version asked for) does not exist: it was deleted."""


def _s3() -> Any:
    return aws.client("s3")


def bucket() -> str:
    return get_settings().bucket_name


def put(object_key: str, body: bytes, *, content_type: str) -> str | None:
    """Store bytes; returns the new version id (None if the bucket is not versioned)."""
    response = _s3().put_object(Bucket=bucket(), Key=object_key, Body=body, ContentType=content_type)
    return response.get("VersionId")


def get(object_key: str, *, version_id: str | None = None, max_bytes: int | None = None) -> bytes:
    """The bytes of an object, of one version of it when given (at most `max_bytes` + 1 of them when
    given, so a caller can tell that an object is too large without reading all of it)."""
    params: dict[str, Any] = {"Bucket": bucket(), "Key": object_key}
    if version_id:
        params["VersionId"] = version_id
    if max_bytes is not None:
        params["Range"] = f"bytes=0-{max_bytes}"
    s3 = _s3()
    try:
        return s3.get_object(**params)["Body"].read()
    except s3.exceptions.ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code == "InvalidRange":  # a range of an empty object is unsatisfiable: it is simply empty
            return b""
        if code in ("NoSuchKey", "NoSuchVersion"):
            raise Missing(object_key) from error
        raise


def presigned_post(object_key: str, *, content_type: str, max_bytes: int, seconds: int) -> dict[str, Any]:
    """`{url, fields}` of a browser-style POST that may only create `object_key`, with this content type
    and 1..`max_bytes` bytes, for `seconds` (S3 enforces the policy's conditions). Signing is local."""
    return _s3().generate_presigned_post(
        Bucket=bucket(),
        Key=object_key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
        ExpiresIn=seconds,
    )


def presigned_get(
    object_key: str, *, version_id: str | None, disposition: str, content_type: str, seconds: int
) -> str:
    """A URL that downloads one version of an object (the current one without `version_id`) with these
    response headers, for `seconds`. Signing is local."""
    params: dict[str, Any] = {
        "Bucket": bucket(),
        "Key": object_key,
        "ResponseContentDisposition": disposition,
        "ResponseContentType": content_type,
    }
    if version_id:
        params["VersionId"] = version_id
    return _s3().generate_presigned_url("get_object", Params=params, ExpiresIn=seconds)


def delete_all(object_prefix: str) -> int:
    """Delete every version and delete marker under a prefix; returns how many were deleted."""
    s3, deleted = _s3(), 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket(), Prefix=object_prefix):
        doomed = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
        for start in range(0, len(doomed), _DELETE_BATCH):
            batch = doomed[start : start + _DELETE_BATCH]
            s3.delete_objects(Bucket=bucket(), Delete={"Objects": batch, "Quiet": True})
            deleted += len(batch)
    return deleted
