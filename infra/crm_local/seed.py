"""Demo data: a seeded synthetic shop, loaded through the public API as client apps would.

Customers arrive through the app, the mini-program, WeChat, Douyin and offline stores, in a
dozen cities. Their purchases follow the BG/NBD story (Fader, Hardie & Lee 2005): each customer
buys at a rate of their own (gamma distributed) until, after some purchase, they quietly drop
out (beta-distributed probability), which gives the heterogeneous repeat behaviour, the loyal
regulars and the one-off buyers, that segmentation has to find.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tqdm import tqdm

CITIES = [("上海", 14), ("北京", 12), ("杭州", 9), ("广州", 9), ("深圳", 10), ("成都", 8),
          ("武汉", 6), ("南京", 6), ("西安", 5), ("重庆", 6), ("苏州", 5), ("长沙", 4)]  # fmt: skip
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟",
    "涛", "明", "超", "秀英", "霞", "平", "刚", "桂英", "小梅", "子涵", "浩然", "欣怡",
]  # fmt: skip
ENGLISH = ["Emma Li", "Olivia Chen", "Liam Wang", "Noah Zhang", "Ava Liu", "Mia Huang",
           "Lucas Zhou", "Sophia Wu", "Ethan Xu", "Chloe Sun"]  # fmt: skip
CATALOG: dict[str, list[tuple[str, Decimal]]] = {
    "母婴": [("milk-powder-3", Decimal("238.00")), ("diapers-l", Decimal("129.00")),
             ("baby-wipes-80", Decimal("15.90")), ("feeding-bottle", Decimal("89.00"))],
    "美妆": [("serum-30ml", Decimal("329.00")), ("lipstick-red", Decimal("159.00")),
             ("sunscreen-50", Decimal("98.00")), ("face-mask-10", Decimal("79.00"))],
    "生鲜": [("strawberry-500g", Decimal("39.90")), ("salmon-300g", Decimal("88.00")),
             ("eggs-30", Decimal("32.00")), ("milk-1l-6", Decimal("59.00"))],
    "服饰": [("down-jacket", Decimal("699.00")), ("jeans-slim", Decimal("259.00")),
             ("t-shirt-basic", Decimal("69.00")), ("sneakers", Decimal("459.00"))],
    "数码": [("earbuds-pro", Decimal("899.00")), ("power-bank", Decimal("129.00")),
             ("phone-case", Decimal("49.00"))],
    "家居": [("towel-set", Decimal("89.00")), ("pillow-memory", Decimal("199.00")),
             ("storage-box", Decimal("45.00"))],
}  # fmt: skip
CHANNELS = ["app", "mini_program", "wechat", "douyin", "offline_store"]
ONLINE_CHANNELS = ("app", "mini_program", "wechat", "douyin")
CHANNEL_WEIGHTS = [30, 30, 15, 12, 13]
# The after-sales reasons of the one vocabulary (crm/aftersales_codes.py), as POST /aftersales
# takes them: the dashboard names each.
AFTER_SALES_REASONS = [
    "defective", "wrong_item", "late_delivery", "damaged_in_transit", "size_too_small",
    "changed_mind",
]  # fmt: skip
# What customers write, by reason, in their own language.
NOTES = {
    "zh-CN": {
        "defective": ["用了两次就开线了，质量太差", "面霜有异味，怀疑过期了"],
        "wrong_item": ["下单的是三段奶粉，收到的是二段", "颜色发错了，要的是黑色"],
        "late_delivery": ["说好次日达，等了五天才到", "物流一直不更新，客服也不回复"],
        "damaged_in_transit": ["奶粉罐子有凹痕，外包装也破了", "草莓到的时候压烂了一半"],
        "size_too_small": ["尺码偏小，想换大一号", "鞋子太紧，穿不了"],
        "changed_mind": ["买重复了，想退一件", "不想要了，还没拆封"],
    },
    "en-US": {
        "defective": ["The seams came apart after two washes", "The serum smells off"],
        "wrong_item": ["Ordered stage 3 formula, got stage 2", "Wrong colour, I ordered black"],
        "late_delivery": ["Promised next day, arrived after five days", "No tracking updates"],
        "damaged_in_transit": [
            "The tin was dented and the box torn",
            "Half the strawberries were crushed",
        ],
        "size_too_small": ["Runs small, I need one size up", "Shoes are too tight"],
        "changed_mind": ["Bought it twice by mistake", "Changed my mind, still sealed"],
    },
}
HISTORY_DAYS = 730
# The share of customers who consent to each purpose (push: of those with an app identity).
CONSENT_SHARES = {"marketing_sms": 0.6, "marketing_email": 0.4, "marketing_push": 0.3}


@dataclass
class DemoCustomer:
    key: str
    identities: list[dict[str, str]]
    attributes: dict[str, Any]
    affinity: list[str]
    joined: datetime
    events: list[dict[str, Any]] = field(default_factory=list)
    customer_id: str = ""
    # Consent decisions as `PUT /customers/{id}/consent` takes them (granted ones only).
    consent: list[dict[str, Any]] = field(default_factory=list)


class Shop:
    """Generates the demo shop; the same seed gives the same shop."""

    def __init__(self, seed: int = 7, now: datetime | None = None) -> None:
        self.rng = random.Random(seed)
        # Consent is drawn from a stream of its own: the rest of the shop stays as it was.
        self.consent_rng = random.Random(seed * 7919 + 1)
        self.now = (now or datetime.now(UTC)).replace(microsecond=0)

    def customers(self, count: int) -> list[DemoCustomer]:
        return [self._customer(n) for n in range(count)]

    def _customer(self, n: int) -> DemoCustomer:
        rng = self.rng
        channel = rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0]
        identities = [{"channel": channel, "external_id": self._external_id(channel, n)}]
        if channel in ("mini_program", "wechat") and rng.random() < 0.6:
            identities.append({"channel": "wechat_unionid", "external_id": f"oU{n:08d}x"})
        if rng.random() < 0.25:
            extra = rng.choice([c for c in CHANNELS if c != channel])
            identities.append({"channel": extra, "external_id": self._external_id(extra, n)})
        city = rng.choices([c for c, _ in CITIES], [w for _, w in CITIES])[0]
        english = rng.random() < 0.12
        name = rng.choice(ENGLISH) if english else rng.choice(SURNAMES) + rng.choice(GIVEN)
        gender = rng.choice(["female", "female", "male", "undisclosed"])
        locale = "en-US" if english else "zh-CN"
        attributes: dict[str, Any] = {
            "name": name,
            "city": city,
            "gender": gender,
            "locale": locale,
        }
        if rng.random() < 0.7:
            attributes["phone"] = f"1{rng.choice('3456789')}{n:09d}"
        if english or rng.random() < 0.2:
            attributes["email"] = f"demo{n}@example.com"
        affinity = rng.sample(list(CATALOG), k=rng.choice([1, 2, 2, 3]))
        joined = self.now - timedelta(days=rng.uniform(1, HISTORY_DAYS))
        customer = DemoCustomer(f"demo-{n}", identities, attributes, affinity, joined)
        customer.events = self._orders(customer) + self._browsing(customer)
        customer.consent = self._consent(customer)
        return customer

    def _consent(self, c: DemoCustomer) -> list[dict[str, Any]]:
        """Marketing consent as shops see it: most agree to SMS at sign-up, fewer to email,
        push only where the app asked (customers with an app identity). Decided when they
        joined, on the channel they came through. A consent is not an address: some consent
        to SMS without a phone on file, and a send's preview counts them as `no_address`."""
        rng = self.consent_rng
        draws = [rng.random() for _ in CONSENT_SHARES]  # as many draws for every customer
        has_app = any(i["channel"] == "app" for i in c.identities)
        source = c.identities[0]["channel"]
        decided = {"granted": True, "source": source, "decided_at": _iso(c.joined)}
        return [
            {"purpose": purpose, **decided}
            for (purpose, share), draw in zip(CONSENT_SHARES.items(), draws, strict=True)
            if draw < share and (purpose != "marketing_push" or has_app)
        ]

    @staticmethod
    def _external_id(channel: str, n: int) -> str:
        prefix = {"app": "app-u", "mini_program": "oMini", "wechat": "oWx", "douyin": "dy",
                  "offline_store": "card-"}[channel]  # fmt: skip
        return f"{prefix}{n:07d}"

    def _orders(self, c: DemoCustomer) -> list[dict[str, Any]]:
        """BG/NBD: purchases at rate lambda ~ Gamma(r, alpha) per day; after each purchase the
        customer drops out with p ~ Beta(a, b)."""
        rng = self.rng
        rate = rng.gammavariate(0.75, 1 / 40)  # mean one purchase per ~53 days, widely spread
        dropout = rng.betavariate(0.9, 3.0)
        events: list[dict[str, Any]] = []
        moment = c.joined
        for n in range(40):
            if n:  # the first purchase is when they joined
                moment += timedelta(days=rng.expovariate(max(rate, 1e-4)))
            if moment >= self.now:
                break
            events += self._order(c, f"{c.key}-o{n}", moment)
            if rng.random() < dropout:
                break
        return events

    def _order(self, c: DemoCustomer, order_id: str, at: datetime) -> list[dict[str, Any]]:
        rng = self.rng
        items = []
        amount = Decimal(0)
        for _ in range(rng.choice([1, 1, 2, 2, 3, 4])):
            category = rng.choice(c.affinity) if rng.random() < 0.8 else rng.choice(list(CATALOG))
            sku, price = rng.choice(CATALOG[category])
            quantity = rng.choice([1, 1, 2])
            amount += price * quantity
            items.append({"sku": sku, "category": category, "quantity": quantity,
                          "unit_price": str(price)})  # fmt: skip
        channel = rng.choice([i["channel"] for i in c.identities])
        ref = {"customer_id": c.key, "channel": channel if channel in CHANNELS else "app"}
        paid = {"event_id": f"{order_id}-paid", "type": "order_paid", "order_id": order_id,
                "occurred_at": _iso(at), "amount": str(amount), "items": items, **ref}  # fmt: skip
        if ref["channel"] == "offline_store":
            paid["store_id"] = f"store-{rng.randint(1, 40):03d}"
        events = [*self._path_to(order_id, at, ref, items), paid]
        roll = rng.random()
        later = at + timedelta(days=rng.uniform(1, 10))
        if roll < 0.05 and later < self.now:
            refund = (amount * Decimal(rng.choice(["1", "0.5", "0.3"]))).quantize(Decimal("0.01"))
            events.append({"event_id": f"{order_id}-refund", "type": "order_refunded",
                           "order_id": order_id, "amount": str(refund), "occurred_at": _iso(later),
                           **ref})  # fmt: skip
            reason = rng.choice(AFTER_SALES_REASONS)
            events.append({"event_id": f"{order_id}-return", "type": "after_sales",
                           "case": "return", "order_id": order_id, "amount": str(refund),
                           "reason_code": reason, "note": self._note(c, reason),
                           "occurred_at": _iso(later), **ref})  # fmt: skip
        elif roll < 0.08 and later < self.now:
            reason = rng.choice(AFTER_SALES_REASONS)
            events.append({"event_id": f"{order_id}-complaint", "type": "after_sales",
                           "case": "complaint", "order_id": order_id, "reason_code": reason,
                           "note": self._note(c, reason), "occurred_at": _iso(later),
                           **ref})  # fmt: skip
        return events

    def _path_to(self, order_id: str, at: datetime, ref: dict[str, Any],
                 items: list[dict[str, Any]]) -> list[dict[str, Any]]:  # fmt: skip
        """Most online orders of the last weeks are viewed, carted and placed before they are
        paid (the analytics funnel). Drawn from a generator of the order's own, so the shop's
        other draws, and every demo customer, stay as they were."""
        draw = random.Random(order_id)
        if ref["channel"] == "offline_store" or at < self.now - timedelta(days=60):
            return []
        if draw.random() > 0.7:
            return []  # bought straight away (a repeat purchase, a link from a message)
        item = {"sku": items[0]["sku"], "category": items[0]["category"]}
        steps = [("viewed", "product_viewed", draw.uniform(60, 180))]
        if draw.random() < 0.8:
            steps += [("carted", "cart_added", draw.uniform(10, 50)),
                      ("placed", "order_placed", draw.uniform(1, 5))]  # fmt: skip
        events = []
        for suffix, kind, minutes in steps:
            event: dict[str, Any] = {
                "event_id": f"{order_id}-{suffix}",
                "type": kind,
                "occurred_at": _iso(at - timedelta(minutes=minutes)),
                **ref,
            }
            if kind == "order_placed":
                amount = sum(Decimal(i["unit_price"]) * i["quantity"] for i in items)
                event |= {"order_id": order_id, "amount": str(amount), "items": items}
            else:
                event |= item
            events.append(event)
        return events

    def _note(self, c: DemoCustomer, reason: str) -> str:
        return self.rng.choice(NOTES[c.attributes["locale"]][reason])

    def _browsing(self, c: DemoCustomer) -> list[dict[str, Any]]:
        rng = self.rng
        events: list[dict[str, Any]] = []
        start = max(c.joined, self.now - timedelta(days=60))
        span = (self.now - start).total_seconds()
        for n in range(rng.choice([0, 0, 1, 2, 3, 5])):
            category = rng.choice(c.affinity)
            sku, _ = rng.choice(CATALOG[category])
            at = start + timedelta(seconds=rng.uniform(0, span))
            kind = rng.choices(["product_viewed", "search", "cart_added"], [70, 15, 15])[0]
            rng.choice(["app", "mini_program", "douyin"])  # the draw the shop's others follow
            # WeChat's pages too (without them, WeChat's viewers were its buyers: a channel
            # conversion of 100%), drawn apart so the shop's other draws stay as they were.
            channel = random.Random(f"{c.key}-b{n}").choice(ONLINE_CHANNELS)
            event: dict[str, Any] = {"event_id": f"{c.key}-b{n}", "type": kind,
                                     "customer_id": c.key, "occurred_at": _iso(at),
                                     "channel": channel}  # fmt: skip
            if kind == "search":
                event["query"] = rng.choice(["奶粉", "防晒", "羽绒服", "草莓", "耳机", category])
            else:
                event |= {"sku": sku, "category": category}
            events.append(event)
        return events


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiClient:
    def __init__(self, base_url: str, token: str) -> None:
        self.base_url, self.token = base_url.rstrip("/"), token

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        req = urllib.request.Request(  # noqa: S310 - the emulator on 127.0.0.1
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        for attempt in range(5):
            pause = 0.2 * (attempt + 1)
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310
                    return resp.status, json.loads(resp.read() or b"null")
            except urllib.error.HTTPError as err:
                if (err.code < 500 and err.code != 429) or attempt == 4:
                    return err.code, json.loads(err.read() or b"null")
                # A busy emulator (a segment run scanning, a burst) says when to come back.
                pause = max(pause, float(err.headers.get("Retry-After") or 0))
            except (ConnectionError, TimeoutError, urllib.error.URLError):
                if attempt == 4:
                    raise
            time.sleep(pause)
        raise RuntimeError("unreachable")


Progress = Callable[[str, int, int], None]  # (step, done, total)


def _no_progress(step: str, done: int, total: int) -> None:
    return None


# A few service tickets, so the dashboard's service charts have something to show.
TICKET_MESSAGES = [
    "快递三天没动了，帮忙查一下物流", "收到的鞋子尺码不对，想换大一号", "退款什么时候到账？",
    "商品有破损，要求退货", "优惠券没有抵扣成功", "The parcel arrived damaged, please help",
    "发票还没有开出来", "会员积分没有到账",
]  # fmt: skip
TICKETS = 24


# Requests the ticket and journey loaders have in flight at once: their requests are independent
# (a ticket's own ones follow each other), and one at a time left moto idle while the API
# function worked and the function idle while moto answered (10-17 s for ~80 requests).
DEMO_CLIENTS = 4


def load_tickets(client: ApiClient, customers: list[DemoCustomer]) -> int:
    """Open tickets for some customers; agents answer most and resolve some (the SLA, response
    time and escalation charts). Returns how many were opened. Every draw is made first, in
    order, so the tickets are the same however their requests interleave."""
    draw = random.Random(11)
    channels = ["app", "mini_program", "wechat", "phone"]
    plans: list[tuple[dict[str, Any], bool, bool]] = []
    for customer in [c for c in customers if c.customer_id][:TICKETS]:
        body = {"customer_id": customer.customer_id, "channel": draw.choice(channels),
                "message": draw.choice(TICKET_MESSAGES)}  # fmt: skip
        answered = draw.random() < 0.8
        plans.append((body, answered, answered and draw.random() < 0.6))

    def one(plan: tuple[dict[str, Any], bool, bool]) -> None:
        body, answered, resolved = plan
        status, reply = client.request("POST", "/tickets", body)
        if status != 201:
            raise RuntimeError(f"opening a demo ticket failed: {status} {reply}")
        ticket_id = reply["ticket_id"]
        if answered:
            answer = {"channel": body["channel"], "text": "您好，已为您处理，请留意后续通知"}
            client.request("POST", f"/tickets/{ticket_id}/messages", answer)
            if resolved:
                client.request("POST", f"/tickets/{ticket_id}/status", {"status": "resolved"})

    with ThreadPoolExecutor(max_workers=DEMO_CLIENTS) as pool:
        list(pool.map(one, plans))
    return len(plans)


CUSTOMERS_PER_IMPORT = 1000  # POST /imports takes at most 1,000 customers (20,000 events)
IMPORT_TIMEOUT_S = 900  # the import function's own limit


def import_bodies(
    customers: list[DemoCustomer], size: int = CUSTOMERS_PER_IMPORT
) -> Iterator[dict[str, Any]]:
    """The shop as `POST /imports` bodies: each customer with its identities, attributes,
    history (its events carry no customer reference: they belong to the customer) and consent
    decisions."""
    for start in range(0, len(customers), size):
        yield {
            "customers": [
                {
                    "ref": c.key,
                    "identities": c.identities,
                    "attributes": c.attributes,
                    "events": sorted(
                        ({k: v for k, v in e.items() if k != "customer_id"} for e in c.events),
                        key=lambda e: str(e["occurred_at"]),
                    ),
                    "consent": c.consent,
                }
                for c in customers[start : start + size]
            ]
        }


def load_shop(
    client: ApiClient,
    customers: list[DemoCustomer],
    progress: bool = True,
    report: Progress = _no_progress,
) -> dict[str, int]:
    """Load the shop as a shop moving onto the CRM would: its customers and their two years of
    history as historical imports of 1,000 customers (`POST /imports`), then wait until every
    import is done. An import folds history without announcing it (no journey starts for an
    old order) and writes the lake once per (type, day), so this is a few thousand AWS requests
    where sending each customer and event through the API took ~98,000 (docs/benchmarks.md)."""
    total_events = sum(len(c.events) for c in customers)
    imports: dict[str, int] = {}  # import id -> its customers
    for body in import_bodies(customers):
        status, reply = client.request("POST", "/imports", body)
        if status != 202:
            raise RuntimeError(f"sending an import failed: {status} {reply}")
        imports[str(reply["import_id"])] = len(body["customers"])
    deadline = time.monotonic() + IMPORT_TIMEOUT_S
    done: dict[str, int] = {}
    # disable=None: tqdm draws only on a terminal (piped, its updates would pile on one line).
    with tqdm(total=len(customers), desc="customers imported", unit="",
              disable=None if progress else True) as bar:  # fmt: skip
        while len(done) < len(imports):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the imports were not done after {IMPORT_TIMEOUT_S} s")
            imported = 0
            for import_id, count in imports.items():
                if import_id in done:
                    imported += count
                    continue
                status, reply = client.request("GET", f"/imports/{import_id}")
                if status != 200:
                    continue
                if reply["status"] == "failed" and reply.get("error"):
                    raise RuntimeError(f"import {import_id} failed: {reply['error']}")
                if reply["status"] == "done":
                    if reply["customers_failed"] or reply["events_failed"]:
                        raise RuntimeError(f"import {import_id}: {reply['failures'][:3]}")
                    done[import_id] = count
                    imported += count
                else:
                    imported += min(count, reply["chunks_done"] * 100)
            bar.n = imported
            bar.refresh()
            report("importing customers and their history", imported, len(customers))
            if len(done) < len(imports):
                time.sleep(0.25)
    _find_ids(client, customers[: TICKETS + 1])
    return {"customers": len(customers), "events": total_events}


def _find_ids(client: ApiClient, customers: list[DemoCustomer]) -> None:
    """The customer ids of some imported customers (the tickets' and the banner's), by identity."""
    for customer in customers:
        status, reply = client.request(
            "POST", "/customers/search", {"identity": customer.identities[0]}
        )
        if status != 200 or len(reply["matches"]) != 1:
            raise RuntimeError(f"finding imported customer {customer.key} failed: {status}")
        customer.customer_id = str(reply["matches"][0]["customer_id"])


# ---- campaigns: J (journeys) -- the shipped example journeys, live in the demo
# Each example's message says what it is for. Marketing messages end with the channel's
# unsubscribe link; a service message (the refund notice, the apology to an escalated
# complaint) has none: the journey sends it as `service`, under no marketing consent.
_COUPON_ZH = "{% if coupon %}券码 {{ coupon.code }}：{{ coupon.description }}。{% endif %}"
_COUPON_EN = "{% if coupon %}Code {{ coupon.code }}: {{ coupon.description }}. {% endif %}"
_PRODUCTS_ZH = "{% for p in products %}{{ p.product }} {% endfor %}"
_PRODUCTS_EN = "{% for p in products %}{{ p.product }} {% endfor %}"
_UNSUBSCRIBE = {"zh": "退订：{{ unsubscribe_url }}", "en": "Unsubscribe: {{ unsubscribe_url }}"}
# template id -> (zh subject, zh text, en subject, en text, marketing?)
_DEMO_MESSAGES: dict[str, tuple[str, str, str, str, bool]] = {
    "dormant_coupon": (
        "好久不见", "{{ name }}，好久不见！送您一张专属券，" + _COUPON_ZH,
        "It has been a while", "Hi {{ name }}, it has been a while! A coupon for you. "
        + _COUPON_EN, True),
    "dormant_coupon_reminder": (
        "您的券快到期了", "{{ name }}，您的专属券还没用哦，" + _COUPON_ZH,
        "Your coupon is waiting", "Hi {{ name }}, your coupon is still waiting. " + _COUPON_EN,
        True),
    "cross_sell_copurchase": (
        "猜您喜欢", "{{ name }}，买过的顾客也常买：" + _PRODUCTS_ZH,
        "You may also like", "Hi {{ name }}, often bought together with yours: "
        + _PRODUCTS_EN, True),
    "birthday_double_points": (
        "生日快乐", "{{ name }}，生日快乐！本月购物积分翻倍。",
        "Happy birthday", "Happy birthday, {{ name }}! Double points on orders this month.",
        True),
    "cart_reminder": (
        "购物车里的宝贝", "{{ name }}，您的购物车里还有商品等您结算。" + _PRODUCTS_ZH,
        "Still in your cart", "Hi {{ name }}, your cart is waiting. " + _PRODUCTS_EN, True),
    "winback_miss_you": (
        "我们想念您", "{{ name }}，我们想念您！" + _COUPON_ZH,
        "We miss you", "Hi {{ name }}, we miss you! " + _COUPON_EN, True),
    "aftersales_refunded": (
        "退款已到账", "{{ name }}，您的退款已到账，请留意原支付账户。如有疑问请联系客服。",
        "Your refund has arrived", "Hi {{ name }}, your refund has been paid to your original "
        "payment method. Contact us with any question.", False),
    "apology_coupon": (
        "抱歉给您添麻烦了", "{{ name }}，非常抱歉给您带来不便，送您一张无门槛券。" + _COUPON_ZH,
        "Our apologies", "Hi {{ name }}, we are sorry for the trouble. " + _COUPON_EN, False),
}  # fmt: skip
_GENERIC = ("来自小店", "{{ name }}，您好！" + _PRODUCTS_ZH + _COUPON_ZH,
            "From the shop", "Hi {{ name }}! " + _PRODUCTS_EN + _COUPON_EN, True)  # fmt: skip


def demo_template(template_id: str) -> dict[str, Any]:
    """The demo's template of one example's message, the same text on every channel."""
    zh_subject, zh, en_subject, en, marketing = _DEMO_MESSAGES.get(template_id, _GENERIC)
    if marketing:
        zh, en = f"{zh} {_UNSUBSCRIBE['zh']}", f"{en} {_UNSUBSCRIBE['en']}"
    bodies = {"zh": {"subject": zh_subject, "body": zh}, "en": {"subject": en_subject, "body": en}}
    channels = ("email", "sms", "push", "wechat", "webhook")
    return {"description": f"demo: {template_id}", "channels": dict.fromkeys(channels, bodies)}


# The offers of the examples' coupons (any other offer id: 10 off an order of 99).
DEMO_OFFERS: dict[str, dict[str, Any]] = {
    "dormant_exclusive": {"description": "满99减20", "kind": "amount_off", "amount_off": "20.00",
                          "min_order": "99.00", "valid_days": 14},
    "winback_10": {"description": "全场9折", "kind": "percent_off", "percent_off": 10,
                   "valid_days": 30},
    "apology_20": {"description": "无门槛20元", "kind": "amount_off", "amount_off": "20.00",
                   "valid_days": 60},
    "*": {"description": "满99减10", "kind": "amount_off", "amount_off": "10.00",
          "min_order": "99.00", "valid_days": 30},
}  # fmt: skip


def load_journeys(client: ApiClient) -> int:
    """Store a template for each template the examples name, then create and activate the
    example journeys (`GET /campaigns/journeys/examples`); journeys already there by name are
    left as they are, so seeding twice loads them once. Returns how many were created."""
    status, examples = client.request("GET", "/campaigns/journeys/examples")
    if status != 200:
        raise RuntimeError(f"GET /campaigns/journeys/examples answered {status}: {examples}")
    wanted = {
        s["template_id"] for e in examples["examples"] for s in e["steps"] if s["type"] == "send"
    }

    def store_template(template_id: str) -> None:
        body = demo_template(template_id)
        status, reply = client.request("PUT", f"/campaigns/templates/{template_id}", body)
        if status != 200:
            raise RuntimeError(f"storing template {template_id} failed: {status} {reply}")

    # The coupon offers the examples' sends issue from (without them those messages fail).
    offers = {
        s["coupon_offer_id"]
        for e in examples["examples"]
        for s in e["steps"]
        if s["type"] == "send" and s.get("coupon_offer_id")
    }
    expires = (datetime.now(UTC) + timedelta(days=730)).isoformat().replace("+00:00", "Z")

    def create_offer(offer_id: str) -> None:
        offer = {**DEMO_OFFERS.get(offer_id, DEMO_OFFERS["*"]), "offer_id": offer_id,
                 "expires_at": expires, "budget": 1_000_000}  # fmt: skip
        status, reply = client.request("POST", "/campaigns/coupons/offers", offer)
        if status not in (201, 409):  # 409: stored by an earlier seeding
            raise RuntimeError(f"creating offer {offer_id} failed: {status} {reply}")

    with ThreadPoolExecutor(max_workers=DEMO_CLIENTS) as pool:
        list(pool.map(store_template, sorted(wanted)))
        list(pool.map(create_offer, sorted(offers)))
    status, listing = client.request("GET", "/campaigns/journeys")
    if status != 200:
        raise RuntimeError(f"GET /campaigns/journeys answered {status}: {listing}")
    present = {j["definition"]["name"] for j in listing["journeys"]}

    def create_journey(example: dict[str, Any]) -> None:
        status, journey = client.request("POST", "/campaigns/journeys", example)
        if status != 201:
            raise RuntimeError(f"creating journey {example['name']} failed: {status} {journey}")
        path = f"/campaigns/journeys/{journey['journey_id']}/activate"
        status, reply = client.request("POST", path)
        if status != 200:
            raise RuntimeError(f"activating journey {example['name']} failed: {status} {reply}")

    missing = [e for e in examples["examples"] if e["name"] not in present]
    with ThreadPoolExecutor(max_workers=DEMO_CLIENTS) as pool:
        list(pool.map(create_journey, missing))
    return len(missing)
