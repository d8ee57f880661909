"""SQS's part towards Lambda: turn received messages into the event an SQS trigger delivers."""

from __future__ import annotations

import hashlib
from typing import Any

from crm_local.provision import REGION


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    records = []
    for message in messages:
        attributes = dict(message.get("Attributes", {}))
        attributes.setdefault("ApproximateReceiveCount", "1")
        attributes.setdefault("SentTimestamp", "0")
        attributes.setdefault("SenderId", "local")
        attributes.setdefault("ApproximateFirstReceiveTimestamp", "0")
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": attributes,
                "messageAttributes": message.get("MessageAttributes", {}),
                "md5OfBody": message.get("MD5OfBody")
                or hashlib.md5(message["Body"].encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
        )
    return {"Records": records}
