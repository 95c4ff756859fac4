"""Health Check: the API is up when its function runs and the table answers a read."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from kallo.clock import now_iso
from kallo.settings import get_settings
from kallo.store import objects
from kallo.store.keys import Ref


class ApiName(StrEnum):
    contract_api = "contract-api"
    core_api = "core-api"
    data_source_api = "data-source-api"
    messaging_api = "messaging-api"


def check(api_name: ApiName) -> dict[str, Any]:
    # One GetItem on a key that never exists proves the data plane answers.
    objects.get(Ref("health", "probe"))
    return {"apiName": api_name.value, "status": "ok", "version": get_settings().version, "time": now_iso()}
