"""What invokes each function, read from template.yaml: queues, schedules and bus rules.

SAM function events (`SQS`, `Schedule`, `ScheduleV2`, `EventBridgeRule`, `CloudWatchEvent`)
and plain `AWS::Events::Rule` resources whose targets are functions are all understood, so a
function or schedule added to the template runs locally with no other wiring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crm_local.provision import Stack


@dataclass(frozen=True)
class QueueTrigger:
    function: str
    queue: str  # logical id
    batch_size: int
    window_s: float
    partial_failures: bool


@dataclass(frozen=True)
class ScheduleTrigger:
    function: str
    name: str  # the rule's name: what `crm-local fire` takes
    expression: str
    input: str | None
    enabled: bool


@dataclass(frozen=True)
class BusTrigger:
    function: str
    name: str
    bus: str
    pattern: dict[str, Any]
    input: str | None


Trigger = QueueTrigger | ScheduleTrigger | BusTrigger


def _queue_logical_id(stack: Stack, arn: str) -> str:
    for logical, attrs in stack.attrs.items():
        if attrs.get("Arn") == arn and "QueueName" in attrs:
            return logical
    raise KeyError(f"an SQS event names a queue the template does not declare: {arn}")


def _rule_trigger(
    function: str,
    name: str,
    props: dict[str, Any],
    schedule: str | None,
    pattern_key: str,
    target_input: str | None,
    enabled: bool,
) -> Trigger:
    """An EventBridge rule that reaches a function: a schedule, or a pattern on a bus."""
    if schedule:
        return ScheduleTrigger(function, name, str(schedule), target_input, enabled)
    bus = str(props.get("EventBusName", "default"))
    return BusTrigger(function, name, bus, props.get(pattern_key, {}), target_input)


def _function_events(stack: Stack) -> list[Trigger]:
    found: list[Trigger] = []
    for spec in stack.template.functions():
        for event in spec.events:
            props = stack.resolve(event.properties) if event.type != "Api" else {}
            name = props.get("Name") or f"{spec.logical_id}-{event.name}"
            if event.type == "SQS":
                found.append(
                    QueueTrigger(
                        function=spec.logical_id,
                        queue=_queue_logical_id(stack, props["Queue"]),
                        batch_size=int(props.get("BatchSize", 10)),
                        window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                        partial_failures="ReportBatchItemFailures"
                        in props.get("FunctionResponseTypes", []),
                    )
                )
            elif event.type in ("Schedule", "ScheduleV2", "EventBridgeRule", "CloudWatchEvent"):
                enabled = bool(props.get("Enabled", True)) and props.get("State") != "DISABLED"
                schedule = props.get("Schedule") or props.get("ScheduleExpression")
                found.append(
                    _rule_trigger(
                        spec.logical_id,
                        name,
                        props,
                        schedule,
                        "Pattern",
                        props.get("Input"),
                        enabled,
                    )
                )
    return found


def _rule_resources(stack: Stack) -> list[Trigger]:
    functions = {stack.function_arn(s.logical_id): s.logical_id for s in stack.template.functions()}
    found: list[Trigger] = []
    for logical_id, resource in stack.template.of_type("AWS::Events::Rule").items():
        props = stack.resolve(resource.get("Properties", {}))
        name = props.get("Name") or logical_id
        for target in props.get("Targets", []):
            function = functions.get(str(target["Arn"]))
            if function is None:
                continue  # SQS and other targets: moto delivers them itself
            enabled = props.get("State", "ENABLED") == "ENABLED"
            found.append(
                _rule_trigger(
                    function,
                    name,
                    props,
                    props.get("ScheduleExpression"),
                    "EventPattern",
                    target.get("Input"),
                    enabled,
                )
            )
    return found


def triggers(stack: Stack) -> list[Trigger]:
    return _function_events(stack) + _rule_resources(stack)
