"""Queues that carry customer data are encrypted with the PII key, their dead letters are kept
briefly, and every function that sends to or receives from them may use that key."""

from __future__ import annotations

from typing import Any

import boto3

from crm_local.harness import Suite
from crm_local.template import Template, load_template

# Queues that carry no customer data, and why: a new queue must be added here or be encrypted.
PII_FREE_QUEUES = {
    "SegmentShardsQueue": "shard numbers of a segment run",
    "SegmentShardsDLQ": "the same, failed",
    "TimerSweepQueue": "shard numbers of the timer sweep",
    "TimerSweepDLQ": "the same, failed",
    # campaigns: S
    "SendTimersQueue": "send ids of scheduled sends waking up",
    "SendTimersDLQ": "the same, failed",
    # campaigns: D
    "CampaignDispatchQueue": "wake-ups of deferred messages: a message hash and attempt",
    "CampaignDispatchDLQ": "the same, failed",
}
DLQ_RETENTION_S = 4 * 24 * 3600
PII_KEY = {"Ref": "PiiKey"}
# campaigns: J (journeys): their queues carry instance and customer ids, and scan positions.
JOURNEY_DLQS = {"JourneyStepsDLQ", "JourneyTriggersDLQ", "JourneyDailyDLQ"}
JOURNEY_FUNCTIONS = {
    "JourneyStepsFunction", "JourneyTriggersFunction", "JourneyDailyFunction",
    "JourneyDailyShardFunction", "TimerShardFunction",
}  # fmt: skip


def queues(template: Template) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in template.resources.items()
        if resource["Type"] == "AWS::SQS::Queue"
    }


def customer_queues(template: Template) -> dict[str, dict[str, Any]]:
    return {q: p for q, p in queues(template).items() if q not in PII_FREE_QUEUES}


def test_queues_with_customer_data_use_the_pii_key_and_their_dlqs_too() -> None:
    template = load_template()
    carrying = customer_queues(template)
    assert {"ProfileEventsQueue", "ProfileEventsDLQ"} <= set(carrying)
    for logical_id, props in carrying.items():
        assert props.get("KmsMasterKeyId") == PII_KEY, logical_id
        assert props.get("KmsDataKeyReusePeriodSeconds") == 300, logical_id
        assert "SqsManagedSseEnabled" not in props, logical_id  # SQS takes one or the other
        redrive = props.get("RedrivePolicy")
        if redrive:
            dlq = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
            assert dlq in carrying, f"{logical_id} sends its dead letters to a PII-free queue"
    for logical_id in PII_FREE_QUEUES:
        assert queues(template)[logical_id].get("SqsManagedSseEnabled") is True, logical_id


def test_dead_letters_with_customer_data_are_kept_four_days() -> None:
    template = load_template()
    carrying = customer_queues(template)
    dlqs = {p["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
            for p in carrying.values() if "RedrivePolicy" in p}  # fmt: skip
    assert (
        dlqs
        == {
            "ProfileEventsDLQ",
            "SendShardsDLQ",
            "ConversionsDLQ",
            "TicketSlaDLQ",
            "PrivacyDLQ",
            "AuditDLQ",
            "ImportDLQ",
        }
        | JOURNEY_DLQS
    )
    for dlq in dlqs:
        assert carrying[dlq]["MessageRetentionPeriod"] == DLQ_RETENTION_S


def _queue_of(value: Any) -> str | None:
    """The logical id a policy or event names a queue by (GetAtt X.Arn / X.QueueName)."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    return None


def _may_use_pii_key(policies: list[Any]) -> set[str]:
    actions: set[str] = set()
    for policy in policies:
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            if statement.get("Effect") == "Allow" and statement.get("Resource") == {
                "Fn::GetAtt": ["PiiKey", "Arn"]
            }:
                wanted = statement["Action"]
                actions |= set([wanted] if isinstance(wanted, str) else wanted)
    return actions


def test_every_sender_and_receiver_of_an_encrypted_queue_may_use_the_key() -> None:
    template = load_template()
    carrying = set(customer_queues(template))
    checked = set()
    for logical_id, resource in template.resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        policies = props.get("Policies", [])
        sends = {
            _queue_of(p["SQSSendMessagePolicy"]["QueueName"])
            for p in policies
            if isinstance(p, dict) and "SQSSendMessagePolicy" in p
        }
        receives = {
            _queue_of(e["Properties"]["Queue"])
            for e in props.get("Events", {}).values()
            if e["Type"] == "SQS"
        }
        if (sends | receives) & carrying:
            # SQS asks KMS for both on send; on receive it decrypts, and it moves a poison
            # message into the (encrypted) DLQ with the receiver's rights.
            assert {"kms:GenerateDataKey", "kms:Decrypt"} <= _may_use_pii_key(policies), logical_id
            checked.add(logical_id)
    assert (
        checked
        == {
            "ApiFunction",
            "ProfileEventsFunction",
            "SendWorkerFunction",
            "CampaignConversionsFunction",
            "TicketSlaFunction",
            "TimerShardFunction",
            "PrivacyWorkerFunction",
            "PrivacyAuditFunction",
            "HistoryImportFunction",
        }
        | JOURNEY_FUNCTIONS
    )


def test_the_emulator_creates_the_queues_as_the_template_says(suite: Suite) -> None:
    sqs = boto3.client("sqs")
    key_id = suite.stack.refs["PiiKey"]
    for logical_id, props in queues(suite.stack.template).items():
        attrs = sqs.get_queue_attributes(
            QueueUrl=suite.queue_url(logical_id), AttributeNames=["All"]
        )["Attributes"]
        assert attrs["MessageRetentionPeriod"] == str(props["MessageRetentionPeriod"])
        if logical_id in PII_FREE_QUEUES:
            assert "KmsMasterKeyId" not in attrs
        else:
            assert attrs["KmsMasterKeyId"] == key_id, logical_id
            assert attrs["KmsDataKeyReusePeriodSeconds"] == "300", logical_id
