"""The layer's botocore session registers only the built-in handlers of the services it makes
clients of: every event those clients can emit reaches the same handlers, in the same order, as
on botocore's own session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.handlers
import botocore.session
import pytest

from crm import aws


@pytest.fixture(autouse=True)
def _fresh_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    aws.reset_clients()
    yield
    aws.reset_clients()


def _botocore_client(service: str) -> Any:
    """A client of botocore's own session, reading the same (cut) models as the layer's."""
    session = botocore.session.get_session()
    session.register_component("data_loader", aws._session().get_component("data_loader"))
    return session.create_client(service, config=aws._CONFIG)


def _names(client: Any, event: str) -> list[str]:
    # Handlers are functions, or bound methods of objects each client makes for itself.
    found = client.meta.events._emitter._handlers.prefix_search(event)
    return [getattr(h, "__qualname__", type(h).__qualname__) for h in found]


def _events_of(client: Any) -> set[str]:
    """Every event name a built-in handler listens to, as this client would emit it (its
    service's name, each of its operations), and the events every client emits."""
    service = client.meta.service_model.service_id.hyphenize()
    operations = client.meta.service_model.operation_names
    kinds = {spec[0].split(".")[0] for spec in botocore.handlers.BUILTIN_HANDLERS} | {
        "provide-client-params", "before-parameter-build", "before-endpoint-resolution",
        "before-call", "request-created", "before-sign", "before-send", "needs-retry",
        "after-call", "after-call-error", "before-parse", "response-received", "choose-signer",
        "getattr",
    }  # fmt: skip
    events = set(kinds) | {f"{kind}.{service}" for kind in kinds}
    events |= {f"{kind}.{service}.{op}" for kind in kinds for op in operations}
    return events


@pytest.mark.parametrize("service", aws.MODELED_SERVICES)
def test_every_event_of_a_client_reaches_the_handlers_botocore_gives_it(service: str) -> None:
    ours, theirs = aws.client_for(service), _botocore_client(service)

    assert ours.meta.service_model.service_id.hyphenize() in aws.EVENT_SERVICES
    for event in sorted(_events_of(ours)):
        assert _names(ours, event) == _names(theirs, event), event


def test_the_handlers_of_other_services_are_left_out() -> None:
    ours = aws._session().get_component("event_emitter")
    theirs = botocore.session.get_session().get_component("event_emitter")

    def count(emitter: Any) -> int:
        return sum(1 for spec in botocore.handlers.BUILTIN_HANDLERS
                   if spec[1] in emitter._emitter._handlers.prefix_search(
                       emitter._alias_event_name(spec[0])))  # fmt: skip

    assert aws.concerns_other_service("before-call.ec2.CopySnapshot")
    assert aws.concerns_other_service("docs.*.glacier.UploadArchive.complete-section")
    assert not aws.concerns_other_service("before-call.secretsmanager.GetSecretValue")
    assert not aws.concerns_other_service("before-parameter-build")
    assert not aws.concerns_other_service("docs.*.s3.CopyObject.complete-section")
    assert count(theirs) == len(botocore.handlers.BUILTIN_HANDLERS)
    skipped = sum(1 for spec in botocore.handlers.BUILTIN_HANDLERS
                  if aws.concerns_other_service(spec[0]))  # fmt: skip
    assert skipped > 30
    assert count(ours) == len(botocore.handlers.BUILTIN_HANDLERS) - skipped
