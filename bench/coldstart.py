"""Cold start of each function as a ratio to a naive stack, measured in interleaved pairs.

A probe is a fresh interpreter doing what Lambda's init phase and the start of a first
invocation do: import the handler module (loaded by path, as the runtime loads it), then what
the first invocation would create before doing real work: the modules it imports lazily, the
AWS clients it creates, the services its cached factories build, and pydantic schemas deferred
to first use. That list is derived by running first invocations against moto
(bench.first_request), not kept by hand.

The naive stack is `import boto3, pydantic; from aws_lambda_powertools import Logger, Metrics;
Logger(); Metrics(); boto3.client("dynamodb")`. Each function is run against it as A B, B A,
A B, ... in one loop (a fresh subprocess each), so both see the same machine load; the result
is the median of the per-pair ratios function/naive with their min-max, plus the medians in ms
for information only (absolute ms depend on the machine and its load; ratios of neighbours
much less). The same ratio in CPU time of the process is given beside it: on a machine shared
with other work it moves much less than the wall clock. With `--before REF` each round also
runs that git revision's probe of the function (its own code and its own derived first
request), so a change is reported as two ratios of the same rounds, never as milliseconds of
different runs.

`python -m bench.coldstart [--pairs N] [--only functions|tracer] [--function ID ...]
[--before REF] [--show-derived]` prints the tables (and what each first invocation was found
to create); `make bench` writes them to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.first_request import PACKAGE, FirstRequest, derive_first_requests
from crm_local.template import ROOT, FunctionSpec, load_template

PAIRS = 9

# ---------------------------------------------------------------- probes
# The probe's own imports come before the clock starts; `json` only after it stops.
_PROBE = """
import importlib, importlib.util, sys, time
sys.path[:0] = {paths!r}
{guard}
t0, c0 = time.perf_counter(), time.process_time()
{init}
t1, c1 = time.perf_counter(), time.process_time()
{first}
t2, c2 = time.perf_counter(), time.process_time()
import json
print("PROBE " + json.dumps([t1 - t0, t2 - t1, c1 - c0, c2 - c1]))
"""

_LOAD_HANDLER = """
_spec = importlib.util.spec_from_file_location("app", {path!r})
app = importlib.util.module_from_spec(_spec)
sys.modules["app"] = app
_spec.loader.exec_module(app)
"""

_FIRST_REQUEST = """
def _attr(target):
    module, _, name = target.partition(":")
    value = app if module == "<handler>" else importlib.import_module(module)
    for part in name.split("."):
        value = getattr(value, part)
    return value
for _name in {imports!r}:
    importlib.import_module(_name)
{clients}
for _factory in {factories!r}:
    _attr(_factory)()
for _model in {models!r}:
    _attr(_model).model_rebuild()
for _adapter in {adapters!r}:
    _attr(_adapter).rebuild()
"""

NAIVE_INIT = """
import boto3, pydantic
from aws_lambda_powertools import Logger, Metrics
Logger()
Metrics()
"""
NAIVE_FIRST = 'boto3.client("dynamodb")'

# Tracer patches every library X-Ray supports that it can import. The venv holds `requests`
# (moto's) and the crm layer does not, so the probes refuse it, as the deployed function would.
_GUARD_LAYER_ONLY = """
class _NotInLayer:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in ("requests", "httpx"):
            raise ModuleNotFoundError(name)
        return None
sys.meta_path.insert(0, _NotInLayer)
"""
TRACER_VARIANTS = {
    "naive stack": "",
    "+ Tracer() (patches every supported library)":
        "from aws_lambda_powertools import Tracer\nTracer()",
    '+ Tracer(patch_modules=["botocore"])':
        'from aws_lambda_powertools import Tracer\nTracer(patch_modules=["botocore"])',
}  # fmt: skip


@dataclass(frozen=True)
class Sample:
    import_s: float  # the handler module's import (Lambda's init phase), wall clock
    first_s: float  # what the first invocation creates before real work, wall clock
    import_cpu_s: float  # the same in CPU time of the process: much less sensitive to the
    first_cpu_s: float  # other processes of a shared machine than the wall clock

    @property
    def total_s(self) -> float:
        return self.import_s + self.first_s

    @property
    def total_cpu_s(self) -> float:
        return self.import_cpu_s + self.first_cpu_s


@dataclass(frozen=True)
class Comparison:
    name: str
    samples: list[Sample]
    naive: list[Sample]
    first_request: FirstRequest | None = None
    note: str = ""
    # The same function as an earlier revision has it (`--before`), in the same rounds.
    before: list[Sample] | None = None

    @property
    def ratios(self) -> list[float]:
        return [a.total_s / b.total_s for a, b in zip(self.samples, self.naive, strict=True)]

    @property
    def before_ratios(self) -> list[float]:
        pairs = zip(self.before or [], self.naive, strict=False)
        return [a.total_s / b.total_s for a, b in pairs]

    @property
    def before_cpu_ratios(self) -> list[float]:
        pairs = zip(self.before or [], self.naive, strict=False)
        return [a.total_cpu_s / b.total_cpu_s for a, b in pairs]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def cpu_ratios(self) -> list[float]:
        pairs = zip(self.samples, self.naive, strict=True)
        return [a.total_cpu_s / b.total_cpu_s for a, b in pairs]

    @property
    def cpu_ratio(self) -> float:
        return statistics.median(self.cpu_ratios)

    def ms(self, which: str, naive: bool = False) -> float:
        samples = self.naive if naive else self.samples
        return float(statistics.median(getattr(s, which) for s in samples)) * 1000


@dataclass
class ColdStarts:
    pairs: int
    functions: list[Comparison] = field(default_factory=list)
    tracer: list[Comparison] = field(default_factory=list)
    tracer_skipped: str = ""
    before_ref: str = ""  # the revision the `before` columns measured, if any


def probe_env(spec: FunctionSpec | None = None) -> dict[str, str]:
    """What Lambda gives a function: region, credentials (no config files), its task root and
    the template's variables (unresolved references become placeholders)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "POWERTOOLS_", "PYTHON", "CRM_"))}  # fmt: skip
    template_env = spec.environment if spec else load_template().functions()[0].environment
    for key, value in template_env.items():
        env[key] = value if isinstance(value, str) else f"bench-{key.lower()}"
    env.update({
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id if spec else "naive",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory if spec else 512),
        "LAMBDA_TASK_ROOT": str(spec.code_uri if spec else ROOT),
    })  # fmt: skip
    return env


def _client_module() -> str | None:
    """The package's module whose `client_for(service)` hands out the shared clients."""
    for name, module in sorted(sys.modules.items()):
        if module is None or not (name == PACKAGE or name.startswith(PACKAGE + ".")):
            continue
        factory = getattr(module, "client_for", None)
        if callable(factory) and getattr(factory, "__module__", None) == name:
            return name
    return None


def function_probe(
    spec: FunctionSpec, first: FirstRequest | None, root: Path = ROOT
) -> tuple[str, str]:
    """The probe of one function; `root` is the checkout whose code it loads (this one, or
    an earlier revision's for `--before`)."""
    code_uri = root / spec.code_uri.relative_to(ROOT)
    path = code_uri / (spec.handler.rpartition(".")[0].replace(".", "/") + ".py")
    paths = [str(code_uri), str(root / "layers" / "crm")]
    init = _LOAD_HANDLER.format(path=str(path))
    note = ""
    if first is None:
        return _PROBE.format(paths=paths, guard="", init=init, first="pass"), "not derived"
    module = _client_module()
    services = sorted(first.clients)
    if module:
        clients = f"_client_for = importlib.import_module({module!r}).client_for\n" + "".join(
            f"_client_for({s!r})\n" for s in services
        )
    else:
        clients = "import boto3\n" + "".join(f"boto3.client({s!r})\n" for s in services)
        note = "no client_for() in the package: clients made with boto3.client()"
    first_code = _FIRST_REQUEST.format(
        imports=sorted(first.lazy_imports),
        clients=clients,
        factories=sorted(first.factories),
        models=sorted(first.deferred_models),
        adapters=sorted(first.deferred_adapters),
    )
    return _PROBE.format(paths=paths, guard="", init=init, first=first_code), note


def naive_probe(extra_init: str = "", guard: str = "") -> str:
    return _PROBE.format(paths=[], guard=guard, init=NAIVE_INIT + extra_init, first=NAIVE_FIRST)


def run_probe(code: str, env: Mapping[str, str]) -> Sample:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(env), check=False
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("PROBE ")]
    if out.returncode or not lines:
        raise RuntimeError(f"probe failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return Sample(*json.loads(lines[-1][len("PROBE ") :]))


def interleave(codes: Sequence[str], env: Mapping[str, str], rounds: int) -> list[list[Sample]]:
    """Runs the probes in turn, `rounds` times, rotating which goes first (A B, B A, ... or
    A B C, B C A, C A B, ...); one discarded warm-up run each (it also writes .pyc files)."""
    for code in codes:
        run_probe(code, env)
    results: list[list[Sample]] = [[] for _ in codes]
    for r in range(rounds):
        order = [(r + i) % len(codes) for i in range(len(codes))]
        for i in order:
            results[i].append(run_probe(codes[i], env))
    return results


def measure_functions(
    pairs: int = PAIRS,
    first: Mapping[str, FirstRequest] | None = None,
    only: Sequence[str] = (),
    before: Path | None = None,
) -> list[Comparison]:
    """Every function of the template, or those named in `only` (logical ids). With `before`
    (a checkout of an earlier revision), each round also runs that revision's probe of the
    function, so before, after and the naive stack share the machine's load."""
    first = derive_first_requests() if first is None else first
    first_before = derive_first_requests_of(before) if before else {}
    results = []
    for spec in load_template().functions():
        if only and spec.logical_id not in only:
            continue
        derived = first.get(spec.logical_id)
        old = first_before.get(spec.logical_id)
        env = probe_env(spec)
        # An API function is measured once per first request: a new container serves one.
        for one in derived.alone if derived and derived.alone else [derived]:
            code, note = function_probe(spec, one)
            codes = [code, naive_probe()]
            name = spec.logical_id
            if one is not derived and one is not None:
                name = f"{spec.logical_id}, first request {one.requests[0]}"
                # The same request as the earlier revision derived it, if it did one by one.
                old_one = next((o for o in (old.alone if old else [])
                                if o.requests == one.requests), old)  # fmt: skip
            else:
                old_one = old
            if before is not None and (before / spec.code_uri.relative_to(ROOT)).is_dir():
                codes.append(function_probe(spec, old_one, before)[0])
            fn, naive, *earlier = interleave(codes, env, pairs)
            results.append(Comparison(name, fn, naive, one, note, earlier[0] if earlier else None))
    return results


def derive_first_requests_of(checkout: Path) -> dict[str, FirstRequest]:
    """`derive_first_requests` as the checkout's own code does it, in a separate interpreter
    (the two revisions' `crm` packages cannot share one)."""
    paths = [checkout / "layers" / "crm", checkout / "infra", checkout]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths))}
    code = (
        "import json, dataclasses\n"
        "from bench.first_request import derive_first_requests\n"
        "found = derive_first_requests()\n"
        "print('FIRST ' + json.dumps({k: dataclasses.asdict(r) for k, r in found.items()},\n"
        "                            default=sorted))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=checkout,
        check=False,
    )  # fmt: skip
    lines = [line for line in out.stdout.splitlines() if line.startswith("FIRST ")]
    if out.returncode or not lines:
        raise RuntimeError(f"deriving {checkout}'s first requests failed:\n{out.stderr[-3000:]}")
    sets = {f for f, v in asdict(FirstRequest("")).items() if isinstance(v, set)}

    def read(fields: dict[str, Any]) -> FirstRequest:
        values: dict[str, Any] = {f: set(v) if f in sets else v for f, v in fields.items()}
        values["alone"] = [read(one) for one in values.get("alone", [])]
        return FirstRequest(**values)

    return {name: read(fields) for name, fields in json.loads(lines[-1][len("FIRST ") :]).items()}


@contextmanager
def checkout_of(ref: str) -> Iterator[Path]:
    """The tree of a git revision of this repository, unpacked in a temporary directory (no
    worktree, nothing of the repository changed)."""
    with tempfile.TemporaryDirectory(prefix="bench-before-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", ref],  # noqa: S607 - git from PATH
            capture_output=True, check=True,
        )  # fmt: skip
        tar_path = Path(tmp) / "tree.tar"
        tar_path.write_bytes(archive.stdout)
        tree = Path(tmp) / "tree"
        with tarfile.open(tar_path) as tar:
            tar.extractall(tree, filter="data")
        yield tree


def measure_tracer(pairs: int = PAIRS) -> tuple[list[Comparison], str]:
    """Powertools Tracer (which imports aws_xray_sdk and patches) against none, on the naive
    stack, interleaved; X-Ray active tracing (`Tracing: Active`) costs no init in the function."""
    if importlib.util.find_spec("aws_xray_sdk") is None:
        return [], "aws-xray-sdk is not installed (pip install aws-xray-sdk)"
    codes = [naive_probe(extra, _GUARD_LAYER_ONLY) for extra in TRACER_VARIANTS.values()]
    runs = interleave(codes, probe_env(), pairs)
    return [
        Comparison(name, samples, runs[0])
        for name, samples in zip(TRACER_VARIANTS, runs, strict=True)
    ], ""


def measure_cold_starts(
    pairs: int = PAIRS, tracer: bool = True, before: Path | None = None, before_ref: str = ""
) -> ColdStarts:
    result = ColdStarts(pairs, measure_functions(pairs, before=before), before_ref=before_ref)
    if tracer:
        result.tracer, result.tracer_skipped = measure_tracer(pairs)
    return result


# ---------------------------------------------------------------- tables
def _services(first: FirstRequest) -> list[str]:
    """The factories that build services, not the package's own client plumbing."""
    plumbing = _client_module()
    return [f for f in first.factories if not (plumbing and f.startswith(plumbing + ":"))]


def function_table(rows: Sequence[Comparison], before_ref: str = "") -> list[str]:
    with_before = any(c.before for c in rows)
    head = "| function | × naive (median) | pair ratios (min–max) | × naive, CPU time "
    rule = "| --- | ---: | ---: | ---: "
    if with_before:
        head += f"| before ({before_ref or 'earlier revision'}): × naive | before: × naive, CPU "
        rule += "| ---: | ---: "
    lines = [
        head + "| import (ms) | first request (ms) | total (ms) | naive (ms) "
        "| first request creates |",
        rule + "| ---: | ---: | ---: | ---: | --- |",
    ]
    for c in rows:
        f = c.first_request
        creates = "; ".join(
            part
            for part in (
                f"clients {', '.join(sorted(f.clients))}" if f and f.clients else "",
                f"{len(_services(f))} services" if f and _services(f) else "",
                f"{len(f.deferred_models | f.deferred_adapters)} deferred schemas"
                if f and (f.deferred_models or f.deferred_adapters)
                else "",
                f"sample {', '.join(sorted(f.samples))}" if f and f.samples else "",
                c.note,
            )
            if part
        )
        if f is not None and not (f.clients or _services(f) or f.deferred_models
                                  or f.deferred_adapters):  # fmt: skip
            creates = "; ".join(p for p in ("nothing beyond the import", creates) if p)
        earlier = ""
        if with_before:
            b, bc = c.before_ratios, c.before_cpu_ratios
            earlier = (
                f"| {statistics.median(b):.2f} ({min(b):.2f}–{max(b):.2f}) "
                f"| {statistics.median(bc):.2f} ({min(bc):.2f}–{max(bc):.2f}) "
                if b
                else "| - | - "
            )
        lines.append(
            f"| {c.name} | {c.ratio:.2f} | {min(c.ratios):.2f}–{max(c.ratios):.2f} "
            f"| {c.cpu_ratio:.2f} ({min(c.cpu_ratios):.2f}–{max(c.cpu_ratios):.2f}) "
            f"{earlier}"
            f"| {c.ms('import_s'):.0f} | {c.ms('first_s'):.0f} | {c.ms('total_s'):.0f} "
            f"| {c.ms('total_s', naive=True):.0f} | {creates or '-'} |"
        )
    return lines


def tracer_table(rows: Sequence[Comparison]) -> list[str]:
    lines = [
        "| stack | × naive (median) | pair ratios (min–max) | × naive, CPU time | total (ms) "
        "| over naive (ms) | over naive, CPU (ms) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in rows:
        pairs = list(zip(c.samples, c.naive, strict=True))
        over = statistics.median((a.total_s - b.total_s) * 1000 for a, b in pairs)
        over_cpu = statistics.median((a.total_cpu_s - b.total_cpu_s) * 1000 for a, b in pairs)
        base = c.samples is c.naive
        lines.append(
            f"| {c.name} | {c.ratio:.2f} | {min(c.ratios):.2f}–{max(c.ratios):.2f} "
            f"| {c.cpu_ratio:.2f} ({min(c.cpu_ratios):.2f}–{max(c.cpu_ratios):.2f}) "
            f"| {c.ms('total_s'):.0f} | {'' if base else f'{over:+.0f}'} "
            f"| {'' if base else f'{over_cpu:+.0f}'} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pairs", type=int, default=PAIRS, help="interleaved pairs per row")
    parser.add_argument("--only", choices=("functions", "tracer"), help="one of the two tables")
    parser.add_argument("--function", action="append", default=[], metavar="ID",
                        help="measure only this function (logical id; repeatable)")  # fmt: skip
    parser.add_argument("--before", metavar="REF",
                        help="also measure this revision in the same rounds")  # fmt: skip
    parser.add_argument("--show-derived", action="store_true",
                        help="print what each first invocation created")  # fmt: skip
    args = parser.parse_args(argv)
    if args.only != "tracer":
        first = derive_first_requests()
        if args.show_derived:
            from bench.first_request import report

            print(report(first), flush=True)
        print(f"cold starts, {args.pairs} interleaved pairs each ...", flush=True)
        if args.before:
            with checkout_of(args.before) as tree:
                rows = measure_functions(args.pairs, first, args.function, tree)
        else:
            rows = measure_functions(args.pairs, first, args.function)
        print("\n".join(function_table(rows, args.before or "")), flush=True)
    if args.only != "functions":
        print(f"\nTracer, {args.pairs} interleaved rounds ...", flush=True)
        tracer, skipped = measure_tracer(args.pairs)
        print(skipped or "\n".join(tracer_table(tracer)))


if __name__ == "__main__":
    main()
