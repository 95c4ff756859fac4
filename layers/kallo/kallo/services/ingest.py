"""Processing an upload: what the data source worker (`workers.data_source`) does when S3 reports an
object created at a data source's `.../original` (`kallo.store.blobs` has the layout).

1. The data source item is read (consistently: the upload may follow its creation by milliseconds).
   None: the data source was deleted (or never created) while its bytes were on their way, so every
   version under its prefix is deleted and nothing else happens.
2. The bytes are read, at most `presigned_upload_max_bytes` of them (a presigned POST is capped by its
   policy; this is the backstop). Larger: failed `file_too_large`, and the bytes are deleted.
3. Their media type is sniffed from the bytes (`kallo.documents.sniff`), never taken from the client:
   a file that is not one of the allowed types (an executable named `report.pdf`, `%PDF-` in front of
   a zip) or an empty one is failed (`unsupported_media_type`, `empty_file`) and its bytes are
   deleted, so that nothing anyone downloads later can be a disguised program.
4. The text is extracted within the per-document bound on CPU, memory and time (I11:
   `extract.bounded_text_of`, a child process), split into passages, embedded when an embedding model
   is configured, and indexed; the text (UTF-8) and the index (JSON) are stored beside the original.
   A document over the bound is `failed` `too_complex`, so one tenant's file holds up the others'
   uploads no longer than the bound; one the extractor cannot read (corrupt, encrypted, scanned) is
   `failed` `unreadable_document`. Either way its bytes are deleted: every failure deletes them.
5. The item becomes `ready` with the sniffed `mimeType`, `size`, `passages`, `versionId`,
   `processedAt`: only while it still exists (a data source deleted meanwhile has its files deleted
   again, since this run wrote new ones).
6. A summary requested while the data source was processing (`kallo.services.summaries`, status
   `pending`) is queued now: the request could not queue it before there was text to summarise.

Idempotency: processing is a function of the bytes, so the same event twice gives the same item and
files. An event for a version that already ended `ready` or `failed` is skipped without reading it.

AWS calls for a text that is processed (no embedding model): 1 GetItem (the item) + 1 GetObject + 2
PutObject (text, index) + 1 UpdateItem + 1 GetItem (the summary); a presigned upload (`awaiting_upload`)
adds 2 UpdateItem (the `processing` status; the item's and its owner grant's `ttl` removed), a queued
summary 1 SendMessage. A refused or unreadable file: 1 GetItem + 1 GetObject + 1 ListObjectVersions + 1
DeleteObjects + 1 UpdateItem. A late event for a deleted data source: 1 GetItem + 1 ListObjectVersions (+ 1
DeleteObjects).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field

from kallo.clock import now_iso
from kallo.documents import embeddings, extract, passages, sniff
from kallo.documents.bm25 import Index
from kallo.errors import BadRequest, Conflict, Unprocessable, UnsupportedMediaType
from kallo.services import summaries
from kallo.settings import get_settings
from kallo.store import blobs, data_sources, objects
from kallo.store import summaries as summary_store
from kallo.store.keys import Ref

logger = Logger(child=True)

READY, FAILED, PROCESSING, AWAITING_UPLOAD = "ready", "failed", "processing", "awaiting_upload"
TEXT_TYPE = "text/plain; charset=utf-8"
INDEX_TYPE = "application/json"
_MIB = 1024 * 1024


# -- messages ------------------------------------------------------------------------------------------


class _S3Object(BaseModel):
    key: str
    size: int | None = None
    version_id: str | None = Field(default=None, alias="versionId")


class _S3Bucket(BaseModel):
    name: str


class _S3Entity(BaseModel):
    bucket: _S3Bucket
    object: _S3Object


class _S3Record(BaseModel):
    event_name: str = Field(alias="eventName")
    s3: _S3Entity


class _S3Notification(BaseModel):
    model_config = ConfigDict(extra="ignore")

    records: list[_S3Record] = Field(alias="Records", min_length=1)


@dataclass(frozen=True)
class Upload:
    """An object created in the uploads bucket, as its S3 event notification tells it."""

    key: str
    version_id: str | None
    size: int | None


def uploads_of(message: Any) -> list[Upload]:
    """The objects created that an S3 event notification (a decoded queue message) reports; none for
    the `s3:TestEvent` S3 sends when the notification is configured. Raises `pydantic.ValidationError`
    (a `ValueError`) for anything else."""
    if isinstance(message, dict) and message.get("Event") == "s3:TestEvent":
        return []
    notification = _S3Notification.model_validate(message)
    found = []
    for record in notification.records:
        if not record.event_name.startswith("ObjectCreated:"):
            logger.info("S3 event ignored", extra={"eventName": record.event_name})
        elif record.s3.bucket.name != blobs.bucket():
            logger.warning("S3 event of another bucket ignored", extra={"bucket": record.s3.bucket.name})
        else:
            found.append(
                Upload(
                    blobs.event_key(record.s3.object.key), record.s3.object.version_id, record.s3.object.size
                )
            )
    return found


# -- processing ----------------------------------------------------------------------------------------


def process(object_key: str, version_id: str | None, *, size: int | None = None) -> str | None:
    """Process the upload of a data source's original (see the module docstring); returns the data
    source's status afterwards, None when there is no data source to process."""
    parsed = blobs.parse(object_key)
    if parsed is None or parsed[2] != blobs.ORIGINAL:
        logger.warning("not a data source's original: ignored", extra={"key": object_key})
        return None
    owner, data_source_id, _ = parsed
    ref = Ref("data_source", data_source_id)
    uploaded_prefix = blobs.prefix(owner, data_source_id)
    context = {"dataSourceId": data_source_id, "versionId": version_id}

    item = objects.get(ref, consistent=True)
    if item is None:
        deleted = blobs.delete_all(uploaded_prefix)
        logger.info("data source gone: its files were deleted", extra={**context, "deleted": deleted})
        return None
    if item.get("location") != object_key:
        # Only our own code names keys under a data source's prefix; a key that is not the item's
        # location is nobody's file.
        blobs.delete_all(uploaded_prefix)
        logger.warning("upload at a key that is not the data source's location: deleted", extra=context)
        return None
    if version_id and item.get("versionId") == version_id and item.get("status") in (READY, FAILED):
        logger.info("this version was processed already: duplicate event ignored", extra=context)
        return item["status"]
    awaited = item.get("status") == AWAITING_UPLOAD
    if awaited and not _confirm_upload(ref, owner, uploaded_prefix):
        return None

    cap = get_settings().presigned_upload_max_bytes
    # The version the event announced: a second POST within the presigned window is its own event.
    too_large = size is not None and size > cap
    try:
        data = b"" if size == 0 or too_large else blobs.get(object_key, version_id=version_id, max_bytes=cap)
    except blobs.Missing:
        logger.info("the upload was deleted before it was processed: event ignored", extra=context)
        return None
    if too_large or len(data) > cap:
        message = f"the file is larger than {cap // _MIB} MiB, the most a data source may hold"
        return _refuse(ref, uploaded_prefix, version_id, size or len(data), "file_too_large", message)
    try:
        media_type = sniff.detect(data, filename=item.get("name"), declared=item.get("mimeType"))
    except (BadRequest, UnsupportedMediaType) as error:
        return _refuse(ref, uploaded_prefix, version_id, len(data), error.code, error.message)

    try:
        text = extract.bounded_text_of(data, media_type)
    except Unprocessable as error:
        logger.info("document unreadable", extra={**context, "code": error.code})
        return _refuse(ref, uploaded_prefix, version_id, len(data), error.code, error.message, media_type)

    found_passages = passages.split(text)
    vectors = embeddings.embed([p.text for p in found_passages])
    index = Index.build(found_passages, vectors)
    blobs.put(blobs.key(object_key, blobs.TEXT), text.encode("utf-8"), content_type=TEXT_TYPE)
    blobs.put(blobs.key(object_key, blobs.INDEX), index.to_bytes(), content_type=INDEX_TYPE)
    changes = _outcome(READY, version_id, len(data)) | {
        "mimeType": media_type,
        "passages": len(found_passages),
    }
    if not _update(ref, uploaded_prefix, changes, remove=("error",)):
        return None
    logger.info("data source ready", extra={**context, "passages": len(found_passages)})
    _queue_requested_summary(data_source_id)
    return READY


def _outcome(status: str, version_id: str | None, size: int) -> dict[str, Any]:
    at = now_iso()
    changes: dict[str, Any] = {"status": status, "size": size, "processedAt": at, "updatedAt": at}
    if version_id:
        changes["versionId"] = version_id
    return changes


def _confirm_upload(ref: Ref, owner: Ref, uploaded_prefix: str) -> bool:
    """A presigned upload arrived: the data source is `processing` and no longer expires (its item and
    its owner grant lose the `ttl` they were created with). The grant is named by the owner the upload
    was made under; if ownership changed since, that grant is gone and nothing is lost by skipping it."""
    if not _update(ref, uploaded_prefix, {"status": PROCESSING, "updatedAt": now_iso()}, remove=("ttl",)):
        return False
    try:
        data_sources.keep_owner_grant(ref, owner)
    except Conflict:
        logger.info("the upload's owner grant is gone: ownership changed", extra={"id": ref.id})
    return True


def _update(ref: Ref, uploaded_prefix: str, changes: dict[str, Any], *, remove: tuple[str, ...] = ()) -> bool:
    """Update the item while it exists; when it was deleted meanwhile, delete the files again (this run
    may have written some after the deletion) and say so."""
    try:
        objects.update(ref, changes, remove=remove)
    except Conflict:
        blobs.delete_all(uploaded_prefix)
        logger.info(
            "data source deleted while it was processed: its files were deleted", extra={"id": ref.id}
        )
        return False
    return True


def _refuse(
    ref: Ref,
    uploaded_prefix: str,
    version_id: str | None,
    size: int,
    code: str,
    message: str,
    media_type: str | None = None,
) -> str | None:
    """Fail the data source and delete its files. I11 (hostile input): a file that fails its checks
    is never served: its bytes are not kept (and a download URL needs `ready` anyway)."""
    logger.info("upload refused: its files were deleted", extra={"dataSourceId": ref.id, "code": code})
    blobs.delete_all(uploaded_prefix)
    changes = _outcome(FAILED, version_id, size) | {"error": {"code": code, "message": message}}
    if media_type:
        changes["mimeType"] = media_type
    return FAILED if _update(ref, uploaded_prefix, changes, remove=("passages",)) else None


def _queue_requested_summary(data_source_id: str) -> None:
    summary = summary_store.get(data_source_id)
    if summary is not None and summary.get("status") == summaries.PENDING:
        summaries.schedule(data_source_id)
