"""What a function's first invocation pays for beyond importing its handler module, derived by
running one against moto instead of kept by hand.

Each function of template.yaml gets fresh first invocations (its module imported anew, every
per-process cache of the `crm` package emptied, as in a new Lambda container), driven by its own
triggers: API Gateway requests, a scheduled event, the messages its SQS queue receives. While
they run, this records:

- the AWS clients created (botocore `create_client`, whichever module calls it);
- the modules imported from code of the `crm` package or of the function (lazy imports);
- the zero-argument cached factories (`functools.cache`) of `crm` modules and of the handler
  module that were filled, i.e. the services built lazily; a factory that needs the network to
  build (e.g. fetching a secret) is left out, since that is real work, not init;
- the pydantic models and module-level TypeAdapters whose schema was built during the
  invocation (`defer_build`), since the first request pays for that too (schemas an earlier
  invocation in this process built are put back unbuilt first, as a new container has them).

The cold-start probe (bench.coldstart) replays these in a fresh interpreter after importing the
handler module. Nothing here names a module, service or factory of the package: a restructured
package is measured as it is.
"""

from __future__ import annotations

import builtins
import importlib.util
import inspect
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import botocore.client
import botocore.session
from pydantic import BaseModel, TypeAdapter
from pydantic._internal._model_construction import ModelMetaclass

from crm_local.template import ROOT, FunctionSpec

PACKAGE = "crm"
HANDLER = "<handler>"  # stands for the handler module in factory names
_CODE_DIRS = (str(ROOT / "layers" / "crm" / PACKAGE), str(ROOT / "functions"))


@dataclass
class FirstRequest:
    """What one function's first invocations created, beyond the import of its module."""

    function: str
    requests: list[str] = field(default_factory=list)
    clients: set[str] = field(default_factory=set)
    lazy_imports: set[str] = field(default_factory=set)
    factories: set[str] = field(default_factory=set)  # "module:name" or "<handler>:name"
    network_factories: set[str] = field(default_factory=set)
    deferred_models: set[str] = field(default_factory=set)  # "module:qualname"
    deferred_adapters: set[str] = field(default_factory=set)  # "module:attribute"
    errors: list[str] = field(default_factory=list)
    # The repository's sample events (events/) delivered where the run produced no message.
    samples: set[str] = field(default_factory=set)
    # An API function's first requests one by one: a new container serves one of them first,
    # so each is a cold start of its own (the fields above are their union).
    alone: list[FirstRequest] = field(default_factory=list)

    def merge(self, other: FirstRequest) -> None:
        self.requests += other.requests
        self.clients |= other.clients
        self.lazy_imports |= other.lazy_imports
        self.factories |= other.factories
        self.network_factories |= other.network_factories
        self.deferred_models |= other.deferred_models
        self.deferred_adapters |= other.deferred_adapters
        self.errors += other.errors
        self.samples |= other.samples


# ---------------------------------------------------------------- process state of the package
def _package_modules() -> list[ModuleType]:
    return [
        m
        for name, m in list(sys.modules.items())
        if m is not None and (name == PACKAGE or name.startswith(PACKAGE + "."))
    ]


def _caches(module: ModuleType) -> Iterator[tuple[str, Any]]:
    for name, value in list(vars(module).items()):
        cached = hasattr(value, "cache_clear") and hasattr(value, "cache_info")
        if cached and getattr(value, "__module__", None) == module.__name__:
            yield name, value


def _zero_args(wrapper: Any) -> bool:
    try:
        return not inspect.signature(wrapper.__wrapped__).parameters
    except (TypeError, ValueError, AttributeError):
        return False


def clear_package_caches() -> None:
    """Forget the package's per-process state as a new container would: the emulator's own
    reset, then every functools cache of the package's modules (clients, settings, services)."""
    from crm_local.runtime import reset_process_state

    reset_process_state()
    for module in _package_modules():
        for _, cached in _caches(module):
            cached.cache_clear()


def _filled_factories(handler: ModuleType) -> set[str]:
    found = set()
    for module in [*_package_modules(), handler]:
        label = HANDLER if module is handler else module.__name__
        for name, cached in _caches(module):
            if _zero_args(cached) and cached.cache_info().currsize:
                found.add(f"{label}:{name}")
    return found


def _models() -> dict[str, type[BaseModel]]:
    seen: dict[str, type[BaseModel]] = {}
    stack: list[type[BaseModel]] = [BaseModel]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            stack.append(sub)
            if sub.__module__.startswith(PACKAGE + ".") and "<locals>" not in sub.__qualname__:
                seen[f"{sub.__module__}:{sub.__qualname__}"] = sub
    return seen


def _adapters() -> dict[str, TypeAdapter[Any]]:
    found: dict[int, tuple[str, TypeAdapter[Any]]] = {}
    for module in _package_modules():
        for name, value in list(vars(module).items()):
            if isinstance(value, TypeAdapter):  # under its first name, not each import of it
                found.setdefault(id(value), (f"{module.__name__}:{name}", value))
    return dict(found.values())


# Schemas seen unbuilt (`defer_build`), with their attributes as they were then: a new container
# has them unbuilt again, whatever an earlier invocation in this process built.
_pristine: dict[str, tuple[Any, dict[str, Any]]] = {}


def _remember_unbuilt() -> None:
    for key, cls in _models().items():
        if key not in _pristine and not cls.__pydantic_complete__:
            _pristine[key] = (cls, dict(vars(cls)))
    for key, adapter in _adapters().items():
        if key not in _pristine and not adapter.pydantic_complete:
            _pristine[key] = (adapter, dict(vars(adapter)))


def _unbuild() -> None:
    for target, saved in _pristine.values():
        current = dict(vars(target))
        for name in current.keys() - saved.keys():
            delattr(target, name)
        for name, value in saved.items():
            if current.get(name, _pristine) is not value:
                setattr(target, name, value)


@contextmanager
def _seeing_new_models(defined: set[str]) -> Iterator[None]:
    """Models whose class an invocation defines (its lazy imports) are remembered unbuilt as
    they are defined: the invocation that builds one is credited with it (it was never seen
    incomplete otherwise), and later containers get it unbuilt again."""
    real_new = ModelMetaclass.__new__

    def new(mcs: Any, *args: Any, **kwargs: Any) -> Any:
        cls: Any = real_new(mcs, *args, **kwargs)
        key = f"{cls.__module__}:{cls.__qualname__}"
        if (cls.__module__.startswith(PACKAGE + ".") and "<locals>" not in cls.__qualname__
                and not cls.__pydantic_complete__):  # fmt: skip
            defined.add(key)
            _pristine.setdefault(key, (cls, dict(vars(cls))))
        return cls

    ModelMetaclass.__new__ = new  # type: ignore[method-assign]
    try:
        yield
    finally:
        ModelMetaclass.__new__ = real_new  # type: ignore[method-assign]


def _incomplete() -> tuple[set[str], set[str]]:
    models = {k for k, m in _models().items() if not m.__pydantic_complete__}
    adapters = {k for k, a in _adapters().items() if not a.pydantic_complete}
    return models, adapters


# ---------------------------------------------------------------- recording hooks
class _NetworkNeeded(Exception):
    pass


@contextmanager
def _recording(into: FirstRequest) -> Iterator[None]:
    real_create = botocore.session.Session.create_client
    real_import = builtins.__import__

    def create_client(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        into.clients.add(service_name)
        return real_create(self, service_name, *args, **kwargs)

    def recording_import(
        name: str,
        globals: Mapping[str, object] | None = None,
        locals: Mapping[str, object] | None = None,
        fromlist: Any = (),
        level: int = 0,
    ) -> ModuleType:
        caller = str((globals or {}).get("__file__") or "")
        if caller.startswith(_CODE_DIRS):
            target = name
            if level:
                target = importlib.util.resolve_name(
                    "." * level + name, str((globals or {}).get("__package__") or "")
                )
            into.lazy_imports.add(target)
            for sub in fromlist or ():
                # `from x import y` where y is a submodule imports x.y
                if isinstance(sub, str) and f"{target}.{sub}" in sys.modules:
                    into.lazy_imports.add(f"{target}.{sub}")
        return real_import(name, globals, locals, fromlist, level)

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
    builtins.__import__ = recording_import
    try:
        yield
    finally:
        botocore.session.Session.create_client = real_create  # type: ignore[method-assign]
        builtins.__import__ = real_import


@contextmanager
def _no_network() -> Iterator[None]:
    client_class, method = botocore.client.BaseClient, "_make_api_call"
    real = getattr(client_class, method)

    def refuse(self: Any, operation: str, params: Any) -> Any:
        raise _NetworkNeeded(operation)

    setattr(client_class, method, refuse)
    try:
        yield
    finally:
        setattr(client_class, method, real)


def resolve_factory(name: str, handler: ModuleType) -> Callable[[], Any]:
    module_name, _, attr = name.partition(":")
    module = handler if module_name == HANDLER else importlib.import_module(module_name)
    return getattr(module, attr)  # type: ignore[no-any-return]


# ---------------------------------------------------------------- one first invocation
Invoke = Callable[[Callable[[dict[str, Any]], Any]], Any]


def first_invocation(spec: FunctionSpec, env: Mapping[str, str], label: str,
                     drive: Invoke) -> FirstRequest:  # fmt: skip
    """A new container of `spec` (fresh module, empty caches) runs one invocation that `drive`
    makes through the callable it is given; returns what that invocation created."""
    from crm_local.runtime import Container, environment

    clear_package_caches()
    _unbuild()
    container = Container(spec, env)
    _remember_unbuilt()
    found = FirstRequest(spec.logical_id, requests=[label])
    models_before, adapters_before = _incomplete()
    defined: set[str] = set()
    with (environment(env), _recording(found), _seeing_new_models(defined),
          warnings.catch_warnings()):  # fmt: skip
        warnings.simplefilter("ignore")  # a fit on a handful of customers is a poor one
        try:
            drive(container.invoke)
        except Exception as exc:
            found.errors.append(f"{label}: {type(exc).__name__}: {exc}")
    models_after, adapters_after = _incomplete()
    found.deferred_models = (models_before | defined) - models_after
    found.deferred_adapters = adapters_before - adapters_after
    found.lazy_imports = {m for m in found.lazy_imports if not m.startswith(container.name)} - {
        "__future__"
    }
    filled = _filled_factories(container.module)
    with environment(env):
        for name in sorted(filled):
            clear_package_caches()
            try:
                with _no_network():
                    resolve_factory(name, container.module)()
            except _NetworkNeeded:
                found.network_factories.add(name)
            except Exception as exc:
                found.errors.append(f"{name}: {type(exc).__name__}: {exc}")
                found.network_factories.add(name)
    clear_package_caches()
    found.factories = filled - found.network_factories
    return found


# ---------------------------------------------------------------- driving each trigger
def _paid(customer_id: str, n: int) -> dict[str, Any]:
    return {
        "event_id": f"bench-{n}", "type": "order_paid", "order_id": f"bench-o-{n}",
        "customer_id": customer_id, "amount": "99.00", "occurred_at": "2026-11-01T10:00:00Z",
        "items": [{"sku": "sku-1", "category": "美妆", "quantity": 1, "unit_price": "99.00"}],
    }  # fmt: skip


def _queue_of(props: Mapping[str, Any]) -> str | None:
    queue = props.get("Queue")
    if isinstance(queue, dict) and "Fn::GetAtt" in queue:
        return str(queue["Fn::GetAtt"][0])
    return None


def derive_first_requests() -> dict[str, FirstRequest]:
    """Every function of template.yaml, first-invoked against moto by its own triggers."""
    from moto import mock_aws

    from crm_local.harness import local_suite
    from crm_local.sqs import sqs_event

    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                             "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")}  # fmt: skip
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1"})  # fmt: skip
    os.environ.pop("AWS_ENDPOINT_URL", None)
    results: dict[str, FirstRequest] = {}
    try:
        with mock_aws(), local_suite() as suite:
            pending = suite.stack.template.functions()
            seeded = False
            while pending:  # producers before their consumers: each sees realistic data
                spec = min(pending, key=lambda s: _turn(suite, s))
                pending.remove(spec)
                if not seeded and _turn(suite, spec) > 1:
                    _seed_base(suite)  # after the API's and the consumers' first requests
                    seeded = True
                results[spec.logical_id] = _drive(suite, spec, sqs_event)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return results


# A real base's segment-run shards all hold customers who buy. The planner queues at least 8
# shards and DynamoDB spreads a scan's segments by key hash: with the one or two customers the
# API's requests made, the worker's first message was, by chance, an empty shard that did none
# of a shard's work (profile reads, scoring, writing what changed, announcing tiers). Before
# the planner runs, 64 customers with an order each are created and folded (through the API
# and the event folder, after both were derived): no shard is left empty but by odds of ~1 in
# 600.
SEEDED_CUSTOMERS = 64


def _seed_base(suite: Any) -> None:
    events = []
    for n in range(SEEDED_CUSTOMERS):
        body = {"identities": [{"channel": "app", "external_id": f"bench-base-{n}"}]}
        reply = suite.call("POST", "/customers", body)
        if reply.status >= 400:
            raise RuntimeError(f"seeding the base: POST /customers answered {reply.status}")
        events.append({**_paid(reply.body["customer_id"], 1000 + n),
                       "amount": f"{50 + 37 * n % 900}.00"})  # fmt: skip
        events[-1]["items"][0]["unit_price"] = events[-1]["amount"]
    reply = suite.call("POST", "/events", {"events": events})
    if reply.status >= 400:
        raise RuntimeError(f"seeding the base: POST /events answered {reply.status}: {reply.body}")
    suite.drain(rounds=SEEDED_CUSTOMERS)


def _turn(suite: Any, spec: FunctionSpec) -> int:
    """API functions first (they take outside input), then SQS consumers with messages waiting,
    then scheduled ones (the planner reads what the consumers folded), then the rest."""
    types = {e.type for e in spec.events}
    if "Api" in types:
        return 0
    for ev in spec.events:
        queue = _queue_of(ev.properties) if ev.type == "SQS" else None
        if queue and _waiting(suite, queue):
            return 1
    return 2 if types & {"Schedule", "EventBridgeRule", "ScheduleV2"} else 3


def _waiting(suite: Any, queue: str) -> int:
    import boto3

    attrs = boto3.client("sqs").get_queue_attributes(
        QueueUrl=suite.queue_url(queue), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attrs.get("ApproximateNumberOfMessages", 0))


def sample_event(queue: str) -> tuple[str, dict[str, Any]] | None:
    """The sample SQS event of events/ whose source is `queue` (by its logical id)."""
    for path in sorted((ROOT / "events").glob("*.json")):
        event = json.loads(path.read_text(encoding="utf-8"))
        records = event.get("Records") if isinstance(event, dict) else None
        if records and str(records[0].get("eventSourceARN", "")).endswith(f"-{queue}"):
            return f"events/{path.name}", event
    return None


def _deliver(event: dict[str, Any]) -> Invoke:
    return lambda invoke: invoke(event)


def _drive(suite: Any, spec: FunctionSpec, sqs_event: Callable[..., Any]) -> FirstRequest:
    # Quiet logs (the level is read when the module is imported; nothing else depends on it).
    env = {**suite.stack.environment(spec), "POWERTOOLS_LOG_LEVEL": "ERROR",
           "POWERTOOLS_METRICS_DISABLED": "true"}  # fmt: skip
    total = FirstRequest(spec.logical_id)
    types = {e.type for e in spec.events}

    def through_api(label: str, method: str, path: str, body: Any, role: str) -> FirstRequest:
        def drive(invoke: Callable[[dict[str, Any]], Any]) -> Any:
            real = suite.invoke
            suite.invoke = lambda function, event: invoke(event)
            try:
                reply = suite.call(method, path, body, role=role)
            finally:
                suite.invoke = real
            if reply.status >= 400:
                raise RuntimeError(f"{method} {path} answered {reply.status}: {reply.body}")
            return reply

        return first_invocation(spec, env, label, drive)

    if "Api" in types:
        body = {"identities": [{"channel": "app", "external_id": "bench-1"}],
                "attributes": {"phone": "13800001234", "name": "测试"}}  # fmt: skip
        created = through_api("POST /customers", "POST", "/customers", body, "admin")
        cid = suite.call("POST", "/customers", body).body["customer_id"]
        for one in (
            created,
            through_api("GET /customers/{id} (support agent)", "GET", f"/customers/{cid}",
                        None, "support_agent"),
            through_api("POST /events", "POST", "/events", {"events": [_paid(cid, 1)]},
                        "admin"),
        ):  # fmt: skip
            total.merge(one)
            total.alone.append(one)
    elif types & {"Schedule", "EventBridgeRule", "ScheduleV2"}:
        event = {"version": "0", "id": "bench", "detail-type": "Scheduled Event",
                 "source": "aws.events", "account": "123456789012", "region": "us-east-1",
                 "time": "2026-11-23T18:00:00Z", "resources": [], "detail": {}}  # fmt: skip
        total.merge(first_invocation(spec, env, "scheduled event", lambda invoke: invoke(event)))
    for ev in spec.events:
        queue = _queue_of(ev.properties) if ev.type == "SQS" else None
        if queue is None:
            continue
        arn = suite.stack.attrs[queue]["Arn"]
        messages = suite.receive(queue, max_messages=1)
        if messages:
            event = sqs_event(messages, arn)
            label = f"SQS batch of 1 from {queue}"
            total.merge(first_invocation(spec, env, label, _deliver(event)))
            continue
        sample = sample_event(queue)
        if sample is None:
            total.errors.append(f"{queue}: no message to deliver (nothing produced one)")
            continue
        # Nothing in this short run produced one (a timer not yet due, no campaign or privacy
        # request): the repository's sample for the queue (ids of nothing stored, so the
        # first invocation parses, reads and settles it, as a stale wake-up is settled).
        name, sampled = sample
        for record in sampled["Records"]:
            record["eventSourceARN"] = arn
        found = first_invocation(spec, env, f"sample {name} on {queue}", _deliver(sampled))
        found.samples.add(name)
        total.merge(found)
    if not total.requests:
        total.errors.append("no trigger this benchmark knows how to drive")
    return total


def report(found: Mapping[str, FirstRequest]) -> str:
    lines = []
    for name, f in found.items():
        lines.append(f"{name}: {', '.join(f.requests) or '-'}")
        lines.append(f"  clients: {', '.join(sorted(f.clients)) or '-'}")
        lines.append(f"  factories: {', '.join(sorted(f.factories)) or '-'}")
        if f.network_factories:
            lines.append(f"  left out (need the network): {', '.join(sorted(f.network_factories))}")
        outside = sorted(m for m in f.lazy_imports if not m.startswith(PACKAGE))
        lines.append(f"  imports outside {PACKAGE} during the request: {', '.join(outside) or '-'}")
        deferred = sorted(f.deferred_models | f.deferred_adapters)
        lines.append(f"  schemas built on first use: {', '.join(deferred) or '-'}")
        for error in f.errors:
            lines.append(f"  ! {error}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(derive_first_requests()))
