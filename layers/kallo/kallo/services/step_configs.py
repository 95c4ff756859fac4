"""The check a stepConfig gets when a caller writes one: a topic's `config.defaults` (Create and Update
Topic), a step's config (convoNewStep, convoNewStepGroup, convoStepGroupAddition) and a regen's.

- I10 (cost): its model is on the stack's allow-list and its `maxTokens` within that model's cap
  (`kallo.llm.registry.require_allowed`; 422 `model_not_allowed`, `max_tokens_too_large`).
- I6 (grounding): every data source it names (`dataSourceIds`), and any other id the caller gives with
  it (a step's `files` and `annotations`), must be visible to the writer: 404 otherwise, as for any
  hidden object. This is only the first check: the LLM step worker checks the named ids again, for the
  step's author, when it answers (`kallo.services.grounding.named_sources`).

Costs in AWS calls: none for a config that names no data source; otherwise the checks of those data
sources, read together (`Access.preload`: one Query per data source + one BatchGetItem).
"""

from __future__ import annotations

from collections.abc import Iterable

from kallo.authz.access import Access
from kallo.authz.policy import ObjectType, Permission
from kallo.llm import registry
from kallo.models.steps import StepConfig
from kallo.store.keys import Ref


def data_source_ids(configs: Iterable[StepConfig | None]) -> list[str]:
    """The data sources the configs name, each once, in order."""
    ids: dict[str, None] = {}
    for config in configs:
        if config is not None:
            ids.update(dict.fromkeys(config.data_source_ids or []))
    return list(ids)


def require_viewable(access: Access, ids: Iterable[str]) -> None:
    """I6 (grounding): the writer may view every data source named (404 for the first it cannot)."""
    refs = [Ref(ObjectType.data_source.value, i) for i in dict.fromkeys(ids)]
    if refs:
        access.preload(refs)
    for ref in refs:
        access.require(ref, Permission.can_view)


def require_writable(
    access: Access, configs: Iterable[StepConfig | None], *, also_data_sources: Iterable[str] = ()
) -> None:
    """Check configs a caller writes (see the module docstring); `also_data_sources` are the other
    data sources the same request names (a step's files and citations), checked in the same read."""
    configs = list(configs)
    for config in configs:
        if config is not None:
            registry.require_allowed(config.model, config.max_tokens)
    require_viewable(access, [*data_source_ids(configs), *also_data_sources])
