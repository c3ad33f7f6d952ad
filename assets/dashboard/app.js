// tickcast dashboard: plain JavaScript over tickcast's own JSON API (the
// routes any client calls, with the same API key), charts by uPlot.
"use strict";

(() => {
  const KEY_STORE = "tickcast.apiKey";
  const HEALTH_EVERY_MS = 5000;
  const HEALTH_TIMEOUT_MS = 4000;
  const MODELS_EVERY_MS = 30000;
  const SAMPLES_KEPT = 720; // an hour of health samples
  const ROLLING = 20; // forecasts per rolling live figure
  const CHART_HEIGHT = 260;
  const COLOURS = ["#1f5fbf", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#0b7285", "#5c940d", "#e67700"];

  const $ = (id) => document.getElementById(id);

  // ---- numbers as the API documents them --------------------------------

  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  /** A fraction as a percent with sign and two decimals: +1.23 %. */
  const signedPct = (v) => {
    if (!isNum(v)) return "n/a";
    const r = Math.round(v * 10000) / 100;
    return `${r > 0 ? "+" : ""}${r.toFixed(2)} %`;
  };
  /** A fraction that has no sign to speak of (a rate, a share): 51.23 %. */
  const pct = (v) => (isNum(v) ? `${(v * 100).toFixed(2)} %` : "n/a");
  /** A value already in percent (the health figures): 99.50 %. */
  const inPct = (v) => (isNum(v) ? `${v.toFixed(2)} %` : "n/a");
  const num = (v, digits = 2) =>
    isNum(v) ? v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) : "n/a";
  const text = (v) => (v === null || v === undefined ? "n/a" : String(v));
  const epoch = (date) => Date.parse(date.length === 10 ? `${date}T00:00:00Z` : date) / 1000;

  // ---- calls --------------------------------------------------------------

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  /** One call to tickcast; resolves to the JSON body, or throws with the API's `error`. */
  async function api(path, { method = "GET", body, timeout = 30000 } = {}) {
    const headers = { Accept: "application/json" };
    const key = sessionStorage.getItem(KEY_STORE);
    if (key) headers["X-API-Key"] = key;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeout);
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: abort.signal,
        cache: "no-store",
      });
    } catch (e) {
      throw new ApiError(
        e.name === "AbortError" ? `no answer within ${timeout / 1000} s` : "tickcast is not answering",
        0,
      );
    } finally {
      clearTimeout(timer);
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (response.status === 401) askForKey();
    if (!response.ok || data === null || data.success === false) {
      const message = data && typeof data.error === "string" ? data.error : `HTTP ${response.status}`;
      throw new ApiError(message, response.status);
    }
    return data;
  }

  function askForKey() {
    $("key-form").hidden = false;
    $("key-input").focus();
  }

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORE, $("key-input").value.trim());
    $("key-input").value = "";
    $("key-form").hidden = true;
    loaded.clear();
    show(currentView());
  });

  /** Shows a call's progress and outcome in a view's status line. */
  async function withStatus(statusId, what, call) {
    const status = $(statusId);
    status.classList.remove("error");
    status.textContent = `${what}…`;
    try {
      const result = await call();
      status.textContent = "";
      return result;
    } catch (e) {
      status.classList.add("error");
      status.textContent = `${what} failed: ${e.message}`;
      return null;
    }
  }

  // ---- charts -------------------------------------------------------------

  const charts = new Map();

  /** Draws (or redraws) a uPlot chart in `id`; `data-points` counts the first series' points. */
  function plot(id, options, data) {
    const el = $(id);
    const old = charts.get(id);
    if (old) old.destroy();
    el.textContent = "";
    const width = Math.max(200, el.clientWidth || el.parentElement.clientWidth || 600);
    const chart = new uPlot({ width, height: CHART_HEIGHT, ...options }, data, el);
    charts.set(id, chart);
    const first = data[1] || [];
    el.dataset.points = String(first.filter((v) => v !== null && v !== undefined).length);
    return chart;
  }

  function clearChart(id) {
    const old = charts.get(id);
    if (old) old.destroy();
    charts.delete(id);
    $(id).textContent = "";
    $(id).dataset.points = "0";
  }

  let resizeTimer;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      for (const [id, chart] of charts) {
        const width = Math.max(200, $(id).clientWidth || 600);
        chart.setSize({ width, height: CHART_HEIGHT });
      }
    }, 150);
  });

  /** A legend value: the formatted number under the cursor, a dash elsewhere. */
  const legend = (format) => (u, v) => (v === null || v === undefined ? "–" : format(v));
  const line = (label, colour, extra = {}) => ({ label, stroke: colour, width: 2, spanGaps: false, ...extra });
  const axis = (label, values) => (values ? { label, values } : { label });

  // ---- views --------------------------------------------------------------

  const views = ["service", "models", "forecast", "backtest", "portfolio"];
  const loaded = new Set();
  const currentView = () => {
    const name = location.hash.replace("#", "");
    return views.includes(name) ? name : "service";
  };

  function show(name) {
    for (const view of views) {
      $(`view-${view}`).hidden = view !== name;
    }
    for (const button of document.querySelectorAll("nav button")) {
      if (button.dataset.view === name) button.setAttribute("aria-current", "page");
      else button.removeAttribute("aria-current");
    }
    if (!loaded.has(name)) {
      loaded.add(name);
      loaders[name]();
    } else if (name === "service") {
      loaders.service();
    }
  }

  for (const button of document.querySelectorAll("nav button")) {
    button.addEventListener("click", () => {
      location.hash = button.dataset.view;
    });
  }
  window.addEventListener("hashchange", () => show(currentView()));

  // ---- shared lists ------------------------------------------------------------

  let catalogue = null;

  /** The stocks the chain can price and the served models, read once. */
  function lists() {
    if (!catalogue) {
      catalogue = Promise.all([api("/api/catalog/stocks"), api("/api/enhanced_ml_models/list")]).then(
        ([stocks, models]) => ({
          symbols: stocks.stocks.map((s) => ({ symbol: s.yfinance_symbol, name: s.name })),
          models: Object.values(models.metadata || {}),
        }),
        (e) => {
          catalogue = null;
          throw e;
        },
      );
    }
    return catalogue;
  }

  function fillSelect(select, options) {
    select.textContent = "";
    for (const { value, label } of options) {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = label;
      select.append(option);
    }
  }

  /** The price forecasters, the pretrained LSTM first (the quickest to answer). */
  const predictors = (models) =>
    models
      .filter((m) => m.input_type === "price_series" && m.output_type === "price_prediction")
      .sort((a, b) => (b.name === "lstm_predictor") - (a.name === "lstm_predictor"));

  function figures(id, pairs) {
    const dl = $(id);
    dl.textContent = "";
    for (const [label, value] of pairs) {
      const div = document.createElement("div");
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = label;
      dd.textContent = value;
      div.append(dt, dd);
      dl.append(div);
    }
  }

  function row(tbody, cells) {
    const tr = document.createElement("tr");
    for (const cell of cells) {
      const td = document.createElement("td");
      const [value, kind] = Array.isArray(cell) ? cell : [cell, ""];
      td.textContent = value;
      if (kind) td.className = kind;
      tr.append(td);
    }
    tbody.append(tr);
  }

  // ---- service -----------------------------------------------------------------

  const samples = [];
  let downSince = null;
  let lastHealth = null;

  async function pollHealth() {
    try {
      const body = await api("/api/production_api/health", { timeout: HEALTH_TIMEOUT_MS });
      downSince = null;
      $("outage").hidden = true;
      $("last-updated").textContent = new Date().toLocaleTimeString();
      $("last-updated").dateTime = new Date().toISOString();
      sample(body);
      lastHealth = body;
      renderService(body);
    } catch (e) {
      if (e.status === 0) {
        downSince = downSince || new Date();
        const banner = $("outage");
        banner.textContent = `tickcast is not answering since ${downSince.toLocaleTimeString()} (${e.message}); the figures below are from before.`;
        banner.hidden = false;
      } else {
        const status = $("service-status");
        status.classList.add("error");
        status.textContent = `Health failed: ${e.message}`;
      }
    }
  }

  function sample(body) {
    const metrics = body.health.performance_metrics || {};
    samples.push({ t: Date.now() / 1000, metrics });
    if (samples.length > SAMPLES_KEPT) samples.shift();
  }

  function renderService(body) {
    const h = body.health;
    const status = $("service-status");
    status.classList.remove("error");
    status.textContent = "";
    const state = document.createElement("span");
    state.className = `state-${body.status}`;
    state.textContent = body.status;
    status.append(
      "Status: ",
      state,
      ` · environment ${text(h.environment)} · providers in order: ${(h.provider_priority || []).join(" → ")}`,
    );

    const tbody = $("providers").tBodies[0];
    tbody.textContent = "";
    const names = [...(h.provider_priority || [])];
    for (const name of Object.keys(h.performance_metrics || {})) if (!names.includes(name)) names.push(name);
    for (const name of names) {
      const m = h.performance_metrics[name];
      if (!m) continue;
      const limits = m.rate_limit || {};
      const error = m.last_error ? `${m.last_error} (${new Date(m.last_error_at).toLocaleString()})` : "none";
      row(tbody, [
        `${name}${(h.provider_priority || []).includes(name) ? "" : " (standby)"}`,
        m.circuit_breaker_state,
        [inPct(m.success_rate), "num"],
        [text(m.total_calls), "num"],
        [num(m.p50_latency_ms, 1), "num"],
        [num(m.p95_latency_ms, 1), "num"],
        [num(m.p99_latency_ms, 1), "num"],
        [isNum(limits.waits) ? String(limits.waits) : "n/a", "num"],
        [isNum(limits.rejections) ? String(limits.rejections) : "n/a", "num"],
        [error, "wrap"],
      ]);
    }

    const caches = $("caches").tBodies[0];
    caches.textContent = "";
    for (const [label, c] of [["History", h.history_cache], ["Quotes", h.quote_cache]]) {
      if (!c) continue;
      row(caches, [label, [text(c.entries), "num"], [text(c.hits), "num"], [text(c.misses), "num"], [inPct(c.hit_rate), "num"]]);
    }

    if ($("view-service").hidden) return;
    drawServiceCharts(names, h.provider_priority || []);
  }

  function drawServiceCharts(names, priority) {
    const xs = samples.map((s) => s.t);
    const success = names.map((n) => samples.map((s) => (s.metrics[n] ? s.metrics[n].success_rate : null)));
    plot(
      "chart-success",
      {
        series: [{}, ...names.map((n, i) => line(n, COLOURS[i % COLOURS.length], { value: legend((v) => inPct(v)) }))],
        axes: [axis("time"), axis("success rate (%)")],
        scales: { y: { range: [0, 100] } },
      },
      [xs, ...success],
    );
    const first = priority[0] || names[0];
    $("latency-caption").textContent = `Latency of ${first}, the first provider (ms)`;
    const of = (key) => samples.map((s) => (s.metrics[first] ? s.metrics[first][key] : null));
    plot(
      "chart-latency",
      {
        series: [
          {},
          line("p50", COLOURS[0], { value: legend((v) => `${num(v, 1)} ms`) }),
          line("p95", COLOURS[1], { value: legend((v) => `${num(v, 1)} ms`) }),
          line("p99", COLOURS[4], { value: legend((v) => `${num(v, 1)} ms`) }),
        ],
        axes: [axis("time"), axis("latency (ms)")],
      },
      [xs, of("p50_latency_ms"), of("p95_latency_ms"), of("p99_latency_ms")],
    );
  }

  // ---- models ------------------------------------------------------------------

  let modelsTimer = null;

  async function loadModels() {
    const got = await withStatus("models-status", "Loading models", () =>
      Promise.all([api("/api/catalog/models"), api("/api/catalog/enhanced_models"), api("/api/enhanced_ml_models/performance")]),
    );
    if (got) renderModels(...got);
    clearTimeout(modelsTimer);
    modelsTimer = setTimeout(() => {
      if (!$("view-models").hidden) loadModels();
      else loaded.delete("models");
    }, MODELS_EVERY_MS);
  }

  /** Held-out directional accuracy with its Wilson interval over the samples. */
  function accuracy(held) {
    const ci = wilson(held.directional_accuracy, held.samples);
    return ci ? `${pct(held.directional_accuracy)} [${pct(ci[0])}, ${pct(ci[1])}]` : pct(held.directional_accuracy);
  }

  function renderModels(models, enhanced, performance) {
    const listed = new Map();
    for (const m of [...(models.models || []), ...(enhanced.enhanced_models || [])]) listed.set(m.id, m);
    const live = performance.performance || {};
    const ids = [...new Set([...listed.keys(), ...Object.keys(live)])];
    const tbody = $("models").tBodies[0];
    tbody.textContent = "";
    for (const id of ids) {
      const measured = (listed.get(id) && listed.get(id).evaluation && listed.get(id).evaluation.measured) || {};
      const held = measured.held_out || {};
      const pooled = measured.intervals && measured.intervals.pooled;
      const coverage = pooled
        ? `${pct(pooled.coverage)} [${pct(pooled.coverage_low)}, ${pct(pooled.coverage_high)}] of ${pct(measured.intervals.level)}`
        : "n/a";
      const p = live[id] || {};
      row(tbody, [
        id,
        measured.version ? `${measured.version} (${text(measured.measured_at)})` : "n/a",
        [accuracy(held), "num"],
        [num(held.rmse_ratio, 4), "num"],
        [coverage, "num"],
        [text(p.scored), "num"],
        [text(p.pending), "num"],
        [pct(p.hit_rate), "num"],
        [isNum(p.mae) ? pct(p.mae) : "n/a", "num"],
      ]);
    }
    drawRolling(live);
    drawWeights(performance.ensemble_weights || { history: [] });
  }

  /** Wilson's 95 % interval of a share `p` measured on `n` samples. */
  function wilson(p, n) {
    if (!isNum(p) || !isNum(n) || n <= 0) return null;
    const z = 1.959963984540054;
    const centre = (p + (z * z) / (2 * n)) / (1 + (z * z) / n);
    const half = (z / (1 + (z * z) / n)) * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
    return [centre - half, centre + half];
  }

  function rolling(values) {
    return values.map((_, i) => {
      const window = values.slice(Math.max(0, i - ROLLING + 1), i + 1);
      return window.reduce((a, b) => a + b, 0) / window.length;
    });
  }

  function drawRolling(live) {
    const scored = Object.entries(live).filter(([, p]) => (p.latest || []).length > 0);
    const longest = Math.max(0, ...scored.map(([, p]) => p.latest.length));
    $("hits-empty").hidden = longest > 0;
    $("mae-empty").hidden = longest > 0;
    if (longest === 0) {
      clearChart("chart-hits");
      clearChart("chart-mae");
      return;
    }
    const xs = Array.from({ length: longest }, (_, i) => i + 1);
    const pad = (ys) => [...Array(longest - ys.length).fill(null), ...ys];
    const series = scored.map(([id], i) => line(id, COLOURS[i % COLOURS.length]));
    const options = (label) => ({ series: [{ label: "forecast" }, ...series], scales: { x: { time: false } }, axes: [axis("forecasts scored, oldest first"), axis(label)] });
    plot("chart-hits", options("hit rate (%)"), [xs, ...scored.map(([, p]) => pad(rolling(p.latest.map((s) => (s.hit ? 100 : 0)))))]);
    plot("chart-mae", options("MAE (%)"), [xs, ...scored.map(([, p]) => pad(rolling(p.latest.map((s) => s.abs_error * 100))))]);
  }

  function drawWeights(weights) {
    const history = (weights.history || []).filter((w) => w && w.at);
    $("weights-empty").hidden = history.length > 0;
    if (history.length === 0) {
      clearChart("chart-weights");
      return;
    }
    history.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
    const learners = [...new Set(history.flatMap((w) => Object.keys(w.weights)))].sort();
    const xs = [];
    for (const w of history) {
      let t = Date.parse(w.at) / 1000;
      if (xs.length && t <= xs[xs.length - 1]) t = xs[xs.length - 1] + 0.001;
      xs.push(t);
    }
    plot(
      "chart-weights",
      {
        series: [{}, ...learners.map((l, i) => line(l, COLOURS[i % COLOURS.length], { value: legend((v) => pct(v)) }))],
        axes: [axis("time"), axis("weight (%)", (u, splits) => splits.map((v) => (v * 100).toFixed(1)))],
        scales: xs.length === 1 ? { x: { range: [xs[0] - 3600, xs[0] + 3600] } } : {},
      },
      [xs, ...learners.map((l) => history.map((w) => (isNum(w.weights[l]) ? w.weights[l] : null)))],
    );
  }

  // ---- forecast ------------------------------------------------------------------

  async function initForecast() {
    const got = await withStatus("forecast-status", "Loading stocks and models", lists);
    if (!got) return;
    fillSelect($("forecast-symbol"), got.symbols.map((s) => ({ value: s.symbol, label: `${s.symbol} · ${s.name}` })));
    fillSelect($("forecast-model"), predictors(got.models).map((m) => ({ value: m.name, label: m.name })));
    runForecast();
  }

  $("forecast-form").addEventListener("submit", (event) => {
    event.preventDefault();
    runForecast();
  });

  async function runForecast() {
    const symbol = $("forecast-symbol").value;
    const model = $("forecast-model").value;
    if (!symbol || !model) return;
    const got = await withStatus("forecast-status", `Forecasting ${symbol} with ${model}`, () =>
      Promise.all([
        api(`/api/production_api/history?symbol=${encodeURIComponent(symbol)}&bars=120`),
        api(`/api/enhanced_ml_models/predict/${encodeURIComponent(model)}`, { method: "POST", body: { symbol } }),
      ]),
    );
    if (!got) return;
    const [history, forecast] = got;
    const bars = history.bars;
    const xs = bars.map((b) => epoch(b.date));
    const closes = bars.map((b) => b.close);
    const periods = parseInt(String(forecast.prediction_horizon), 10) || 1;
    const ahead = xs[xs.length - 1] + periods * 86400;
    const last = closes[closes.length - 1];
    const interval = forecast.prediction_interval || null;
    const blank = () => Array(closes.length - 1).fill(null);
    const data = [
      [...xs, ahead],
      [...closes, null],
      [...blank(), last, forecast.predicted_price],
      [...blank(), last, interval ? interval.lower_price : null],
      [...blank(), last, interval ? interval.upper_price : null],
    ];
    const level = interval ? ` ${Math.round(interval.level * 100)} %` : "";
    $("forecast-caption").textContent = `${symbol}: the last ${closes.length} daily closes and ${model}'s forecast ${periods} period(s) ahead`;
    plot(
      "chart-forecast",
      {
        series: [
          {},
          line("close", COLOURS[0], { value: legend((v) => num(v)) }),
          line("forecast", COLOURS[1], { dash: [6, 4], points: { show: true, size: 7 }, value: legend((v) => num(v)) }),
          line(`lower${level}`, COLOURS[3], { dash: [2, 3], width: 1, points: { show: true, size: 5 }, value: legend((v) => num(v)) }),
          line(`upper${level}`, COLOURS[3], { dash: [2, 3], width: 1, points: { show: true, size: 5 }, value: legend((v) => num(v)) }),
        ],
        axes: [axis("date"), axis(`price (${history.data_source})`)],
      },
      data,
    );
    figures("forecast-figures", [
      ["As of", text(forecast.as_of)],
      ["Last close", num(forecast.current_price)],
      ["Forecast", num(forecast.predicted_price)],
      ["Forecast return", signedPct(forecast.predicted_return)],
      ["Interval", interval ? `${num(interval.lower_price)} to ${num(interval.upper_price)}` : "n/a"],
      ["Confidence", pct(forecast.confidence)],
      ["Model version", text(forecast.model_version)],
      ["Data", text(forecast.data_source)],
    ]);
  }

  // ---- backtest ------------------------------------------------------------------

  async function initBacktest() {
    const got = await withStatus("backtest-status", "Loading stocks and models", lists);
    if (!got) return;
    fillSelect($("backtest-symbol"), got.symbols.map((s) => ({ value: s.symbol, label: `${s.symbol} · ${s.name}` })));
    fillSelect($("backtest-model"), predictors(got.models).map((m) => ({ value: m.name, label: m.name })));
    $("backtest-status").textContent = "Pick a stock, a model and a period, then run the backtest.";
  }

  $("backtest-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const symbol = $("backtest-symbol").value;
    const model = $("backtest-model").value;
    const period = $("backtest-period").value;
    const body = await withStatus("backtest-status", `Backtesting ${model} on ${symbol} over ${period}`, () =>
      api("/api/catalog/backtest", { method: "POST", body: { model_id: model, stock_symbol: symbol, period } }),
    );
    if (body) renderBacktest(body);
  });

  function drawdowns(values) {
    let peak = -Infinity;
    return values.map((v) => {
      peak = Math.max(peak, v);
      return (v / peak - 1) * 100;
    });
  }

  function renderBacktest(body) {
    const r = body.backtest_result;
    figures("backtest-figures", [
      ["Total return", signedPct(r.total_return)],
      ["Buy and hold", signedPct(r.benchmark_total_return)],
      ["Annual volatility", pct(r.annual_volatility)],
      ["Sharpe ratio", num(r.sharpe_ratio)],
      ["Max drawdown", pct(r.max_drawdown)],
      ["Hit rate", pct(r.hit_rate)],
      ["Trades", text(r.trades)],
      ["Days", `${text(r.days)} (${text(r.first_day)} to ${text(r.last_day)})`],
      ["Annualised over", `${text(r.periods_per_year)} days a year`],
    ]);
    const curve = r.equity_curve || [];
    const xs = curve.map((p) => epoch(p.date));
    const strategy = curve.map((p) => p.strategy);
    const benchmark = curve.map((p) => p.benchmark);
    plot(
      "chart-equity",
      {
        series: [{}, line("strategy", COLOURS[0], { value: legend((v) => num(v, 3)) }), line("buy and hold", COLOURS[1], { value: legend((v) => num(v, 3)) })],
        axes: [axis("date"), axis("value of 1")],
      },
      [xs, strategy, benchmark],
    );
    plot(
      "chart-drawdown",
      {
        series: [
          {},
          line("strategy", COLOURS[0], { fill: "rgba(31,95,191,0.15)", value: legend((v) => `${num(v)} %`) }),
          line("buy and hold", COLOURS[1], { value: legend((v) => `${num(v)} %`) }),
        ],
        axes: [axis("date"), axis("drawdown (%)")],
      },
      [xs, drawdowns(strategy), drawdowns(benchmark)],
    );
    const tbody = $("monthly").tBodies[0];
    tbody.textContent = "";
    const held = new Map((r.benchmark_monthly_returns || []).map((m) => [m.date, m.return]));
    for (const m of r.monthly_returns || []) {
      row(tbody, [m.date, [signedPct(m.return), "num"], [signedPct(held.get(m.date)), "num"]]);
    }
  }

  // ---- portfolio -----------------------------------------------------------------

  const DEFAULT_PORTFOLIO = 5;

  async function initPortfolio() {
    const got = await withStatus("portfolio-status", "Loading stocks", lists);
    if (!got) return;
    const box = $("portfolio-symbols");
    box.textContent = "";
    got.symbols.forEach((s, i) => {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "checkbox";
      input.value = s.symbol;
      input.checked = i < DEFAULT_PORTFOLIO;
      label.append(input, ` ${s.symbol}`);
      box.append(label);
    });
    runPortfolio();
  }

  $("portfolio-form").addEventListener("submit", (event) => {
    event.preventDefault();
    runPortfolio();
  });

  async function runPortfolio() {
    const symbols = [...$("portfolio-symbols").querySelectorAll("input:checked")].map((i) => i.value);
    const method = $("portfolio-method").value;
    if (symbols.length === 0) {
      $("portfolio-status").textContent = "Pick at least one symbol.";
      return;
    }
    const url = "/api/enhanced_ml_models/predict/realtime_portfolio_optimizer";
    const body = await withStatus("portfolio-status", `Optimising ${symbols.length} symbols (${method})`, () =>
      api(url, { method: "POST", body: { params: { symbols, method } } }),
    );
    if (!body) return;
    renderAllocation(symbols, body);
    if (symbols.length < 2) {
      clearChart("chart-frontier");
      $("frontier-empty").textContent = "The efficient frontier needs at least two symbols.";
      $("frontier-empty").hidden = false;
      return;
    }
    try {
      const frontier = await api(url, { method: "POST", body: { params: { symbols, method: "efficient_frontier" } } });
      renderFrontier(frontier, body);
    } catch (e) {
      clearChart("chart-frontier");
      $("frontier-empty").textContent = `No efficient frontier: ${e.message}`;
      $("frontier-empty").hidden = false;
    }
  }

  function renderAllocation(symbols, body) {
    const a = body.annualized || {};
    figures("portfolio-figures", [
      ["Method", text(body.optimization_method)],
      ["Annual return", signedPct(a.return)],
      ["Annual volatility", pct(a.volatility)],
      ["Sharpe (annual)", num(a.sharpe)],
      ["Diversification ratio", num(body.diversification_ratio)],
      ["Observations", text(body.observations)],
      ["As of", text(body.as_of)],
      ["Data", text(body.data_source)],
    ]);
    const xs = symbols.map((_, i) => i);
    const weights = symbols.map((s) => (isNum(body.allocation[s]) ? body.allocation[s] * 100 : null));
    const risk = symbols.map((s) => (body.risk_contributions && isNum(body.risk_contributions[s]) ? body.risk_contributions[s] * 100 : null));
    const bars = uPlot.paths.bars({ size: [0.35, 60], align: 0 });
    plot(
      "chart-weights-bar",
      {
        scales: { x: { time: false, range: [-0.6, symbols.length - 0.4] }, y: { range: [0, 100] } },
        series: [
          { label: "symbol", value: legend((v) => symbols[v] || "") },
          { label: "weight", stroke: COLOURS[0], fill: "rgba(31,95,191,0.6)", paths: bars, points: { show: false }, value: legend((v) => `${num(v)} %`) },
          { label: "risk contribution", stroke: COLOURS[1], fill: "rgba(217,72,15,0.6)", paths: uPlot.paths.bars({ size: [0.35, 60], align: 1 }), points: { show: false }, value: legend((v) => `${num(v)} %`) },
        ],
        axes: [
          { label: "symbol", splits: () => xs, values: (u, splits) => splits.map((v) => symbols[v] || "") },
          axis("share of the portfolio (%)"),
        ],
      },
      [xs, weights, risk],
    );
  }

  function renderFrontier(frontier, chosen) {
    const points = frontier.frontier || [];
    const periods = (frontier.annualized && frontier.annualized.periods_per_year) || 252;
    const annual = (p) => ({ x: p.volatility * Math.sqrt(periods) * 100, y: p.expected_return * periods * 100 });
    if (points.length === 0) {
      clearChart("chart-frontier");
      $("frontier-empty").textContent = "No efficient frontier for these symbols.";
      $("frontier-empty").hidden = false;
      return;
    }
    $("frontier-empty").hidden = true;
    const rows = points.map((p) => ({ ...annual(p), frontier: true }));
    const c = chosen.annualized || {};
    if (isNum(c.volatility) && isNum(c.return)) rows.push({ x: c.volatility * 100, y: c.return * 100, frontier: false });
    rows.sort((a, b) => a.x - b.x);
    plot(
      "chart-frontier",
      {
        scales: { x: { time: false } },
        series: [
          { label: "volatility", value: legend((v) => `${num(v)} %`) },
          line("frontier", COLOURS[0], { spanGaps: true, value: legend((v) => `${num(v)} %`) }),
          { label: `chosen (${chosen.optimization_method})`, stroke: COLOURS[1], fill: COLOURS[1], paths: () => null, points: { show: true, size: 10 }, value: legend((v) => `${num(v)} %`) },
        ],
        axes: [axis("annual volatility (%)"), axis("annual return (%)")],
      },
      [rows.map((r) => r.x), rows.map((r) => (r.frontier ? r.y : null)), rows.map((r) => (r.frontier ? null : r.y))],
    );
  }

  // ---- start -------------------------------------------------------------------

  const loaders = {
    service: () => {
      if (lastHealth) renderService(lastHealth);
    },
    models: loadModels,
    forecast: initForecast,
    backtest: initBacktest,
    portfolio: initPortfolio,
  };

  show(currentView());
  pollHealth();
  setInterval(pollHealth, HEALTH_EVERY_MS);
})();
