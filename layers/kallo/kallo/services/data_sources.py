"""Data sources: uploads (through the API, or presigned straight to S3), listings, reads, renames and
signed download URLs. Links to topics and convos and deletion live in `data_source_links`; processing
(text extraction, indexing, summaries) in the data source worker, started by the S3 event of the
original's arrival.

A data source is an owned object (`owned.create_owned`: the item and its owner grant in one
transaction). Its bytes live at `blobs.prefix(owner, id) + "original"`, a key the client never
influences; its `versionId` pins signed download URLs to the bytes that were uploaded.

Costs in AWS calls (a check on a data source is 1 Query for its structural grants and 1 BatchGetItem
for the caller's grants on it and what it inherits from, plus 1 Query per linked topic or convo):
- Upload New File (multipart): 1 UpdateItem (the day's upload bytes; a TransactWriteItems with
  `teamId`) + 1 TransactWriteItems + 1 PutObject + 1 UpdateItem (its versionId), + 1 BatchGetItem with
  `teamId` (the team check); nothing when the bytes are refused.
- Upload New File (presigned): the day's upload bytes as above + 1 TransactWriteItems (+ 1 BatchGetItem
  with `teamId`); signing the POST is local.

I10 (cost): every upload is charged to the uploader's, and for a team's data source the team's, daily
upload allowance before anything is stored (a presigned upload by the size it declares, which its POST
policy enforces); past it, 429 `quota_exceeded` with `Retry-After` (`kallo.quotas.charge_upload`).
- Get a Data Source: the check + 1 GetItem. Update: the check + 1 UpdateItem.
- Generate Signed URL for Download: the check + 1 GetItem (signing is local).
- Query Data Sources: `dataSourceIds` and the listings as `owned.viewable_among` / `list_viewable`
  (3 calls for a caller in no team); `userId` of someone else adds the authority check (1 GetItem, the
  user item, `services.authority`); `convoId` / `topicId`: the check on it + 1 Query
  (GSI1, its links) + 1 BatchGetItem (+ 1 GetItem for a topic's order).
"""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from typing import Any
from urllib.parse import quote
from uuid import uuid4

from kallo import quotas
from kallo.authz.access import Access
from kallo.authz.policy import ObjectType
from kallo.clock import epoch_seconds, iso, now
from kallo.documents import sniff
from kallo.errors import BadRequest, Conflict, NotFound
from kallo.models.data_sources import DataSourceUpdate, PresignedUploadRequest, safe_name
from kallo.paging import PAGE_LIMIT
from kallo.services import authority, owned
from kallo.settings import get_settings
from kallo.store import blobs, grants, objects
from kallo.store.keys import Ref

# Presigned URLs live at most 15 minutes, whatever the configuration says.
MAX_URL_SECONDS = 900
AWAITING_UPLOAD, PROCESSING, READY = "awaiting_upload", "processing", "ready"


# How long a data source awaiting its presigned upload outlives the upload URL.
ABANDONED_UPLOAD_GRACE = timedelta(days=1)


def _data_source(data_source_id: str) -> Ref:
    return Ref(ObjectType.data_source.value, data_source_id)


def _new_fields(
    owner: owned.Owner, ref: Ref, *, name: str, mime_type: str, size: int, status: str
) -> dict[str, Any]:
    return {
        "name": name,
        "type": "upload",
        "location": blobs.location(owner.ref, ref.id),
        "mimeType": mime_type,
        "size": size,
        "status": status,
    }


# -- Upload New File ------------------------------------------------------------------------------------


def _charge(owner: owned.Owner, size: int) -> None:
    """I10: the bytes count against the uploader's (the user acted for) and the owning team's day."""
    quotas.charge_upload(owner.created_by, owner.ref.id if owner.ref.type == "team" else None, size)


def upload_file(
    access: Access,
    data: bytes,
    *,
    filename: str | None,
    declared_type: str | None,
    user_id: str | None = None,
    team_id: str | None = None,
) -> dict[str, Any]:
    """Store an uploaded file as a new data source, `processing` until the worker has read it.

    The bytes are checked before anything is written (415 when they are not an allowed type, whatever
    the file name or declared type say). The item is written before the object, so the worker that the
    object's S3 event starts always finds it; the object's version id is then added to the item (an
    update of that attribute alone, which cannot undo what the worker writes meanwhile). When the
    object cannot be stored, the item and its owner grant go again: no data source without bytes."""
    mime_type = sniff.detect(data, filename=filename, declared=declared_type)
    owner = owned.owner_for(access, ObjectType.data_source, user_id=user_id, team_id=team_id)
    _charge(owner, len(data))
    ref = _data_source(str(uuid4()))
    fields = _new_fields(
        owner, ref, name=safe_name(filename), mime_type=mime_type, size=len(data), status=PROCESSING
    )
    created = owned.create_owned(owner, ref, fields)
    try:
        version_id = blobs.put(fields["location"], data, content_type=mime_type)
    except Exception:
        objects.delete_with_grants(ref, [owner.ref], must_exist=False)
        raise
    if version_id is None:
        return created
    try:
        return objects.update(ref, {"versionId": version_id})
    except Conflict as error:
        # Deleted between the two writes: its deletion may have run before the object existed.
        blobs.delete_all(blobs.prefix(owner.ref, ref.id))
        raise NotFound(f"data_source {ref.id} not found") from error


def presign_upload(
    access: Access, data: PresignedUploadRequest, *, user_id: str | None = None, team_id: str | None = None
) -> dict[str, Any]:
    """A new data source `awaiting_upload`, and a presigned POST that stores exactly its original: the
    declared media type, 1..size bytes, until `expiresAt`. The worker sniffs the bytes when they arrive
    (bytes of no allowed type fail the data source) and moves it to `processing`. One never uploaded is
    deleted by DynamoDB's TTL a day after `expiresAt`, with its owner grant."""
    owner = owned.owner_for(access, ObjectType.data_source, user_id=user_id, team_id=team_id)
    _charge(owner, data.size)
    ref = _data_source(str(uuid4()))
    fields = _new_fields(
        owner, ref, name=data.name, mime_type=data.mime_type, size=data.size, status=AWAITING_UPLOAD
    )
    seconds = min(get_settings().upload_url_seconds, MAX_URL_SECONDS)
    expiry = now() + timedelta(seconds=seconds)
    # Never uploaded, it expires a day after its URL (the worker keeps it when its bytes arrive).
    abandoned = epoch_seconds(expiry + ABANDONED_UPLOAD_GRACE)
    created = owned.create_owned(owner, ref, fields, expires=abandoned)
    post = blobs.presigned_post(
        fields["location"], content_type=data.mime_type, max_bytes=data.size, seconds=seconds
    )
    return {**created, "upload": {**post, "expiresAt": iso(expiry)}}


# -- reading and renaming -------------------------------------------------------------------------------


def get_data_source(access: Access, data_source_id: str) -> dict[str, Any]:
    ref = _data_source(data_source_id)
    access.require(ref)
    return owned.require_existing(ref)


def update_data_source(access: Access, data_source_id: str, data: DataSourceUpdate) -> dict[str, Any]:
    return owned.update_owned(access, _data_source(data_source_id), data.changes())


def query_data_sources(
    access: Access,
    *,
    data_source_ids: list[str] | None = None,
    convo_id: str | None = None,
    topic_id: str | None = None,
    user_id: str | None = None,
    limit: int = PAGE_LIMIT,
    next_token: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """At most one filter:
    - `data_source_ids`: those the caller can view (its own or its teams' grants), in request order;
    - `convo_id` / `topic_id`: its linked data sources (the caller must view it); a topic's in the order
      of its `dataSourceIds`, then the others and a convo's in the order they were linked;
    - `user_id`: those that user uploaded among the data sources it can view; I1 (authority): the
      caller must act for the user (itself, or a service account for the users it created), through
      `authority.acting_for` like every `userId`: anyone else is 404, as an unknown user;
    - none: a page of the data sources the caller holds a grant on, itself or through its teams.
    Only the listings page (`limit`, `next_token`); a page may hold fewer than `limit`."""
    given = [
        f
        for f, v in (
            ("dataSourceIds", data_source_ids),
            ("convoId", convo_id),
            ("topicId", topic_id),
            ("userId", user_id),
        )
        if v is not None
    ]
    if len(given) > 1:
        raise BadRequest(f"give at most one of {', '.join(given)}", code="ambiguous_filter")
    if data_source_ids is not None:
        return owned.viewable_among(access, [_data_source(i) for i in data_source_ids]), None
    if convo_id is not None:
        return _linked(access, Ref(ObjectType.convo.value, convo_id)), None
    if topic_id is not None:
        return _linked(access, Ref(ObjectType.topic.value, topic_id)), None
    if user_id is not None:
        viewer = authority.acting_for(access, user_id)
        page, token = owned.list_viewable(
            viewer, ObjectType.data_source.value, limit=limit, next_token=next_token
        )
        return [d for d in page if d.get("createdBy") == user_id], token
    return owned.list_viewable(access, ObjectType.data_source.value, limit=limit, next_token=next_token)


def _linked(access: Access, target: Ref) -> list[dict[str, Any]]:
    """The existing data sources linked to a topic or convo. Whoever views it views them (a link is a
    `dependent` grant, which passes `can_view` on), so no check per data source is needed."""
    access.require(target)
    order = [g["objectId"] for g in grants.links_to(target, ObjectType.data_source.value)]
    if target.type == ObjectType.topic:
        listed = owned.require_existing(target).get("dataSourceIds") or []
        rank = {data_source_id: i for i, data_source_id in enumerate(listed)}
        order.sort(key=lambda i: rank.get(i, len(rank)))
    found = objects.batch_get([_data_source(i) for i in order]) if order else {}
    return [found[_data_source(i)] for i in order if _data_source(i) in found]


# -- Generate Signed URL for Download -----------------------------------------------------------------


def download_url(access: Access, data_source_id: str) -> str:
    """A URL that downloads the original bytes (as uploaded, pinned to their version) as an attachment
    under the data source's name, valid for `download_url_seconds` (at most 15 minutes).

    I11 (hostile input): only a `ready` data source is served, whose bytes passed every check; one
    that awaits its upload (409 `not_uploaded`), is being checked or failed them (409 `not_ready`) is
    not."""
    ref = _data_source(data_source_id)
    access.require(ref)
    found = owned.require_existing(ref)
    status = found.get("status")
    if status == AWAITING_UPLOAD:
        raise Conflict(
            f"data_source {data_source_id} has no file yet: it awaits its upload", code="not_uploaded"
        )
    if status != READY:
        raise Conflict(
            f"data_source {data_source_id} is {status}: only a ready data source can be downloaded",
            code="not_ready",
        )
    return blobs.presigned_get(
        found["location"],
        version_id=found.get("versionId"),
        disposition=content_disposition(found["name"]),
        content_type=found["mimeType"],
        seconds=min(get_settings().download_url_seconds, MAX_URL_SECONDS),
    )


def content_disposition(name: str) -> str:
    """`attachment` under `name`: an ASCII fallback for old clients (accents dropped, quotes and
    backslashes replaced) and the exact name in RFC 6266 / 5987 form."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    fallback = "".join(c if c.isprintable() and c not in '"\\' else "_" for c in ascii_name).strip()
    return f"attachment; filename=\"{fallback or 'download'}\"; filename*=UTF-8''{quote(name, safe='')}"
