"""boto3 clients, created once per process and shared by every store.

Only stores (and this module) touch boto3. `AWS_ENDPOINT_URL` in the environment points every
client at the local emulator; boto3 honours it natively.

Every client comes from one session: a session's loader parses the JSON models that all clients
need (endpoint rules, partitions, retry and default configuration) once, and resolves the
credentials once, where a session per client did all of it again for each one.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

# Standard retry mode backs off on throttling, which a promotion spike will cause.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)

SERVICES = ("dynamodb", "sqs", "s3", "events", "kms", "secretsmanager")


# A session is not thread-safe while it creates clients (the local emulator runs containers in
# threads of one process); the clients it hands out are.
_creating = threading.Lock()


@cache
def _session() -> boto3.session.Session:
    return boto3.session.Session()


@cache
def _client(service: str) -> Any:
    with _creating:
        return _session().client(service, config=_CONFIG)  # type: ignore[call-overload]


def dynamodb() -> DynamoDBClient:
    return _client("dynamodb")  # type: ignore[no-any-return]


def sqs() -> SQSClient:
    return _client("sqs")  # type: ignore[no-any-return]


def s3() -> S3Client:
    return _client("s3")  # type: ignore[no-any-return]


def events() -> EventBridgeClient:
    return _client("events")  # type: ignore[no-any-return]


def kms() -> KMSClient:
    return _client("kms")  # type: ignore[no-any-return]


def secretsmanager() -> SecretsManagerClient:
    return _client("secretsmanager")  # type: ignore[no-any-return]


def client_for(service: str) -> Any:
    """The shared client of one service (used by tests and benchmarks to count requests)."""
    return _client(service)


def reset_clients() -> None:
    """Forget every client and the session, so the next ones see a changed environment (tests,
    emulator)."""
    _client.cache_clear()
    _session.cache_clear()


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
