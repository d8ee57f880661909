"""Dead letters back to work: the messages of a queue's dead-letter queue moved back to the
queue, as SQS's StartMessageMoveTask does in AWS. moto has no move task, so the messages are
received, sent again and deleted: bodies, attributes and FIFO groups kept, new message ids."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

VISIBILITY_S = 60  # long enough to send a batch on before another reader could see it


class NoDeadLetterQueue(Exception):
    pass


@dataclass(frozen=True)
class Moved:
    count: int
    dead_letter_url: str


def dead_letter_url(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
    policy = attributes.get("Attributes", {}).get("RedrivePolicy")
    if not policy:
        raise NoDeadLetterQueue(f"{url.rsplit('/', 1)[-1]} has no dead-letter queue")
    arn = json.loads(policy)["deadLetterTargetArn"]
    _, _, _, _, account, name = arn.split(":", 5)
    queue_url: str = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    return queue_url


def _resend(message: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"MessageBody": message["Body"]}
    attributes = {
        name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
        for name, value in message.get("MessageAttributes", {}).items()
    }
    if attributes:
        entry["MessageAttributes"] = attributes
    system = message.get("Attributes", {})
    if "MessageGroupId" in system:  # FIFO: the same group, and a new deduplication id
        entry["MessageGroupId"] = system["MessageGroupId"]
        entry["MessageDeduplicationId"] = message["MessageId"]
    return entry


def redrive(sqs: Any, url: str) -> Moved:
    """Move the messages of the dead-letter queue back to `url`, until a receive finds none
    (not by its message count: that is approximate, in SQS as in the emulator's moto)."""
    dlq = dead_letter_url(sqs, url)
    moved = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=dlq,
            MaxNumberOfMessages=10,
            VisibilityTimeout=VISIBILITY_S,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return Moved(moved, dlq)
        entries = [{"Id": str(i), **_resend(m)} for i, m in enumerate(messages)]
        sent = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        done = {int(s["Id"]) for s in sent.get("Successful", [])}
        if done:
            sqs.delete_message_batch(
                QueueUrl=dlq,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": messages[i]["ReceiptHandle"]} for i in done
                ],
            )
        if sent.get("Failed"):  # the rest stays in the dead-letter queue, visible again soon
            reasons = "; ".join(f["Message"] for f in sent["Failed"] if "Message" in f)
            raise RuntimeError(f"moved {moved + len(done)}, then SQS refused: {reasons}")
        moved += len(done)
