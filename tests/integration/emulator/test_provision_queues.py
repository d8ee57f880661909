"""The emulator keeps its state between runs: a queue the template has changed since (its
retention, its encryption) is updated in place, as a stack update would, not refused."""

from __future__ import annotations

import boto3

from crm_local.harness import Suite
from crm_local.provision import provision


def test_kept_queues_take_the_templates_new_attributes(suite: Suite) -> None:
    sqs = boto3.client("sqs")
    dlq = suite.queue_url("ProfileEventsDLQ")
    # The DLQ as an earlier template made it: kept fourteen days under another key.
    sqs.set_queue_attributes(
        QueueUrl=dlq, Attributes={"MessageRetentionPeriod": "1209600", "KmsMasterKeyId": "old"}
    )
    sqs.send_message(QueueUrl=dlq, MessageBody="{}")

    again = provision(suite.stack.template)

    assert again.refs["ProfileEventsDLQ"] == dlq
    attrs = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]
    assert attrs["MessageRetentionPeriod"] == "345600"
    assert attrs["KmsMasterKeyId"] == again.refs["PiiKey"]
    assert attrs["ApproximateNumberOfMessages"] == "1"  # updated, not recreated


def test_provisioning_again_keeps_a_locked_bucket_that_holds_objects(suite: Suite) -> None:
    # `crm-local invoke` provisions beside a running emulator whose audit archive already
    # holds entries: S3 refuses a new Object Lock configuration on a bucket with objects.
    s3 = boto3.client("s3")
    archive = suite.stack.refs["AuditArchiveBucket"]
    s3.put_object(Bucket=archive, Key="audit/000000000001.json", Body=b"{}")

    again = provision(suite.stack.template)

    assert again.refs["AuditArchiveBucket"] == archive
    lock = s3.get_object_lock_configuration(Bucket=archive)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
