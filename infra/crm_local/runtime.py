"""Loading and invoking the template's functions in this process, as Lambda would."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

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


_loaded: dict[str, Handler] = {}


def load_module(spec: FunctionSpec) -> ModuleType:
    """Import the function's module under a name of its own (every function has an app.py)."""
    unique = f"crm_function_{spec.logical_id}"
    if unique in sys.modules:
        return sys.modules[unique]
    module_name = spec.handler.rpartition(".")[0]
    path = spec.code_uri / (module_name.replace(".", "/") + ".py")
    loader_spec = importlib.util.spec_from_file_location(unique, path)
    if loader_spec is None or loader_spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[unique] = module
    try:
        loader_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[unique]
        raise
    return module


def load_handler(spec: FunctionSpec) -> Handler:
    if spec.logical_id not in _loaded:
        attr = spec.handler.rpartition(".")[2]
        _loaded[spec.logical_id] = getattr(load_module(spec), attr)
    return _loaded[spec.logical_id]


def forget_handlers() -> None:
    for logical_id in list(_loaded):
        sys.modules.pop(f"crm_function_{logical_id}", None)
    _loaded.clear()


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


def invoke(spec: FunctionSpec, event: dict[str, Any], env: Mapping[str, str]) -> Any:
    """Run the function once with its own environment, as its Lambda container would."""
    with environment(env):
        handler = load_handler(spec)
        return handler(event, LambdaContext(spec.logical_id, timeout_s=spec.timeout))


def reset_process_state() -> None:
    """Forget every per-process cache of the crm package (clients, settings, services), as a
    fresh Lambda container would; needed when the AWS endpoint or resources change."""
    from crm import aws, config, keys
    from crm.profiles import folding, ingest, service

    aws.reset_clients()
    for cached in (
        config.settings,
        keys.blind_index,
        service.profile_service,
        folding.event_folding,
        ingest.event_ingestion,
    ):
        cached.cache_clear()
