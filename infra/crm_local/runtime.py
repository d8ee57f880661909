"""Loading and invoking the template's functions in this process, as Lambda would.

A container is one import of a function's module, used by one invocation at a time, as in
Lambda; a function's pool grows containers up to its concurrency, each a fresh import (its
own module-level state, its own cold start).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from aws_lambda_powertools.metrics import Metrics
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from crm_local.provision import ACCOUNT, REGION
from crm_local.template import FunctionSpec

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    function_name: str
    timeout_s: int = 15
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.invoked_function_arn = (
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"
        )
        self.function_version = "$LATEST"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


_import_lock = threading.Lock()
_serial = itertools.count()


def _import_function(spec: FunctionSpec, module_name: str) -> ModuleType:
    path = spec.code_uri / (spec.handler.rpartition(".")[0].replace(".", "/") + ".py")
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


class Container:
    def __init__(self, spec: FunctionSpec, env: Mapping[str, str]) -> None:
        self.spec = spec
        self.lock = threading.Lock()
        self.name = f"crm_function_{spec.logical_id}_{next(_serial)}"
        with _import_lock, environment(env):
            self.module = _import_function(spec, self.name)
        self.handler: Handler = getattr(self.module, spec.handler.rpartition(".")[2])

    def invoke(self, event: dict[str, Any]) -> Any:
        with self.lock:
            context = LambdaContext(self.spec.logical_id, timeout_s=self.spec.timeout)
            try:
                return self.handler(event, context)
            finally:
                _drop_disabled_metrics()


def _drop_disabled_metrics() -> None:
    """With POWERTOOLS_METRICS_DISABLED (the emulator's quiet mode) Powertools neither prints
    nor clears a function's metrics at the end of an invocation, and its metric set is one for
    the whole process: every container's values pile up until 100 of one metric make it print
    them all. Lambda flushes (and so clears) after each invocation; the emulator clears."""
    if is_metrics_disabled():
        Metrics().clear_metrics()


class FunctionPool:
    """Containers of one function; an invocation takes a free one or starts another."""

    def __init__(self, spec: FunctionSpec, env: Mapping[str, str], concurrency: int = 4) -> None:
        self.spec = spec
        self.env = dict(env)
        self.concurrency = concurrency
        self._idle: list[Container] = []
        self._count = 0
        self._cond = threading.Condition()

    def _take(self) -> Container:
        with self._cond:
            while not self._idle and self._count >= self.concurrency:
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self._count += 1
        try:
            return Container(self.spec, self.env)
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def invoke(self, event: dict[str, Any]) -> Any:
        container = self._take()
        try:
            return container.invoke(event)
        finally:
            with self._cond:
                self._idle.append(container)
                self._cond.notify()

    def first_container(self) -> Container:
        with self._cond:
            if self._idle:
                return self._idle[0]
        container = self._take()
        with self._cond:
            self._idle.append(container)
        return container


_pools: dict[tuple[str, str], FunctionPool] = {}
_pools_lock = threading.Lock()


def pool_for(spec: FunctionSpec, env: Mapping[str, str]) -> FunctionPool:
    key = (spec.logical_id, str(spec.code_uri))
    with _pools_lock:
        if key not in _pools:
            _pools[key] = FunctionPool(spec, env)
        return _pools[key]


def invoke(spec: FunctionSpec, event: dict[str, Any], env: Mapping[str, str]) -> Any:
    """Run the function once, in a warm container of its pool when one is free."""
    return pool_for(spec, env).invoke(event)


def load_module(spec: FunctionSpec) -> ModuleType:
    """The module of one of the function's containers (for route tables, OpenAPI, ...),
    imported with the template's literal variables (service name, log level); references to
    resources need a provisioned stack and are left out."""
    literal = {k: v for k, v in spec.environment.items() if isinstance(v, str)}
    return pool_for(spec, literal).first_container().module


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def reset_process_state() -> None:
    """Forget the crm package's per-process state (the composition root and its AWS
    clients), as a fresh Lambda container would; needed when the AWS endpoint or resources
    change."""
    from crm import composition

    composition.reset()
