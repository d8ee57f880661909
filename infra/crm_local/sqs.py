"""SQS's part towards Lambda: turn received messages into the event an SQS trigger delivers, and
what the emulator's moto answers about its queues besides SQS's API."""

from __future__ import annotations

import hashlib
from typing import Any

from crm_local.provision import REGION

# Not SQS's API: the emulator's moto server answers a GET of this path with the number of visible
# messages of every queue, by name (crm_local.moto_server), which the pump's watcher asks for
# instead of polling each queue (crm_local.pump.QueueWatcher).
VISIBLE_MESSAGES_PATH = "/_crm_local/visible-messages"


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
