"""Each queue has one consumer. Two event source mappings on one queue split its messages
between two functions at random: a merge once left the SLA wake-ups' queue mapped to the
conversions function too, which refused half the wake-ups as poison, so a breach was recorded
only after a redelivery (90 s later) or, after enough refusals, never (the message went to the
dead-letter queue)."""

from __future__ import annotations

from collections import defaultdict

from crm_local.template import Template, load_template


def consumers(template: Template) -> dict[str, list[str]]:
    """Queue logical id -> the functions whose SQS events read it."""
    found: dict[str, list[str]] = defaultdict(list)
    for function, resource in template.of_type("AWS::Serverless::Function").items():
        for event in resource["Properties"].get("Events", {}).values():
            if event.get("Type") != "SQS":
                continue
            queue = event["Properties"]["Queue"]["Fn::GetAtt"]
            found[queue[0] if isinstance(queue, list) else queue.split(".")[0]].append(function)
    return found


def test_every_queue_is_read_by_one_function_and_only_dead_letter_queues_by_none() -> None:
    template = load_template()
    read_by = consumers(template)
    shared = {queue: functions for queue, functions in read_by.items() if len(functions) > 1}
    assert not shared, f"queues read by more than one function: {shared}"
    dead_letters = {
        policy["deadLetterTargetArn"]["Fn::GetAtt"][0]
        if isinstance(policy["deadLetterTargetArn"]["Fn::GetAtt"], list)
        else policy["deadLetterTargetArn"]["Fn::GetAtt"].split(".")[0]
        for resource in template.of_type("AWS::SQS::Queue").values()
        if (policy := resource["Properties"].get("RedrivePolicy"))
    }
    unread = set(template.of_type("AWS::SQS::Queue")) - set(read_by) - dead_letters
    assert not unread, f"queues no function reads: {sorted(unread)}"
    assert read_by["TicketSlaQueue"] == ["TicketSlaFunction"]
