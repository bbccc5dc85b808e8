// The dashboard's entry point: sign-in, the views, the polling of the REST API, the live
// stream, the controls, and the staleness banner.
//
// Everything here goes through the public API (/api/v1/...), with the rights of who
// signed in: a read-scope user never sees the controls, and the server refuses them to it
// anyway.

import { SignalFeed, TradeList } from "./activity.js";
import { authRequired, get, login, post, session, whenUnauthorized } from "./api.js";
import { Backtests } from "./backtests.js";
import { age, clock } from "./format.js";
import { drawEquity, drawRealised, EquityHistory, renderRisk, renderToday, renderVenues, STALE_SECONDS } from "./overview.js";
import { PriceBoard } from "./prices.js";
import { renderConfig } from "./settings.js";
import { Stream } from "./stream.js";

const $ = (id) => document.getElementById(id);
const RENDER_INTERVAL_MS = 250; // the price table is redrawn at most 4 times a second
const TRADES_FETCHED = 500;

const state = {
  scope: "trading",
  authOn: false,
  status: null,
  statusAt: 0,
  apiError: null,
  apiErrorSince: 0,
  today: null,
  balances: null,
  thresholdPercent: null,
  view: "overview",
  loops: [],
};

const board = new PriceBoard($("prices"), { staleSeconds: STALE_SECONDS });
const signals = new SignalFeed($("signals").tBodies[0]);
const trades = new TradeList($("trades").tBodies[0], $("trade-detail"));
const backtests = new Backtests($("backtests").tBodies[0], $("backtest-detail"));
const equity = new EquityHistory();
const stream = new Stream(() => session.token, {
  price: (data) => board.update(data),
  signal: (data) => signals.add(data),
  trade: (data) => { trades.update(data); scheduleTradesRefresh(); },
  state: () => showLiveState(),
  unauthorized: (reason) => signOut(`The live stream refused the credentials: ${reason}`),
});

// --- what tests and the benchmark read --------------------------------------------------------

window.arbotdDashboard = {
  board, stream, state,
  stats: () => ({
    ...board.stats, symbols: board.symbolCount, messages: stream.messages,
    connections: stream.connections, drops: stream.drops, stale: document.body.dataset.stale,
  }),
};

// --- small helpers ------------------------------------------------------------------------------

let toastTimer = null;
function toast(message, kind = "info") {
  const box = $("toast");
  box.textContent = message;
  box.className = `toast ${kind}`;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 6000);
}

// Run fn now and then every `ms` while signed in; failures show in the banner (status)
// or are logged to the console.
function every(ms, fn) {
  const loop = { timer: null };
  state.loops.push(loop);
  const run = async () => {
    try {
      await fn();
    } catch (err) {
      if (err.status !== 401) console.warn(fn.name, err.message);
    }
    if (state.loops.includes(loop)) loop.timer = setTimeout(run, ms);
  };
  run();
}

function stopTimers() {
  for (const loop of state.loops) clearTimeout(loop.timer);
  state.loops = [];
}

// --- views ----------------------------------------------------------------------------------

function showView(name) {
  const known = [...document.querySelectorAll("[data-view]")].map((v) => v.dataset.view);
  state.view = known.includes(name) ? name : "overview";
  for (const view of document.querySelectorAll("[data-view]")) view.hidden = view.dataset.view !== state.view;
  for (const tab of document.querySelectorAll("[data-tab]")) {
    tab.setAttribute("aria-selected", String(tab.dataset.tab === state.view));
  }
  if (state.view === "overview") drawCharts();
  if (state.view === "backtests") refreshBacktests().catch(() => {});
}

window.addEventListener("hashchange", () => showView(location.hash.slice(1)));

function drawCharts() {
  if (state.view !== "overview") return;
  drawEquity($("equity-chart"), equity);
  drawRealised($("pnl-chart"), trades.all);
}

// --- polling ------------------------------------------------------------------------------------

async function refreshStatus() {
  try {
    state.status = await get("/status");
    state.statusAt = Date.now();
    state.apiError = null;
  } catch (err) {
    if (!state.apiError) state.apiErrorSince = Date.now();
    state.apiError = err;
    throw err;
  } finally {
    showStatus();
  }
  board.setVenues(Object.keys(state.status.exchanges));
  renderVenues($("venues").tBodies[0], state.status.exchanges, state.statusAt);
}

async function refreshSpreads() {
  if (state.thresholdPercent === null) return;
  const answer = await get("/spreads/current");
  board.setRoutes(answer.spreads, state.thresholdPercent);
  const hot = board.hot.size;
  $("routes-summary").textContent = `${hot} symbol${hot === 1 ? "" : "s"} with a route above the ` +
    `threshold (${state.thresholdPercent.toFixed(3)} % after fees).`;
}

async function refreshRisk() {
  renderRisk($("risk"), $("risk-status"), await get("/risk/limits"));
}

async function refreshMoney() {
  state.balances = await get("/balances");
  equity.add(state.balances);
  try {
    state.today = await get("/performance?period=day");
  } catch (err) {
    state.today = null; // no storage with history: the other figures still show
  }
  renderToday($("today"), state);
  drawCharts();
}

async function refreshConfig() {
  const config = await get("/trading/config");
  const threshold = config.arbitrage?.min_profit_threshold;
  state.thresholdPercent = typeof threshold === "number" ? threshold * 100 : 0;
  renderConfig($("config"), config);
}

async function refreshTrades() {
  try {
    const answer = await get(`/trades?limit=${TRADES_FETCHED}`);
    trades.load(answer.trades);
  } catch (err) {
    if (err.code === "STORAGE_NOT_AVAILABLE") trades.load([]);
    else throw err;
  }
  drawCharts();
}

let tradesRefresh = null;
function scheduleTradesRefresh() {
  // A finished trade moves the realised P&L: redraw once the updates of a burst are in.
  if (tradesRefresh) return;
  tradesRefresh = setTimeout(() => { tradesRefresh = null; drawCharts(); }, 1000);
}

async function refreshSignals() {
  try {
    signals.load((await get("/signals?limit=50")).signals);
  } catch (err) {
    if (err.code !== "STORAGE_NOT_AVAILABLE") throw err;
  }
}

async function refreshBacktests() {
  if (state.view !== "backtests") return;
  try {
    backtests.render(await get("/backtests"));
  } catch (err) {
    backtests.render({ backtests: [] });
    if (err.code !== "TRADING_DISABLED") throw err;
  }
}

// --- status, live state and staleness --------------------------------------------------------

function showStatus() {
  const badge = $("daemon-status");
  const status = state.status?.status;
  if (status) {
    badge.textContent = status.replace("_", " ");
    badge.className = `badge ${{ running: "up", emergency_stopped: "down", stopping: "warning" }[status] || "muted"}`;
    badge.dataset.status = status;
    $("daemon-mode").textContent = `${state.status.mode} mode · v${state.status.version}`;
  }
  $("start-trading").disabled = status === "running";
  $("stop-trading").disabled = status !== "running";
}

function showLiveState() {
  const live = $("live-state");
  live.dataset.state = stream.state;
  live.textContent = { open: "live", connecting: "connecting", closed: "disconnected" }[stream.state];
  live.className = `badge ${{ open: "up", connecting: "warning", closed: "down" }[stream.state]}`;
  checkStale();
}

// Data is stale when the live stream is down, when it has been silent too long, or when the
// daemon stops answering: the banner says which, and since when.
function checkStale() {
  const now = Date.now();
  const reasons = [];
  if (stream.state !== "open") {
    const wait = Math.max(0, Math.round((stream.retryAt - now) / 1000));
    reasons.push(stream.state === "connecting" ? "Live stream connecting…"
      : `Live stream disconnected (${stream.closeReason || "no answer"}); reconnecting` +
        (wait ? ` in ${wait} s.` : "…"));
  } else if (now - stream.lastMessageAt > STALE_SECONDS * 1000) {
    reasons.push(`No live data for ${age((now - stream.lastMessageAt) / 1000)}.`);
  }
  if (state.apiError) {
    reasons.push(`The daemon does not answer (${state.apiError.message}) since ${clock(state.apiErrorSince / 1000)} UTC.`);
  }
  const stale = reasons.length > 0 && !$("app").hidden;
  document.body.dataset.stale = String(stale);
  const banner = $("stale-banner");
  banner.hidden = !stale;
  if (stale) {
    const last = stream.lastMessageAt ? ` Figures shown are from ${clock(stream.lastMessageAt / 1000)} UTC or before.` : "";
    banner.textContent = `Data is stale. ${reasons.join(" ")}${last}`;
  }
}

// --- the render loop --------------------------------------------------------------------------

let lastRender = 0;
function frame(time) {
  if (time - lastRender >= RENDER_INTERVAL_MS) {
    lastRender = time;
    if (state.view === "market") board.render();
  }
  requestAnimationFrame(frame);
}

setInterval(() => {
  board.markStale();
  checkStale();
  $("market-summary").textContent = `${board.symbolCount} symbols · ${board.venues.length} venues`;
}, 1000);

// --- controls ---------------------------------------------------------------------------------

async function control(path, label) {
  try {
    const answer = await post(path);
    toast(`${answer.message}.`, "up");
  } catch (err) {
    toast(`${label} refused: ${err.message}`, "down");
  }
  refreshStatus().catch(() => {});
}

$("start-trading").addEventListener("click", () => control("/trading/start", "Start"));
$("stop-trading").addEventListener("click", () => control("/trading/stop", "Stop"));
$("emergency-stop").addEventListener("click", () => $("confirm-emergency").showModal());
$("emergency-cancel").addEventListener("click", () => $("confirm-emergency").close());
$("emergency-confirm").addEventListener("click", async () => {
  $("confirm-emergency").close();
  await control("/risk/emergency-stop", "Emergency stop");
});

// --- signing in and out -------------------------------------------------------------------------

function showSignIn(message = "") {
  $("app").hidden = true;
  $("controls").hidden = true;
  $("signin").hidden = false;
  const error = $("signin-error");
  error.textContent = message;
  error.hidden = !message;
  $("username").focus();
}

function signOut(message) {
  session.clear();
  stream.stop();
  stopTimers();
  showSignIn(message);
}

whenUnauthorized((error) => {
  if (!$("app").hidden) signOut(`Signed out: ${error.message}. Sign in again.`);
});

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("signin-submit").disabled = true;
  try {
    await login($("username").value, $("password").value);
    $("password").value = "";
    startApp();
  } catch (err) {
    showSignIn(err.status === 401 ? "Wrong user name or password." : err.message);
  } finally {
    $("signin-submit").disabled = false;
  }
});

$("sign-out").addEventListener("click", () => signOut(""));
$("symbol-filter").addEventListener("input", (event) => board.filter(event.target.value));

function startApp() {
  state.scope = state.authOn ? session.scope : "trading";
  document.body.dataset.scope = state.scope;
  $("signin").hidden = true;
  $("app").hidden = false;
  // The controls exist only for the trading scope; the server refuses them to others too.
  $("controls").hidden = state.scope !== "trading";
  $("who").textContent = state.authOn ? `${session.user} (${state.scope})` : "authentication off";
  $("sign-out").hidden = !state.authOn;
  showView(location.hash.slice(1));
  stream.start();
  every(2000, refreshStatus);
  every(30000, refreshConfig);
  every(2000, refreshSpreads);
  every(5000, refreshRisk);
  every(5000, refreshMoney);
  every(15000, refreshTrades);
  every(5000, refreshBacktests);
  refreshSignals().catch(() => {});
}

async function boot() {
  requestAnimationFrame(frame);
  if (session.token) {
    state.authOn = true;
    startApp();
    return;
  }
  try {
    state.authOn = await authRequired();
  } catch (err) {
    $("stale-banner").hidden = false;
    $("stale-banner").textContent = `The daemon does not answer: ${err.message}. Retrying…`;
    setTimeout(boot, 3000);
    return;
  }
  if (state.authOn) showSignIn();
  else startApp();
}

boot();
