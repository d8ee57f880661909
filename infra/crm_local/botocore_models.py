"""Pruned botocore service models for the layer: each service the package calls, cut to the
operations this project's code calls, without documentation.

A client's creation parses its service's whole `service-2.json` (DynamoDB's is 556 KB, KMS's
547 KB, S3's 1.4 MB, mostly documentation and operations this project never calls): that JSON
parsing was the largest part of each client's cost in a cold start. `crm.aws` puts the folder
this writes (`layers/crm/crm/botocore_data`) first on its session's data path, so the clients it
makes load these; everything else (endpoint rule sets, paginators, waiters, other services)
comes from botocore's own data, and any other session (moto, the emulator's provisioning) never
sees them.

The operations are found in the code, not kept by hand: every attribute called on anything
(`x.get_item(...)`) and every string passed to `get_paginator`, `get_waiter`, `can_paginate` or
`generate_presigned_url`, that is an operation of a service in `crm.aws.SERVICES`, in the layer,
the functions, the emulator, the tests and the benchmarks (an operation of our own with an AWS
name only adds that operation). A pruned model keeps those operations and every shape they
reach, every exception shape (a client's `exceptions` are built from them), the metadata, and
an endpoint-discovery operation if the service has one, each exactly as botocore has it, less
the `documentation` of operations and shapes. `tests/unit/platform/test_botocore_models.py`
checks that the written files are what the installed botocore and today's code give; after a
botocore upgrade or a new call,
`python -m crm_local.botocore_models --write` (`make botocore-models`) writes them again.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import botocore
import botocore.session
from botocore import xform_name

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / "layers" / "crm" / "crm" / "botocore_data"
SCANNED = ("layers/crm/crm", "functions", "infra/crm_local", "tests", "bench")
# Methods whose first string argument names an operation.
_NAMING_CALLS = frozenset({"get_paginator", "get_waiter", "can_paginate", "generate_presigned_url"})
_DROPPED_KEYS = frozenset({"documentation"})
# botocore's files, copied with their data as it is: the session-wide ones a client creation
# loads, and each service's endpoint rules, paginators and waiters (and their sdk-extras).
# Written as compact JSON, uncompressed (botocore reads `.json` before `.json.gz`): botocore
# indents them and gzips the rule sets, so S3's rule set, 119 KB of data, was 922 KB of text
# that every cold start with an S3 client unzipped (~1.8 ms of CPU) and then parsed (~1.8 ms,
# ~0.8 ms compact).
VERSION_FILE = "botocore-version.txt"
_COPIED_TOP = ("partitions.json", "sdk-default-configuration.json", "_retry.json")
_COPIED_PREFIXES = ("endpoint-rule-set-1.", "paginators-1.", "waiters-2.")


def services() -> tuple[str, ...]:
    from crm.aws import MODELED_SERVICES

    return MODELED_SERVICES


def _sources(root: Path) -> Iterator[Path]:
    for folder in SCANNED:
        yield from sorted((root / folder).rglob("*.py"))


@cache  # the scanned code does not change while a process runs
def called_names(root: Path = ROOT) -> frozenset[str]:
    """Every name called as a method, and every operation named to a paginator, waiter or
    presigner, in the scanned code."""
    names: set[str] = set()
    for path in _sources(root):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            names.add(node.func.attr)
            if node.func.attr in _NAMING_CALLS and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    names.add(first.value)
    return frozenset(names)


def _undocumented(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _undocumented(v) for k, v in value.items() if k not in _DROPPED_KEYS}
    if isinstance(value, list):
        return [_undocumented(v) for v in value]
    return value


def _shape_refs(value: Any) -> Iterator[str]:
    """Names of the shapes a part of the model refers to (`{"shape": name}` anywhere in it)."""
    if isinstance(value, dict):
        ref = value.get("shape")
        if isinstance(ref, str):
            yield ref
        for v in value.values():
            yield from _shape_refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from _shape_refs(v)


def prune(model: Mapping[str, Any], operations: Iterable[str]) -> dict[str, Any]:
    """`model` cut to `operations` (botocore's names, e.g. GetItem), the shapes they reach and
    every exception shape, without documentation."""
    ops = model["operations"]
    keep = {name for name in operations if name in ops}
    keep |= {name for name, op in ops.items() if op.get("endpointoperation")}
    kept_ops = {name: ops[name] for name in sorted(keep)}
    shapes = model["shapes"]
    wanted = [name for name, shape in shapes.items() if shape.get("exception")]
    wanted += list(_shape_refs(kept_ops))
    reached: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in reached:
            continue
        reached.add(name)
        wanted.extend(_shape_refs(shapes[name]))
    pruned = {key: value for key, value in model.items() if key not in {"operations", "shapes"}}
    # Documentation is dropped from operations and shapes only: botocore reads it elsewhere
    # (a client context parameter's, e.g. S3's, is required).
    pruned["operations"] = _undocumented(kept_ops)
    pruned["shapes"] = _undocumented({name: shapes[name] for name in sorted(reached)})
    return pruned


def operations_called(model: Mapping[str, Any], names: frozenset[str]) -> set[str]:
    """The model's operations whose Python name (or own name) is among `names`."""
    return {op for op in model["operations"] if xform_name(op) in names or op in names}


def _text(model: Mapping[str, Any], sort_keys: bool = True) -> bytes:
    text = json.dumps(model, separators=(",", ":"), sort_keys=sort_keys, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def copied_file(builtin: Path, rel: str) -> tuple[str, bytes]:
    """One of botocore's files as the layer keeps it: its name without `.gz`, its data (keys in
    botocore's order) as compact JSON."""
    path = builtin / rel
    raw = gzip.decompress(path.read_bytes()) if rel.endswith(".gz") else path.read_bytes()
    return rel.removesuffix(".gz"), _text(json.loads(raw), sort_keys=False)


def _builtin_loader() -> Any:
    return botocore.session.get_session().get_component("data_loader")


def _latest(loader: Any, service: str) -> str:
    return str(loader.determine_latest_version(service, "service-2"))


def pruned_models(root: Path = ROOT) -> dict[str, tuple[str, dict[str, Any]]]:
    """service -> (api version, pruned model), from the installed botocore (its model as a
    client loads it: with its sdk-extras merged in)."""
    loader = _builtin_loader()
    names = called_names(root)
    result = {}
    for service in services():
        version = _latest(loader, service)
        model = loader.load_service_model(service, "service-2", version)
        result[service] = (version, prune(model, operations_called(model, names)))
    return result


def prune_endpoints(endpoints: Mapping[str, Any], keys: set[str]) -> dict[str, Any]:
    """botocore's legacy endpoint data (1.2 MB) with each partition's services cut to `keys`."""
    pruned = dict(endpoints)
    pruned["partitions"] = [
        {**partition, "services": {
            name: value for name, value in partition["services"].items() if name in keys
        }}
        for partition in endpoints["partitions"]
    ]  # fmt: skip
    return pruned


def _endpoint_keys(models: Mapping[str, tuple[str, dict[str, Any]]]) -> set[str]:
    # STS too: a session resolving credentials by assuming a role makes an STS client.
    keys = {"sts"}
    for service, (_, model) in models.items():
        keys |= {service, model["metadata"].get("endpointPrefix", service)}
    return keys


def _copied(service: str, version: str) -> list[str]:
    folder = Path(_builtin_loader().BUILTIN_DATA_PATH) / service / version
    return sorted(
        f"{service}/{version}/{path.name}"
        for path in folder.iterdir()
        if path.name.startswith(_COPIED_PREFIXES)
    )


def expected_files(root: Path = ROOT) -> dict[str, bytes]:
    """Relative path under TARGET -> content, as `--write` writes them: the pruned service
    models and endpoint data, and botocore's own files a client of these services loads."""
    builtin = Path(_builtin_loader().BUILTIN_DATA_PATH)
    models = pruned_models(root)
    files = dict(copied_file(builtin, name) for name in _COPIED_TOP)
    # crm.aws reads this folder only under the botocore it was written from (the Lambda
    # runtime's own boto3 may be another: then the clients read botocore's data as before).
    files[VERSION_FILE] = (botocore.__version__ + "\n").encode()
    endpoints = json.loads((builtin / "endpoints.json").read_bytes())
    files["endpoints.json"] = _text(prune_endpoints(endpoints, _endpoint_keys(models)))
    for service, (version, model) in models.items():
        files[f"{service}/{version}/service-2.json"] = _text(model)
        files.update(copied_file(builtin, rel) for rel in _copied(service, version))
    return files


def write(target: Path = TARGET) -> list[str]:
    files = expected_files()
    if target.exists():
        for old in sorted(p for p in target.rglob("*") if p.is_file()):
            if str(old.relative_to(target)) not in files:
                old.unlink()
    for rel, content in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return sorted(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help=f"write them to {TARGET}")
    args = parser.parse_args(argv)
    if args.write:
        for rel in write():
            print(rel)
        return 0
    for service, (version, model) in pruned_models().items():
        print(service, version, len(model["operations"]), "operations:",
              " ".join(model["operations"]))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
