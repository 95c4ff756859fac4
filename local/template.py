"""Read template.yaml (with CloudFormation's short-form tags) and resolve the intrinsics the local stack
needs, so that the template stays the one source of truth for resources, routes and configuration."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
STACK_NAME = "kallo-local"
REGION = "us-east-1"
ACCOUNT = "123456789012"


class _CfnLoader(yaml.SafeLoader):
    pass


def _intrinsic(name: str):
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return construct


for _tag in (
    "Ref",
    "GetAtt",
    "Sub",
    "If",
    "Join",
    "Select",
    "Split",
    "Equals",
    "Not",
    "And",
    "Or",
    "FindInMap",
):
    _CfnLoader.add_constructor(f"!{_tag}", _intrinsic("Ref" if _tag == "Ref" else f"Fn::{_tag}"))


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)


@dataclass
class Route:
    function: str  # logical id
    handler: str  # module.attribute
    method: str
    path: str  # API Gateway resource path, e.g. /teams/{teamId}
    authorized: bool


def rest_routes(template: dict[str, Any]) -> list[Route]:
    routes = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        for event in (properties.get("Events") or {}).values():
            if event["Type"] != "Api":
                continue
            event_properties = event["Properties"]
            authorizer = (event_properties.get("Auth") or {}).get("Authorizer")
            routes.append(
                Route(
                    function=logical_id,
                    handler=properties["Handler"],
                    method=event_properties["Method"].upper(),
                    path=event_properties["Path"],
                    authorized=authorizer != "NONE",
                )
            )
    return routes


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


class Resolver:
    """Resolves Ref / GetAtt / Sub against the physical ids the local stack created."""

    def __init__(self, template: dict[str, Any], physical: dict[str, dict[str, str]]) -> None:
        self.parameters = {
            k: str(v.get("Default", "")) for k, v in (template.get("Parameters") or {}).items()
        }
        self.physical = physical
        self.pseudo = {"AWS::StackName": STACK_NAME, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}

    def ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.physical[name]["Ref"]

    def get_att(self, name: str, attribute: str) -> str:
        return self.physical[name][attribute]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::GetAtt":
                return self.get_att(*argument)
            if key == "Fn::Sub":
                return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub(m.group(1)), argument)
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _sub(self, expression: str) -> str:
        if "." in expression and not expression.startswith("AWS::"):
            return self.get_att(*expression.split(".", 1))
        return self.ref(expression)


def function_environment(
    template: dict[str, Any], resolver: Resolver, logical_id: str | None = None
) -> dict[str, str]:
    """The environment variables a function gets: Globals merged with the function's own."""
    variables = dict(template["Globals"]["Function"].get("Environment", {}).get("Variables", {}))
    if logical_id:
        own = template["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {})
        variables.update(own)
    return {k: str(resolver.resolve(v)) for k, v in variables.items()}
