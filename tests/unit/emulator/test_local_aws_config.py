"""The emulator's processes skip botocore's client-side parameter checks (moto checks them)."""

from __future__ import annotations

import os
from typing import Any

import boto3
import pytest
from botocore.validate import ParamValidationDecorator

from crm_local import local_signing
from crm_local.emulator import FAKE_CREDENTIALS, use_endpoint


def test_clients_of_the_emulator_do_not_check_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_CONFIG_FILE", "AWS_ENDPOINT_URL", *FAKE_CREDENTIALS):
        monkeypatch.setenv(name, os.environ.get(name, ""))  # put back after the test
    monkeypatch.delenv("AWS_CONFIG_FILE")
    checked: Any = boto3.session.Session(region_name="us-east-1").client("sqs")
    assert isinstance(checked._serializer, ParamValidationDecorator)  # botocore's default
    for endpoint in ("http://127.0.0.1:1", "http://127.0.0.1:2"):  # twice: the same file
        use_endpoint(endpoint)
        for service in ("dynamodb", "sqs", "s3", "events"):
            client: Any = boto3.session.Session().client(service)
            assert not isinstance(client._serializer, ParamValidationDecorator)
            assert client.meta.endpoint_url == endpoint
    assert local_signing.installed()  # and header signing without the signature's work
