"""What the parts of the local stack share (`local.stack` assembles them): a route factory
(`local.http_gateway`, `local.ws_gateway`, `local.mailbox`) builds its routes from a `Stack`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from local import runtime, template


@dataclass(frozen=True)
class Stack:
    """The template, where its resources are in the embedded AWS, the functions and the stack's URL."""

    template: dict[str, Any]
    resolver: template.Resolver  # its `physical` holds the ids of the resources in the embedded AWS
    functions: dict[str, runtime.LocalFunction]
    base_url: str  # where this stack serves HTTP, e.g. http://127.0.0.1:3000
