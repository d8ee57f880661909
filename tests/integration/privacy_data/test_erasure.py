"""Every store of the registry on a customer seeded through the real services: a dry run
counts what is there, erasure leaves nothing any table or bucket could still link to them
(orders kept anonymised), proves it, changes nothing when run again, spares the neighbour,
and a store left out of the registry is caught by the cross-store search."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import boto3

from crm.composition import root
from crm.personal_data import ErasureMethod, PersonalDataStore
from crm.privacy.registry import personal_data_stores
from crm_local.harness import Suite, count_requests
from tests.integration.privacy_data.conftest import (
    COMPLAINT,
    MESSAGE,
    NOTE,
    PLANNER,
    World,
    batch_sizes,
    resources,
    search_everywhere,
)


def run_segments(suite: Suite) -> None:
    plan = suite.invoke("SegmentPlannerFunction", PLANNER)
    assert suite.drain("SegmentWorkerFunction", "SegmentShardsQueue", rounds=100) == plan["shards"]


def everything(suite: Suite) -> dict[str, Any]:
    """Every item of every table and every object of every bucket, for before/after."""
    dynamodb, s3 = boto3.client("dynamodb"), boto3.client("s3")
    found: dict[str, Any] = {}
    for table in resources(suite, ("AWS::DynamoDB::Table",)).values():
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                found[f"{table}/{item['PK']['S']}/{item['SK']['S']}"] = item
    for bucket in resources(suite, ("AWS::S3::Bucket",)).values():
        for listing in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for entry in listing.get("Contents", []):
                found[f"{bucket}/{entry['Key']}"] = s3.get_object(Bucket=bucket, Key=entry["Key"])[
                    "Body"
                ].read()
    return found


def timers_of(suite: Suite, ticket_id: str) -> list[dict[str, Any]]:
    table = suite.stack.refs["TimersTable"]
    pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName=table)
    return [i for page in pages for i in page["Items"] if ticket_id in str(i)]


IMPORT_QUEUE, IMPORT_FUNCTION = "ImportQueue", "HistoryImportFunction"


def staged_import(suite: Suite, *phones: str) -> str:
    """A historical import naming customers by these phones, accepted and staged but not run
    yet (its body waits in ImportsBucket, as a failed one's would for its retry)."""
    customers = [
        {"ref": f"r{n}", "identities": [{"channel": "phone", "external_id": phone}],
         "attributes": {"city": "杭州"}, "events": []}
        for n, phone in enumerate(phones)
    ]  # fmt: skip
    reply = suite.call("POST", "/imports", {"customers": customers})
    assert reply.status == 202, reply.body
    return str(reply.body["import_id"])


def seeded_pair(world: World) -> tuple[Any, Any]:
    # A rule segment they are in: tiers and RFM cells are listed from the scores item (the
    # profiles store's), so this is what the segments store holds for them.
    buyers = {"name": "buyers", "rule": {"all": [
        {"field": "orders.order_count", "op": "gte", "value": 1}]}}  # fmt: skip
    assert world.suite.call("POST", "/segments", buyers, role="marketer").status == 201
    alice, bob = world.customer("alice"), world.customer("bob")
    run_segments(world.suite)
    world.shop.advance(hours=2, minutes=1)  # the cart reminders go out through dispatch
    assert world.shop.outbox(alice.customer_id), "the cart reminder was not sent"
    # Her phone in two waiting imports: one of hers alone, one beside bob and a new customer.
    staged_import(world.suite, alice.phone, bob.phone, "+8613700000001")
    staged_import(world.suite, alice.phone)
    return alice, bob


def test_erasure_leaves_nothing_linkable_proves_it_and_spares_the_neighbour(
    world: World,
) -> None:
    suite = world.suite
    alice, bob = seeded_pair(world)
    subject = world.subject(alice.customer_id)
    neighbour = world.subject(bob.customer_id)
    assert len(subject.blind_indexes) == 2
    assert len(subject.external_ids) == 2
    stores = personal_data_stores(root())

    # A dry run counts what each store holds for her, and changes nothing.
    before = everything(suite)
    held = {
        (inv.store, h.kind): h
        for inv in (store.inventory(subject) for store in stores)
        for h in inv.holdings
    }
    assert everything(suite) == before
    expected = {
        ("profiles", "profile"), ("profiles", "identity"), ("profiles", "ledger"),
        ("profiles", "order"), ("profiles", "scores"), ("segments", "membership"),
        ("campaigns", "message"), ("campaigns", "caps"), ("campaigns", "touch"),
        ("campaigns", "journey_instance"), ("tickets", "ticket"), ("tickets", "message"),
        ("tickets", "aftersales_case"), ("timers", "timer"), ("lake", "lake_row"),
        ("staged_imports", "staged_import_customer"),
    }  # fmt: skip
    assert expected <= set(held), expected - set(held)
    assert held[("profiles", "identity")].count == 4
    assert held[("profiles", "order")].count == 2
    assert held[("profiles", "order")].erasure is ErasureMethod.ANONYMISE_RETAIN
    assert "E-commerce Law" in str(held[("profiles", "order")].retained_because)
    assert held[("profiles", "profile")].erasure is ErasureMethod.CRYPTO_SHRED
    assert search_everywhere(suite, subject), "the search finds nothing even before erasure"
    neighbour_before = sorted(search_everywhere(suite, neighbour))
    assert any(p.startswith("TimersTable/") for p in neighbour_before)

    # Verification finds what is there before erasure: each store names where, never values.
    unerased = {p.store: p for p in (store.verify(subject) for store in stores)}
    holding = ("profiles", "segments", "campaigns", "tickets", "timers", "lake", "staged_imports")
    assert all(not unerased[name].clean for name in holding), unerased
    assert alice.phone not in str(unerased)
    assert {r.identifier_kind for r in unerased["profiles"].remnants} >= {
        "customer_id", "blind_index", "external_id"}  # fmt: skip
    assert timers_of(suite, alice.ticket_id)  # her ticket's SLA clocks are set
    bob_timers = timers_of(suite, bob.ticket_id)
    assert bob_timers
    assert timers_of(suite, alice.case_id)  # her after-sales case's stage target is set
    bob_case_timers = timers_of(suite, bob.case_id)
    assert bob_case_timers

    with count_requests() as counts, batch_sizes() as sizes:
        erased = [store.erase(subject) for store in stores]
    assert sizes
    assert max(sizes) <= 25, sizes
    dynamodb_calls = sum(n for op, n in counts.items() if op.startswith("dynamodb."))
    # Queries per partition, one scan each of CampaignsTable and TimersTable, batched deletes.
    assert dynamodb_calls < 80, counts
    assert all(op != "dynamodb.TransactWriteItems" for op in counts)
    totals: Counter[str] = Counter()
    for result in erased:
        totals.update({f"{result.store}.{k}": n for k, n in result.erased.items()})
    assert totals["profiles.identity"] == 4, totals
    assert totals["tickets.message"] >= 2, totals
    assert totals["lake.lake_row"] >= 3, totals

    proofs = [store.verify(subject) for store in stores]
    assert all(p.clean for p in proofs), [p.remnants for p in proofs if not p.clean]
    assert all(p.checked > 0 for p in proofs if p.store in holding), proofs
    assert search_everywhere(suite, subject) == []
    # Her orders stay, unlinked: amounts and dates, a random id, the law they are kept for.
    kept = [item for key, item in everything(suite).items()
            if isinstance(item, dict) and "retained_because" in item]  # fmt: skip
    assert len(kept) == 2
    assert {i["body"]["M"]["amount"]["S"] for i in kept} == {"100.00"}
    assert all(i["customer_id"]["S"].startswith("anon-") and "TPK" not in i for i in kept)
    # The data key is gone: nothing sealed under it opens anywhere, backups included.
    assert root().profile_service.opening_cipher(alice.customer_id) is None
    assert MESSAGE not in str(everything(suite))
    assert COMPLAINT not in str(everything(suite))

    # Her ticket's SLA timers are gone (they name the ticket, not her).
    assert timers_of(suite, alice.ticket_id) == []
    assert timers_of(suite, alice.case_id) == []
    # The neighbour keeps everything, down to her pending journey wait and SLA timers.
    assert timers_of(suite, bob.ticket_id) == bob_timers
    assert timers_of(suite, bob.case_id) == bob_case_timers
    assert sorted(search_everywhere(suite, neighbour)) == neighbour_before
    assert suite.call("GET", f"/tickets/{bob.ticket_id}", role="support_agent").status == 200

    # Run again: nothing to erase, nothing changes.
    after = everything(suite)
    again = [store.erase(subject) for store in stores]
    assert all(n == 0 for r in again for n in (*r.erased.values(), *r.anonymised.values()))
    assert everything(suite) == after

    # Her journey wait and SLA timers do not fire: advancing past them sends nothing more.
    world.shop.advance(days=8)
    assert world.shop.outbox(alice.customer_id) == []
    assert search_everywhere(suite, subject) == []

    # The staged import runs after all (a failed one's retry would): it cannot bring her back.
    ran = []
    for message in suite.receive(IMPORT_QUEUE):
        suite.deliver(IMPORT_FUNCTION, IMPORT_QUEUE, [message])
        import_id = json.loads(message["Body"])["import_id"]
        ran.append(suite.call("GET", f"/imports/{import_id}").body)
    done, failed = sorted(ran, key=lambda status: status["status"])
    # Bob matched, the new customer created, and no third: she was taken out of the body;
    # her import alone had nothing left to run.
    assert done["status"] == "done", done
    assert (done["customers_matched"], done["customers_created"]) == (1, 1), done
    assert failed["status"] == "failed", failed
    assert "every customer in it was erased" in failed["error"]
    assert search_everywhere(suite, subject) == []


def test_a_store_left_out_of_the_registry_leaves_remnants_the_search_finds(
    world: World,
) -> None:
    alice, _ = seeded_pair(world)
    subject = world.subject(alice.customer_id)
    stores: list[PersonalDataStore] = [
        s for s in personal_data_stores(root()) if s.name != "tickets"
    ]
    for store in stores:
        store.erase(subject)
    assert all(store.verify(subject).clean for store in stores)
    left = search_everywhere(world.suite, subject)
    assert left
    assert all(place.startswith("TicketsTable/") for place in left), left


def test_the_export_holds_her_data_in_words_and_figures(world: World) -> None:
    alice, bob = seeded_pair(world)
    subject = world.subject(alice.customer_id)
    exports = {s.name: s.export(subject) for s in personal_data_stores(root())}
    profile = exports["profiles"].sections["profile"]
    assert [p["pii.phone"] for p in profile] == [alice.phone]
    assert {r["type"] for r in exports["profiles"].sections["event"]} >= {
        "order_placed", "order_paid", "cart_added"}  # fmt: skip
    assert exports["profiles"].sections["points"][0]["points"] == 50
    assert [e["note"] for e in exports["profiles"].sections["event"] if "note" in e] == [COMPLAINT]
    assert exports["profiles"].sections["consent"]
    texts = [m["text"] for m in exports["tickets"].sections["ticket_messages"]]
    assert MESSAGE in texts
    [case] = exports["tickets"].sections["aftersales_cases"]
    assert case["case_id"] == alice.case_id
    assert case["note"] == NOTE
    # The cart reminder she was sent: which campaign, step and channel, what became of it.
    sent = {(m["campaign_id"], m["step"], m["channel"], m["state"])
            for m in exports["campaigns"].sections["campaign_messages"]}  # fmt: skip
    assert (world.cart_journey, "reminder", "sms", "sent") in sent, sent
    segments = exports["segments"]
    listed = {m["segment"] for m in segments.sections["segment_memberships"]}
    assert "buyers" in listed
    assert {s.split(":")[0] for s in listed if ":" in s} == {"tier", "rfm"}  # the scores item's
    assert {"tier", "rfm"} <= set(segments.explanations)
    assert str(segments.sections["scores"][0]["tier"]) in segments.explanations["tier"]
    assert exports["timers"].sections["scheduled_actions"]
    assert exports["lake"].sections["analytics_rows"]
    # Her export holds nothing of her neighbour's.
    everything_exported = str([e.model_dump() for e in exports.values()])
    assert bob.customer_id not in everything_exported
    assert bob.phone not in everything_exported


def test_a_merged_profile_is_erased_with_its_survivor_down_to_its_own_pseudonym(
    world: World,
) -> None:
    suite = world.suite
    survivor, absorbed = world.customer("keep"), world.customer("gone")
    merged = suite.call("POST", f"/customers/{survivor.customer_id}/merge",
                        {"source_customer_id": absorbed.customer_id})  # fmt: skip
    assert merged.status == 200, merged.body
    subject = world.subject(survivor.customer_id)
    assert subject.merged_ids == (absorbed.customer_id,)
    assert len(subject.external_ids) == 4  # both profiles' app ids and openids
    # Asked by the absorbed id, the subject is the survivor's.
    assert world.subject(absorbed.customer_id) == subject
    absorbed_pseudonym = root().blind_index().pseudonym(absorbed.customer_id)
    absorbed_alone = subject.model_copy(
        update={"customer_id": absorbed.customer_id, "pseudonym": absorbed_pseudonym,
                "merged_ids": ()})  # fmt: skip
    assert any(p.startswith("LakeBucket/") for p in search_everywhere(suite, absorbed_alone))

    stores = personal_data_stores(root())
    for store in stores:
        store.erase(subject)
    assert all(store.verify(subject).clean for store in stores)
    assert search_everywhere(suite, subject) == []
    assert search_everywhere(suite, absorbed_alone) == []
    assert timers_of(suite, absorbed.ticket_id) == []
