"""The demo's tickets and example journeys load over several requests at once, and load the same
whatever order those requests end up in: every ticket's requests in its own order, every draw
of the demo's generator as when they went one at a time."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

from crm_local import seed
from crm_local.seed import ApiClient, Shop, import_bodies, load_journeys, load_tickets


class FakeApi(ApiClient):
    """Answers the loaders' requests, each after a random pause, and records them."""

    def __init__(self, pause_seed: int) -> None:
        super().__init__("http://127.0.0.1:9", "token")
        self.pauses = random.Random(pause_seed)
        self.lock = threading.Lock()
        self.asked: list[tuple[str, str, Any]] = []
        self.in_flight = self.most_in_flight = 0
        self.tickets = 0

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        with self.lock:
            self.asked.append((method, path, body))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            pause = self.pauses.uniform(0, 0.02)
        time.sleep(pause)
        with self.lock:
            self.in_flight -= 1
            if path == "/tickets":
                self.tickets += 1
                return 201, {"ticket_id": f"t-{body['customer_id']}"}
        if path == "/campaigns/journeys/examples":
            steps = [{"type": "send", "template_id": "hello", "coupon_offer_id": "winback_10"}]
            return 200, {"examples": [{"name": f"j{n}", "steps": steps} for n in range(5)]}
        if path == "/campaigns/journeys" and method == "GET":
            return 200, {"journeys": [{"definition": {"name": "j0"}}]}  # loaded before
        if path == "/campaigns/journeys":
            return 201, {"journey_id": f"id-{body['name']}"}
        if path == "/campaigns/coupons/offers":
            return 201, {}
        return 200, {}


def customers() -> list[Any]:
    shop = Shop(seed=7).customers(40)
    for n, customer in enumerate(shop):
        customer.customer_id = f"c{n:02d}"
    return shop


def test_tickets_are_the_same_however_their_requests_interleave() -> None:
    runs = []
    for pauses in (1, 2):
        api = FakeApi(pauses)
        assert load_tickets(api, customers()) == seed.TICKETS
        assert api.tickets == seed.TICKETS
        assert api.most_in_flight > 1  # several at once
        runs.append(api.asked)
    first, second = runs
    assert first != second  # interleaved differently ...
    assert Counter(map(repr, first)) == Counter(map(repr, second))  # ... the same requests
    for asked in runs:
        order: dict[str, list[str]] = {}
        for _method, path, body in asked:
            ticket = f"t-{body['customer_id']}" if path == "/tickets" else path.split("/")[2]
            order.setdefault(ticket, []).append(path.rsplit("/", 1)[-1])
        for steps in order.values():  # each ticket: opened, then answered, then resolved
            assert steps in (["tickets"], ["tickets", "messages"],
                             ["tickets", "messages", "status"])  # fmt: skip
    kinds = Counter(path.rsplit("/", 1)[-1] for _, path, _ in first)
    assert 0 < kinds["status"] < kinds["messages"] < kinds["tickets"] == seed.TICKETS


def test_example_journeys_load_at_once_and_only_the_missing_ones() -> None:
    api = FakeApi(3)
    assert load_journeys(api) == 4  # j0 was there already
    created = sorted(
        body["name"] for m, p, body in api.asked if p == "/campaigns/journeys" and m == "POST"
    )
    assert created == ["j1", "j2", "j3", "j4"]
    activated = [p for _, p, _ in api.asked if p.endswith("/activate")]
    assert sorted(activated) == [f"/campaigns/journeys/id-j{n}/activate" for n in range(1, 5)]
    for n in range(1, 5):  # each journey is created before it is activated
        paths = [(m, p, b and b.get("name")) for m, p, b in api.asked]
        assert paths.index(("POST", "/campaigns/journeys", f"j{n}")) < paths.index(
            ("POST", f"/campaigns/journeys/id-j{n}/activate", None)
        )
    assert ("PUT", "/campaigns/templates/hello") in [(m, p) for m, p, _ in api.asked]
    assert api.most_in_flight > 1


def test_each_customers_consent_goes_with_it_in_the_import() -> None:
    shop = customers()
    assert sum(len(c.consent) for c in shop) > len(shop)  # most consent to something
    sent = [c for body in import_bodies(shop) for c in body["customers"]]
    assert [c["consent"] for c in sent] == [c.consent for c in shop]
    for customer in sent:  # the demo's customers decided once per purpose
        purposes = [d["purpose"] for d in customer["consent"]]
        assert len(set(purposes)) == len(purposes)


def test_each_example_journeys_demo_message_says_what_it_is_for() -> None:
    """The demo stored one body for every template: the refund notice read like a cart
    reminder and carried a marketing unsubscribe link."""
    from crm.campaigns.journey_examples import examples
    from crm.campaigns.templates import MessageTemplate, _problems, render
    from crm_local.seed import demo_template

    values = {"name": "林**", "products": [{"product": "tea-1"}], "unsubscribe_url": "https://u",
              "coupon": {"code": "C-1", "description": "满99减20"}}  # fmt: skip
    texts = {}
    for example in examples():
        shown = example.model_dump(mode="json")
        for step in (s for s in shown["steps"] if s["type"] == "send"):
            template = MessageTemplate.model_validate(demo_template(step["template_id"]))
            assert _problems(template) == []
            zh = render(template, step["channel"], "zh", values).body
            en = render(template, step["channel"], "en", values).body
            texts[step["template_id"]] = zh
            service = step.get("purpose") == "service"
            assert ("https://u" in zh, "https://u" in en) == (not service, not service)
            if step.get("coupon_offer_id"):
                assert ("C-1" in zh, "C-1" in en) == (True, True)
    assert len(set(texts.values())) == len(texts)  # each its own message
    assert "退款已到账" in texts["aftersales_refunded"]
