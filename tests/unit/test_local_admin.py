"""The admin command (`python -m tools.admin`) against a moto account provisioned from the template."""

from __future__ import annotations

import json
import os

import boto3
import pytest

from kallo.auth.authenticate import authenticate, forget_cached_credentials
from kallo.errors import Unauthorized
from tools import admin


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object, str]:
    """(exit code, parsed stdout, stderr) of one admin command against the test table."""
    code = admin.main(["--table", os.environ["KALLO_TABLE_NAME"], *argv])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out else None, captured.err


def test_service_account_and_key_lifecycle(aws: dict, capsys: pytest.CaptureFixture[str]) -> None:
    code, account, _ = run(capsys, "create-service-account", "--name", "my-backend")
    assert code == 0
    assert account["isServiceAccount"] is True and account["displayName"] == "my-backend"

    code, issued, err = run(capsys, "create-key", "--user-id", account["id"], "--name", "ci")
    assert code == 0 and "cannot be shown again" in err
    assert issued["key"].startswith("kallo_") and issued["userId"] == account["id"] and issued["name"] == "ci"
    assert authenticate({"x-api-key": issued["key"]}).user_id == account["id"]

    code, listed, _ = run(capsys, "list-keys", "--user-id", account["id"])
    assert code == 0
    assert [k["id"] for k in listed] == [issued["id"]]
    assert all("key" not in k and "keyHash" not in k for k in listed)

    assert run(capsys, "revoke-key", "--key", issued["key"])[0] == 0
    forget_cached_credentials()
    with pytest.raises(Unauthorized):
        authenticate({"x-api-key": issued["key"]})
    assert run(capsys, "list-keys", "--user-id", account["id"])[1] == []


def test_revoke_a_key_by_its_id(aws: dict, capsys: pytest.CaptureFixture[str]) -> None:
    _, account, _ = run(capsys, "create-service-account", "--name", "svc")
    _, first, _ = run(capsys, "create-key", "--user-id", account["id"])
    _, second, _ = run(capsys, "create-key", "--user-id", account["id"])
    assert run(capsys, "revoke-key", "--user-id", account["id"], "--key-id", first["id"])[0] == 0
    assert [k["id"] for k in run(capsys, "list-keys", "--user-id", account["id"])[1]] == [second["id"]]


def test_errors_are_reported_without_a_traceback(aws: dict, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "create-key", "--user-id", "00000000-0000-4000-8000-000000000000")
    assert code == 1 and out is None and err.startswith("error:") and "not found" in err
    code, _, err = run(capsys, "revoke-key", "--key", "kallo_never_issued_key")
    assert code == 1 and "no such API key" in err


def test_revoke_needs_a_key_or_an_id(aws: dict, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        run(capsys, "revoke-key", "--user-id", "u")
    assert exit_.value.code == 2


def test_the_table_is_found_from_the_stack_outputs(aws: dict, capsys: pytest.CaptureFixture[str]) -> None:
    table = os.environ.pop("KALLO_TABLE_NAME")
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    cloudformation.create_stack(
        StackName="kallo",
        TemplateBody=json.dumps(
            {
                "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {"TableName": {"Value": table}},
            }
        ),
    )
    assert admin.main(["--stack-name", "kallo", "create-service-account", "--name", "svc"]) == 0
    assert json.loads(capsys.readouterr().out)["displayName"] == "svc"
    assert os.environ["KALLO_TABLE_NAME"] == table

    assert admin.main(["--stack-name", "missing", "list-keys", "--user-id", "u"]) == 1
    assert "AWS error" in capsys.readouterr().err
