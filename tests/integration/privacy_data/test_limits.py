"""Erasure's writes respect AWS's limits that moto does not enforce."""

from __future__ import annotations

import boto3

from crm.erasure import delete_items, query_partition
from crm_local.harness import Suite, count_requests
from tests.integration.privacy_data.conftest import batch_sizes


def test_deleting_sixty_items_takes_three_batches_of_at_most_25(suite: Suite) -> None:
    table = suite.stack.refs["SegmentsTable"]
    dynamodb = boto3.client("dynamodb")
    keys = [{"PK": {"S": "SEG#gold#03"}, "SK": {"S": f"c-{n:03d}"}} for n in range(60)]
    for key in keys:
        dynamodb.put_item(TableName=table, Item=key)
    assert len(query_partition(table, "SEG#gold#03")) == 60
    with count_requests() as counts, batch_sizes() as sizes:
        asked = delete_items(table, [*keys, keys[0]])  # a key named twice is deleted once
    assert asked == 60
    assert sizes == [25, 25, 10]
    assert counts["dynamodb.BatchWriteItem"] == 3
    assert query_partition(table, "SEG#gold#03") == []
