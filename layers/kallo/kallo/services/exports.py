"""Export Data: convos sent by email, off the request path.

I9 (outbound mail): mail goes only to verified addresses of users who may view what is sent, at a
bounded rate. Enforced here, twice:
- at the request (`export_data`): the caller may view every convo; each destination (at most
  `MAX_EXPORT_DESTINATIONS`) is the verified email of a user (`users.find_by_email`, `emailVerified`)
  who may view every convo, else 422 `recipient_not_allowed`, the same answer whether the address
  belongs to nobody, to an unverified claim or to someone who may not view the convos (it tells no
  tenant's users apart); and the caller has an export left today (`kallo.quotas`, 429 `quota_exceeded`);
- at the send (`send_export`): what is rendered is what the creator may view *then* (access can be lost
  meanwhile: such convos are left out), each destination is checked again the same way, and those who
  may no longer view every convo the email holds are dropped; a data source is named only when the
  creator and every remaining recipient may view it.
The subject is ours (`Kallo export: N convos, <date>`), never a convo name or any caller text; the text
in the body is escaped (`kallo.mail`).

`export_data` stores the export `queued` and sends `{"exportId": <id>}` to the export queue. The export
worker runs `send_export`, which sends one email through SES. The export item then records the
outcome, `sent` or `failed`, on condition that it is still `queued`, so a job seen again after its
idempotency record expired sends nothing.

Get an Export reads the export (GetItem); for an access token whose scope is not the whole user, the
scope check of each exported convo adds its Queries (structural grants).

AWS calls: Export Data on N convos to R addresses costs N Queries + 2 BatchGetItems (the caller's
grants, the convos; more Queries when convos belong to topics) + UpdateItem (the day's export count)
+ per address 2 GetItems (its claim, the user) and N Queries + 1 BatchGetItem (the user's grants) +
PutItem + SQS SendMessage. A send reads the export (GetItem), checks the convos and the addresses as
above, reads each convo's steps a page of 100 at a time, reads the authors and cited data sources in
one BatchGetItem (plus the checks on those data sources, for the creator and each recipient), then SES
SendEmail and UpdateItem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from aws_lambda_powertools import Logger

from kallo import jobs, mail, quotas
from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.authz.policy import Permission
from kallo.clock import now_iso
from kallo.errors import Conflict, NotFound, Unprocessable
from kallo.models.exports import ExportCreate
from kallo.settings import get_settings
from kallo.store import exports, objects, steps, users
from kallo.store.keys import Ref

logger = Logger(child=True)

LLM_AUTHOR = "Kallo"
UNKNOWN_AUTHOR = "Kallo user"
# A citation of a data source the creator may not (or no longer) see is shown without its name.
HIDDEN_SOURCE = "a data source"
STEP_PAGE = 100


def _convos(ids: list[str]) -> list[Ref]:
    return [Ref("convo", i) for i in ids]


def _viewable(access: Access, refs: list[Ref]) -> dict[Ref, dict[str, Any]]:
    """The convos among `refs` that exist and the principal may view: grants can outlive a deleted
    convo until the purge worker runs, so a permission alone does not prove the convo is there."""
    access.preload(refs)
    allowed = [r for r in refs if access.can(r, Permission.can_view)]
    found = objects.batch_get(allowed) if allowed else {}
    return {r: found[r] for r in allowed if r in found}


def _recipient(address: str, refs: list[Ref]) -> Access | None:
    """I9: the access of the user whose verified email `address` is, when that user may view every
    convo of `refs`; None otherwise (no such user, an unverified claim, or convos it may not view: one
    answer for all, so nothing about other tenants' users shows)."""
    user = users.find_by_email(address)
    if user is None or user.get("emailVerified") is not True or user.get("emailAddress") != address:
        return None
    access = Access(Principal(user_id=user["id"], scheme="api_key"))
    access.preload(refs)  # the convos exist: the caller's check read them
    return access if all(access.can(r, Permission.can_view) for r in refs) else None


def export_data(access: Access, data: ExportCreate) -> dict[str, Any]:
    """Queue an export of convos the caller may view, to users who may view them too (I9, see the
    module docstring); returns the export (`status: queued`)."""
    settings = get_settings()
    if not settings.mail_from:
        raise Conflict(
            "exports by email are not configured on this stack (it has no sender address)",
            code="mail_not_configured",
        )
    refs = _convos(data.sources.convo_ids)
    if len(_viewable(access, refs)) != len(refs):
        # Which ones is not said: that would tell hidden convos from missing ones.
        raise NotFound("one or more of sources.convoIds were not found")
    quotas.count_export(access.principal.user_id or "")
    for destination in data.destinations:
        if _recipient(destination.address, refs) is None:
            raise Unprocessable(
                f"{destination.address} cannot receive this export: every destination must be the "
                "verified email address of a Kallo user who may view every convo of the export",
                code="recipient_not_allowed",
            )
    fields: dict[str, Any] = {
        "id": str(uuid4()),
        "format": data.format,
        "sources": data.sources.model_dump(by_alias=True),
        "destinations": [d.model_dump() for d in data.destinations],
        "createdAt": now_iso(),
        "createdBy": access.principal.user_id,
        "status": exports.QUEUED,
    }
    scope = access.principal.scope
    if scope is not None:
        # The send re-checks access with the same limits as the request: an access token's scope.
        fields["creatorScope"] = [[r.type, r.id] for r in scope]
    export = exports.create(fields)
    try:
        jobs.send(jobs.ExportJob(exportId=export["id"]))
    except Exception:
        # Without its job the export would stay queued forever, and a retry with the same id would
        # meet a 409: the request fails as a whole instead.
        exports.delete(export["id"])
        raise
    return export


def get_export(access: Access, export_id: str) -> dict[str, Any]:
    """Get an Export: the export with its `status` (`queued`, `sent`, `failed` with `error`), for its
    creator only. I4: anyone else, another tenant included, gets the 404 of a missing export (an
    export names convos and addresses: never another user's). I3: a token whose scope does not cover
    every exported convo sees none of it either (the same 404): a narrow token learns nothing of what
    its user exported elsewhere."""
    export = exports.get(export_id)
    if export is None or export.get("createdBy") != access.principal.user_id:
        raise NotFound(f"export {export_id} not found")
    if access.principal.scope is not None and not all(
        access.in_scope(ref) for ref in _convos(export["sources"]["convoIds"])
    ):
        raise NotFound(f"export {export_id} not found")
    return export


def _creator_access(export: dict[str, Any]) -> Access:
    """The creator's access as it is now, within the scope the request had (the scheme does not enter
    into permissions: only the user's grants and the scope do)."""
    scope = export.get("creatorScope")
    return Access(
        Principal(
            user_id=export["createdBy"],
            scheme="access_token" if scope is not None else "api_key",
            scope=tuple(Ref(t, i) for t, i in scope) if scope is not None else None,
        )
    )


@dataclass
class _Read:
    """What the send read: each convo and its primary steps, within the size budget."""

    convo: dict[str, Any]
    steps: list[dict[str, Any]]
    complete: bool = True


def _read_steps(convos: list[dict[str, Any]], budget: int) -> list[_Read]:
    """The primary steps of each convo, oldest first, until their text reaches `budget` bytes (the
    email can only be smaller than what it quotes); later steps are not read at all."""
    read: list[_Read] = []
    used = 0
    for convo in convos:
        current = _Read(convo, [])
        read.append(current)
        start = None
        while True:
            page = steps.of_convo(convo["id"], limit=STEP_PAGE, start_key=start)
            for step in page.items:
                if step.get("isAlternate"):
                    continue
                used += len((step.get("content") or {}).get("text", "").encode()) + sum(
                    len(str(a.get("text", "")).encode()) for a in step.get("annotations") or []
                )
                if used > budget:
                    current.complete = False
                    return read
                current.steps.append(step)
            start = page.last_key
            if not start:
                break
    return read


def _citations(step: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in step.get("annotations") or [] if a.get("type") == "citation" and a.get("dataSourceId")]


def _sections(readers: list[Access], read: list[_Read], creator_id: str) -> tuple[list[mail.Section], str]:
    """The email's sections, and the creator's display name, with one BatchGetItem for every author
    and cited data source; a data source is named only when every reader (the creator and each
    recipient) may view it."""
    authors = {
        s["authorId"] for r in read for s in r.steps if s.get("authorType") == "user" and s.get("authorId")
    }
    cited = sorted(
        {Ref("data_source", c["dataSourceId"]) for r in read for s in r.steps for c in _citations(s)}
    )
    found = objects.batch_get([Ref("user", u) for u in sorted(authors | {creator_id})] + cited)
    if cited:
        for reader in readers:
            reader.preload(cited)
    names = {
        ref.id: found[ref].get("name") or HIDDEN_SOURCE
        for ref in cited
        if ref in found and all(reader.can(ref, Permission.can_view) for reader in readers)
    }

    def author(step: dict[str, Any]) -> str:
        if step.get("authorType") == "llm":
            return LLM_AUTHOR
        user = found.get(Ref("user", step.get("authorId") or ""))
        return (user or {}).get("displayName") or UNKNOWN_AUTHOR

    sections = [
        mail.Section(
            name=r.convo.get("name") or "",
            entries=[
                mail.Entry(
                    author=author(s),
                    created_at=s.get("createdAt", ""),
                    text=(s.get("content") or {}).get("text", ""),
                    is_llm=s.get("authorType") == "llm",
                    status=s.get("status", "completed"),
                    citations=tuple(
                        mail.Citation(names.get(c["dataSourceId"], HIDDEN_SOURCE), str(c.get("text", "")))
                        for c in _citations(s)
                    ),
                )
                for s in r.steps
            ],
            complete=r.complete,
        )
        for r in read
    ]
    creator = found.get(Ref("user", creator_id)) or {}
    return sections, creator.get("displayName") or UNKNOWN_AUTHOR


def _finish(export_id: str, changes: dict[str, Any]) -> str:
    try:
        exports.finish(export_id, {**changes, "updatedAt": now_iso()})
    except Conflict:
        # Another delivery of the job recorded its outcome first: that outcome stands.
        logger.warning("export already finished", extra={"exportId": export_id})
    return changes["status"]


def send_export(export_id: str) -> str:
    """Send a queued export's email; returns the export's status afterwards (`sent`, `failed`), or
    `missing` when the export is gone (expired). An export that is no longer queued is left as is.

    Raises what SES raises for a failure worth retrying (throttling, service errors); a permanent
    refusal (e.g. an unverified sender) fails the export instead, so the job is not retried."""
    export = exports.get(export_id)
    if export is None:
        logger.warning("export job for a missing export dropped", extra={"exportId": export_id})
        return "missing"
    if export["status"] != exports.QUEUED:
        return export["status"]
    settings = get_settings()
    if not settings.mail_from:
        return _finish(
            export_id,
            {
                "status": "failed",
                "error": {"code": "mail_not_configured", "message": "this stack has no sender address"},
            },
        )
    access = _creator_access(export)
    refs = _convos(export["sources"]["convoIds"])
    viewable = _viewable(access, refs)
    convos = [viewable[r] for r in refs if r in viewable]
    if not convos:
        return _finish(
            export_id,
            {
                "status": "failed",
                "error": {
                    "code": "nothing_to_export",
                    "message": "none of the convos can be viewed by the export's creator any more",
                },
            },
        )
    kept = [r for r in refs if r in viewable]
    recipients: dict[str, Access] = {}
    for destination in export["destinations"]:
        recipient = _recipient(destination["address"], kept)
        if recipient is not None:
            recipients[destination["address"]] = recipient
    if not recipients:
        return _finish(
            export_id,
            {
                "status": "failed",
                "error": {
                    "code": "no_recipients",
                    "message": "no destination may view the convos of the export any more",
                },
            },
        )
    read = _read_steps(convos, mail.MAX_EMAIL_BYTES)
    sections, creator_name = _sections([access, *recipients.values()], read, export["createdBy"])
    email = mail.render(sections, exported_by=creator_name, exported_at=export["createdAt"])
    try:
        message_id = mail.send(source=settings.mail_from, to=list(recipients), email=email)
    except mail.MailRejected as error:
        logger.warning("export refused by SES", extra={"exportId": export_id, "sesCode": error.code})
        return _finish(
            export_id,
            {
                "status": "failed",
                "error": {
                    "code": "mail_rejected",
                    "message": f"the mail service refused the email ({error.code}): {error.message}",
                },
            },
        )
    return _finish(export_id, {"status": "sent", "sentAt": now_iso(), "messageId": message_id})
