"""Manage service accounts and their API keys on a deployed stack (`python -m tools.admin`).

    python -m tools.admin --stack-name kallo create-service-account --name my-backend
    python -m tools.admin --stack-name kallo create-key --user-id <id> [--name ci]
    python -m tools.admin --stack-name kallo list-keys --user-id <id>
    python -m tools.admin --stack-name kallo revoke-key --key kallo_...
    python -m tools.admin --table kallo-Table-ABC revoke-key --user-id <id> --key-id <key id>

The table is named with --table, or found from the CloudFormation stack's `TableName` output. AWS
credentials and region come from the usual places (environment, profile, SSO), or --profile/--region.
Results are printed as JSON on stdout; a new key is shown only once (only its hash is stored).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "kallo"


def stack_table_name(stack_name: str) -> str:
    """The `TableName` output of a deployed stack."""
    stacks = boto3.session.Session().client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    for output in stacks[0].get("Outputs", []):
        if output["OutputKey"] == "TableName":
            return output["OutputValue"]
    raise LookupError(f"stack {stack_name} has no TableName output")


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """The options that say which deployment's table a command works on, and with which credentials
    (`use_environment` and `use_table` apply them)."""
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--table", help="the DynamoDB table's name")
    target.add_argument("--stack-name", help="the CloudFormation stack whose TableName output names it")
    parser.add_argument("--profile", help="AWS profile (default: the usual credential chain)")
    parser.add_argument("--region", help="AWS region (default: the profile's or AWS_DEFAULT_REGION)")


def use_environment(arguments: argparse.Namespace) -> None:
    """Apply the profile and region `add_target_options` took, and put the shared package (`kallo`) on
    the import path."""
    if arguments.profile:
        os.environ["AWS_PROFILE"] = arguments.profile
    if arguments.region:
        os.environ["AWS_DEFAULT_REGION"] = arguments.region
    # The shared package ships as a Lambda layer, not an installed distribution.
    if str(LAYER) not in sys.path:
        sys.path.insert(0, str(LAYER))


def use_table(arguments: argparse.Namespace) -> None:
    """Point the shared package at the table `add_target_options` named (after `use_environment`);
    raises `LookupError` when the stack has no TableName output."""
    from kallo import aws
    from kallo.settings import get_settings

    os.environ["KALLO_TABLE_NAME"] = arguments.table or stack_table_name(arguments.stack_name)
    # The settings and clients are read once per process; start from this command's.
    get_settings.cache_clear()
    aws.reset_clients()


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m tools.admin", description=__doc__.split("\n\n")[0])
    add_target_options(root)
    commands = root.add_subparsers(dest="command", required=True)

    create_account = commands.add_parser("create-service-account", help="create a service account")
    create_account.add_argument("--name", required=True, help="its display name")

    create_key = commands.add_parser("create-key", help="issue an API key for a service account")
    create_key.add_argument("--user-id", required=True)
    create_key.add_argument("--name", default="default", help="a label for the key (default: default)")

    list_keys = commands.add_parser("list-keys", help="list a service account's keys (never the keys)")
    list_keys.add_argument("--user-id", required=True)

    revoke = commands.add_parser("revoke-key", help="revoke a key, by its value or by its id")
    revoke.add_argument("--key", help="the key itself")
    revoke.add_argument("--user-id", help="with --key-id: the service account that owns the key")
    revoke.add_argument("--key-id", help="with --user-id: the key's id, as list-keys shows it")
    return root


def run(arguments: argparse.Namespace) -> Any:
    """Carry out the command; returns what to print."""
    from kallo.services import credentials

    if arguments.command == "create-service-account":
        return credentials.create_service_account(arguments.name)
    if arguments.command == "create-key":
        key, record = credentials.issue_api_key(arguments.user_id, name=arguments.name)
        return {"key": key, **{k: record[k] for k in ("id", "userId", "name", "createdAt")}}
    if arguments.command == "list-keys":
        return credentials.list_api_keys(arguments.user_id)
    if arguments.key:
        credentials.revoke_api_key(arguments.key)
    else:
        credentials.revoke_api_key_by_id(arguments.user_id, arguments.key_id)
    return {"revoked": True}


def main(argv: list[str] | None = None) -> int:
    command_line = parser()
    arguments = command_line.parse_args(argv)
    if arguments.command == "revoke-key" and not (
        bool(arguments.key) ^ bool(arguments.user_id and arguments.key_id)
    ):
        command_line.error("revoke-key needs either --key, or --user-id with --key-id")
    use_environment(arguments)
    from kallo.errors import DomainError

    try:
        use_table(arguments)
        result = run(arguments)
    except (DomainError, LookupError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as error:
        print(f"AWS error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    if arguments.command == "create-key":
        print("Store the key now: it cannot be shown again.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
