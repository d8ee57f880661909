from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

# Never reach a real AWS account from tests, whatever the developer's shell holds.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from crm_local.harness import Suite, local_suite
from crm_local.moto_server import install_patches

# The emulator's moto speed-ups (checked to keep moto's answers in test_moto_patches.py): tests
# that load a shop would otherwise copy whole tables on every transaction.
install_patches()


@pytest.fixture
def suite() -> Iterator[Suite]:
    """Every resource of template.yaml in moto, and the functions' environment set."""
    with mock_aws(), local_suite() as deployed:
        yield deployed


@pytest.fixture
def atomic_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """One AWS request at a time inside moto, as DynamoDB makes each request atomic: moto's
    in-process backend checks a transaction's conditions and applies it without a lock, so
    two threads could both pass `rev = :rev`. Only moto is serialized; the service code, its
    retries and its backoff run concurrently."""
    lock = threading.Lock()
    original = BotocoreStubber.__call__

    def one_at_a_time(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, event_name, request, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", one_at_a_time)
