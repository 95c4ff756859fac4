"""End users of an app key: who the `user` field of a compatibility surface's request names.

An app key stands for one topic. Its first request naming a new `user` value makes a Kallo user for it,
one per (topic, tenant, `user` value) (its claim, `users.create_end_user`, keeps it unique, the value
hashed); later requests find it again. Through the key, an end user sees and changes only the
conversations it started in the key's topic: any other convo id, whether another end user's, another
topic's, a convo of the topic started over REST, or a missing one, answers the same 404.

I1 (authority): an end user is created by the key's tenant (`AppKey.tenant_id`, the tenant of the key's
creator), recorded as its `createdBy`, so that tenant, and no other, has authority over it (it may act
for it over REST like for any user it made). It has no email address, so it is never found by email
(I2), and the claim names the tenant, so the same `user` value under another tenant's key of the same
topic is another end user.

Convos are ordinary Kallo convos owned by the key's topic (so the topic's team sees them in GET /convos),
created by the end user, who holds `admin` on each (the grant every creator of a topic's convo gets:
chat, rename). Deleting one through the key is allowed to the end user who started it (a topic's
convos are otherwise deleted by those who may delete the topic's objects).

Costs in AWS calls:
- resolve: 1 GetItem (the claim); a first use adds 1 TransactWriteItems (user, claim, the tenant's
  grant on the user);
- start_convo: 1 TransactWriteItems (convo, owner grant, the end user's grant, the topic's existence);
- own_convo: the convo check (2 Queries: the convo's and the topic's structural grants + 1
  BatchGetItem, `kallo.authz.access`) + 1 GetItem;
- list_convos: 1 Query (the end user's grants) + 1 BatchGetItem (none for an empty page);
- rename_convo: own_convo + 1 UpdateItem; delete_convo: own_convo + 1 Query + 1 TransactWriteItems +
  1 SQS SendMessage (the purge);
- own_step: 1 Query (the step by id) + own_convo;
- first_question: own_convo + 1 Query per 20 steps before the first question (usually 1);
- exchanges: own_convo (+ own_step for `before`) + 1 Query per page of steps (a page holds twice the
  exchanges asked for, and a little more);
- app_settings: 1 GetItem (the topic) + 1 GetItem (its prompt, when it has one);
- source_names: 1 BatchGetItem (none without ids).
Each start, rename and deletion is also told to the identifiers streams (`convos.announce`): 1 Query
per user holding a grant on the convo (a rename first reads them: 1 Query), more only for open streams.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from pydantic import TypeAdapter, ValidationError

from kallo.auth.app_keys import AppKey
from kallo.auth.principal import Principal
from kallo.authz.access import Access
from kallo.authz.policy import ObjectType, Permission, Role, permissions_of
from kallo.clock import now_iso
from kallo.errors import Conflict, NotFound, Unprocessable
from kallo.models.common import Name
from kallo.models.convos import ConvoPatch
from kallo.paging import PAGE_LIMIT
from kallo.services import convos, owned
from kallo.store import grants, objects, steps, users
from kallo.store.keys import Ref

_user_value = TypeAdapter(Name)
# The `user` values of the end users an app key has of its own (`key_end_user`): no request may name one,
# on any surface, or a client of one surface would reach conversations made through another.
RESERVED_PREFIX = "key:"


@dataclass(frozen=True)
class EndUser:
    """An end user of an app key, with the access it acts with."""

    user_id: str
    access: Access
    app_key: AppKey


def _end_user(app_key: AppKey, user_id: str) -> EndUser:
    return EndUser(user_id, Access(Principal(user_id=user_id, scheme="app_key")), app_key)


def _valid_user(user: str) -> str:
    """The `user` value: one line of 1..256 characters (trimmed), like any name (I11)."""
    try:
        return _user_value.validate_python(user)
    except ValidationError as error:
        problem = error.errors(include_url=False)[0].get("msg", "invalid")
        raise Unprocessable(f"user: {problem}", code="validation_error") from error


def resolve(app_key: AppKey, user: str) -> EndUser:
    """The end user the key's request names, made on first use (see the module); 422 for a reserved
    value (`RESERVED_PREFIX`)."""
    if user.strip().startswith(RESERVED_PREFIX):
        raise Unprocessable(
            f"user: must not start with {RESERVED_PREFIX!r}: those name an app key's own end user",
            code="validation_error",
        )
    return _resolve(app_key, user)


def key_end_user(app_key: AppKey) -> EndUser:
    """The end user an app key acts as when a request names none (Gloo KaLLM has no `user`): one per
    key, named by a reserved value no request can send."""
    return _resolve(app_key, f"{RESERVED_PREFIX}{app_key.id}")


def _resolve(app_key: AppKey, user: str) -> EndUser:
    value = _valid_user(user)
    user_hash = hashlib.sha256(value.encode()).hexdigest()
    found = users.find_end_user(app_key.topic_id, app_key.tenant_id, user_hash)
    if found:
        return _end_user(app_key, found)
    item = {
        "id": str(uuid4()),
        "isServiceAccount": False,
        "displayName": value,
        "endUserOf": app_key.topic_id,
        "createdAt": now_iso(),
    }
    try:
        users.create_end_user(
            item, tenant_id=app_key.tenant_id, topic_id=app_key.topic_id, user_hash=user_hash
        )
    except Conflict:
        # Two first requests of the same end user at once: the other one made it.
        raced = users.find_end_user(app_key.topic_id, app_key.tenant_id, user_hash)
        if raced is None:
            raise
        return _end_user(app_key, raced)
    return _end_user(app_key, item["id"])


def _convo(convo_id: str) -> Ref:
    return Ref(ObjectType.convo.value, convo_id)


def _is_id(value: str) -> bool:
    try:
        return str(UUID(value)) == value.lower()
    except ValueError:
        return False


def start_convo(end_user: EndUser, name: str | None = None, extra: dict[str, Any] | None = None) -> dict:
    """A new convo owned by the key's topic, created by the end user (who gets `admin` on it); 404 when
    the topic was deleted. `extra`: fields of the surface's own kept on the convo (Dify's `inputs`)."""
    topic = Ref(ObjectType.topic.value, end_user.app_key.topic_id)
    return convos.write_convo(owned.Owner(topic, end_user.user_id), name or "", extra)


def own_convo(end_user: EndUser, convo_id: str) -> dict[str, Any]:
    """The convo, only when it belongs to the key's topic and this end user started it (and still holds
    its grant on it); any other id, missing or not, is the same 404."""
    missing = NotFound(f"conversation {convo_id} not found")
    if not _is_id(convo_id):
        raise missing
    ref = _convo(convo_id)
    if not end_user.access.can(ref, Permission.can_view):
        raise missing
    convo = objects.get(ref)
    if (
        convo is None
        or convo.get("topicId") != end_user.app_key.topic_id
        or convo.get("createdBy") != end_user.user_id
    ):
        raise missing
    return convo


def list_convos(
    end_user: EndUser, *, limit: int = 20, after: str | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """The end user's convos in the key's topic, newest first, the `limit` after the convo `after` (an
    id of the previous page: convo ids are time-ordered, so it is a position, whoever's convo it is),
    and whether more follow. A page may hold fewer than `limit` when the end user was also given other
    convos over REST (those are not listed here)."""
    me = Ref(ObjectType.user.value, end_user.user_id)
    start = None
    if after is not None:
        if not _is_id(after):
            raise Unprocessable("last_id: not a conversation id", code="validation_error")
        start = grants.position_of(_convo(after.lower()), me)
    page = grants.of_grantee(
        me,
        object_type=ObjectType.convo.value,
        limit=min(limit, PAGE_LIMIT) + 1,
        start_key=start,
        newest_first=True,
    )
    listed = page.items[:limit]
    refs = [
        grants.object_ref(g)
        for g in listed
        if Permission.can_view in permissions_of(ObjectType.convo, Role(g["role"]))
    ]
    found = objects.batch_get(refs) if refs else {}
    mine = [
        found[r]
        for r in refs
        if r in found
        and found[r].get("topicId") == end_user.app_key.topic_id
        and found[r].get("createdBy") == end_user.user_id
    ]
    return mine, len(page.items) > limit


def rename_convo(end_user: EndUser, convo_id: str, name: str) -> dict[str, Any]:
    own_convo(end_user, convo_id)
    return convos.patch_convo(end_user.access, convo_id, ConvoPatch(name=name))


def delete_convo(end_user: EndUser, convo_id: str) -> None:
    own_convo(end_user, convo_id)
    convos.remove_convo(end_user.access, _convo(convo_id))


# -- messages: a question and its answer ------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """A question (a user step) and its answer (the LLM step replying to it), either of which may be
    missing: a question not answered (yet), an answer whose question was deleted."""

    question: dict[str, Any] | None
    answer: dict[str, Any] | None

    @property
    def id(self) -> str:
        """Its id: the answer's (Dify's message id), else the question's."""
        return str((self.answer or self.question or {})["id"])


def own_step(end_user: EndUser, step_id: str) -> dict[str, Any]:
    """A step of one of the end user's own convos (see `own_convo`); any other id is the same 404."""
    missing = NotFound(f"message {step_id} not found")
    step = steps.get(step_id) if _is_id(step_id) else None
    if step is None:
        raise missing
    try:
        own_convo(end_user, step["convoId"])
    except NotFound as hidden:
        raise missing from hidden
    return step


def exchanges(
    end_user: EndUser, convo_id: str, *, before: str | None = None, limit: int = 20
) -> tuple[dict[str, Any], list[Exchange], bool]:
    """The convo (see `own_convo`), its latest `limit` exchanges before the exchange `before` (its
    id), oldest first, and whether older ones exist. Alternates (other versions of a step) are left
    out."""
    convo = own_convo(end_user, convo_id)
    upto, skipped = None, set()
    if before is not None:
        upto = own_step(end_user, before)
        if upto["convoId"] != convo_id:
            raise NotFound(f"message {before} not found")
        skipped = {upto["id"], upto.get("replyToStepId")}
    found: list[Exchange] = []
    pending: dict[str, Any] | None = None  # an answer whose question is still to come (older)

    start = None
    while len(found) <= limit:
        page = steps.newest_first(convo_id, upto=upto, limit=2 * limit + 4, start_key=start)
        for step in page.items:
            if step["id"] in skipped or step.get("isAlternate"):
                continue
            if step.get("authorType") == "llm":
                if pending is not None:
                    found.append(Exchange(None, pending))
                pending = step
            elif pending is not None and pending.get("replyToStepId") == step["id"]:
                found.append(Exchange(step, pending))
                pending = None
            else:
                if pending is not None:
                    found.append(Exchange(None, pending))
                    pending = None
                found.append(Exchange(step, None))
        start = page.last_key
        if not start:
            break
    if pending is not None:
        found.append(Exchange(None, pending))
    return convo, found[:limit][::-1], len(found) > limit


def first_question(end_user: EndUser, convo_id: str) -> str:
    """The text of the convo's first question (its oldest primary user step; "" when it has none)."""
    own_convo(end_user, convo_id)
    start = None
    while True:
        page = steps.of_convo(convo_id, limit=20, start_key=start)
        for step in page.items:
            if step.get("authorType") == "user" and not step.get("isAlternate"):
                return str((step.get("content") or {}).get("text", ""))
        start = page.last_key
        if not start:
            return ""


def app_settings(end_user: EndUser) -> tuple[dict[str, Any], str]:
    """The key's topic and its prompt's text ("" without one): what the app offers its end users (the
    key stands for the topic, so its end users read these without a grant on the topic); 404 when
    the topic is gone."""
    topic = objects.get(Ref(ObjectType.topic.value, end_user.app_key.topic_id))
    if topic is None:
        raise NotFound("the app's topic no longer exists")
    prompt = objects.get(Ref(ObjectType.prompt.value, topic["promptId"])) if topic.get("promptId") else None
    return topic, str((prompt or {}).get("text", ""))


def source_names(data_source_ids: list[str]) -> dict[str, str]:
    """The names of the data sources an answer of the end user's cites (its annotations name them and
    quote them already), by id."""
    refs = [Ref(ObjectType.data_source.value, i) for i in dict.fromkeys(data_source_ids)]
    found = objects.batch_get(refs) if refs else {}
    return {ref.id: str(item.get("name", "")) for ref, item in found.items()}
