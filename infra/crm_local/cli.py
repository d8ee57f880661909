"""`crm-local`: the suite on 127.0.0.1 without an AWS account or Docker.

crm-local up [--port 8000] [--seed N] [--reset] [--concurrency N]
                                                    start everything (make run)
crm-local token --role ROLE [--customer ID]         print a development token
crm-local fire NAME                                 fire a schedule of the template now
crm-local invoke FUNCTION --event events/FILE.json  run one function once
crm-local seed --customers N                        load the demo shop into a running suite
crm-local status                                    is it running; is the demo loaded yet
crm-local redrive QUEUE                             move a queue's dead letters back to it
crm-local clock [advance 30d|12h|90m|45s]           show or move the emulator's clock
crm-local backup DIR                                copy the tables and the lake to a snapshot
crm-local up --fresh-data                           empty tables, the account's keys kept
crm-local restore DIR                               load a snapshot into a fresh emulator
crm-local outbox [--customer ID] [--campaign ID]    what campaigns would have sent
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from crm_local.clock import scheduled_event
from crm_local.dashboard import MISSING_LIBRARY
from crm_local.demo_status import STATUS_FILE, DemoStatus, read_status, write_status
from crm_local.emulator import DEFAULT_CONCURRENCY, Emulator, use_endpoint
from crm_local.moto_server import SAVE_EVERY_S, LocalMotoServer
from crm_local.provision import provision
from crm_local.redrive import NoDeadLetterQueue, dead_letter_url, redrive
from crm_local.runtime import invoke, reset_process_state
from crm_local.seed import ApiClient, Shop, load_journeys, load_shop, load_tickets
from crm_local.snapshot import SnapshotError, restore_snapshot, take_snapshot
from crm_local.state import read_info
from crm_local.template import TEMPLATE_PATH, load_template
from crm_local.time_travel import (
    RECHECK_S,
    EmulatedTime,
    advance,
    describe,
    install_clock,
    parse_duration,
    read_offset,
)
from crm_local.tokens import ROLES, dev_secret, issue_token
from crm_local.triggers import ScheduleTrigger

DEFAULT_STATE = Path(".crm-local")
log = logging.getLogger("crm_local.cli")


class UsageError(Exception):
    """A mistake in what was asked: reported in one line, exit status 2, as argparse does."""


def _running(state_dir: Path) -> dict[str, Any] | None:
    """The info of the emulator running on this state folder, if it answers."""
    info = read_info(state_dir)
    if not info:
        return None
    try:
        # A refused connection answers at once; a live emulator may first start the API's
        # container (imports, the document's schemas: seconds on a loaded machine).
        urllib.request.urlopen(info["api"] + "/openapi.json", timeout=20).close()  # noqa: S310
    except (urllib.error.URLError, OSError):
        return None
    return info


class EventsDeadLettered(Exception):
    """Demo events that never folded: the demo would be missing them."""


class _Backlog:
    """Messages a queue holds (visible or in flight), read at most five times a second however
    many of the loader's threads ask, through one client: a boto3 client costs the loader's
    process tens of milliseconds to make, time the functions' containers in it wait for."""

    EVERY_S = 0.2

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqs = boto3.client("sqs")
        self.lock = threading.Lock()
        self.read_at, self.count = 0.0, 0

    def __call__(self) -> int:
        with self.lock:
            if time.monotonic() - self.read_at >= self.EVERY_S:
                attrs = self.sqs.get_queue_attributes(
                    QueueUrl=self.url,
                    AttributeNames=[
                        "ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesNotVisible",
                    ],
                )["Attributes"]
                self.count = sum(int(v) for v in attrs.values())
                self.read_at = time.monotonic()
            return self.count


class _DeadLetters:
    """The events queue's dead letters, counted before the demo loads and after its events
    folded: the demo is not ready with events missing (a fold that fails reaches the DLQ after
    its receives, and the queue looks empty)."""

    def __init__(self, queue_url: str) -> None:
        self.sqs = boto3.client("sqs")
        self.queue = queue_url.rsplit("/", 1)[-1]
        self.url = dead_letter_url(self.sqs, queue_url)
        self.before = self.count()

    def count(self) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(v) for v in attrs.values())

    def check(self) -> None:
        lost = self.count() - self.before
        if lost > 0:
            raise EventsDeadLettered(
                f"{lost} demo event(s) were dead-lettered in {self.url.rsplit('/', 1)[-1]} "
                f"(see the log above; `crm-local redrive {self.queue}` retries them)"
            )


def _seed(
    api: str,
    secret: str,
    customers: int,
    queue_url: str,
    state_dir: Path,
    started: float | None = None,
    stopping: threading.Event | None = None,
    announced_to: str | None = None,
    loaded: Callable[[], None] | None = None,
) -> DemoStatus:
    """Load the demo shop through the API, then compute its segments; where it stands is in
    `.crm-local/demo.json` (`crm-local status`) and a line on the console per step. When the
    emulator is `stopping` (Ctrl-C mid-load), a failed request is the stop, not a failure.
    `announced_to` is the queue the segment run's changes reach the journeys through: the
    example journeys load once it is empty. `loaded` is called once the demo is in (the
    emulator saves its state then)."""
    started = time.monotonic() if started is None else started
    client = ApiClient(api, issue_token(secret, "admin", subject="demo-loader"))
    steps = _StatusWriter(state_dir, started)
    try:
        dead_letters = _DeadLetters(queue_url)
        shop = Shop(seed=7).customers(customers)
        totals = load_shop(client, shop, report=steps.report)
        dead_letters.check()
        (state_dir / "seeded").write_text(json.dumps(totals))
        steps.report("computing segments", 0, 0)
        run = _first_segment_run(client)
        if announced_to:
            _wait_until_empty(_Backlog(announced_to))
        # campaigns: J -- after the shop's history, so only new activity enters them
        steps.report("loading the example journeys", 0, 0)
        load_journeys(client)
        steps.report("opening a few service tickets", 0, 0)
        load_tickets(client, shop)
    except EventsDeadLettered as exc:
        log.error("%s", exc)
        return steps.finish(
            DemoStatus("failed", steps.step, error=str(exc), seconds=steps.elapsed())
        )
    except Exception as exc:
        if stopping is not None and stopping.is_set():
            log.info("loading the demo shop stopped with the emulator")
            status = DemoStatus("failed", steps.step, error="stopped", seconds=steps.elapsed())
            write_status(state_dir, status)  # the console already says "stopping ..."
            return status
        log.exception("loading the demo shop failed")
        return steps.finish(
            DemoStatus("failed", steps.step, error=str(exc)[:300], seconds=steps.elapsed())
        )
    sample = shop[0].customer_id
    print(f"one of the demo customers: {sample}", flush=True)
    ready = steps.finish(
        DemoStatus("ready", "segments computed", customers=totals["customers"],
                   events=totals["events"], segment_run=run, seconds=steps.elapsed())
    )  # fmt: skip
    if loaded is not None:
        loaded()  # saved now: a run killed from here on keeps its demo
    # After `demo ready`, not before: the lake's first read is no part of the demo's data (every
    # event is folded and in the lake already) and took 10-30% of the time to ready.
    lake_read = _warm_analytics(client, started, stopping)
    if lake_read is not None:
        ready = dataclasses.replace(ready, lake_read_seconds=lake_read)
        write_status(state_dir, ready)
        print(f"dashboard: the lake was read, {lake_read:.0f} s after start", flush=True)
    return ready


def _warm_analytics(
    client: ApiClient, started: float, stopping: threading.Event | None = None
) -> float | None:
    """One metric read, so the embedded engine reads the lake (every object of the demo's
    history) ahead of the dashboard's first view rather than during it; when it finished
    (seconds since `started`). Best effort: a slow read leaves the dashboard to wait, it does
    not fail the demo."""
    try:
        status, _ = client.request("GET", "/analytics/metrics/active_customers")
    except Exception as exc:
        if stopping is None or not stopping.is_set():  # a stop is no failure
            log.warning("reading the lake for the dashboard did not finish: %s", exc)
        return None
    if status != 200:
        log.warning("reading the lake for the dashboard answered %s", status)
        return None
    return time.monotonic() - started


SEGMENT_RUN_TIMEOUT_S = 600
# The queue through which the bus hands segment changes (CustomerSegmentChanged) to the journeys
# (template.yaml's JourneyTriggersRule).
SEGMENT_CHANGES_QUEUE = "JourneyTriggersQueue"
SETTLE_TIMEOUT_S = 300
SETTLE_LOOK_S = 0.25


def _wait_until_empty(backlog: _Backlog) -> None:
    """Wait until the queue holds nothing, visible or in flight (three looks in a row: counts
    are approximate and lag, in AWS too).

    The first segment run announces every demo customer's tiers and RFM segments (~4,000
    events for 2,000 customers), and the journey triggers read them after the run is complete.
    The example journeys load after the shop's history, so that only new activity enters
    them: loaded while the triggers were still reading, they took in some of the history's
    segment changes, a different few each time, and made the rest of the triggers slower."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    empty = 0
    while empty < 3:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{backlog.url.rsplit('/', 1)[-1]} still held messages after {SETTLE_TIMEOUT_S} s"
            )
        empty = empty + 1 if backlog() == 0 else 0
        time.sleep(SETTLE_LOOK_S)


def _first_segment_run(client: ApiClient) -> str:
    """Start a segment run (they run nightly; the demo gets its first now) and wait for it."""
    status, before = client.request("GET", "/segments")
    if status != 200:
        raise RuntimeError(f"GET /segments answered {status}: {before}")
    status, reply = client.request("POST", "/segments/runs")
    if status != 202:
        raise RuntimeError(f"starting a segment run failed: {status} {reply}")
    deadline = time.monotonic() + SEGMENT_RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        time.sleep(0.5)
        status, listing = client.request("GET", "/segments")
        if status != 200:
            continue
        current = listing.get("current_run") or {}
        if current.get("status") == "failed":
            raise RuntimeError(f"the segment run failed: {current.get('error')}")
        latest = listing.get("latest_run")
        if latest and latest != before["latest_run"] and not current:
            return str(latest)
    raise RuntimeError(f"the segment run was not complete after {SEGMENT_RUN_TIMEOUT_S} s")


class _StatusWriter:
    """Writes the demo's status as it loads (at most a few times a second) and prints a line
    on the console each time a new step starts; where no progress bar is drawn (the console is
    a file: `make run > log`), also each PRINT_EVERY_S while a step counts forward."""

    EVERY_S = 0.5
    PRINT_EVERY_S = 5.0

    def __init__(self, state_dir: Path, started: float) -> None:
        self.state_dir, self.started = state_dir, started
        self.step = "starting"
        self.written = 0.0
        self.printed = (0.0, -1)  # when, and at what count, the last line was printed

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def report(self, step: str, done: int, total: int) -> None:
        now = time.monotonic()
        new_step = step != self.step
        if not new_step and now - self.written < self.EVERY_S and done != total:
            return
        self.step, self.written = step, now
        status = DemoStatus("loading", step, done, total, seconds=self.elapsed())
        write_status(self.state_dir, status)
        printed_at, printed_done = self.printed
        counted = (
            bool(total)
            and done != printed_done
            and not sys.stdout.isatty()
            and (now - printed_at >= self.PRINT_EVERY_S or done == total)
        )
        if new_step or counted:
            self.printed = (now, done)
            print(f"\n{status.line()}", flush=True)

    def finish(self, status: DemoStatus) -> DemoStatus:
        write_status(self.state_dir, status)
        print(f"\n{status.line()}", flush=True)
        return status


def _banner(info: dict[str, Any], secret: str, demo: int = 0) -> str:
    api = info["api"]
    tokens = {role: issue_token(secret, role) for role in ROLES if role != "customer"}
    lines = [
        "",
        "The CRM runs on 127.0.0.1 (Ctrl-C stops it; state is kept in .crm-local/).",
        f"  API:           {api}",
        f"  AWS endpoint:  {info['aws_endpoint']}  (AWS_ENDPOINT_URL for the aws CLI / boto3)",
        f"  OpenAPI:       {api}/openapi.json",
        # The fragment signs the page in as an analyst; it never reaches a server.
        f"  Dashboard:     {info['dashboard']}#token={tokens['analyst']}",
        f"  Data region:   {info['parameters'].get('DataRegion', 'cn')}  (its customers only: "
        "`--data-region eu` runs another region's stack)",
        "",
        "Tokens (12 h; `.venv/bin/crm-local token --role ROLE [--customer ID]` makes more):",
    ]
    lines += [f"  {role:<16} {token}" for role, token in tokens.items()]
    customer = {
        # An app identity too: push's address (docs/local.md's journey to try sends push).
        "identities": [
            {"channel": "mini_program", "external_id": "oTry1"},
            {"channel": "app", "external_id": "app-try1"},
        ],
        "attributes": {"name": "林小雨", "phone": "13912345678", "city": "杭州"},
    }
    order = {
        "events": [
            {
                "event_id": "try-1-paid", "type": "order_paid", "order_id": "try-1",
                "customer_id": "ID", "amount": "268.00",
                "occurred_at": "2026-11-20T12:00:00+08:00",
                "items": [{"sku": "milk-powder-3", "category": "母婴", "quantity": 1,
                           "unit_price": "268.00"}],
            }
        ]
    }  # fmt: skip
    order_json = json.dumps(order, ensure_ascii=False).replace('"ID"', "\"'$ID'\"")
    lines += [
        "",
        "Try it (bash):",
        f"  export CRM={api}",
        f"  export ADMIN={tokens['admin']}",
        f"  export MARKETER={tokens['marketer']}",
        '  ID=$(curl -s -X POST $CRM/customers -H "Authorization: Bearer $ADMIN" \\',
        f"    -d '{json.dumps(customer, ensure_ascii=False)}' | python3 -c "
        "'import json,sys; print(json.load(sys.stdin)[\"customer_id\"])')",
        '  curl -s -X POST $CRM/events -H "Authorization: Bearer $ADMIN" \\',
        f"    -d '{order_json}'",
        '  sleep 3; curl -s $CRM/customers/$ID -H "Authorization: Bearer $MARKETER"',
        "",
    ]
    if demo:
        lines += [
            f"Demo shop: {demo} customers load in the background through the API, then a first "
            "segment run;",
            "  a line below says what is loading and when the demo is ready (`crm-local status`"
            " tells too).",
            "",
        ]
    return "\n".join(lines)


def dashboard_port(api_port: int, chosen: int | None) -> int:
    """The page next to the API (8000 -> 8001); any free port when the API takes any."""
    if chosen is not None:
        return chosen
    return api_port + 1 if api_port else 0


def cmd_up(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")  # fmt: skip
    if not args.verbose:
        # Every container of the emulator shares one process and so the functions' AWS clients
        # (in Lambda a container serves one request at a time): past ten at once, urllib3 says
        # it drops a connection for each request, which is no fault and floods the console.
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    if _running(args.state_dir):
        print(f"an emulator already runs on {args.state_dir}/ ; stop it first", file=sys.stderr)
        return 1
    print("starting the emulator ...", flush=True)
    started = time.monotonic()
    seeding = bool(args.seed) and (args.reset or not (args.state_dir / "seeded").exists())
    earlier = read_status(args.state_dir)
    if seeding:
        write_status(args.state_dir, DemoStatus("loading", "starting the emulator"))
    elif earlier and (not args.seed or earlier.state != "ready"):
        (args.state_dir / STATUS_FILE).unlink()  # about a demo this run does not load
    emulator = Emulator(
        template_path=args.template,
        state_dir=args.state_dir,
        port=args.port,
        moto_port=args.moto_port,
        dashboard_port=dashboard_port(args.port, args.dashboard_port),
        reset=args.reset,
        persist=not args.no_persist,
        fresh_data=args.fresh_data,
        parameters={"DataRegion": args.data_region} if args.data_region else None,
        concurrency=args.concurrency,
        verbose=args.verbose,
        save_every_s=args.save_every,
    ).start()
    if args.seed and not seeding and not emulator.restored:
        # The demo was loaded by a run that ended without saving (killed): it is gone.
        (args.state_dir / "seeded").unlink(missing_ok=True)
        seeding = True
        write_status(args.state_dir, DemoStatus("loading", "starting the emulator"))
    info = emulator.info()
    print(_banner(info, emulator.secret, args.seed if seeding else 0), flush=True)
    if not emulator.dashboard.library_installed:
        print(f"(the dashboard cannot draw charts: {MISSING_LIBRARY})", flush=True)
    if emulator.restored:
        print("(state restored from the previous run; `make run ARGS=--reset` starts afresh)")

    stopped = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    if seeding:
        queue = str(emulator.stack.refs["ImportQueue"])
        threading.Thread(
            target=_seed,
            args=(
                info["api"],
                emulator.secret,
                args.seed,
                queue,
                args.state_dir,
                started,
                stopped,
                str(emulator.stack.refs[SEGMENT_CHANGES_QUEUE]),
                emulator.moto.save,
            ),
            daemon=True,
        ).start()
        print("ready: the API answers; the demo shop loads in the background", flush=True)
    else:
        emulator.moto.save()
        print("ready", flush=True)
    stopped.wait()
    print("\nstopping ...", flush=True)
    emulator.stop()
    return 0


def _not_running(state_dir: Path) -> int:
    # The state directory is the checkout's by default: from elsewhere, name it.
    print(f"no emulator is running with its state in {state_dir}: start it with `make run` "
          "(one started elsewhere: --state-dir DIR)", file=sys.stderr)  # fmt: skip
    return 1


def cmd_token(args: argparse.Namespace) -> int:
    if args.role == "customer" and not args.customer:
        raise UsageError("a customer token needs --customer ID (the customer's id)")
    print(issue_token(dev_secret(args.state_dir), args.role, args.customer))
    return 0


def cmd_fire(args: argparse.Namespace) -> int:
    info = _running(args.state_dir)
    if not info:
        return _not_running(args.state_dir)
    schedules: dict[str, dict[str, Any]] = info["schedules"]
    name = next((n for n in schedules if n == args.name or n.endswith(f"-{args.name}")), None)
    if name is None:
        raise UsageError(f"no schedule {args.name}; the template has: "
                         f"{', '.join(schedules) or 'none'}")  # fmt: skip
    spec = schedules[name]
    trigger = ScheduleTrigger(spec["function"], name, spec["expression"], spec["input"], True)
    use_endpoint(info["aws_endpoint"])
    at = datetime.now(UTC) + read_offset(args.state_dir)
    body = json.dumps(scheduled_event(trigger, at))
    boto3.client("sqs").send_message(QueueUrl=info["taps"][spec["function"]], MessageBody=body)
    print(f"fired {name} -> {spec['function']}")
    return 0


def _read_event(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read the event file {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"the event file {path} is not JSON: {exc}") from None


def cmd_invoke(args: argparse.Namespace) -> int:
    template = load_template(args.template)
    names = [spec.logical_id for spec in template.functions()]
    if args.function not in names:
        raise UsageError(
            f"no function {args.function} in {args.template.name}; it has: {', '.join(names)}"
        )
    spec = template.function(args.function)
    event = _read_event(Path(args.event))
    info = _running(args.state_dir)
    server = None
    if info:
        use_endpoint(info["aws_endpoint"])
    else:
        print("(no emulator running: using an empty throwaway one)", file=sys.stderr)
        server = LocalMotoServer()
        server.start()
        use_endpoint(server.endpoint)
    try:
        stack = provision(template)
        env = stack.environment(spec)
        os.environ.update(env)
        reset_process_state()
        install_clock(EmulatedTime(args.state_dir))
        # Like `sam local invoke`: the function's logs on stderr, its result alone on stdout.
        with contextlib.redirect_stdout(sys.stderr):
            result = invoke(spec, event, env)
    finally:
        if server:
            server.stop()
    print(json.dumps(result, ensure_ascii=False, indent=2, default=str))
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    info = _running(args.state_dir)
    if not info:
        return _not_running(args.state_dir)
    use_endpoint(info["aws_endpoint"])
    queue = info["queues"]["ImportQueue"]
    done = _seed(info["api"], dev_secret(args.state_dir), args.customers, queue, args.state_dir,
                 announced_to=info["queues"][SEGMENT_CHANGES_QUEUE])  # fmt: skip
    return 0 if done.state == "ready" else 1


def _snapshot_command(args: argparse.Namespace, verb: str, act: Any) -> int:
    """`backup` and `restore`: against the running emulator, a snapshot mistake in one line."""
    info = _running(args.state_dir)
    if not info:
        return _not_running(args.state_dir)
    use_endpoint(info["aws_endpoint"])
    try:
        summary = act(info, args.folder)
    except SnapshotError as exc:
        raise UsageError(str(exc)) from None
    print(f"{verb} {summary.line()}")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    return _snapshot_command(args, "backed up", take_snapshot)


def cmd_restore(args: argparse.Namespace) -> int:
    return _snapshot_command(args, "restored", restore_snapshot)


def cmd_status(args: argparse.Namespace) -> int:
    info = _running(args.state_dir)
    if not info:
        return _not_running(args.state_dir)
    print(f"running: API {info['api']}, AWS endpoint {info['aws_endpoint']}")
    if "dashboard" in info:
        sign_in = "`.venv/bin/crm-local token --role analyst`"
        print(f"dashboard: {info['dashboard']} (sign in with {sign_in})")
    demo = read_status(args.state_dir)
    print(demo.line() if demo else "no demo shop loading (`crm-local up --seed N` loads one)")
    return 1 if demo and demo.state == "failed" else 0


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crm-local", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE)
    parser.add_argument("--template", type=Path, default=TEMPLATE_PATH)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the whole suite on 127.0.0.1")
    up.add_argument("--port", type=int, default=8000, help="API gateway port (0: any free)")
    up.add_argument("--moto-port", type=int, default=0, help="AWS endpoint port (0: any free)")
    up.add_argument("--dashboard-port", type=int, default=None, metavar="PORT",
                    help="the dashboard's port (default: the API's + 1; 0: any free)")  # fmt: skip
    up.add_argument("--seed", type=int, default=0, metavar="N",
                    help="load N demo customers on first start")  # fmt: skip
    up.add_argument("--reset", action="store_true", help="forget the state of earlier runs")
    up.add_argument("--no-persist", action="store_true", help="keep nothing after stopping")
    up.add_argument(
        "--data-region",
        choices=["cn", "eu", "us"],
        help="the data region this stack keeps (template.yaml's DataRegion; default cn); run "
        "a second emulator with another region, state dir and port to see residency at work",
    )
    up.add_argument(
        "--fresh-data",
        action="store_true",
        help="start with empty tables, queues and lake but the earlier run's keys and secrets "
        "(the account), to restore a snapshot into (`crm-local restore DIR`)",
    )
    up.add_argument(
        "--concurrency",
        type=positive,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"containers per function at once (default {DEFAULT_CONCURRENCY})",
    )
    up.add_argument(
        "--save-every",
        type=positive,
        default=SAVE_EVERY_S,
        metavar="SECONDS",
        help="save the state this often while it changes (default %(default).0f; also at stop): "
        "a killed emulator loses what it did since",
    )
    up.add_argument("--verbose", action="store_true")
    up.set_defaults(run=cmd_up)

    token = sub.add_parser("token", help="print a development token")
    token.add_argument("--role", required=True, choices=ROLES)
    token.add_argument("--customer", help="the customer id of a customer token")
    token.set_defaults(run=cmd_token)

    fire = sub.add_parser("fire", help="fire one of the template's schedules now")
    fire.add_argument("name", help="the schedule's rule name (or its event name)")
    fire.set_defaults(run=cmd_fire)

    inv = sub.add_parser("invoke", help="run one function once, like `sam local invoke`")
    inv.add_argument("function", help="the function's logical id in template.yaml")
    inv.add_argument("--event", required=True, help="a JSON event file, e.g. events/...json")
    inv.set_defaults(run=cmd_invoke)

    seed = sub.add_parser("seed", help="load demo customers into the running suite")
    seed.add_argument("--customers", type=int, default=2000)
    seed.set_defaults(run=cmd_seed)

    backup = sub.add_parser("backup", help="copy the tables and the lake to a snapshot folder")
    backup.add_argument("folder", type=Path, help="a new or empty folder")
    backup.set_defaults(run=cmd_backup)

    restore = sub.add_parser(
        "restore", help="load a snapshot into a fresh emulator (`up --fresh-data`)"
    )
    restore.add_argument("folder", type=Path, help="a folder `crm-local backup` wrote")
    restore.set_defaults(run=cmd_restore)

    status = sub.add_parser("status", help="whether it runs, and where the demo shop stands")
    status.set_defaults(run=cmd_status)

    again = sub.add_parser("redrive", help="move a queue's dead-letter messages back to it")
    again.add_argument("queue", help="the queue (not its DLQ): logical id or physical name")
    again.set_defaults(run=cmd_redrive)

    clock = sub.add_parser("clock", help="show or move the emulator's clock (time travel)")
    clock.set_defaults(run=cmd_clock, clock_command=None)
    moves = clock.add_subparsers(dest="clock_command")
    forward = moves.add_parser("advance", help="move the clock forward: 30d, 12h, 90m, 45s")
    forward.add_argument("duration", help="how far: 30d, 12h, 90m, 45s, or 1d12h")

    # privacy
    audit = sub.add_parser("audit", help="the privacy audit trail")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser(
        "verify", help="verify the hash chain (and each entry's locked archive copy)"
    )
    verify.add_argument("--no-archive", action="store_true", help="check the table's chain only")
    verify.set_defaults(run=cmd_audit_verify)
    privacy = sub.add_parser("privacy", help="privacy requests' operations")
    privacy_commands = privacy.add_subparsers(dest="privacy_command", required=True)
    replay = privacy_commands.add_parser(
        "replay-erasures",
        help="after a restore: run again every erasure completed since the restore point "
        "(read from the audit archive)",
    )
    replay.add_argument("--since", required=True, help="the restore point, e.g. 2026-11-20T08:00Z")
    replay.set_defaults(run=cmd_replay_erasures)
    backfill = privacy_commands.add_parser(
        "backfill-campaigns",
        help="index CampaignsTable's items written before its customer index (run once)",
    )
    backfill.set_defaults(run=cmd_backfill_campaigns)

    # campaigns: D
    outbox = sub.add_parser("outbox", help="what campaigns would have sent (recording provider)")
    outbox.add_argument("--customer", help="only this customer's messages")
    outbox.add_argument("--campaign", help="only this campaign's messages")
    outbox.add_argument("--json", action="store_true", help="one JSON object a line")
    outbox.set_defaults(run=cmd_outbox)
    return parser


def _queue_url(sqs: Any, queues: dict[str, str], name: str) -> str:
    """A queue by the template's logical id (ProfileEventsQueue) or by its physical name."""
    if name in queues:
        return queues[name]
    try:
        url: str = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError:
        raise UsageError(f"no queue {name}; the template's: {', '.join(queues)}") from None
    return url


def cmd_clock(args: argparse.Namespace) -> int:
    if args.clock_command == "advance":
        try:
            by = parse_duration(args.duration)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        offset = advance(args.state_dir, by)
        if _running(args.state_dir):
            # A running emulator looks at the clock file every RECHECK_S: once this returns,
            # every request it serves sees the new time (a script's next call included).
            time.sleep(RECHECK_S + 0.1)
    else:
        offset = read_offset(args.state_dir)
    now = (datetime.now(UTC) + offset).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"{now}  (real time {describe(offset)})")
    if not _running(args.state_dir):
        print("(no emulator is running: it will start at this time)", file=sys.stderr)
    return 0


def cmd_redrive(args: argparse.Namespace) -> int:
    info = _running(args.state_dir)
    if not info:
        return _not_running(args.state_dir)
    use_endpoint(info["aws_endpoint"])
    sqs = boto3.client("sqs")
    queues: dict[str, str] = info["queues"]
    url = _queue_url(sqs, queues, args.queue)
    try:
        moved = redrive(sqs, url)
    except NoDeadLetterQueue as exc:
        with_one = []
        for logical, other in queues.items():
            with contextlib.suppress(NoDeadLetterQueue):
                dead_letter_url(sqs, other)
                with_one.append(logical)
        raise UsageError(f"{exc}; queues that have one: {', '.join(with_one)}") from None
    dlq, queue = moved.dead_letter_url.rsplit("/", 1)[-1], url.rsplit("/", 1)[-1]
    plural = "" if moved.count == 1 else "s"
    print(f"moved {moved.count} message{plural} from {dlq} back to {queue}")
    return 0


# ---- privacy
def audit_verification(check_archive: bool = True) -> Any:
    """The privacy audit chain of the suite on the current AWS endpoint, verified."""
    from crm.clock import utc_now
    from crm.privacy.audit import AuditLog
    from crm.privacy.store import PrivacyFiles, PrivacyStore

    ddb, s3 = boto3.client("dynamodb"), boto3.client("s3")
    tables = [t for t in ddb.list_tables()["TableNames"] if t.endswith("-PrivacyTable")]
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"] if "auditarchivebucket" in b["Name"]]
    if not tables or not buckets:
        raise UsageError(
            "no PrivacyTable or AuditArchiveBucket: is this the emulator of this template?"
        )
    log = AuditLog(PrivacyStore(tables[0]), PrivacyFiles("", buckets[0]), utc_now)
    return log.verify(check_archive=check_archive)


def cmd_audit_verify(args: argparse.Namespace) -> int:
    info = _running(args.state_dir)
    if not info:
        return _not_running(args.state_dir)
    use_endpoint(info["aws_endpoint"])
    result = audit_verification(check_archive=not args.no_archive)
    if result.intact:
        print(f"the audit chain is intact: {result.entries} entries, head {result.head_hash}")
        return 0
    print(f"the audit chain is broken at entry {result.first_broken}: {result.problem} "
          f"({result.entries} entries before it verified)")  # fmt: skip
    return 1


def cmd_replay_erasures(args: argparse.Namespace) -> int:
    """The erasures completed since a restore point, from the audit archive, run again on
    the running suite's restored tables (docs/operations.md, Backups and restore)."""
    info = _running(args.state_dir)
    if not info:
        return _not_running(args.state_dir)
    try:
        since = datetime.fromisoformat(args.since.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {args.since}: an ISO time, e.g. 2026-11-20T08:00:00Z") from None
    if since.tzinfo is None:
        raise UsageError("--since needs its zone (Z or +08:00)")
    use_endpoint(info["aws_endpoint"])
    template = load_template(args.template)
    stack = provision(template)  # the running suite's resources, as the worker sees them
    os.environ.update(stack.environment(template.function("PrivacyWorkerFunction")))
    reset_process_state()
    install_clock(EmulatedTime(args.state_dir))
    from crm.composition import root

    replayed = root().erasure_replay.replay(since)
    for r in replayed:
        erased = sum(r.erased.values())
        state = "clean" if r.clean else "NOT CLEAN (see the audit trail's erasure_replayed)"
        print(f"{r.request_id}  customer {r.customer_id}  completed {r.completed_at.isoformat()}"
              f"  subject from {r.subject_from}: {erased} items erased again, {state}")  # fmt: skip
    print(f"{len(replayed)} erasure(s) completed since {since.isoformat()} replayed")
    return 0 if all(r.clean for r in replayed) else 1


def campaigns_backfill() -> dict[str, int]:
    """CampaignsTable of the suite on the current AWS endpoint: its items written before the
    `customer` index given their index key (crm.campaigns.personal_data)."""
    from crm.campaigns.personal_data import backfill_customer_index

    ddb = boto3.client("dynamodb")
    tables = [t for t in ddb.list_tables()["TableNames"] if t.endswith("-CampaignsTable")]
    if not tables:
        raise UsageError("no CampaignsTable: is this the emulator of this template?")
    return backfill_customer_index(tables[0])


def cmd_backfill_campaigns(args: argparse.Namespace) -> int:
    """Run once, after the deploy that added CampaignsTable's `customer` index
    (docs/personal-data.md)."""
    info = _running(args.state_dir)
    if not info:
        return _not_running(args.state_dir)
    use_endpoint(info["aws_endpoint"])
    done = campaigns_backfill()
    for kind, n in sorted(done.items()):
        print(f"{kind}: {n}")
    print(f"{sum(done.values())} item(s) of CampaignsTable indexed by customer")
    return 0


# ---- campaigns: D
def outbox_entries(
    customer: str | None = None, campaign: str | None = None
) -> list[dict[str, Any]]:
    """The recording provider's outbox on the current AWS endpoint, oldest first. Without a
    customer it scans the table: fine for the emulator's demo shop, never for a real one."""
    ddb = boto3.client("dynamodb")
    tables = [t for t in ddb.list_tables()["TableNames"] if t.endswith("-CampaignsTable")]
    if not tables:
        raise UsageError("no CampaignsTable: is this the emulator of this template?")
    if customer:
        pages = ddb.get_paginator("query").paginate(
            TableName=tables[0], KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": f"OUTBOX#{customer}"}},
        )  # fmt: skip
    else:
        pages = ddb.get_paginator("scan").paginate(
            TableName=tables[0], FilterExpression="begins_with(PK, :p)",
            ExpressionAttributeValues={":p": {"S": "OUTBOX#"}},
        )  # fmt: skip
    entries = [json.loads(item["body"]["S"]) for page in pages for item in page["Items"]]
    if campaign:
        entries = [e for e in entries if e.get("campaign_id") == campaign]
    return sorted(entries, key=lambda e: (str(e.get("sent_at")), str(e.get("message_id"))))


def cmd_outbox(args: argparse.Namespace) -> int:
    info = _running(args.state_dir)
    if not info:
        return _not_running(args.state_dir)
    use_endpoint(info["aws_endpoint"])
    entries = outbox_entries(args.customer, args.campaign)
    for entry in entries:
        if args.json:
            print(json.dumps(entry, ensure_ascii=False, sort_keys=True))
            continue
        subject = f"[{entry['subject']}] " if entry.get("subject") else ""
        to = entry.get("to") or "-"
        print(f"{entry['sent_at']}  {entry['channel']:<7} {entry['customer_id']} -> {to}  "
              f"{entry['campaign_id']}: {subject}{entry['body']}")  # fmt: skip
    if not entries:
        print("the outbox is empty", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    given = sys.argv[1:] if argv is None else argv
    for at, word in enumerate(given[:-1]):
        # argparse would take `-1d` for an option and say the duration is missing.
        if (
            word == "advance"
            and given[at + 1].startswith("-")
            and given[at + 1] not in ("-h", "--help")
        ):
            print(f"{parser.prog} clock: error: the clock only moves forward ({given[at + 1]}): "
                  "what ran at the later time cannot be undone; `make run ARGS=--reset` "
                  "starts again from now", file=sys.stderr)  # fmt: skip
            return 2
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except UsageError as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`crm-local outbox | head`): stop quietly, as a Unix tool does;
        # what is still buffered goes nowhere instead of to a second traceback at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
