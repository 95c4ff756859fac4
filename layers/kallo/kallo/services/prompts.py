"""Prompts: owned by a user or a team, and set on topics (the prompt holds a `dependent` grant to every
topic that uses it, through which the topic's users may read it)."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from kallo.authz.access import Access
from kallo.authz.policy import ObjectType, Permission
from kallo.errors import BadRequest
from kallo.models.prompts import PromptCreate, PromptUpdate
from kallo.paging import PAGE_LIMIT
from kallo.services import authority, owned
from kallo.store import grants, objects
from kallo.store import prompts as store
from kallo.store.keys import Ref


def _prompt(prompt_id: str) -> Ref:
    return Ref("prompt", prompt_id)


def query_prompts(
    access: Access,
    *,
    topic_id: str | None = None,
    user_id: str | None = None,
    limit: int = PAGE_LIMIT,
    next_token: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """`topic_id`: the topic's prompt ([] when none is set). Otherwise a page of the prompts the user
    (the caller, or one it has authority over) holds a grant on, itself or through its teams."""
    if topic_id and user_id:
        raise BadRequest("give topicId or userId, not both", code="ambiguous_filter")
    if topic_id:
        return _prompt_of_topic(access, Ref("topic", topic_id)), None
    acting = authority.acting_for(access, user_id)
    return owned.list_viewable(acting, "prompt", limit=limit, next_token=next_token)


def _prompt_of_topic(access: Access, topic: Ref) -> list[dict[str, Any]]:
    access.require(topic)
    prompt_id = owned.require_existing(topic).get("promptId")
    if not prompt_id or not access.can(_prompt(prompt_id), Permission.can_view):
        return []
    found = objects.get(_prompt(prompt_id))
    return [found] if found else []


def create_prompt(
    access: Access, data: PromptCreate, *, user_id: str | None = None, team_id: str | None = None
) -> dict[str, Any]:
    owner = owned.owner_for(access, ObjectType.prompt, user_id=user_id, team_id=team_id)
    return owned.create_owned(owner, _prompt(str(uuid4())), {"text": data.text})


def update_prompt(access: Access, prompt_id: str, data: PromptUpdate) -> dict[str, Any]:
    return owned.update_owned(access, _prompt(prompt_id), data.changes())


def delete_prompt(access: Access, prompt_id: str) -> None:
    """Delete a prompt, all its grants, and take it off every topic that uses it: one transaction when
    that is at most 100 writes, else several, the first deleting the prompt. What a failed run leaves
    (grants of a missing prompt, topics naming it) shows no prompt anywhere, and the same DELETE again
    finishes the job: the prompt's deletion is unconditional for that reason."""
    ref = _prompt(prompt_id)
    access.require(ref, Permission.can_delete)
    # The structural grants (its owner team, the topics it is set on) were read by the check.
    held = [*access.structural_grants(ref), *grants.all_of_object(ref, grantee_type="user")]
    linked = [grants.grantee_ref(g) for g in held if g["granteeType"] == "topic"]
    found = objects.batch_get(linked) if linked else {}
    using = {t for t in linked if found.get(t, {}).get("promptId") == prompt_id}
    # A transaction may not touch an item twice: the grants to `using` topics go with their unsetting.
    others = [grants.grantee_ref(g) for g in held if grants.grantee_ref(g) not in using]
    store.delete(ref, unset_on=sorted(using), grantees=others)
