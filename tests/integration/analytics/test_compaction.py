"""The nightly compaction on moto: the hand-checked dataset's JSON Lines become Parquet, the
metrics over the Parquet are the metrics over the JSON, running it twice changes nothing, and
a customer's rows can be found and erased from the Parquet."""

from __future__ import annotations

import json
from typing import Any

from crm import aws
from crm.analytics.parquet import from_parquet
from crm.analytics.parquet_rows import ParquetRows
from crm.composition import reset
from crm.lake_personal_data import LakePersonalData
from crm.personal_data import DataSubject
from crm_local.harness import Suite
from crm_local.template import ROOT
from tests.integration.analytics.test_routes import write_dataset

SCHEDULE = json.loads((ROOT / "events" / "schedule_lake_compaction.json").read_text())
OCT_NOV = {"from": "2026-10-01", "to": "2026-11-30", "grain": "month"}
DAYS = [f"2026-10-{d:02d}" for d in range(1, 32)] + [f"2026-11-{d:02d}" for d in range(1, 31)]


def parquet_keys(suite: Suite) -> dict[str, Any]:
    bucket = str(suite.stack.refs["LakeBucket"])
    listed = aws.s3().list_objects_v2(Bucket=bucket, Prefix="parquet/").get("Contents", [])
    return {o["Key"]: o["ETag"] for o in listed}


def all_metrics(suite: Suite) -> dict[str, Any]:
    names = [m["name"] for m in suite.call("GET", "/analytics/metrics").body["metrics"]]
    out = {}
    for name in names:
        reply = suite.call("GET", f"/analytics/metrics/{name}", query=OCT_NOV)
        assert reply.status == 200, reply.body
        out[name] = reply.body["series"]
    return out


def clear_cache(suite: Suite) -> None:
    bucket = str(suite.stack.refs["LakeBucket"])
    listed = aws.s3().list_objects_v2(Bucket=bucket, Prefix="analytics/cache/")
    for o in listed.get("Contents", []):
        aws.s3().delete_object(Bucket=bucket, Key=o["Key"])


def test_compacted_parquet_gives_the_same_metrics_and_twice_changes_nothing(suite: Suite) -> None:
    write_dataset(suite)
    from_json = all_metrics(suite)
    # nothing compacted for days with no data; the schedule's own run compacts two days back
    assert suite.invoke("LakeCompactionFunction", SCHEDULE)["files"] == 0
    done = suite.invoke("LakeCompactionFunction", {**SCHEDULE, "days": DAYS})
    assert done["rows"] > 0
    keys = parquet_keys(suite)
    assert "parquet/events/type=order_paid/dt=2026-11-02/part-0000.parquet" in keys
    assert "parquet/order_items/type=order_paid/dt=2026-11-02/part-0000.parquet" in keys
    assert "parquet/segment_scores/type=scores/dt=2026-11-15/part-0000.parquet" in keys
    assert "parquet/campaign_facts/type=sent/dt=2026-11-01/part-0000.parquet" in keys
    assert done["files"] == len(keys)

    clear_cache(suite)
    reset()  # a new container: the engine lists the lake afresh (it reuses a listing a minute)
    assert all_metrics(suite) == from_json  # the engine now reads the Parquet of those days

    again = suite.invoke("LakeCompactionFunction", {**SCHEDULE, "days": DAYS})
    assert again == done
    assert set(parquet_keys(suite)) == set(keys)  # the same files, rewritten whole


def test_a_redelivered_batch_is_compacted_once(suite: Suite) -> None:
    write_dataset(suite)
    bucket = str(suite.stack.refs["LakeBucket"])
    key = "events/type=order_paid/dt=2026-11-02/part-test.jsonl"
    body = aws.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    aws.s3().put_object(Bucket=bucket, Key=key.replace("part-test", "part-again"), Body=body)
    suite.invoke("LakeCompactionFunction", {**SCHEDULE, "days": ["2026-11-02"]})
    got = (
        aws.s3()
        .get_object(
            Bucket=bucket, Key="parquet/events/type=order_paid/dt=2026-11-02/part-0000.parquet"
        )["Body"]
        .read()
    )
    assert from_parquet(got).num_rows == 1  # o1's payment, once


def test_a_customers_rows_are_found_and_erased_from_the_parquet(suite: Suite) -> None:
    write_dataset(suite)
    suite.invoke("LakeCompactionFunction", {**SCHEDULE, "days": DAYS})
    # The privacy registry's lake store, reading the Parquet only (the JSON Lines it was
    # compacted from are that store's too, tested in tests/integration/privacy_data).
    lake = LakePersonalData(str(suite.stack.refs["LakeBucket"]), (ParquetRows(),))

    def rows_of(pseudonym: str) -> int:
        held = lake.inventory(DataSubject(customer_id="c-" + pseudonym, pseudonym=pseudonym))
        return sum(h.count for h in held.holdings)

    p5 = DataSubject(customer_id="c-p5", pseudonym="p5")
    # p5: three paid orders (events and their items) and a campaign exposure and conversion
    assert rows_of("p5") == 3 + 3 + 2
    assert lake.erase(p5).erased == {"lake_row": 8}
    assert lake.verify(p5).clean
    assert lake.verify(p5).checked == len(parquet_keys(suite))
    assert lake.erase(p5).erased == {}  # idempotent
    # p5's only October orders were its own files: gone; others' rows stay
    keys = parquet_keys(suite)
    assert "parquet/events/type=order_paid/dt=2026-10-05/part-0000.parquet" not in keys
    assert rows_of("p6") == 3  # o8, its item, its exposure
