"""`python -m bench.local_demo`: how long `make run` takes to a fully seeded demo.

Starts `crm-local up --reset --seed N` on a state folder and ports of its own, as a fresh clone
would, and times it from the start to `demo ready` (customers created, every event folded,
none dead-lettered, a first segment run complete), as `.crm-local/demo.json` says. `--tree`
runs another checkout's emulator (its `infra/` and `layers/crm` first on the path) with this one's
environment, so that a before and an after can be interleaved round by round on a shared
machine; the 1-minute load average is printed with each round, since other work on the
machine moves these figures more than anything measured, and so are the CPU seconds of the
emulator's processes (which the load stretches in time, not in amount) and the time each step
of the demo's loading was first seen. Where the dashboard's first read of the lake comes after
`demo ready`, the bench also waits for it and says when it finished.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crm_local.demo_status import read_status
from crm_local.template import ROOT

TIMEOUT_S = 1800
DEMO_STATUS = Path("infra", "crm_local", "demo_status.py")


def cpu_seconds(pid: int) -> dict[str, float]:
    """User and system CPU time of a process and of each of its children (Linux's /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}

    def one(p: int, name: str) -> None:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            return
        out[name] = round((int(fields[11]) + int(fields[12])) / ticks, 1)
        for n, child in enumerate(children):
            one(int(child), f"{name}.{n}")

    one(pid, "emulator")
    return out


def measure(
    tree: Path, customers: int, port: int, profile: Path | None = None
) -> dict[str, object]:
    # The tree's emulator and its `crm` layer, ahead of this environment's editable install
    # (which names this checkout's).
    path = os.pathsep.join([str(tree / "infra"), str(tree / "layers" / "crm")])
    env = dict(os.environ, PYTHONPATH=path)
    if profile is not None:
        env["CRM_LOCAL_PROFILE"] = str(profile)
    with tempfile.TemporaryDirectory(prefix="crm-demo-bench-") as folder:
        state = Path(folder)
        load = os.getloadavg()[0]
        started = time.monotonic()
        command = [sys.executable, "-m", "crm_local.cli", "--state-dir", str(state), "up",
                   "--reset", "--no-persist", "--seed", str(customers), "--port", str(port),
                   "--moto-port", str(port + 2)]  # fmt: skip
        with (state / "console.log").open("w") as console:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=console, stderr=console)
        steps: dict[str, float] = {}  # when each step of the demo's loading was first seen
        # Trees whose dashboard reads the lake after `demo ready` say when it finished.
        reads_lake_after = "lake_read_seconds" in (tree / DEMO_STATUS).read_text()
        lake_read: float | None = None
        try:
            while time.monotonic() - started < TIMEOUT_S:
                time.sleep(1)
                status = read_status(state)
                if status and status.step not in steps:
                    steps[status.step] = round(time.monotonic() - started)
                if status and status.state in ("ready", "failed"):
                    break
                if process.poll() is not None:
                    break
            seconds = time.monotonic() - started
            cpu = cpu_seconds(process.pid)
            while reads_lake_after and status and status.state == "ready":
                if status.lake_read_seconds is not None:
                    lake_read = status.lake_read_seconds
                    break
                if process.poll() is not None or time.monotonic() - started > TIMEOUT_S:
                    break
                time.sleep(1)
                status = read_status(state)
            cpu_with_lake = cpu_seconds(process.pid) if lake_read is not None else None
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
        status = read_status(state)
        return {
            "state": status.state if status else "died",
            "seconds": round(seconds, 1),
            "since_start": round(status.seconds, 1) if status else None,
            "events": status.events if status else 0,
            # CPU seconds of the emulator's processes (the functions' and moto's): what a busier
            # machine stretches in time but not in amount
            "cpu_s": cpu,
            # the dashboard's first read of the lake, where it comes after `demo ready`: when it
            # finished (seconds since the start) and the CPU seconds by then
            "lake_read_s": lake_read,
            "cpu_s_with_lake": cpu_with_lake,
            "load_before": round(load, 1),
            "load_after": round(os.getloadavg()[0], 1),
            "error": status.error if status else "",
            "steps": steps,
        }


LATEST = "### The latest `make bench` run"


def section(runs: list[dict[str, object]], customers: int) -> list[str]:
    """The subsection `make bench` writes on top of "Local demo": this tree's runs."""
    rows = []
    for n, run in enumerate(runs, 1):
        cpu = run["cpu_s"] if isinstance(run["cpu_s"], dict) else {}
        total = sum(float(v) for v in cpu.values())
        steps = run["steps"] if isinstance(run["steps"], dict) else {}
        loading = next((at for step, at in steps.items() if "importing" in str(step)), None)
        segments = steps.get("computing segments")
        lake = run["lake_read_s"]
        rows.append(
            f"| {n} | {run['state']} | **{run['since_start']}** | {loading} -> {segments} "
            f"| {'' if lake is None else round(float(str(lake)))} | {total:.0f} "
            f"| {run['load_before']} -> {run['load_after']} |"
        )
    return [
        LATEST,
        "",
        f"`make bench` starts `make run`'s emulator ({customers:,} customers, a fresh state, as a",
        "fresh clone would: `bench.local_demo`) and times it to `demo ready` (imported, every",
        "event folded, none dead-lettered, the first segment run complete, journeys and tickets",
        "loaded). The load average is the machine's 1-minute one: the demo is CPU-bound on the",
        "emulator's two processes, so other work on the machine stretches it (dated runs below).",
        "",
        "| run | state | ready (s) | importing -> computing segments (s) "
        "| lake read done (s) | CPU at ready, both processes (s) | load avg |",
        "| ---: | --- | ---: | --- | ---: | ---: | --- |",
        *rows,
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--port", type=int, default=18800)
    parser.add_argument(
        "--tree",
        type=Path,
        action="append",
        help="a checkout to measure (repeat to interleave; default this one)",
    )
    parser.add_argument("--profile", type=Path, help="write moto's profile (moto.prof) here")
    args = parser.parse_args()
    trees = args.tree or [ROOT]
    for round_ in range(1, args.rounds + 1):
        for tree in trees:
            result = measure(tree, args.customers, args.port, args.profile)
            print(f"round {round_} {tree}: {result}", flush=True)


if __name__ == "__main__":
    main()
