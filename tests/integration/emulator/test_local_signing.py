"""The emulator's header signing sends what botocore's sends, but the signature itself, and
moto answers it as it answers a signed request; presigned URLs are botocore's own."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore import auth
from botocore.config import Config
from moto import mock_aws

from crm_local import local_signing

NOW = datetime.datetime(2026, 12, 7, 3, 30, 0)


class Sent(Exception):
    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("sent")
        self.headers = headers


VARYING = {"Authorization", "amz-sdk-invocation-id"}  # compared apart; a new id per call


def _stop(request: Any, **_: Any) -> None:
    raise Sent({k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()})


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(auth, "get_current_datetime", lambda *_, **__: NOW)
    was_installed = local_signing.installed()  # by an earlier test's `use_endpoint`
    local_signing.uninstall()
    yield
    local_signing.uninstall()
    if was_installed:
        local_signing.install()


CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("dynamodb", "put_item", {"TableName": "t", "Item": {"PK": {"S": "p" * 500}}}),
    ("dynamodb", "list_tables", {}),
    ("s3", "put_object", {"Bucket": "lake", "Key": "events/dt=2026-12-07/x", "Body": b"{}\n"}),
    ("sqs", "receive_message", {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/1/q"}),
    ("kms", "generate_data_key", {"KeyId": "alias/pii", "KeySpec": "AES_256"}),
    ("events", "put_events", {"Entries": [{"Source": "crm", "DetailType": "x", "Detail": "{}"}]}),
]  # fmt: skip


def _headers(service: str, operation: str, params: dict[str, Any]) -> dict[str, str]:
    session: Any = boto3.session.Session()
    client: Any = session.client(service, endpoint_url="http://127.0.0.1:1")
    client.meta.events.register("before-send", _stop)
    with pytest.raises(Sent) as sent:
        getattr(client, operation)(**params)
    return sent.value.headers


@pytest.mark.parametrize(("service", "operation", "params"), CALLS)
def test_a_request_carries_botocores_headers_but_the_signature(
    frozen: None, service: str, operation: str, params: dict[str, Any]
) -> None:
    signed = _headers(service, operation, params)
    local_signing.install()
    local = _headers(service, operation, params)
    assert {k: v for k, v in local.items() if k not in VARYING} == {
        k: v for k, v in signed.items() if k not in VARYING
    }
    assert local.keys() == signed.keys()
    scope, _, signature = local["Authorization"].rpartition("Signature=")
    assert scope == signed["Authorization"].rpartition("Signature=")[0]
    assert "Credential=local/20261207/us-east-1/" in scope
    assert signature == local_signing.PLACEHOLDER != signed["Authorization"].rpartition("=")[2]


def test_a_presigned_url_is_botocores(frozen: None) -> None:
    def url() -> str:
        s3: Any = boto3.session.Session().client(
            "s3", endpoint_url="http://127.0.0.1:1", config=Config(signature_version="s3v4")
        )
        return str(s3.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"}))

    signed = url()
    local_signing.install()
    assert url() == signed
    assert "X-Amz-Signature=" in signed
    assert local_signing.PLACEHOLDER not in signed


def test_moto_answers_a_request_as_it_answers_a_signed_one(frozen: None) -> None:
    def answers() -> tuple[Any, ...]:
        with mock_aws():
            sqs: Any = boto3.session.Session().client("sqs")
            url = sqs.create_queue(QueueName="q")["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody="m")
            body = sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"]
            s3: Any = boto3.session.Session().client("s3")
            s3.create_bucket(Bucket="lake")
            s3.put_object(Bucket="lake", Key="k", Body=b"rows")
            kms: Any = boto3.session.Session().client("kms")
            arn = kms.create_key()["KeyMetadata"]["Arn"]
            return url, body, s3.get_object(Bucket="lake", Key="k")["Body"].read(), arn

    signed = answers()
    local_signing.install()
    local = answers()
    assert local[:3] == signed[:3]  # the same account and region: the queue's URL
    assert local[3].rsplit("/", 1)[0] == signed[3].rsplit("/", 1)[0]  # a key of the same account
