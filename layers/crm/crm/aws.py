"""AWS clients, created once per process and shared by every store.

Only stores (and this module) touch the AWS SDK. `AWS_ENDPOINT_URL` in the environment points
every client at the local emulator; botocore honours it natively.

The clients are botocore's, made without boto3: boto3's session adds nothing a client of
these services uses (its additions are resources and S3's transfer methods, which this code
never calls), and importing boto3 cost every cold start ~15 ms more than botocore alone (its
package imports s3transfer's transfer manager).

Every client comes from one session: a session's loader parses the JSON models that all clients
need (endpoint rules, partitions, retry and default configuration) once, and resolves the
credentials once, where a session per client did all of it again for each one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import botocore
import botocore.handlers
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.hooks import EVENT_ALIASES

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

# Standard retry mode backs off on throttling, which a promotion spike will cause.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)
# A segment run's scan pages: small (a Limit), but read in the background while a shop is busy,
# from a table (or the emulator, which serves one request at a time) that may be slow to answer.
# Giving up on a page after 5 s and asking again would only queue a second copy of the same
# work behind the first, so these reads wait longer and retry more.
# They also write a segment run's scores in batches of 25 items: botocore's client-side check of
# every parameter against the model costs more than building them (DynamoDB checks them anyway
# and answers a ValidationException), so these calls skip it.
_BULK_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5}, connect_timeout=2, read_timeout=30,
    parameter_validation=False,
)  # fmt: skip

SERVICES = (
    "dynamodb", "sqs", "s3", "events", "kms", "secretsmanager", "sesv2", "sns",
    "pinpoint-sms-voice-v2",
)  # fmt: skip
BULK_SERVICES = ("dynamodb",)
# Every service a client is made for here: each has a pruned model in botocore_data.
MODELED_SERVICES = (*SERVICES, "athena")

# botocore's data for the services above, cut to what this project uses (`python -m
# crm_local.botocore_models --write`): each service model keeps only the operations the code
# calls, without documentation, and the legacy endpoint data only these services. Parsing
# botocore's whole files was most of a client's creation (DynamoDB's and KMS's models are over
# 500 KB each, S3's 1.4 MB, the endpoint data 1.2 MB), and listing its ~430 service folders
# twice cost another ~20 ms. This module's session reads only this folder; any other session
# (moto, the emulator's provisioning, a test's own client) reads botocore's.
_MODELS = str(Path(__file__).resolve().parent / "botocore_data")

# Error codes of a service that is busy now and may not be in a moment (botocore retries
# them first; this is what is left when its attempts ran out).
_BUSY_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
    "RequestThrottled", "SlowDown", "LimitExceededException", "TransactionInProgressException",
    "InternalServerError", "InternalFailure", "ServiceUnavailable", "RequestTimeout",
    "RequestTimeoutException",
})  # fmt: skip


# A session is not thread-safe while it creates clients (the local emulator runs containers in
# threads of one process); the clients it hands out are.
_creating = threading.Lock()


class _LayerData(botocore.loaders.Loader):
    """botocore's loader over the layer's folder, which holds botocore's own data (cut, not
    changed): its endpoint data is taken as botocore's, as it would be from botocore's folder
    (other endpoint data would be passed to the endpoint rules as a custom endpoint)."""

    def is_builtin_path(self, path: str) -> bool:
        return path.startswith(_MODELS)


def _models_fit() -> bool:
    """The folder was written from the botocore that runs (another version's code may expect
    other models: then the clients read botocore's own data, slower but as it ships)."""
    try:
        written = (Path(_MODELS) / "botocore-version.txt").read_text(encoding="utf-8").strip()
    except OSError:
        return False
    return written == botocore.__version__


# The services' names in botocore's event names (`before-call.secrets-manager.GetSecretValue`),
# with the older names botocore still accepts for them (tests/unit/platform/
# test_layer_session.py checks them against the models).
EVENT_SERVICES = frozenset({
    "dynamodb", "sqs", "s3", "eventbridge", "kms", "secrets-manager", "sesv2", "sns",
    "pinpoint-sms-voice-v2", "athena",
})  # fmt: skip
_EVENT_NAMES = EVENT_SERVICES | {old for old, new in EVENT_ALIASES.items() if new in EVENT_SERVICES}


def concerns_other_service(event_name: str) -> bool:
    """An event of one AWS service this layer makes no client of (EC2's, Glacier's, ...).
    The service is an event name's second part (`before-call.ec2.CopySnapshot`), or its third
    in documentation events (`docs.*.ec2.RunInstances.complete-section`)."""
    parts = event_name.split(".")
    part = 2 if parts[0] == "docs" else 1
    return len(parts) > part and parts[part] != "*" and parts[part] not in _EVENT_NAMES


class _LayerSession(botocore.session.Session):
    """botocore's session, without the handlers botocore registers on every session for the
    services this layer never calls (~50 of ~130). Registering one resolves its event name
    against every alias and inspects the handler's signature (~1.7 ms of each cold start for
    handlers none of these clients could fire), and each client copies them all. Any other
    handler, those registered by the code that runs (moto's among them) included, is kept."""

    def _register_builtin_handlers(self, events: Any) -> None:
        for spec in botocore.handlers.BUILTIN_HANDLERS:
            if concerns_other_service(spec[0]):
                continue
            if len(spec) == 2:
                events.register(spec[0], spec[1])
            elif spec[2] is botocore.handlers.REGISTER_FIRST:
                events.register_first(spec[0], spec[1])
            elif spec[2] is botocore.handlers.REGISTER_LAST:
                events.register_last(spec[0], spec[1])


@cache
def _session() -> botocore.session.Session:
    session = _LayerSession()
    if _models_fit():
        loader = _LayerData(extra_search_paths=[_MODELS], include_default_search_paths=False)
        session.register_component("data_loader", loader)
    return session


@cache  # keyed by the arguments as passed: always pass both, positionally
def _client(service: str, bulk: bool) -> Any:
    config = _BULK_CONFIG if bulk else _CONFIG
    with _creating:
        client = _session().create_client(service, config=config)
    if bulk and service == "dynamodb":
        client.meta.events.register("before-parse.dynamodb.Scan", _scan_page_as_sent)
    return client


_SCAN_OUTPUT = ("Items", "Count", "ScannedCount", "LastEvaluatedKey", "ConsumedCapacity")


def scan_page(body: bytes) -> dict[str, Any]:
    """A Scan response as DynamoDB sent it: items in the attribute-value shape, as parsed
    items have it, except binaries, which stay base64 text (`crm.dynamo.plain` decodes them)."""
    sent = json.loads(body)
    return {k: sent[k] for k in _SCAN_OUTPUT if k in sent}


def _scan_page_as_sent(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    """The bulk client's scan pages skip botocore's response parser, which walks the service
    model in Python for every attribute of every item (~0.8 ms a profile, most of a segment
    run's reading); json.loads gives the same attribute values several times faster.
    botocore still checks the body's CRC32 (on the raw response) and parses errors."""
    if response_dict.get("status_code") != 200 or not response_dict.get("body"):
        return
    customized_response_dict.update(scan_page(response_dict["body"]))
    response_dict["body"] = b"{}"


def dynamodb() -> DynamoDBClient:
    return _client("dynamodb", False)  # type: ignore[no-any-return]


def dynamodb_bulk() -> DynamoDBClient:
    """For the background work of segment runs (scan pages, scores batches); see _BULK_CONFIG."""
    return _client("dynamodb", True)  # type: ignore[no-any-return]


def sqs() -> SQSClient:
    return _client("sqs", False)  # type: ignore[no-any-return]


def s3() -> S3Client:
    return _client("s3", False)  # type: ignore[no-any-return]


S3_DELETE_MAX = 1000  # keys per DeleteObjects, S3's limit


def object_keys(bucket: str, prefix: str = "") -> Iterator[str]:
    """Every key under `prefix`, one LIST request per 1,000."""
    for page in s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]


def object_body(bucket: str, key: str) -> bytes | None:
    """An object's bytes; None when there is no such key."""
    try:
        return bytes(s3().get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as exc:
        if error_code(exc) in {"NoSuchKey", "404"}:
            return None
        raise


def delete_objects(bucket: str, keys: Sequence[str]) -> list[str]:
    """Deletes `keys`, S3_DELETE_MAX a request; returns the keys S3 reported it could not
    delete (DeleteObjects answers 200 with per-key errors, so a caller that must be sure
    checks the list)."""
    failed: list[str] = []
    for start in range(0, len(keys), S3_DELETE_MAX):
        chunk = keys[start : start + S3_DELETE_MAX]
        reply = s3().delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
        )
        failed += [e.get("Key", "") for e in reply.get("Errors", [])]
    return failed


@cache
def s3_signer() -> S3Client:
    """For presigned URLs: Signature Version 4, which S3 requires for objects encrypted with
    KMS (the exports bucket's), whatever signature the SDK would choose by default."""
    config = _CONFIG.merge(Config(signature_version="s3v4"))
    with _creating:
        return _session().create_client("s3", config=config)  # type: ignore[return-value]


def events() -> EventBridgeClient:
    return _client("events", False)  # type: ignore[no-any-return]


def kms() -> KMSClient:
    return _client("kms", False)  # type: ignore[no-any-return]


def secretsmanager() -> SecretsManagerClient:
    return _client("secretsmanager", False)  # type: ignore[no-any-return]


# campaigns: D -- the message providers (typed Any: no stubs are installed for them)
def sesv2() -> Any:
    return _client("sesv2", False)


def sns() -> Any:
    return _client("sns", False)


def sms_voice() -> Any:
    """AWS End User Messaging SMS (the `sms-voice` API, boto3's pinpoint-sms-voice-v2)."""
    return _client("pinpoint-sms-voice-v2", False)


# analytics: the metric queries in AWS (typed Any: no stubs are installed for it)
def athena() -> Any:
    return _client("athena", False)


def client_for(service: str, bulk: bool = False) -> Any:
    """The shared client of one service (used by tests and benchmarks to count requests)."""
    return _client(service, bulk)


def reset_clients() -> None:
    """Forget every client and the session, so the next ones see a changed environment (tests,
    emulator)."""
    _client.cache_clear()
    s3_signer.cache_clear()
    _session.cache_clear()


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def failed_call_code(exc: BaseException) -> str | None:
    """The AWS error code when `exc` is a call AWS refused; None for any other exception."""
    return error_code(exc) if isinstance(exc, ClientError) else None


def is_busy(exc: BaseException) -> bool:
    """A service did not answer in time or said it is overloaded: the same request may well
    succeed in a moment (the caller may be told to retry), unlike a wrong request."""
    if isinstance(exc, (ReadTimeoutError, ConnectTimeoutError, EndpointConnectionError)):
        return True
    return isinstance(exc, ClientError) and error_code(exc) in _BUSY_CODES
