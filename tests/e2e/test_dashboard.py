"""The dashboard page in Debian's headless Chromium (apt's chromium and chromium-driver, never a
browser Selenium downloads), served by the emulator's static host.

The analytics routes are played by the local API gateway (the template's authorizer and CORS)
in front of a stand-in function answering the fixture JSON in the agreed shape
(docs/dashboard.md, tests/e2e/fixtures/analytics.json): it refuses what the real routes refuse
(a role without READ_ANALYTICS, an unknown metric, a filter the metric does not take), so the
page is held to the contract, not to the fixture."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from crm_local.api_settings import read_api_settings
from crm_local.apigw import ApiRoute
from crm_local.dashboard import DashboardServer
from crm_local.demo_status import read_status
from crm_local.gateway import Gateway
from crm_local.provision import Stack
from crm_local.state import read_info
from crm_local.template import ROOT, load_template
from crm_local.tokens import dev_secret, issue_token
from tests.e2e.conftest import Running, start_emulator, wait_for

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "analytics.json").read_text())
SECRET = "a-development-secret-of-32-bytes!"
READERS = {"analyst", "marketer", "admin"}  # READ_ANALYTICS
WAIT_S = 30
SLOW_S = 600
DEMO_CUSTOMERS = 40  # a small seeded demo: ready in well under a minute


def proxy(status: int, body: Any) -> dict[str, Any]:
    # The functions' answers carry the CORS header themselves (CORS_ALLOW_ORIGIN).
    headers = {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*"}
    return {"statusCode": status, "headers": headers, "body": json.dumps(body)}


def error(status: int, code: str) -> dict[str, Any]:
    return proxy(status, {"error": {"code": code, "message": code}})


class FixtureAnalytics:
    """The analytics function as the contract describes it, answering from the fixture."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.declared = {m["name"]: set(m["filters"]) for m in FIXTURE["metrics"]}
        self.today: str | None = None  # the service's day, when the listing says one

    def __call__(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        groups = event["requestContext"]["authorizer"]["claims"]["cognito:groups"]
        if not READERS & set(groups.split(",")):
            return error(403, "forbidden")
        name = (event["pathParameters"] or {}).get("name")
        if name is None:
            today = {"today": self.today} if self.today else {}
            return proxy(200, {"metrics": FIXTURE["metrics"], **today})
        if name not in self.declared:
            return error(404, "not_found")
        query = event["queryStringParameters"] or {}
        if set(query) - {"from", "to", "grain"} - self.declared[name]:
            return error(400, "bad_filter")
        period = {"from": query["from"], "to": query["to"], "grain": query.get("grain", "day")}
        return proxy(200, {**FIXTURE["results"][name], "period": period})

    def metric_queries(self) -> dict[str, dict[str, str]]:
        """The last query string each metric was asked with."""
        return {
            e["pathParameters"]["name"]: e["queryStringParameters"] or {}
            for e in self.events
            if e["pathParameters"]
        }


@contextmanager
def fixture_api() -> Iterator[tuple[FixtureAnalytics, Gateway]]:
    """The local API gateway with the analytics routes, answered from the fixture."""
    template = load_template()
    stack = Stack(template, parameters=template.parameter_defaults())
    routes = [
        ApiRoute("AnalyticsFunction", "/analytics/metrics", "GET", authorized=True),
        ApiRoute("AnalyticsFunction", "/analytics/metrics/{name}", "GET", authorized=True),
    ]
    function = FixtureAnalytics()
    gateway = Gateway(routes, function, SECRET, 0, read_api_settings(template, stack.resolve))
    gateway.start()
    try:
        yield function, gateway
    finally:
        gateway.stop()


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        # A failure, not a skip: `make test` installs both (apt-get install chromium
        # chromium-driver), so a missing one is a broken setup.
        pytest.fail(f"{', '.join(missing)} missing: run `make install` (apt-get install -y "
                    "chromium chromium-driver)", pytrace=False)  # fmt: skip
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--window-size={width},{height}", "--lang=en-US"):  # fmt: skip
        options.add_argument(flag)
    # An explicit driver path: Selenium Manager never looks for (or downloads) another.
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def analytics() -> Iterator[tuple[FixtureAnalytics, Gateway]]:
    with fixture_api() as running:
        yield running


@pytest.fixture(scope="module")
def page_url(analytics: tuple[FixtureAnalytics, Gateway]) -> Iterator[str]:
    server = DashboardServer(analytics[1].url).start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


def token(role: str) -> str:
    return issue_token(SECRET, role)


def fresh(driver: WebDriver, url: str) -> None:
    """The page as a first visit sees it: no session token, English."""
    driver.get(url)
    driver.execute_script("sessionStorage.clear(); localStorage.clear();")
    driver.get(url)


def wait_state(driver: WebDriver, *states: str, timeout: float = WAIT_S) -> str:
    def reached(d: WebDriver) -> str:
        state = d.find_element(By.TAG_NAME, "body").get_attribute("data-state") or ""
        return state if state in states else ""

    result: str = WebDriverWait(driver, timeout).until(
        reached, f"the page never reached {' or '.join(states)}"
    )
    return result


def sign_in(driver: WebDriver, url: str, role: str = "analyst") -> None:
    fresh(driver, url)
    wait_state(driver, "signed-out")
    driver.find_element(By.ID, "token").send_keys(token(role))
    driver.find_element(By.CSS_SELECTOR, "#dev-sign-in button[type=submit]").click()


def cards(driver: WebDriver) -> dict[str, dict[str, Any]]:
    """Each metric card: its state, title, and what echarts drew (series names, points)."""
    found: list[dict[str, Any]] = driver.execute_script(
        """
        const out = [];
        for (const card of document.querySelectorAll('.metric')) {
          const chart = echarts.getInstanceByDom(card.querySelector('.chart'));
          const option = chart ? chart.getOption() : null;
          const canvas = card.querySelector('.chart canvas');
          out.push({
            name: card.dataset.metric,
            state: card.dataset.state,
            title: card.querySelector('h2').textContent,
            points: option ? option.series.map(s => s.data.filter(d => d !== null).length) : null,
            legend: option && option.legend && option.legend.length ? option.legend[0].data : null,
            legend_type: option && option.legend && option.legend.length
              ? option.legend[0].type : null,
            grid_top: option && option.grid && option.grid.length ? option.grid[0].top : null,
            xs: option && option.xAxis && option.xAxis.length ? option.xAxis[0].data : null,
            // The value axis' end as drawn (after ECharts rounds it up to a nice number).
            y_max: chart && option.yAxis && option.yAxis.length && option.yAxis[0].type === 'value'
              ? chart.getModel().getComponent('yAxis', 0).axis.scale.getExtent()[1] : null,
            canvas: canvas ? [canvas.width, canvas.height] : null,
            rows: Array.from(card.querySelectorAll('tbody tr'),
                             tr => Array.from(tr.children, c => c.textContent)),
            row_titles: Array.from(card.querySelectorAll('tbody th'), th => th.title),
          });
        }
        return out;
        """
    )
    # A list, not an object: the page's order is the API's, which a JSON object would lose.
    return {card.pop("name"): card for card in found}


def expected_points(name: str) -> list[int]:
    result = FIXTURE["results"][name]
    if result["chart"] == "heatmap":  # one heatmap series of every row's cells
        return [sum(len(s["points"]) for s in result["series"])]
    if result["chart"] == "funnel":
        return [len(result["series"][0]["points"])]
    return [len(s["points"]) for s in result["series"]]


def test_the_page_asks_for_a_token_before_calling_the_api(
    browser: WebDriver, page_url: str, analytics: tuple[FixtureAnalytics, Gateway]
) -> None:
    function = analytics[0]
    before = len(function.events)
    fresh(browser, page_url)
    wait_state(browser, "signed-out")
    assert browser.find_element(By.ID, "dev-sign-in").is_displayed()
    assert not browser.find_element(By.ID, "board").is_displayed()
    browser.find_element(By.ID, "token").send_keys("not a token")
    browser.find_element(By.CSS_SELECTOR, "#dev-sign-in button[type=submit]").click()
    assert "not a token" in browser.find_element(By.ID, "message").text
    assert len(function.events) == before


def test_a_dev_token_signs_in_and_every_metric_is_drawn(
    browser: WebDriver, page_url: str, analytics: tuple[FixtureAnalytics, Gateway]
) -> None:
    function = analytics[0]
    function.events.clear()
    sign_in(browser, page_url)
    assert wait_state(browser, "ready", "error", "forbidden", "signed-out") == "ready"

    drawn = cards(browser)
    assert list(drawn) == [m["name"] for m in FIXTURE["metrics"]]  # the API's order
    for name, card in drawn.items():
        result = FIXTURE["results"][name]
        assert card["state"] == "ready", (name, card)
        assert card["title"] == result["title"]["en"]
        if result["chart"] == "table":
            assert len(card["rows"]) == len(result["series"][0]["points"])
        else:
            assert card["points"] == expected_points(name), name
            assert card["canvas"], name
            assert min(card["canvas"]) > 0, name
    # Series lacking some x (a day without new buyers, an hour without orders) are drawn on one
    # axis in order; a heatmap by hour shows the whole day.
    days = {p["x"] for s in FIXTURE["results"]["new_vs_returning"]["series"] for p in s["points"]}
    assert drawn["new_vs_returning"]["xs"] == sorted(days)
    assert drawn["purchase_hour"]["xs"] == [f"{h:02d}" for h in range(24)]
    # A table mixes units: each series is formatted in its own (currency, ratio, count).
    # A campaign's row shows its name and variant (x_labels), its id on hover.
    # A ratio never drawn against more than 100%: the tiers' shares make one whole, even as the
    # API rounded them one by one before (2/3, 1/6, 1/6 as 0.666667 + 0.166667 + 0.166667 =
    # 1.000001, which ECharts rounded up to 120%) and its cache may still answer them.
    for name, result in FIXTURE["results"].items():
        if result["unit"] == "ratio" and drawn[name]["y_max"] is not None:
            assert drawn[name]["y_max"] <= 1, (name, drawn[name]["y_max"])
    assert drawn["tier_shares"]["y_max"] == 1
    first = drawn["campaign_roi"]["rows"][0]
    assert first == ["双十一预热 / A", "5,000", "410", "CN¥88,210.00", "3.1%", "320%"]
    assert drawn["campaign_roi"]["row_titles"][0] == "20261025T020000Z-6f1c2a9b/A"
    # Every call carried the token; with no dates picked, each metric is asked for its own
    # default period up to today (repurchase within 30 days needs 180 days of cohorts), by day.
    today = date.today()
    assert all(e["headers"].get("Authorization", "").startswith("Bearer ") for e in function.events)
    queries = function.metric_queries()
    assert len(queries) == len(FIXTURE["metrics"])
    assert queries["funnel"] == {
        "from": (today - timedelta(days=29)).isoformat(),
        "to": today.isoformat(),
        "grain": "day",
    }
    assert queries["repurchase_30d"]["from"] == (today - timedelta(days=179)).isoformat()
    note = browser.find_element(By.CSS_SELECTOR, '.metric[data-metric="repurchase_30d"] .note')
    assert note.text.startswith(f"{today - timedelta(days=179)} – {today}")


def test_default_periods_end_on_the_services_day_when_it_is_later(
    browser: WebDriver, page_url: str, analytics: tuple[FixtureAnalytics, Gateway]
) -> None:
    """After `clock advance` the emulator's day is ahead of the browser's: the page's default
    periods ended on the browser's day and left out everything done since."""
    function = analytics[0]
    ahead = date.today() + timedelta(days=30)
    function.today = ahead.isoformat()
    try:
        sign_in(browser, page_url)
        assert wait_state(browser, "ready") == "ready"
        assert function.metric_queries()["funnel"]["to"] == ahead.isoformat()
        function.today = (date.today() - timedelta(days=1)).isoformat()  # behind: the user's
        sign_in(browser, page_url)
        assert wait_state(browser, "ready") == "ready"
        assert function.metric_queries()["funnel"]["to"] == date.today().isoformat()
    finally:
        function.today = None


def sizes(driver: WebDriver) -> dict[str, list[int]]:
    """Scroll and visible widths of the page and the campaign table's card, and the table's
    width against the room its card gives it."""
    found: dict[str, list[int]] = driver.execute_script(
        """
        const page = document.documentElement;
        const card = document.querySelector('.metric[data-metric="campaign_roi"]');
        const table = card.querySelector('.table');
        return {page: [page.scrollWidth, page.clientWidth],
                card: [card.scrollWidth, card.clientWidth],
                table: [table.scrollWidth, table.parentElement.clientWidth]};
        """
    )
    return found


@pytest.mark.parametrize("width", [1366, 390])
def test_a_legend_wraps_rather_than_pages(browser: WebDriver, page_url: str, width: int) -> None:
    """A phone's card paged the tiers' legend behind arrows (two of three names shown): a
    legend of a few names wraps onto a second line, and the chart starts below it."""
    metrics = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        sign_in(browser, page_url)
        assert wait_state(browser, "ready") == "ready"
        legends = {n: c for n, c in cards(browser).items() if c["legend"]}
        assert {"tier_shares", "new_vs_returning"} <= set(legends)
        for name, card in legends.items():
            assert card["legend_type"] == "plain", (name, card["legend"])
            assert card["grid_top"] >= 36, name
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


@pytest.mark.parametrize("width", [1366, 390])
def test_the_campaign_table_stays_in_its_card(
    browser: WebDriver, page_url: str, width: int
) -> None:
    """A laptop shows all the table's columns; a phone scrolls the table inside its card. The
    table used to run past its card (and on a phone past the page's edge)."""
    metrics = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        sign_in(browser, page_url)
        assert wait_state(browser, "ready") == "ready"
        found = sizes(browser)
        assert found["page"][0] <= found["page"][1], found
        assert found["card"][0] <= found["card"][1], found
        if width >= 1366:
            assert found["table"][0] <= found["table"][1], found
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_chinese_labels_without_asking_the_api_again(
    browser: WebDriver, page_url: str, analytics: tuple[FixtureAnalytics, Gateway]
) -> None:
    function = analytics[0]
    sign_in(browser, page_url)
    wait_state(browser, "ready")
    asked = len(function.events)
    browser.find_element(By.CSS_SELECTOR, "[data-lang=zh]").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "运营作战指挥舱"
    assert browser.find_element(By.CSS_SELECTOR, "#filters button").text == "应用"
    drawn = cards(browser)
    assert drawn["funnel"]["title"] == "转化漏斗"
    assert drawn["new_vs_returning"]["legend"] == ["新客", "老客"]
    # Codes the API labels only by themselves (tiers, after-sales reasons) are put in words.
    assert drawn["tier_shares"]["legend"] == ["高价值", "沉睡", "流失预警"]
    assert drawn["complaint_categories"]["xs"] == ["配送延迟", "质量缺陷", "不想要了", "发错货"]
    assert len(function.events) == asked
    # The choice is remembered: a reload stays in Chinese.
    browser.refresh()
    wait_state(browser, "ready")
    assert browser.find_element(By.TAG_NAME, "h1").text == "运营作战指挥舱"
    browser.find_element(By.CSS_SELECTOR, "[data-lang=en]").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "Operations dashboard"


def test_filters_reach_only_the_metrics_that_take_them(
    browser: WebDriver, page_url: str, analytics: tuple[FixtureAnalytics, Gateway]
) -> None:
    function = analytics[0]
    sign_in(browser, page_url)
    wait_state(browser, "ready")
    function.events.clear()
    form = browser.find_element(By.ID, "filters")
    Select(form.find_element(By.NAME, "channel")).select_by_value("douyin")
    Select(form.find_element(By.NAME, "grain")).select_by_value("week")
    form.find_element(By.NAME, "category").send_keys("母婴")
    set_dates(browser, "2026-10-01", "2026-10-31")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for_requests(function, len(FIXTURE["metrics"]))
    assert wait_state(browser, "ready") == "ready"

    queries = function.metric_queries()
    period = {"from": "2026-10-01", "to": "2026-10-31", "grain": "week"}
    assert queries["funnel"] == {**period, "channel": "douyin", "category": "母婴"}
    assert queries["channel_conversion"] == {**period, "category": "母婴"}  # not by channel
    assert queries["tier_shares"] == period  # takes no filter
    # The real routes refuse an undeclared filter (400): no card failed.
    assert {card["state"] for card in cards(browser).values()} == {"ready"}
    note = browser.find_element(By.CSS_SELECTOR, '.metric[data-metric="funnel"] .note').text
    assert note.startswith("2026-10-01 – 2026-10-31")


def test_a_period_ending_before_it_starts_is_not_asked_for(
    browser: WebDriver, page_url: str, analytics: tuple[FixtureAnalytics, Gateway]
) -> None:
    function = analytics[0]
    sign_in(browser, page_url)
    wait_state(browser, "ready")
    asked = len(function.events)
    set_dates(browser, "2026-11-30", "2026-11-01")
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    assert "after its end" in browser.find_element(By.ID, "message").text
    assert len(function.events) == asked


def test_the_banner_link_signs_in_and_leaves_no_token_in_the_address(
    browser: WebDriver, page_url: str
) -> None:
    fresh(browser, page_url)
    browser.get(f"{page_url}#token={token('marketer')}")
    assert wait_state(browser, "ready") == "ready"
    assert "token" not in browser.current_url
    assert browser.find_element(By.ID, "who").text == "marketer"
    browser.find_element(By.ID, "sign-out").click()
    wait_state(browser, "signed-out")
    assert browser.execute_script("return sessionStorage.length") == 0


def test_a_role_without_analytics_is_told_so(browser: WebDriver, page_url: str) -> None:
    sign_in(browser, page_url, role="support_agent")
    assert wait_state(browser, "forbidden", "ready") == "forbidden"
    assert "cannot read analytics" in browser.find_element(By.ID, "message").text


def test_a_token_the_api_refuses_signs_out(browser: WebDriver, page_url: str) -> None:
    fresh(browser, page_url)
    # Well formed and unexpired, but signed with another secret: the gateway answers 401.
    forged = issue_token("another-secret-of-at-least-32-bytes", "analyst")
    browser.get(f"{page_url}#token={forged}")
    assert wait_state(browser, "signed-out", "ready") == "signed-out"
    assert "expired" in browser.find_element(By.ID, "message").text


def test_an_api_out_of_reach_is_named(browser: WebDriver) -> None:
    # A port nothing listens on: what a browser also sees when CORS refuses the page.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        api = f"http://127.0.0.1:{probe.getsockname()[1]}"
    server = DashboardServer(api).start()
    try:
        fresh(browser, server.url)
        browser.get(f"{server.url}#token={token('analyst')}")
        assert wait_state(browser, "error", "ready") == "error"
        message = browser.find_element(By.ID, "message").text
        assert "could not be reached" in message
        assert api in message
    finally:
        server.stop()


def test_the_emulator_serves_the_page_beside_its_api(browser: WebDriver, emulator: Running) -> None:
    info = json.loads((emulator.state_dir / "emulator.json").read_text())
    page = info["dashboard"]
    assert urlsplit(page).port != urlsplit(emulator.api).port  # its own origin, as in AWS
    with urllib.request.urlopen(page + "config.json", timeout=10) as response:  # noqa: S310
        assert json.load(response) == {
            "api": emulator.api,
            "auth": {"mode": "dev"},
            "currency": "CNY",
        }
    fresh(browser, page)
    assert wait_state(browser, "signed-out") == "signed-out"
    assert browser.execute_script("return typeof echarts.init") == "function"
    # The page reaches the emulator's API across origins (the template's CORS, a preflight
    # for the Authorization header) with a token `crm-local token` made.
    status = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const headers = {Authorization: 'Bearer ' + arguments[1]};
        fetch(arguments[0] + '/customers/nobody', {headers})
          .then(r => done(r.status), e => done(String(e)));
        """,
        emulator.api,
        emulator.token("analyst"),
    )
    assert status in (403, 404)  # an answer the page can read, not a CORS failure


def drawn_totals(driver: WebDriver) -> dict[str, list[float]]:
    """The sum of each series' values as ECharts drew them, per metric card (a funnel's items,
    a line's or bar's numbers, a heatmap's cell values)."""
    totals: dict[str, list[float]] = driver.execute_script(
        """
        const value = (d) => {
          if (d === null || d === undefined) return 0;
          if (typeof d === 'number') return d;
          if (Array.isArray(d)) return value(d[d.length - 1]);
          if (typeof d === 'object') return value(d.value);
          return Number(d) || 0;
        };
        const out = {};
        for (const card of document.querySelectorAll('.metric')) {
          const chart = echarts.getInstanceByDom(card.querySelector('.chart'));
          if (!chart) continue;
          out[card.dataset.metric] = chart.getOption().series.map(
            s => s.data.reduce((sum, d) => sum + value(d), 0));
        }
        return out;
        """
    )
    return totals


def test_the_seeded_demo_draws_real_charts(browser: WebDriver, tmp_path: Path) -> None:
    """The real analytics routes over a small seeded demo shop (no fixture): every card draws
    or says it has no data, none fails, and the funnel, active customers and repurchase have
    figures."""
    with start_emulator(
        ROOT / "template.yaml", tmp_path, "--no-persist", "--seed", str(DEMO_CUSTOMERS)
    ) as running:
        status = wait_for(
            lambda: (s := read_status(running.state_dir)) and s.state != "loading" and s,
            timeout=SLOW_S,
            every=1,
        )
        assert status.state == "ready", status.line() + "\n" + running.log.read_text()[-3000:]
        page = json.loads((running.state_dir / "emulator.json").read_text())["dashboard"]
        fresh(browser, page)
        browser.get(f"{page}#token={running.token('analyst')}")
        state = wait_state(browser, "ready", "error", "forbidden", "signed-out", timeout=SLOW_S)
        assert state == "ready", browser.find_element(By.ID, "message").text
        drawn = cards(browser)
        failed = {n: c for n, c in drawn.items() if c["state"] not in ("ready", "empty")}
        assert not failed, failed
        totals = drawn_totals(browser)
        # Each card its own default period: repurchase within 30 days counts cohorts of 180
        # days, which the demo shop's history fills (the last 30 days alone had none).
        for name in ("funnel", "active_customers", "repurchase_30d"):
            assert drawn[name]["state"] == "ready", (name, drawn[name])
            assert drawn[name]["canvas"], name  # drawn on a canvas, not only configured
            assert sum(totals[name]) > 0, (name, totals[name])


class HostedUi:
    """Cognito's hosted UI and token endpoint as far as the page sees them: /oauth2/authorize
    answers a code for the PKCE challenge, /oauth2/token gives an ID token only for the verifier
    that hashes to it, /logout returns to the page."""

    def __init__(self) -> None:
        self.codes: dict[str, dict[str, str]] = {}
        self.exchanges: list[dict[str, str]] = []
        self.logouts = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        ui = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes = b"", **headers: str) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key.replace("_", "-"), value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = dict(parse_qsl(url.query))
                if url.path == "/oauth2/authorize":
                    code = f"code-{len(ui.codes)}"
                    ui.codes[code] = query
                    back = urlencode({"code": code, "state": query["state"]})
                    self._reply(302, Location=f"{query['redirect_uri']}?{back}")
                elif url.path == "/logout":
                    ui.logouts += 1
                    self._reply(302, Location=query["logout_uri"])
                else:
                    self._reply(404)

            def do_POST(self) -> None:
                form = dict(
                    parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode())
                )
                ui.exchanges.append(form)
                asked = ui.codes.pop(form.get("code", ""), None)
                digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
                challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
                good = (
                    asked is not None
                    and asked["code_challenge_method"] == "S256"
                    and asked["code_challenge"] == challenge
                    and asked["redirect_uri"] == form.get("redirect_uri")
                    and form.get("grant_type") == "authorization_code"
                )
                body = {"id_token": token("analyst"), "token_type": "Bearer", "expires_in": 3600}
                self._reply(
                    200 if good else 400,
                    json.dumps(body if good else {"error": "invalid_grant"}).encode(),
                    Content_Type="application/json",
                    Access_Control_Allow_Origin="*",
                )

        return Handler


def test_staff_sign_in_on_cognito_s_hosted_ui_with_pkce(
    browser: WebDriver, analytics: tuple[FixtureAnalytics, Gateway]
) -> None:
    ui = HostedUi()
    auth = {"mode": "cognito", "domain": ui.url, "client_id": "dashboard-client"}
    server = DashboardServer(analytics[1].url, auth=auth).start()
    try:
        fresh(browser, server.url)
        wait_state(browser, "signed-out")
        assert not browser.find_element(By.ID, "dev-sign-in").is_displayed()
        browser.find_element(By.ID, "cognito-sign-in").click()
        assert wait_state(browser, "ready", "signed-out") == "ready"
        [exchange] = ui.exchanges
        assert (exchange["client_id"], exchange["redirect_uri"]) == ("dashboard-client", server.url)
        assert "code" not in browser.current_url  # the code is spent and gone from the address
        assert browser.find_element(By.ID, "who").text == "analyst"

        browser.find_element(By.ID, "sign-out").click()  # out of the hosted UI too
        wait_state(browser, "signed-out")
        assert ui.logouts == 1

        # A callback this tab did not ask for (a forged link) is never exchanged.
        browser.get(f"{server.url}?code=stolen&state=forged")
        wait_state(browser, "signed-out")
        assert "did not match" in browser.find_element(By.ID, "message").text
        assert len(ui.exchanges) == 1
    finally:
        server.stop()
        ui.stop()


def set_dates(driver: WebDriver, start: str, end: str) -> None:
    # Date inputs take keyboard input in the locale's order; setting the value is exact.
    driver.execute_script(
        "const f = document.getElementById('filters');"
        "f.elements.from.value = arguments[0]; f.elements.to.value = arguments[1];",
        start,
        end,
    )


def wait_for_requests(function: FixtureAnalytics, count: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while len(function.metric_queries()) < count:
        assert time.monotonic() < deadline, f"{len(function.metric_queries())} of {count} asked"
        time.sleep(0.1)


def screenshot(path: Path, state_dir: Path | None = None) -> None:
    """docs/dashboard.png, in Chinese, the whole board: over the fixture (November 2026), or
    over a running `make run` (its state folder; the last 30 days of its demo shop)."""
    with ExitStack() as stack:
        if state_dir is None:
            _, gateway = stack.enter_context(fixture_api())
            server = DashboardServer(gateway.url).start()
            stack.callback(server.stop)
            page, signed, period = server.url, token("analyst"), ("2026-11-01", "2026-11-30")
        else:
            info = read_info(state_dir)
            if info is None:
                raise SystemExit(f"no emulator runs on {state_dir}: start it with `make run`")
            page, period = info["dashboard"], None
            signed = issue_token(dev_secret(state_dir), "analyst")
        driver = stack.enter_context(chromium(1440, 1000))
        fresh(driver, page)
        driver.execute_script("localStorage.setItem('crm.dashboard.lang', 'zh')")
        driver.get(f"{page}#token={signed}")
        driver.refresh()  # a fragment alone does not reload: the language is read again
        # A first view of a big demo computes every metric (the cache is cold): minutes here.
        wait_state(driver, "ready", timeout=SLOW_S)
        if period:
            set_dates(driver, *period)
            driver.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
            wait_state(driver, "ready")
        # The whole board, beyond the window's height.
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
        )
        path.write_bytes(base64.b64decode(shot["data"]))


if __name__ == "__main__":
    # python -m tests.e2e.test_dashboard [docs/dashboard.png] [--emulator .crm-local]
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.e2e.test_dashboard")
    parser.add_argument("path", nargs="?", type=Path, default=Path("docs/dashboard.png"))
    parser.add_argument("--emulator", type=Path, metavar="STATE_DIR",
                        help="a running emulator's state folder (.crm-local)")  # fmt: skip
    args = parser.parse_args()
    screenshot(args.path, args.emulator)
