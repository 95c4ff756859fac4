"""Query Models: the models this deployment answers with (`kallo.llm.registry.deployment_models`).

Any authenticated caller may list them: they are the deployment's configuration, the same for every
tenant, and name nothing of anyone's. Costs in AWS calls: none.
"""

from __future__ import annotations

from typing import Any

from kallo.authz.access import Access
from kallo.llm import registry


def query_models(access: Access) -> list[dict[str, Any]]:
    """`[{id, provider, default}]`, the default model first. `access` is the authenticated caller."""
    del access  # any caller: nothing here is a tenant's
    return [{"id": m.id, "provider": m.provider, "default": m.default} for m in registry.deployment_models()]
