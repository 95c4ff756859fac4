"""Topics: creation under a user or team owner, edits, deletion (its convos follow through the purge
worker), the topic's prompt, and the topics a caller can view.

A topic's `config.defaults` is a stepConfig every step of its convos starts from, so it is checked as
any written stepConfig is (`kallo.services.step_configs`): I10, an allowed model and a capped
`maxTokens` (422); I6, data sources the writer can view (404). The LLM step worker checks its data
sources again, for each step's author, when it answers. I5 and I6: the topic's own `dataSourceIds` is
written only by Add / Remove Topic Data Source (`kallo.services.data_source_links`), which check the
data source; a create or update body naming one is refused (422, `kallo.models.topics`).

Update Topic: `config` is a JSON merge patch (RFC 7396) of the stored config (a null removes a key),
so a client changes one default without restating the others.

Costs in AWS calls: Update Topic is the check (Query + BatchGetItem) + UpdateItem; a `config` patch
adds a GetItem (the stored config to merge into; the UpdateItem is conditional on its `updatedAt`).
Query Topics with `topicIds` is `owned.viewable_among`, without it a page of
`owned.list_viewable` (see `kallo.services.owned`). Defaults naming data sources add their checks (one
Query each + one BatchGetItem).
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from pydantic import ValidationError

from kallo.authz.access import Access
from kallo.authz.policy import ObjectType, Permission, Role
from kallo.clock import now_iso
from kallo.errors import Conflict, NotFound, Unprocessable
from kallo.llm import registry
from kallo.models.topics import TopicConfig, TopicCreate, TopicUpdate, merge_patch
from kallo.paging import PAGE_LIMIT
from kallo.services import authority, step_configs
from kallo.services.owned import (
    absent_as_not_found,
    create_owned,
    list_viewable,
    owner_for,
    require_existing,
    update_owned,
    viewable_among,
)
from kallo.store import grants, objects
from kallo.store import topics as store
from kallo.store.keys import Ref

# -- topics ---------------------------------------------------------------------------------------------


def _topic(topic_id: str) -> Ref:
    return Ref("topic", topic_id)


def query_topics(
    access: Access,
    topic_ids: list[str] | None = None,
    *,
    limit: int = PAGE_LIMIT,
    next_token: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """The listed topics the caller can view (unknown or hidden ids are absent; request order), or
    without `topic_ids` a page of all the topics it can view."""
    if topic_ids is not None:
        return viewable_among(access, [_topic(i) for i in topic_ids]), None
    return list_viewable(access, "topic", limit=limit, next_token=next_token)


def create_topic(
    access: Access, data: TopicCreate, *, user_id: str | None = None, team_id: str | None = None
) -> dict[str, Any]:
    owner = owner_for(access, ObjectType.topic, user_id=user_id, team_id=team_id)
    _require_config(authority.acting_for(access, user_id) if user_id else access, data.config)
    fields = {
        "name": data.name,
        "description": data.description,
        "config": data.config.stored(),
        # Empty: only the link operations list data sources (`kallo.models.topics.DataSourceIds`).
        "dataSourceIds": [],
    }
    return create_owned(owner, _topic(str(uuid4())), fields)


def _require_config(writer: Access, config: TopicConfig) -> None:
    """I6 and I10: the defaults a writer gives a topic (see the module docstring)."""
    step_configs.require_writable(writer, [config.defaults])


def update_topic(access: Access, topic_id: str, data: TopicUpdate) -> dict[str, Any]:
    """A PATCH of the topic; its `config` is a JSON merge patch (RFC 7396) of the stored config, the
    result checked as a written config is (I6, I10), and written only if the topic did not change
    meanwhile (409 `conflict` then: read it and try again)."""
    changes = data.changes()
    if data.config is None:
        return update_owned(access, _topic(topic_id), changes)
    ref = _topic(topic_id)
    access.require(ref, Permission.can_edit)  # first: a hidden topic is 404 (free later)
    current = require_existing(ref)
    try:
        config = TopicConfig.model_validate(merge_patch(current.get("config") or {}, data.config))
    except ValidationError as error:
        raise Unprocessable(f"config: {_first_error(error)}", code="validation_error") from error
    defaults = config.defaults
    registry.require_allowed(defaults.model, defaults.max_tokens)
    # I6: data sources the patch names (an array is replaced whole); those already stored were checked
    # when written, and again, for each step's author, whenever an answer uses them.
    # (A `defaults` that is not an object was refused by the validation above.)
    step_configs.require_viewable(access, (data.config.get("defaults") or {}).get("dataSourceIds") or [])
    changes = {**changes, "config": config.stored(), "updatedAt": now_iso()}
    try:
        return objects.update_if_unchanged(ref, changes, field="updatedAt", expected=current.get("updatedAt"))
    except Conflict as error:
        if objects.get(ref) is None:
            raise NotFound(f"topic {topic_id} not found") from error
        raise Conflict("the topic changed meanwhile: read it and try again", code="conflict") from error


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


def delete_topic(access: Access, topic_id: str) -> None:
    """Delete the topic and its owner grant together (so it leaves its owner's lists at once); its
    convos, other grants and links are left to the purge worker, which may take longer than a request."""
    ref = _topic(topic_id)
    access.require(ref, Permission.can_delete)
    # A team owner is a structural grant (already read by the check); a user owner is a user grant.
    owner = grants.owner_of(access.structural_grants(ref)) or grants.owner_of(
        grants.all_of_object(ref, grantee_type="user")
    )
    with absent_as_not_found(ref):
        objects.delete_with_grants(ref, [owner] if owner is not None else [])
    # Imported here: of the functions that load this module, only Delete Topic sends purge jobs.
    from kallo.services import purge

    purge.schedule(ref)


def set_topic_prompt(access: Access, topic_id: str, prompt_id: str) -> None:
    """Use a prompt for a topic: the topic's `promptId` and the prompt's `dependent` grant to the topic
    (through which the topic's users may read the prompt) change together, and the previous prompt's
    grant goes. Setting the current prompt again changes nothing.

    I5 (ownership moves): linking needs `can_add_prompt` on the topic and `can_add_dependent` on the
    prompt (its owners and admins, and the members of a team that owns it), as a data source link
    does: a user who merely views a prompt (or sees it through another topic) may not pass it on.
    Both objects are checked for visibility (404) before any permission (403), so a refusal on one
    does not tell whether the other exists.
    """
    topic, prompt = _topic(topic_id), Ref("prompt", prompt_id)
    access.preload([topic, prompt])
    access.require(topic)
    access.require(prompt)
    access.require(topic, Permission.can_add_prompt)
    access.require(prompt, Permission.can_add_dependent)
    previous = require_existing(topic).get("promptId")
    if previous == prompt_id:
        return
    now = now_iso()
    link = grants.item(
        prompt, topic, Role.dependent.value, created_by=access.principal.user_id or "", created_at=now
    )
    with absent_as_not_found(topic, prompt):
        store.set_prompt(topic, prompt, link, previous=previous, at=now)


def remove_topic_prompt(access: Access, topic_id: str) -> None:
    """Take the prompt off a topic, if one is set (otherwise nothing changes)."""
    topic = _topic(topic_id)
    access.require(topic, Permission.can_remove_prompt)
    previous = require_existing(topic).get("promptId")
    if previous:
        with absent_as_not_found(topic):
            store.unset_prompt(topic, previous)
