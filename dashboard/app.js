// The analytics dashboard: reads config.json (the API's address and how to sign in), signs in
// with the API's own tokens, lists GET /analytics/metrics and draws each metric with echarts.
// Plain browser JavaScript, no build step: the page is deployable as static files as it is.
"use strict";

const TOKEN_KEY = "crm.dashboard.token";
const STATE_KEY = "crm.dashboard.oauthState";
const LANG_KEY = "crm.dashboard.lang";
// Seventeen metrics at once would queue up behind each other in Athena anyway.
const PARALLEL_REQUESTS = 4;
const FILTERS = ["channel", "category", "campaign"];

const TEXT = {
  en: {
    title: "Operations dashboard",
    signInTitle: "Sign in",
    devTokenLabel: "Development token",
    devTokenHint: "`make run` prints an analyst token; `crm-local token --role analyst` makes one.",
    signIn: "Sign in",
    signInCognito: "Sign in with your staff account",
    signOut: "Sign out",
    from: "From", to: "To", grain: "Grain", day: "Day", week: "Week", month: "Month",
    channel: "Channel", allChannels: "All channels", category: "Category", campaign: "Campaign",
    ch_app: "App", ch_mini_program: "Mini program", ch_wechat: "WeChat", ch_douyin: "Douyin",
    ch_offline_store: "Stores",
    apply: "Apply",
    loading: "Loading…",
    noData: "No data for this period.",
    noMetrics: "The API offers no metrics.",
    cached: "cached", computed: "computed",
    badToken: "That is not a token: paste the whole token (three parts separated by dots).",
    expired: "Your sign-in has expired: sign in again.",
    forbidden: "Your role cannot read analytics (analysts, marketers and admins can).",
    unreachable: "The API could not be reached (down, or refusing this page's origin)",
    badPeriod: "The period's start is after its end.",
    periodHint: "No dates: each chart its usual period.",
    failed: "Could not load",
    signInState: "The sign-in answer did not match the request: sign in again.",
  },
  zh: {
    title: "运营作战指挥舱",
    signInTitle: "登录",
    devTokenLabel: "开发令牌",
    devTokenHint: "`make run` 会打印分析师令牌；`crm-local token --role analyst` 可再生成一个。",
    signIn: "登录",
    signInCognito: "使用员工账号登录",
    signOut: "退出",
    from: "开始", to: "结束", grain: "粒度", day: "日", week: "周", month: "月",
    channel: "渠道", allChannels: "全部渠道", category: "品类", campaign: "活动",
    ch_app: "App", ch_mini_program: "小程序", ch_wechat: "微信", ch_douyin: "抖音",
    ch_offline_store: "门店",
    apply: "应用",
    loading: "加载中…",
    noData: "该时段没有数据。",
    noMetrics: "API 未提供任何指标。",
    cached: "缓存", computed: "计算于",
    badToken: "这不是令牌：请粘贴完整令牌（以点分隔的三段）。",
    expired: "登录已过期，请重新登录。",
    forbidden: "您的角色无权查看分析数据（分析师、营销人员和管理员可以）。",
    unreachable: "无法连接 API（服务未运行，或不接受本页面的来源）",
    badPeriod: "开始日期晚于结束日期。",
    periodHint: "不选日期：各图表按其常用时段。",
    failed: "加载失败",
    signInState: "登录返回与请求不符，请重新登录。",
  },
};

// The codes the metrics put on an axis or name a series by (channels, funnel steps, tiers,
// after-sales reasons, ticket categories), in words. The API's own labels win where it gives
// them; a code not here is shown as it is.
const X_LABELS = {
  en: {
    app: "App", mini_program: "Mini program", wechat: "WeChat", douyin: "Douyin",
    offline_store: "Stores", store: "Stores", unknown: "Unknown", other: "Other",
    view: "Viewed", cart: "Added to cart", order: "Ordered", paid: "Paid",
    high_value: "High value", potential: "Potential", new: "New", dormant: "Dormant",
    churn_risk: "Churn risk", regular: "Regular",
    size_too_small: "Too small", size_too_large: "Too large", defective: "Defective",
    not_as_described: "Not as described", damaged_in_transit: "Damaged in transit",
    wrong_item: "Wrong item", missing_parts: "Missing parts", late_delivery: "Late delivery",
    changed_mind: "Changed mind",
    logistics: "Logistics", quality: "Quality", size_fit: "Size and fit",
    return_refund: "Returns and refunds", payment_invoice: "Payment and invoices",
    account_points: "Account and points", presale: "Pre-sale", service_complaint: "Service",
  },
  zh: {
    app: "App", mini_program: "小程序", wechat: "微信", douyin: "抖音", offline_store: "门店",
    store: "门店", unknown: "未知", other: "其他",
    view: "浏览", cart: "加购", order: "下单", paid: "支付",
    high_value: "高价值", potential: "潜力", new: "新客", dormant: "沉睡", churn_risk: "流失预警",
    regular: "普通",
    size_too_small: "尺码偏小", size_too_large: "尺码偏大", defective: "质量缺陷",
    not_as_described: "与描述不符", damaged_in_transit: "运输损坏", wrong_item: "发错货",
    missing_parts: "缺件", late_delivery: "配送延迟", changed_mind: "不想要了",
    logistics: "物流", quality: "质量", size_fit: "尺码", return_refund: "退换退款",
    payment_invoice: "支付发票", account_points: "账户积分", presale: "售前",
    service_complaint: "服务投诉",
  },
};
const xLabel = (x) => X_LABELS[state.lang][x] ?? String(x);

const state = {
  config: null,
  lang: "en",
  token: null,
  metrics: [], // GET /analytics/metrics's list
  today: null, // the service's day (GET /analytics/metrics), "YYYY-MM-DD"
  results: new Map(), // name -> the metric's last answer, redrawn on a language switch
  charts: new Map(), // name -> echarts instance
  generation: 0, // a newer Apply makes older answers stale
};

const $ = (selector, root = document) => root.querySelector(selector);
const t = (key) => TEXT[state.lang][key] ?? TEXT.en[key] ?? key;
const label = (text) => (text && (text[state.lang] ?? text.en)) || "";

class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

// ------------------------------------------------------------------ language
function chooseLanguage() {
  const saved = localStorage.getItem(LANG_KEY);
  if (saved in TEXT) return saved;
  return (navigator.language || "").toLowerCase().startsWith("zh") ? "zh" : "en";
}

function applyLanguage(lang) {
  state.lang = lang;
  localStorage.setItem(LANG_KEY, lang);
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
  }
  for (const [name, result] of state.results) drawMetric(name, result);
}

// ------------------------------------------------------------------ signing in
function claimsOf(token) {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const payload = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(decodeURIComponent(escape(atob(payload))));
  } catch {
    return null;
  }
}

function expired(claims) {
  return typeof claims.exp === "number" && claims.exp * 1000 <= Date.now();
}

// `make run`'s banner links #token=... : the fragment never reaches a server, and it is removed
// from the address at once so that it is neither bookmarked nor shared.
function takeTokenFromFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get("token");
  if (!token) return null;
  history.replaceState(null, "", location.pathname + location.search);
  return token;
}

// ------------------------------------------------------------------ Cognito (AWS)
// The staff pool's hosted UI with the authorization code flow and PKCE: a static page keeps no
// client secret, and the code is worthless without the verifier kept in this tab.
const base64url = (bytes) =>
  btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

function randomText(bytes) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

function redirectUri() {
  return state.config.auth.redirect_uri || location.origin + location.pathname;
}

async function cognitoSignIn() {
  const auth = state.config.auth;
  const verifier = randomText(48);
  const oauthState = randomText(16);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  sessionStorage.setItem(STATE_KEY, JSON.stringify({ state: oauthState, verifier }));
  const query = new URLSearchParams({
    response_type: "code",
    client_id: auth.client_id,
    redirect_uri: redirectUri(),
    scope: "openid email profile",
    state: oauthState,
    code_challenge: base64url(new Uint8Array(digest)),
    code_challenge_method: "S256",
  });
  location.assign(`${auth.domain.replace(/\/$/, "")}/oauth2/authorize?${query}`);
}

// Back from the hosted UI with ?code=...&state=...: the code and the verifier buy the tokens.
async function takeTokenFromCode() {
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  if (!code || !state.config.auth || state.config.auth.mode !== "cognito") return null;
  history.replaceState(null, "", location.pathname);
  const pending = JSON.parse(sessionStorage.getItem(STATE_KEY) || "null");
  sessionStorage.removeItem(STATE_KEY);
  if (!pending || params.get("state") !== pending.state) {
    showMessage(t("signInState"), "error");
    return null;
  }
  const auth = state.config.auth;
  const response = await fetch(`${auth.domain.replace(/\/$/, "")}/oauth2/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      client_id: auth.client_id,
      code,
      redirect_uri: redirectUri(),
      code_verifier: pending.verifier,
    }),
  }).catch(() => null);
  const tokens = response && response.ok ? await response.json() : null;
  if (!tokens || !tokens.id_token) {
    showMessage(t("signInState"), "error");
    return null;
  }
  // The API's authorizer takes the ID token (its cognito:groups are the roles).
  return tokens.id_token;
}

// ------------------------------------------------------------------ signing in and out
function signIn(token) {
  const claims = claimsOf(token);
  if (!claims) {
    showMessage(t("badToken"), "error");
    return false;
  }
  if (expired(claims)) {
    showMessage(t("expired"), "error");
    return false;
  }
  state.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  const groups = claims["cognito:groups"];
  const who = $("#who");
  who.textContent = [].concat(groups || claims.sub || []).join(", ");
  who.hidden = false;
  $("#sign-out").hidden = false;
  return true;
}

function signOut(reasonKey) {
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  for (const chart of state.charts.values()) chart.dispose();
  state.charts.clear();
  state.results.clear();
  $("#metrics").replaceChildren();
  $("#board").hidden = true;
  $("#who").hidden = true;
  $("#sign-out").hidden = true;
  const auth = state.config.auth || {};
  if (!reasonKey && auth.mode === "cognito") {
    // Sign out of the hosted UI too, or its session would sign the next click straight in.
    const query = new URLSearchParams({ client_id: auth.client_id, logout_uri: redirectUri() });
    location.assign(`${auth.domain.replace(/\/$/, "")}/logout?${query}`);
    return;
  }
  showSignIn();
  if (reasonKey) showMessage(t(reasonKey), "error");
  else hideMessage();
}

function showSignIn() {
  const auth = state.config.auth || { mode: "dev" };
  $("#sign-in").hidden = false;
  $("#dev-sign-in").hidden = auth.mode !== "dev";
  $("#cognito-sign-in").hidden = auth.mode !== "cognito";
  document.body.dataset.state = "signed-out";
}

// ------------------------------------------------------------------ the API
async function api(path, query) {
  const url = new URL(state.config.api.replace(/\/$/, "") + path);
  for (const [key, value] of Object.entries(query || {})) url.searchParams.set(key, value);
  let response;
  try {
    response = await fetch(url, { headers: { Authorization: `Bearer ${state.token}` } });
  } catch (err) {
    throw new ApiError(0, "unreachable", `${t("unreachable")}: ${state.config.api}`);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (body && body.error) || {};
    throw new ApiError(response.status, error.code, error.message);
  }
  return body;
}

function authFailure(err) {
  if (!(err instanceof ApiError)) return false;
  if (err.status === 401 || err.code === "token_expired") {
    signOut("expired");
    return true;
  }
  if (err.status === 403 && err.code === "forbidden") {
    showMessage(t("forbidden"), "error");
    document.body.dataset.state = "forbidden";
    return true;
  }
  return false;
}

// ------------------------------------------------------------------ filters
// The user's own calendar day: at 07:00 in Shanghai, UTC's date is still yesterday.
function isoDate(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

// A metric's own period when the user picks none: its `default_days` up to today, the API's
// default too (30 days for most; repurchase within 30 days needs 180 to have cohorts that
// count). Sent explicitly so that "today" is the user's calendar day, not UTC's; or the
// service's day when that is later (the local emulator's clock moved ahead by `clock advance`:
// the browser's day left out everything done since).
function defaultPeriod(metric, to) {
  const local = new Date();
  const service = state.today ? new Date(`${state.today}T00:00:00`) : local;
  const end = to ? new Date(`${to}T00:00:00`) : service > local ? service : local;
  const days = (metric && metric.default_days) || 30;
  const from = new Date(end.getFullYear(), end.getMonth(), end.getDate() - (days - 1));
  return { from: isoDate(from), to: isoDate(end) };
}

function readFilters() {
  const form = $("#filters");
  const values = Object.fromEntries(new FormData(form).entries());
  for (const key of Object.keys(values)) values[key] = String(values[key]).trim();
  return values;
}

// Each metric takes only the filters it declares: another would be a 400.
// Empty dates: each metric its own default period (the card's note shows which).
function queryFor(metric, filters) {
  const fallback = defaultPeriod(metric, filters.to);
  const query = { from: filters.from || fallback.from, to: filters.to || fallback.to };
  query.grain = filters.grain;
  for (const key of FILTERS) {
    if (filters[key] && (metric.filters || []).includes(key)) query[key] = filters[key];
  }
  return query;
}

// ------------------------------------------------------------------ loading
async function loadBoard() {
  $("#sign-in").hidden = true;
  hideMessage();
  document.body.dataset.state = "loading";
  let listing;
  try {
    listing = await api("/analytics/metrics");
  } catch (err) {
    if (!authFailure(err)) {
      showMessage(`${t("failed")}: ${err.message}`, "error");
      document.body.dataset.state = "error";
    }
    return;
  }
  state.metrics = listing.metrics || [];
  state.today = listing.today || null;
  $("#board").hidden = false;
  if (!state.metrics.length) showMessage(t("noMetrics"));
  const container = $("#metrics");
  container.replaceChildren();
  for (const metric of state.metrics) {
    const card = $("#metric-card").content.firstElementChild.cloneNode(true);
    card.dataset.metric = metric.name;
    $("h2", card).textContent = label(metric.title) || metric.name;
    container.append(card);
  }
  await loadMetrics();
}

async function loadMetrics() {
  const filters = readFilters();
  if (filters.from && filters.to && filters.from > filters.to) {
    showMessage(t("badPeriod"), "error");
    return;
  }
  hideMessage();
  const generation = ++state.generation;
  document.body.dataset.state = "loading";
  const queue = [...state.metrics];
  for (const metric of queue) setCard(metric.name, "loading", t("loading"));
  const worker = async () => {
    while (queue.length && generation === state.generation && state.token) {
      const metric = queue.shift();
      try {
        const result = await api(
          `/analytics/metrics/${encodeURIComponent(metric.name)}`,
          queryFor(metric, filters),
        );
        if (generation !== state.generation) return;
        state.results.set(metric.name, result);
        drawMetric(metric.name, result);
      } catch (err) {
        if (generation !== state.generation || authFailure(err)) return;
        state.results.delete(metric.name);
        setCard(metric.name, "error", `${t("failed")}: ${err.message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: PARALLEL_REQUESTS }, worker));
  if (generation === state.generation && state.token) document.body.dataset.state = "ready";
}

function cardOf(name) {
  return document.querySelector(`.metric[data-metric="${CSS.escape(name)}"]`);
}

function setCard(name, cardState, note) {
  const card = cardOf(name);
  if (!card) return;
  card.dataset.state = cardState;
  $(".note", card).textContent = note || "";
}

// ------------------------------------------------------------------ drawing
function formatter(unit) {
  const locale = state.lang === "zh" ? "zh-CN" : "en";
  const currency = state.config.currency || "CNY";
  if (unit === "ratio") {
    const f = new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 1 });
    return (v) => f.format(v);
  }
  if (unit === "currency") {
    const f = new Intl.NumberFormat(locale, { style: "currency", currency });
    return (v) => f.format(v);
  }
  if (unit === "seconds") return (v) => duration(v);
  const f = new Intl.NumberFormat(locale, { maximumFractionDigits: 2 });
  return (v) => f.format(v);
}

function duration(seconds) {
  const zh = state.lang === "zh";
  const s = Math.round(Number(seconds));
  if (s < 60) return zh ? `${s}秒` : `${s}s`;
  const m = Math.round(s / 60);
  if (m < 60) return zh ? `${m}分钟` : `${m} min`;
  const h = Math.floor(m / 60);
  const rest = m % 60;
  if (zh) return rest ? `${h}小时${rest}分` : `${h}小时`;
  return rest ? `${h} h ${rest} min` : `${h} h`;
}

function niceSeconds(series) {
  const max = Math.max(0, ...series.flatMap((s) => (s.points || []).map((p) => num(p.y) || 0)));
  const steps = [60, 300, 600, 1800, 3600, 7200, 14400, 21600, 43200, 86400];
  return steps.find((step) => max / step <= 6) || Math.ceil(max / 6 / 86400) * 86400;
}

// A series' label, or its code in words when the API's label is only the code (tiers).
function seriesName(s) {
  const text = label(s.label);
  return text && text !== s.name ? text : xLabel(s.name);
}

// Numbers may come as strings (money is a decimal string in the API).
const num = (y) => (y === null || y === undefined || y === "" ? null : Number(y));

// The x values of all series together. Series may each lack some (a day without new buyers, an
// hour without orders in one category), so their union in order of appearance can be out of
// order: dates and numbers (hours) are sorted; anything else (funnel steps, buckets such as
// "0-7", "8-14", channels) keeps the API's order.
function categories(series) {
  const seen = [];
  for (const s of series) {
    for (const p of s.points || []) if (!seen.includes(String(p.x))) seen.push(String(p.x));
  }
  if (seen.every((x) => /^\d+$/.test(x))) return seen.sort((a, b) => Number(a) - Number(b));
  if (seen.every((x) => /^\d{4}-\d{2}(-\d{2})?/.test(x))) return seen.sort();
  return seen;
}

// A heatmap by hour shows the whole day, hours without a value included.
function hourColumns(xs) {
  if (!xs.length || !xs.every((x) => /^\d{1,2}$/.test(x) && Number(x) < 24)) return xs;
  const width = xs[0].length;
  return Array.from({ length: 24 }, (_, h) => String(h).padStart(width, "0"));
}

function drawMetric(name, result) {
  const card = cardOf(name);
  if (!card) return;
  $("h2", card).textContent = label(result.title) || name;
  const series = result.series || [];
  const points = series.reduce((n, s) => n + (s.points || []).length, 0);
  const chartEl = $(".chart", card);
  const table = $(".table", card);
  const period = result.period || {};
  const meta = [`${period.from || ""} – ${period.to || ""}`];
  if (result.computed_at) meta.push(`${t("computed")} ${result.computed_at.slice(0, 16).replace("T", " ")}`);
  if (result.cached) meta.push(t("cached"));
  card.dataset.chart = result.chart;
  if (!points) {
    disposeChart(name);
    chartEl.hidden = true;
    table.hidden = true;
    setCard(name, "empty", t("noData"));
    return;
  }
  if (result.chart === "table") {
    disposeChart(name);
    chartEl.hidden = true;
    drawTable(table, result);
  } else {
    table.hidden = true;
    chartEl.hidden = false;
    let chart = state.charts.get(name);
    if (!chart) {
      chart = echarts.init(chartEl, null, { renderer: "canvas" });
      state.charts.set(name, chart);
    }
    chart.setOption(chartOption(result, chart.getWidth()), { notMerge: true });
    // A canvas says nothing to a screen reader: the card's title does.
    chartEl.setAttribute("role", "img");
    chartEl.setAttribute("aria-label", label(result.title) || name);
  }
  setCard(name, "ready", meta.join(" · "));
}

function disposeChart(name) {
  const chart = state.charts.get(name);
  if (chart) chart.dispose();
  state.charts.delete(name);
}

function drawTable(table, result) {
  // A table may mix units (a campaign's sends, revenue and ROI): a series' own unit wins.
  const formats = result.series.map((s) => formatter(s.unit || result.unit));
  const xs = categories(result.series);
  const head = document.createElement("tr");
  for (const text of ["", ...result.series.map(seriesName)]) {
    const th = document.createElement("th");
    th.textContent = text;
    head.append(th);
  }
  $("thead", table).replaceChildren(head);
  const rows = xs.map((x) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    // A campaign's name and variant: the id alone tells a marketer nothing, and beside the name
    // it made the column too narrow to read; it stays on hover (and for a campaign since gone).
    const named = (result.x_labels || {})[x];
    th.textContent = named || xLabel(x);
    if (named) th.title = x;
    tr.append(th);
    result.series.forEach((s, i) => {
      const point = (s.points || []).find((p) => String(p.x) === x);
      const td = document.createElement("td");
      td.textContent = point && num(point.y) !== null ? formats[i](num(point.y)) : "–";
      tr.append(td);
    });
    return tr;
  });
  $("tbody", table).replaceChildren(...rows);
  table.hidden = false;
}

// The width of a label as ECharts draws it (12px sans-serif, its default).
function textWidth(text) {
  const context = (textWidth.canvas ||= document.createElement("canvas")).getContext("2d");
  context.font = "12px sans-serif";
  return context.measureText(text).width;
}

// A ratio axis ends at 100% when the figures do: shares adding up to 1 (or a hair above, in
// floating point) made ECharts round the axis up to 120%. Below 80% the axis keeps its own end
// (a 6% return rate is not drawn against 100%); null leaves it to ECharts.
function ratioMax({ max }) {
  return max > 0.8 && max <= 1 + 1e-6 ? 1 : null;
}

// The highest value on the value axis: a stack's total, or the largest point.
function stackedMax(series, stacked) {
  const totals = new Map();
  let max = 0;
  for (const s of series) {
    for (const p of s.points || []) {
      const y = num(p.y) || 0;
      const total = stacked ? (totals.get(String(p.x)) || 0) + y : y;
      totals.set(String(p.x), total);
      max = Math.max(max, total);
    }
  }
  return max;
}

// ECharts' plain legend: each item is its 25 px mark, a 5 px gap, its text and 10 px to the
// next, on lines as wide as the chart less its 5 px padding on each side, 14 px high and 10 px
// apart.
const LEGEND_ROW = 24;

function legendRows(names, width) {
  let rows = 1;
  let x = 0;
  for (const name of names) {
    const item = 25 + 5 + textWidth(name);
    if (x > 0 && x + item > width - 10) {
      rows += 1;
      x = 0;
    }
    x += item + 10;
  }
  return rows;
}

function categoryLabels(labels, widest, band) {
  const all = { interval: 0, hideOverlap: false };
  if (widest <= band) return all;
  const longestWord = Math.max(0, ...labels.flatMap((l) => l.split(/\s+/)).map(textWidth));
  if (longestWord <= band) return { ...all, width: Math.floor(band), overflow: "break" };
  return { ...all, rotate: 30 };
}

// `width` is the chart's, in pixels: category labels wrap within their band rather than run
// into each other, and the funnel keeps room on its right for its labels.
function chartOption(result, width = 400) {
  const fmt = formatter(result.unit);
  const series = result.series || [];
  const names = series.map(seriesName);
  // A legend wraps onto a second line rather than page its names behind arrows (a phone's
  // card showed two tiers of three); beyond two lines it pages, so the chart keeps its room.
  const rows = series.length > 1 ? legendRows(names, width) : 0;
  const legend = rows ? { top: 0, type: rows > 2 ? "scroll" : "plain", data: names } : undefined;
  const base = {
    animation: false, // the browser test and screenshots see the final picture at once
    tooltip: { trigger: "item", valueFormatter: (v) => (v === null ? "–" : fmt(v)) },
    legend,
    grid: { left: 8, right: 16, top: 12 + LEGEND_ROW * Math.min(rows, 2), bottom: 8,
            containLabel: true },
  };
  if (result.chart === "funnel") {
    const points = (series[0] && series[0].points) || [];
    const text = (p) => `${xLabel(p.x)}: ${fmt(num(p.y))}`;
    // The labels sit right of the funnel (and its label lines): that much room is kept for the
    // longest, or at 80% of a narrow card's width the widest step's label ran past its edge.
    const room = Math.max(0, ...points.map((p) => textWidth(text(p)))) + 32;
    return {
      ...base,
      series: [{
        type: "funnel", name: names[0], sort: "none", left: 8,
        width: Math.max(width * 0.4, Math.min(width * 0.8, width - 16 - room)),
        label: { formatter: (p) => `${p.name}: ${fmt(p.value)}` },
        data: points.map((p) => ({ name: xLabel(p.x), value: num(p.y) })),
      }],
    };
  }
  if (result.chart === "heatmap") {
    const xs = hourColumns(categories(series));
    // Rows are the series (a weekday, a category), columns the points' x (an hour).
    const data = [];
    let max = 0;
    series.forEach((s, row) => {
      for (const p of s.points || []) {
        const y = num(p.y);
        data.push([xs.indexOf(String(p.x)), row, y]);
        max = Math.max(max, y || 0);
      }
    });
    return {
      ...base,
      legend: undefined,
      grid: { ...base.grid, top: 12, right: 72 },
      xAxis: { type: "category", data: xs.map(xLabel), splitArea: { show: true } },
      yAxis: { type: "category", data: names, splitArea: { show: true } },
      visualMap: {
        min: 0, max: max || 1, calculable: true, orient: "vertical", right: 0, top: "middle",
        itemHeight: 120,
        formatter: (v) => fmt(v),
      },
      series: [{ type: "heatmap", data, name: label(result.title) }],
    };
  }
  const xs = categories(series);
  const kind = result.chart === "line" ? "line" : "bar";
  const labels = xs.map(xLabel);
  const widest = Math.max(0, ...labels.map(textWidth));
  // A line's last x sits on the plot's right edge, half its label beyond it: the grid keeps
  // that half (a month's last day was cut to "2026-11-0").
  const right = kind === "line" ? Math.max(base.grid.right, Math.ceil(widest / 2) + 4) : base.grid.right;
  // A category's band: the plot's width (the chart's less the grid's margins and the value
  // axis' widest label) shared among the categories.
  const top = stackedMax(series, result.chart === "stacked_bar");
  const valueLabels = textWidth(fmt(top * 1.2)) + 8;
  const band = (width - base.grid.left - right - valueLabels) / Math.max(1, xs.length) - 6;
  const axisLabel = xs.length <= 12 ? categoryLabels(labels, widest, band) : {};
  // A slanted first label reaches left past the value axis' labels: the grid keeps room for it.
  const left = axisLabel.rotate
    ? Math.max(base.grid.left, Math.ceil(textWidth(labels[0]) * 0.87 + 8 - band / 2))
    : base.grid.left;
  return {
    ...base,
    grid: { ...base.grid, left, right },
    tooltip: { ...base.tooltip, trigger: "axis" },
    // A few categories (channels, buckets, reasons) are all named: each on one line where it
    // fits its band, else wrapped between words, else slanted ("Mini program" ran into
    // "Stores" on a phone); a month of days skips some.
    xAxis: {
      type: "category", data: labels,
      axisLabel,
    },
    yAxis: {
      type: "value",
      axisLabel: { formatter: (v) => fmt(v) },
      // Durations tick on whole minutes (or hours), not on 8 h 20 min.
      ...(result.unit === "seconds" ? { minInterval: 60, interval: niceSeconds(series) } : {}),
      // Counts tick on whole numbers (not 0.5 escalations); ratios end at 100% (ratioMax).
      ...(result.unit === "count" ? { minInterval: 1 } : {}),
      ...(result.unit === "ratio" ? { max: ratioMax } : {}),
    },
    series: series.map((s, i) => {
      const byX = new Map((s.points || []).map((p) => [String(p.x), num(p.y)]));
      return {
        type: kind, name: names[i], data: xs.map((x) => (byX.has(x) ? byX.get(x) : null)),
        stack: result.chart === "stacked_bar" ? "total" : undefined,
        showSymbol: xs.length <= 31,
      };
    }),
  };
}

// ------------------------------------------------------------------ messages
function showMessage(text, kind) {
  const el = $("#message");
  el.textContent = text;
  el.className = kind || "";
  el.hidden = false;
}

function hideMessage() {
  $("#message").hidden = true;
}

// ------------------------------------------------------------------ start
async function start() {
  applyLanguage(chooseLanguage());
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
    state.config = await response.json();
  } catch (err) {
    showMessage(String(err.message || err), "error");
    document.body.dataset.state = "error";
    return;
  }
  const form = $("#filters");

  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", () => applyLanguage(button.dataset.lang));
  }
  $("#sign-out").addEventListener("click", () => signOut());
  $("#cognito-sign-in").addEventListener("click", cognitoSignIn);
  $("#dev-sign-in").addEventListener("submit", (event) => {
    event.preventDefault();
    if (signIn($("#token").value.trim())) {
      $("#token").value = "";
      loadBoard();
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    loadMetrics();
  });
  // Redrawn, not only resized: axis labels and the funnel's room for its labels follow the width.
  window.addEventListener("resize", () => {
    for (const [name, chart] of state.charts) {
      chart.resize();
      const result = state.results.get(name);
      if (result) chart.setOption(chartOption(result, chart.getWidth()), { notMerge: true });
    }
  });

  // The banner's link opened where the page already is changes only the fragment: no reload.
  window.addEventListener("hashchange", () => {
    const fresh = takeTokenFromFragment();
    if (fresh && signIn(fresh)) loadBoard();
  });
  const token =
    takeTokenFromFragment() || (await takeTokenFromCode()) || sessionStorage.getItem(TOKEN_KEY);
  if (token && signIn(token)) loadBoard();
  else showSignIn();
}

document.addEventListener("DOMContentLoaded", start);
