"""The whole suite on 127.0.0.1: moto, the API gateway, the queue pump and the clock, all driven
by template.yaml."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import boto3

from crm_local import local_signing
from crm_local.api_settings import read_api_settings
from crm_local.apigw import api_routes
from crm_local.clock import Clock
from crm_local.dashboard import DashboardServer
from crm_local.gateway import Gateway
from crm_local.moto_server import SAVE_EVERY_S, MotoProcess
from crm_local.provision import REGION, Stack, provision
from crm_local.pump import Demand, QueuePoller, QueueWatcher, TapPoller
from crm_local.runtime import FunctionPool, reset_process_state
from crm_local.state import INFO_FILE, STATE_FILE, write_info
from crm_local.template import TEMPLATE_PATH, load_template
from crm_local.time_travel import CLOCK_FILE, EmulatedTime, install_clock
from crm_local.tokens import dev_secret
from crm_local.triggers import BusTrigger, QueueTrigger, ScheduleTrigger, triggers

log = logging.getLogger("crm_local")

# Containers each function may run at once. A burst at the API (a page of a client app, a
# promotion, the demo loader) needs many at once, as Lambda would give it; two hid failures
# that only concurrent requests show.
DEFAULT_CONCURRENCY = 10
# Pollers per SQS mapping, whatever the concurrency. moto serves one request at a time while the
# functions run in this process: with two pollers, moto waited while a function computed and the
# function waited while moto answered; four keep both busy when a queue has a backlog (the demo
# loader's). An idle queue is not polled: its lead waits for the watcher to see messages in it,
# the others for the lead to find some (crm_local.pump.QueueWatcher, Demand).
QUEUE_POLLERS = 4


def pollers_per_queue(concurrency: int) -> int:
    """More pollers than containers would only wait for a container."""
    return min(QUEUE_POLLERS, concurrency)


# The dashboard shows money in the data region's currency (template.yaml's DataRegion).
CURRENCIES = {"cn": "CNY", "eu": "EUR", "us": "USD"}

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


# The AWS config file of the emulator's processes. botocore checks every call's parameters
# against the service model before sending it, which cost the functions' side of the demo
# loader more CPU than building them (moto, like DynamoDB and SQS, checks them anyway and answers
# a ValidationException); the functions' bulk client skips it for the same reason.
# `parameter_validation` has no environment variable: it is a config file's setting.
LOCAL_AWS_CONFIG = "[default]\nparameter_validation = false\n"


def _local_aws_config() -> Path:
    path = Path(tempfile.gettempdir()) / f"crm-local-aws-config-{os.getuid()}"
    if not path.exists() or path.read_text() != LOCAL_AWS_CONFIG:
        part = path.with_name(f"{path.name}.{os.getpid()}")
        part.write_text(LOCAL_AWS_CONFIG)
        part.replace(path)  # whole, even with another emulator process writing it too
    return path


def use_endpoint(endpoint: str) -> None:
    """Point every boto3 client of this process at the emulator, never at a real account (nor
    at a profile of the user's AWS config)."""
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ["AWS_CONFIG_FILE"] = str(_local_aws_config())
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    local_signing.install()  # moto reads a signature's scope, never checks the signature


class Emulator:
    def __init__(
        self,
        template_path: Path = TEMPLATE_PATH,
        state_dir: Path = Path(".crm-local"),
        port: int = 8000,
        moto_port: int = 0,
        dashboard_port: int = 0,
        reset: bool = False,
        persist: bool = True,
        fresh_data: bool = False,
        parameters: dict[str, str] | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        verbose: bool = False,
        save_every_s: float = SAVE_EVERY_S,
    ) -> None:
        self.template = load_template(template_path)
        self.state_dir = state_dir
        self.port, self.moto_port, self.dashboard_port = port, moto_port, dashboard_port
        self.reset, self.persist, self.concurrency = reset, persist, concurrency
        self.fresh_data = fresh_data
        self.save_every_s = save_every_s
        self.parameters = parameters or {}
        self.stop_event = threading.Event()
        self.pools: dict[str, FunctionPool] = {}
        self.taps: dict[str, str] = {}
        self.tap_pollers: dict[str, TapPoller] = {}
        self.schedules: list[ScheduleTrigger] = []
        self.threads: list[threading.Thread] = []
        self.restored = False
        # The console is the user's: functions log warnings and errors only, and their
        # CloudWatch metrics (EMF lines on stdout) stay off, unless --verbose.
        self.quiet_env = (
            {}
            if verbose
            else {
                "POWERTOOLS_LOG_LEVEL": "WARNING",
                "POWERTOOLS_METRICS_DISABLED": "true",
            }
        )

    # ------------------------------------------------------------ lifecycle
    def start(self) -> Emulator:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        if self.reset:
            for name in (STATE_FILE, "seeded", CLOCK_FILE):
                (self.state_dir / name).unlink(missing_ok=True)
        if self.fresh_data:
            (self.state_dir / "seeded").unlink(missing_ok=True)
        self.moto = MotoProcess(
            self.moto_port, self.state_dir, self.persist, self.fresh_data, self.save_every_s
        ).start()
        self.restored = self.moto.restored
        self.endpoint = self.moto.endpoint
        use_endpoint(self.endpoint)

        self.stack: Stack = provision(self.template, parameters=self.parameters)
        env: dict[str, str] = {}
        for spec in self.template.functions():
            function_env = {
                **self.stack.environment(spec),
                "AWS_ENDPOINT_URL": self.endpoint,
                **self.quiet_env,
            }
            self.pools[spec.logical_id] = FunctionPool(spec, function_env, self.concurrency)
            env.update(function_env)
        # Functions share this process: the values they share are set once for all.
        os.environ.update(env)
        reset_process_state()
        # Every function reads the emulated time (`crm-local clock advance 30d`).
        self.time = EmulatedTime(self.state_dir)
        install_clock(self.time)

        self._wire_event_sources()
        self.secret = dev_secret(self.state_dir)
        self.gateway = Gateway(
            api_routes(self.template),
            self.invoke,
            self.secret,
            self.port,
            read_api_settings(self.template, self.stack.resolve),
        )
        self.gateway.start()
        region = str(self.stack.parameters.get("DataRegion", "cn"))
        self.dashboard = DashboardServer(
            self.gateway.url, self.dashboard_port, currency=CURRENCIES.get(region, "CNY")
        ).start()
        for thread in self.threads:
            thread.start()
        write_info(self.state_dir, self.info())
        return self

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:  # a waiting poller sees the stop at once
            if isinstance(thread, QueuePoller):
                thread.demand.busy.set()
            if isinstance(thread, (QueuePoller, TapPoller)):
                thread.wake.set()
        self.gateway.stop()
        self.dashboard.stop()
        for thread in self.threads:
            thread.join(timeout=5)
        self.moto.stop()
        (self.state_dir / INFO_FILE).unlink(missing_ok=True)

    def info(self) -> dict[str, Any]:
        return {
            "api": self.gateway.url,
            "dashboard": self.dashboard.url,
            "aws_endpoint": self.endpoint,
            "parameters": self.stack.parameters,
            "pid": os.getpid(),
            "taps": self.taps,
            "schedules": {
                s.name: {"function": s.function, "expression": s.expression, "input": s.input}
                for s in self.schedules
            },
            "queues": {
                logical: self.stack.refs[logical]
                for logical in self.template.of_type("AWS::SQS::Queue")
            },
            "tables": {
                logical: self.stack.refs[logical]
                for logical in self.template.of_type("AWS::DynamoDB::Table")
            },
            "buckets": {
                logical: self.stack.refs[logical]
                for logical in self.template.of_type("AWS::S3::Bucket")
            },
        }

    # ------------------------------------------------------------ wiring
    def _tap(self, function: str) -> tuple[str, str]:
        """The queue through which EventBridge reaches a function."""
        sqs = boto3.client("sqs")
        name = f"{self.stack.name}-tap-{function}"
        url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        if function not in self.taps:
            self.taps[function] = url
            poller = TapPoller(function, url, self.invoke, self.stop_event)
            self.tap_pollers[function] = poller
            self.watcher.watch(url, poller)
            self.threads.append(poller)
        return url, arn

    def _wire_event_sources(self) -> None:
        events = boto3.client("events")
        self.watcher = QueueWatcher(self.endpoint, self.stop_event)
        self.threads.append(self.watcher)
        for trigger in triggers(self.stack):
            if isinstance(trigger, QueueTrigger):
                url = str(self.stack.refs[trigger.queue])
                arn = str(self.stack.attrs[trigger.queue]["Arn"])
                demand = Demand()
                for n in range(pollers_per_queue(self.concurrency)):
                    poller = QueuePoller(trigger, url, arn, self.invoke, self.stop_event, demand,
                                         lead=n == 0)  # fmt: skip
                    if poller.lead:
                        self.watcher.watch(url, poller)
                    self.threads.append(poller)
            elif isinstance(trigger, ScheduleTrigger):
                self._tap(trigger.function)
                self.schedules.append(trigger)
            elif isinstance(trigger, BusTrigger):
                _, arn = self._tap(trigger.function)
                events.put_rule(
                    Name=trigger.name,
                    EventBusName=trigger.bus,
                    EventPattern=json.dumps(trigger.pattern),
                )
                target: Any = {"Id": "emulator-tap", "Arn": arn}
                if trigger.input is not None:
                    target["Input"] = trigger.input
                events.put_targets(Rule=trigger.name, EventBusName=trigger.bus, Targets=[target])
        self.clock = Clock(self.schedules, self.send_to_tap, self.stop_event, now=self.time.now)
        self.threads.append(self.clock)

    # ------------------------------------------------------------ doing things
    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        return self.pools[function].invoke(event)

    def send_to_tap(self, function: str, body: str) -> None:
        boto3.client("sqs").send_message(QueueUrl=self.taps[function], MessageBody=body)
        self.tap_pollers[function].wake.set()  # at once, not at the watcher's next look

    def fire(self, name: str) -> str:
        trigger = self.clock.find(name)
        self.clock.fire(trigger)
        return trigger.name
