"""Expand template.yaml with the SAM translator, as `sam build`/`sam deploy` will (`sam validate --lint`
does not catch every property SAM rejects). Runs in the SAM CLI's own virtual environment:

    .venv-sam/bin/python tools/translate_template.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from samcli.yamlhelper import yaml_parse
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform

ROOT = Path(__file__).resolve().parent.parent


class _OfflinePolicies(ManagedPolicyLoader):
    """AWS managed policy ARNs without calling IAM (the template names none by name)."""

    def __init__(self) -> None:
        pass

    def load(self) -> dict[str, str]:
        return {}


def main() -> int:
    template = yaml_parse((ROOT / "template.yaml").read_text())
    # The translator wants S3 locations for code; a placeholder stands in for what `sam build` uploads.
    for resource in template["Resources"].values():
        properties = resource.get("Properties") or {}
        if resource["Type"] == "AWS::Serverless::Function":
            properties["CodeUri"] = "s3://bucket/code.zip"
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            properties["ContentUri"] = "s3://bucket/layer.zip"
    template["Globals"]["Function"].pop("CodeUri", None)
    try:
        expanded = transform(template, {}, _OfflinePolicies(), Parser())
    except InvalidDocumentException as error:
        for cause in error.causes:
            print(f"template.yaml: {cause.message}", file=sys.stderr)
        return 1
    print(f"template.yaml translates: {len(expanded['Resources'])} CloudFormation resources (limit 500)")
    return 0 if len(expanded["Resources"]) <= 500 else 1


if __name__ == "__main__":
    sys.exit(main())
