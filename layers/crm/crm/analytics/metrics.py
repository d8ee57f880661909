"""Every dashboard metric, defined once in SQL over the lake's tables (crm.analytics.tables).

The same text runs on DuckDB (locally, small shops, the benchmarks) and on Athena (Trino), so it
keeps to what both dialects mean alike (tests/unit/analytics/test_metric_sql.py parses and
transpiles each one for both with sqlglot):
- ratios divide DOUBLEs (Trino's `/` on integers truncates, DuckDB's does not);
- time spans are `date_diff('second', ...)` (DuckDB's `date_diff('day', ...)` on timestamps counts
  midnights crossed, Trino's counts whole days) or `date_diff('day', ...)` on DATEs only;
- distributions are counts in fixed buckets (percentile functions differ by name and method);
- days and periods are `CAST(CAST(date_trunc(grain, t) AS DATE) AS VARCHAR)`, 'YYYY-MM-DD' in both.

Every query answers three columns, `series`, `x` and `y`, which the service shapes into the
API's series of points. `$names` are filled in by `render` with literals it has checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from string import Template
from typing import Literal

from crm.aftersales_codes import reason_sql

Unit = Literal["count", "ratio", "currency", "seconds"]
Chart = Literal["funnel", "line", "bar", "stacked_bar", "heatmap", "table"]
Filter = Literal["channel", "category", "campaign"]
Label = tuple[str, str]  # (en, zh)
Source = Literal["events", "tickets"]  # where a metric's `channel` column comes from

# The channels the lake's rows name: the customer events' (the profiles' `Channel`) and the
# tickets' (`TicketChannel`); tests/unit/analytics/test_channels.py checks them against both.
EVENT_CHANNELS = (
    "app", "mini_program", "wechat", "wechat_unionid", "douyin", "offline_store", "phone",
    "email",
)  # fmt: skip
TICKET_CHANNELS = (
    "app", "mini_program", "wechat", "douyin", "phone", "email", "store", "community_group",
)  # fmt: skip
CHANNELS = tuple(sorted(set(EVENT_CHANNELS) | set(TICKET_CHANNELS)))
# A shop's stores are `offline_store` in the events and `store` in the tickets: a filter by
# either reads the stores of every metric.
SAME_CHANNEL = {"store": "offline_store", "offline_store": "store"}


@dataclass(frozen=True)
class Metric:
    name: str
    title: Label
    unit: Unit
    chart: Chart
    filters: tuple[Filter, ...]
    sql: str
    labels: dict[str, Label] = field(default_factory=dict)  # series and x values named
    x_order: tuple[str, ...] = ()  # buckets in their order (others sort as text)
    # The period when a request names none (ending today).
    default_days: int = 30
    # x is `campaign_id/variant`: the result names each campaign (MetricResult.x_labels).
    x_campaigns: bool = False
    # Each x's series are shares of one whole (tiers): rounded so that they add up to exactly 1.
    shares: bool = False
    # Series in a unit other than the metric's (a table's revenue, uplift and ROI).
    units: dict[str, Unit] = field(default_factory=dict)
    source: Source = "events"

    def channel(self, value: str) -> str:
        """The channel filter's value as this metric's rows name it."""
        own = TICKET_CHANNELS if self.source == "tickets" else EVENT_CHANNELS
        return value if value in own else SAME_CHANNEL.get(value, value)


def _bucket(column: str) -> str:
    return f"CAST(CAST(date_trunc($grain, {column}) AS DATE) AS VARCHAR)"


IN_PERIOD = "dt BETWEEN $start_key AND $end_key AND occurred_at >= $start AND occurred_at < $end"
DAY_S = 86400

# The order step is an order placed or, for a shop that sends no order_placed (an order paid as
# it is placed), paid.
FUNNEL = f"""
WITH e AS (
  SELECT customer_pid, type, occurred_at FROM events
  WHERE type IN ('product_viewed', 'cart_added', 'order_placed', 'order_paid')
    AND {IN_PERIOD} AND $channel_ok AND $category_ok
),
viewed AS (
  SELECT customer_pid, min(occurred_at) AS first_at FROM e
  WHERE type = 'product_viewed' GROUP BY customer_pid
),
carted AS (
  SELECT s.customer_pid, min(e.occurred_at) AS first_at FROM viewed AS s
  JOIN e ON e.customer_pid = s.customer_pid AND e.type = 'cart_added'
    AND e.occurred_at >= s.first_at AND date_diff('second', s.first_at, e.occurred_at) <= $window_s
  GROUP BY s.customer_pid
),
ordered AS (
  SELECT s.customer_pid, min(e.occurred_at) AS first_at FROM carted AS s
  JOIN e ON e.customer_pid = s.customer_pid AND e.type IN ('order_placed', 'order_paid')
    AND e.occurred_at >= s.first_at AND date_diff('second', s.first_at, e.occurred_at) <= $window_s
  GROUP BY s.customer_pid
),
paid AS (
  SELECT s.customer_pid, min(e.occurred_at) AS first_at FROM ordered AS s
  JOIN e ON e.customer_pid = s.customer_pid AND e.type = 'order_paid'
    AND e.occurred_at >= s.first_at AND date_diff('second', s.first_at, e.occurred_at) <= $window_s
  GROUP BY s.customer_pid
)
SELECT 'all' AS series, 'view' AS x, CAST(count(*) AS DOUBLE) AS y FROM viewed
UNION ALL SELECT 'all', 'cart', CAST(count(*) AS DOUBLE) FROM carted
UNION ALL SELECT 'all', 'order', CAST(count(*) AS DOUBLE) FROM ordered
UNION ALL SELECT 'all', 'paid', CAST(count(*) AS DOUBLE) FROM paid
"""

# A customer's paid orders up to the period's end, for the metrics that need their history.
PAID_UNTIL_END = """
  SELECT customer_pid, order_id, occurred_at, channel, amount FROM events
  WHERE type = 'order_paid' AND dt <= $end_key AND occurred_at < $end
"""

REPURCHASE_30D = f"""
WITH paid AS ({PAID_UNTIL_END}),
firsts AS (SELECT customer_pid, min(occurred_at) AS first_at FROM paid GROUP BY customer_pid),
cohort AS (
  SELECT f.customer_pid, f.first_at, {_bucket("f.first_at")} AS x FROM firsts AS f
  JOIN paid AS p ON p.customer_pid = f.customer_pid AND p.occurred_at = f.first_at
  WHERE f.first_at >= $start AND date_diff('second', f.first_at, $end) >= 30 * {DAY_S}
    AND $channel_ok
  GROUP BY f.customer_pid, f.first_at
),
again AS (
  SELECT c.customer_pid FROM cohort AS c
  JOIN paid AS p ON p.customer_pid = c.customer_pid AND p.occurred_at > c.first_at
    AND date_diff('second', c.first_at, p.occurred_at) <= 30 * {DAY_S}
  GROUP BY c.customer_pid
)
SELECT 'all' AS series, c.x AS x,
  CAST(count(a.customer_pid) AS DOUBLE) / count(*) AS y
FROM cohort AS c LEFT JOIN again AS a ON a.customer_pid = c.customer_pid
GROUP BY c.x
"""

REPURCHASE_INTERVAL = f"""
WITH paid AS ({PAID_UNTIL_END}),
gaps AS (
  SELECT occurred_at, channel, CAST(date_diff('second',
    lag(occurred_at) OVER (PARTITION BY customer_pid ORDER BY occurred_at), occurred_at)
    AS DOUBLE) / {DAY_S} AS days
  FROM paid
)
SELECT 'all' AS series,
  CASE WHEN days <= 7 THEN '0-7' WHEN days <= 14 THEN '8-14' WHEN days <= 30 THEN '15-30'
       WHEN days <= 60 THEN '31-60' WHEN days <= 90 THEN '61-90' ELSE '91+' END AS x,
  CAST(count(*) AS DOUBLE) AS y
FROM gaps WHERE days IS NOT NULL AND occurred_at >= $start AND $channel_ok
GROUP BY 2
"""

ACTIVE_CUSTOMERS = f"""
SELECT 'all' AS series, {_bucket("occurred_at")} AS x,
  CAST(count(DISTINCT customer_pid) AS DOUBLE) AS y
FROM events WHERE {IN_PERIOD} AND $channel_ok AND $category_ok
GROUP BY 2
"""

NEW_VS_RETURNING = f"""
WITH paid AS ({PAID_UNTIL_END}),
firsts AS (SELECT customer_pid, min(occurred_at) AS first_at FROM paid GROUP BY customer_pid),
buyers AS (
  SELECT DISTINCT p.customer_pid, {_bucket("p.occurred_at")} AS x,
    {_bucket("f.first_at")} AS first_x
  FROM paid AS p JOIN firsts AS f ON f.customer_pid = p.customer_pid
  WHERE p.occurred_at >= $start AND $channel_ok
)
SELECT CASE WHEN first_x = x THEN 'new' ELSE 'returning' END AS series, x,
  CAST(count(*) AS DOUBLE) AS y
FROM buyers GROUP BY 1, 2
"""

# Churned: no paid order in the N days before a period's last day. N is twice the shop's mean
# interval between a customer's orders (at least 30 days; 90 while no one has ordered twice).
CHURN_RATE = f"""
WITH paid AS (
  SELECT customer_pid, date_diff('day', DATE '1970-01-01', CAST(occurred_at AS DATE)) AS dn
  FROM events
  WHERE type = 'order_paid' AND dt <= $end_key AND occurred_at < $end AND $channel_ok
),
gaps AS (
  SELECT dn - lag(dn) OVER (PARTITION BY customer_pid ORDER BY dn) AS g FROM paid
),
threshold AS (
  SELECT greatest(30, CAST(coalesce(2 * avg(g), 90) AS INTEGER)) AS n FROM gaps WHERE g > 0
),
days AS (
  SELECT DISTINCT CAST(dt AS DATE) AS d FROM events WHERE dt BETWEEN $start_key AND $end_key
),
ends AS (
  SELECT {_bucket("d")} AS x, max(date_diff('day', DATE '1970-01-01', d)) AS end_n
  FROM days GROUP BY 1
),
windows AS (SELECT e.x, e.end_n, e.end_n - t.n AS from_n FROM ends AS e CROSS JOIN threshold AS t),
firsts AS (SELECT customer_pid, min(dn) AS first_n FROM paid GROUP BY customer_pid),
base AS (
  SELECT w.x, count(*) AS n FROM windows AS w JOIN firsts AS f ON f.first_n <= w.end_n
  GROUP BY w.x
),
active AS (
  SELECT w.x, count(DISTINCT p.customer_pid) AS n FROM windows AS w
  JOIN paid AS p ON p.dn >= w.from_n AND p.dn <= w.end_n
  GROUP BY w.x
)
SELECT 'all' AS series, b.x AS x, CAST(b.n - coalesce(a.n, 0) AS DOUBLE) / b.n AS y
FROM base AS b LEFT JOIN active AS a ON a.x = b.x
"""

# The last segment run of each period bucket.
LAST_RUNS = f"""
  SELECT {_bucket("CAST(dt AS DATE)")} AS x, max(run_id) AS run_id FROM segment_scores
  WHERE dt BETWEEN $start_key AND $end_key GROUP BY 1
"""

TIER_SHARES = f"""
WITH runs AS ({LAST_RUNS}),
scored AS (
  SELECT r.x, s.tier FROM segment_scores AS s JOIN runs AS r ON r.run_id = s.run_id
  WHERE s.dt BETWEEN $start_key AND $end_key
)
SELECT coalesce(tier, 'none') AS series, x,
  CAST(count(*) AS DOUBLE) / sum(count(*)) OVER (PARTITION BY x) AS y
FROM scored GROUP BY 1, 2
"""

CHURN_WARNINGS = f"""
WITH runs AS ({LAST_RUNS})
SELECT 'all' AS series, r.x AS x,
  CAST(sum(CASE WHEN s.churn_warning THEN 1 ELSE 0 END) AS DOUBLE) AS y
FROM segment_scores AS s JOIN runs AS r ON r.run_id = s.run_id
WHERE s.dt BETWEEN $start_key AND $end_key
GROUP BY r.x
"""

# The share of a channel's viewers who paid an order on that channel in the period: buyers who
# never viewed there (a repeat order from the app's order history) are not its conversions, or
# a channel would convert more than all its viewers (seen: WeChat at 145% in the demo).
CHANNEL_CONVERSION = f"""
WITH e AS (
  SELECT coalesce(channel, 'unknown') AS ch, customer_pid, type FROM events
  WHERE type IN ('product_viewed', 'order_paid') AND {IN_PERIOD} AND $channel_ok AND $category_ok
),
seen AS (
  SELECT DISTINCT ch, customer_pid FROM e WHERE type = 'product_viewed'
),
viewers AS (
  SELECT ch, count(*) AS n FROM seen GROUP BY ch
),
buyers AS (
  SELECT s.ch, count(DISTINCT s.customer_pid) AS n
  FROM seen AS s JOIN e ON e.ch = s.ch AND e.customer_pid = s.customer_pid
  WHERE e.type = 'order_paid' GROUP BY s.ch
)
SELECT 'all' AS series, v.ch AS x, CAST(coalesce(b.n, 0) AS DOUBLE) / v.n AS y
FROM viewers AS v LEFT JOIN buyers AS b ON b.ch = v.ch
"""

CHANNEL_AOV = f"""
SELECT 'all' AS series, coalesce(channel, 'unknown') AS x, avg(amount) AS y
FROM events WHERE type = 'order_paid' AND {IN_PERIOD} AND $channel_ok AND $category_ok
GROUP BY 2
"""

# Per campaign and variant: treated sends and conversions, their revenue, and the uplift of the
# conversion rate over the campaign's baseline (its holdout, else the global control group,
# both counted by exposures and their conversions); ROI = (incremental revenue - cost) / cost.
CAMPAIGN_ROI = f"""
WITH f AS (
  SELECT campaign_id, coalesce(variant, 'A') AS variant, coalesce(arm, 'treatment') AS arm,
    type, customer_pid, revenue, cost
  FROM campaign_facts WHERE {IN_PERIOD} AND $campaign_ok
),
treated AS (
  SELECT campaign_id, variant,
    count(DISTINCT CASE WHEN type = 'sent' THEN customer_pid END) AS sends,
    count(CASE WHEN type = 'conversion' THEN 1 END) AS conversions,
    coalesce(sum(CASE WHEN type = 'conversion' THEN revenue END), 0) AS revenue,
    coalesce(sum(CASE WHEN type = 'sent' THEN cost END), 0) AS cost
  FROM f WHERE arm = 'treatment' GROUP BY campaign_id, variant
),
baseline AS (
  SELECT campaign_id,
    count(DISTINCT CASE WHEN type = 'exposure' THEN customer_pid END) AS n,
    count(CASE WHEN type = 'conversion' THEN 1 END) AS conversions,
    coalesce(sum(CASE WHEN type = 'conversion' THEN revenue END), 0) AS revenue
  FROM f WHERE arm <> 'treatment' GROUP BY campaign_id
),
measured AS (
  SELECT t.campaign_id || '/' || t.variant AS x, CAST(t.sends AS DOUBLE) AS sends,
    CAST(t.conversions AS DOUBLE) AS conversions, CAST(t.revenue AS DOUBLE) AS revenue,
    CASE WHEN t.sends > 0 AND b.n > 0 THEN CAST(t.conversions AS DOUBLE) / t.sends
      - CAST(b.conversions AS DOUBLE) / b.n END AS uplift,
    CASE WHEN t.cost > 0 AND t.sends > 0 AND b.n > 0 THEN
      (t.revenue - CAST(b.revenue AS DOUBLE) / b.n * t.sends - t.cost) / t.cost END AS roi
  FROM treated AS t LEFT JOIN baseline AS b ON b.campaign_id = t.campaign_id
)
SELECT 'sends' AS series, x, sends AS y FROM measured
UNION ALL SELECT 'conversions', x, conversions FROM measured
UNION ALL SELECT 'revenue', x, revenue FROM measured
UNION ALL SELECT 'uplift', x, uplift FROM measured
UNION ALL SELECT 'roi', x, roi FROM measured
"""

# Tickets opened in the period, and whether each breached a metric's target.
SLA_ATTAINMENT = f"""
WITH opened AS (
  SELECT ticket_id, coalesce(priority, 'normal') AS priority FROM ticket_facts
  WHERE type = 'opened' AND {IN_PERIOD} AND $channel_ok AND $category_ok
),
breaches AS (
  SELECT DISTINCT ticket_id, metric FROM ticket_facts
  WHERE type = 'breached' AND dt >= $start_key
),
metrics AS (SELECT 'first_response' AS metric UNION ALL SELECT 'resolution')
SELECT m.metric AS series, o.priority AS x,
  1 - CAST(count(b.ticket_id) AS DOUBLE) / count(*) AS y
FROM opened AS o CROSS JOIN metrics AS m
LEFT JOIN breaches AS b ON b.ticket_id = o.ticket_id AND b.metric = m.metric
GROUP BY m.metric, o.priority
"""

ESCALATIONS = f"""
SELECT 'all' AS series, {_bucket("occurred_at")} AS x,
  CAST(count(DISTINCT ticket_id) AS DOUBLE) AS y
FROM ticket_facts WHERE type = 'escalated' AND {IN_PERIOD} AND $channel_ok AND $category_ok
GROUP BY 2
"""

RESPONSE_TIMES = f"""
SELECT CASE WHEN type = 'first_response' THEN 'first_response' ELSE 'resolution' END AS series,
  CASE WHEN seconds < 3600 THEN '<1h' WHEN seconds < 4 * 3600 THEN '1-4h'
       WHEN seconds < 8 * 3600 THEN '4-8h' WHEN seconds < {DAY_S} THEN '8-24h'
       WHEN seconds < 3 * {DAY_S} THEN '1-3d' ELSE '>3d' END AS x,
  CAST(count(*) AS DOUBLE) AS y
FROM ticket_facts
WHERE type IN ('first_response', 'resolved') AND seconds IS NOT NULL AND {IN_PERIOD}
  AND $channel_ok AND $category_ok
GROUP BY 1, 2
"""

# Orders paid in the period by item category (by SKU when a category is chosen), and the share
# of them a return was opened for (at any time up to the period's end).
RETURN_RATE = f"""
WITH sold AS (
  SELECT DISTINCT order_id, CASE WHEN $category_chosen THEN sku ELSE category END AS x
  FROM order_items WHERE type = 'order_paid' AND {IN_PERIOD} AND $channel_ok AND $category_ok
),
returned AS (
  SELECT DISTINCT order_id FROM events
  WHERE type = 'after_sales' AND case_kind = 'return' AND dt >= $start_key AND dt <= $end_key
)
SELECT 'all' AS series, coalesce(s.x, 'unknown') AS x,
  CAST(count(r.order_id) AS DOUBLE) / count(*) AS y
FROM sold AS s LEFT JOIN returned AS r ON r.order_id = s.order_id
GROUP BY 2
"""

# Complaints (after-sales cases) by their reason, split by the complained-of order's category.
# Reasons are the after-sales vocabulary's (crm.aftersales_codes): events stored before their
# codes were mapped (damaged, size) are read as the reason they stand for, or other.
COMPLAINT_CATEGORIES = f"""
WITH complaints AS (
  SELECT order_id,
    CASE WHEN reason_code IS NULL THEN 'unspecified' ELSE {reason_sql("reason_code")} END AS reason
  FROM events
  WHERE type = 'after_sales' AND case_kind = 'complaint' AND {IN_PERIOD} AND $channel_ok
),
categories AS (
  SELECT order_id, min(category) AS category FROM order_items
  WHERE type = 'order_paid' AND dt <= $end_key GROUP BY order_id
)
SELECT coalesce(k.category, 'unknown') AS series, c.reason AS x, CAST(count(*) AS DOUBLE) AS y
FROM complaints AS c LEFT JOIN categories AS k ON k.order_id = c.order_id
WHERE $category_ok_k
GROUP BY 1, 2
"""

PURCHASE_HOUR = f"""
SELECT coalesce(category, 'unknown') AS series,
  lpad(CAST(hour(occurred_at) AS VARCHAR), 2, '0') AS x,
  CAST(count(DISTINCT order_id) AS DOUBLE) AS y
FROM order_items WHERE type = 'order_paid' AND {IN_PERIOD} AND $channel_ok AND $category_ok
GROUP BY 1, 2
"""

ALL: tuple[str, ...] = ("all",)
_ALL_LABEL: dict[str, Label] = {"all": ("All", "全部")}
CH: tuple[Filter, ...] = ("channel",)
CH_CAT: tuple[Filter, ...] = ("channel", "category")

METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("funnel", ("Conversion funnel", "转化漏斗"), "count", "funnel", CH_CAT, FUNNEL,
               {**_ALL_LABEL, "view": ("Viewed", "浏览"), "cart": ("Added to cart", "加购"),
                "order": ("Ordered", "下单"), "paid": ("Paid", "支付")},
               ("view", "cart", "order", "paid")),
        Metric("repurchase_30d", ("30-day repurchase rate by first-order cohort",
                                  "首单群组30天复购率"), "ratio", "line", CH, REPURCHASE_30D,
               _ALL_LABEL, default_days=180),
        Metric("repurchase_interval", ("Days between repeat orders", "复购间隔（天）"), "count",
               "bar", CH, REPURCHASE_INTERVAL, _ALL_LABEL,
               ("0-7", "8-14", "15-30", "31-60", "61-90", "91+")),
        Metric("active_customers", ("Active customers", "活跃客户"), "count", "line", CH_CAT,
               ACTIVE_CUSTOMERS, _ALL_LABEL),
        Metric("new_vs_returning", ("New vs returning buyers", "新客与老客"), "count",
               "stacked_bar", CH, NEW_VS_RETURNING,
               {"new": ("New", "新客"), "returning": ("Returning", "老客")}),
        Metric("churn_rate", ("Churn rate", "流失率"), "ratio", "line", CH, CHURN_RATE,
               _ALL_LABEL),
        Metric("tier_shares", ("Tier shares", "会员等级占比"), "ratio", "stacked_bar", (),
               TIER_SHARES, shares=True),
        Metric("churn_warnings", ("Churn warnings", "流失预警人数"), "count", "line", (),
               CHURN_WARNINGS, _ALL_LABEL),
        Metric("channel_conversion", ("Conversion by channel", "渠道转化率"), "ratio", "bar",
               CH_CAT, CHANNEL_CONVERSION, _ALL_LABEL),
        Metric("channel_aov", ("Average order value by channel", "渠道客单价"), "currency",
               "bar", CH_CAT, CHANNEL_AOV, _ALL_LABEL),
        Metric("campaign_roi", ("Campaign results and ROI", "营销活动效果与ROI"), "count",
               "table", ("campaign",), CAMPAIGN_ROI,
               {"sends": ("Sends", "发送数"), "conversions": ("Conversions", "转化数"),
                "revenue": ("Attributed revenue", "归因收入"),
                "uplift": ("Uplift vs control", "相对对照组提升"), "roi": ("ROI", "投资回报率")},
               x_campaigns=True,
               units={"revenue": "currency", "uplift": "ratio", "roi": "ratio"}),
        Metric("sla_attainment", ("SLA attainment", "SLA达成率"), "ratio", "bar", CH_CAT,
               SLA_ATTAINMENT,
               {"first_response": ("First response", "首次响应"),
                "resolution": ("Resolution", "解决")}, source="tickets"),
        Metric("escalations", ("Escalated tickets", "升级工单"), "count", "line", CH_CAT,
               ESCALATIONS, _ALL_LABEL, source="tickets"),
        Metric("response_times", ("Response and resolution times", "响应与解决时长"), "count",
               "bar", CH_CAT, RESPONSE_TIMES,
               {"first_response": ("First response", "首次响应"),
                "resolution": ("Resolution", "解决")},
               ("<1h", "1-4h", "4-8h", "8-24h", "1-3d", ">3d"), source="tickets"),
        Metric("return_rate", ("Return rate by category (by SKU within one)", "退货率（品类/SKU）"),
               "ratio", "bar", CH_CAT, RETURN_RATE, _ALL_LABEL),
        Metric("complaint_categories", ("Complaints by reason and category", "投诉原因与品类"),
               "count", "stacked_bar", CH_CAT, COMPLAINT_CATEGORIES),
        Metric("purchase_hour", ("Purchases by hour of day and category", "分时段购买（品类）"),
               "count", "heatmap", CH_CAT, PURCHASE_HOUR),
    )
}  # fmt: skip


def render(metric: Metric, values: dict[str, str]) -> str:
    """The metric's SQL with its `$names` replaced (values are SQL literals already checked)."""
    return Template(metric.sql).substitute(values).strip()
