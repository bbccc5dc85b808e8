// The overview: venue health, today's figures, the risk limits as gauges, and equity
// and realised P&L over time.

import { drawChart } from "./chart.js";
import { age, el, num, percent, signed } from "./format.js";

export const STALE_SECONDS = 10;
const EQUITY_SAMPLES = 2000;

// --- venue health -----------------------------------------------------------------------

// Ages are as of the moment the daemon answered (asOf, ms): a status a few seconds old
// must not make every feed look late.
export function renderVenues(tbody, exchanges, asOf = Date.now()) {
  const now = asOf / 1000;
  const rows = Object.entries(exchanges).map(([name, venue]) => {
    const since = venue.last_update ? now - venue.last_update : null;
    const stale = venue.connected && since !== null && since > STALE_SECONDS;
    const state = !venue.connected ? "down" : stale ? "stale" : "up";
    const label = { up: "connected", stale: "no data", down: "disconnected" }[state];
    return el("tr", { "data-venue": name, "data-state": state },
      el("th", { scope: "row", text: name }),
      el("td", {}, el("span", { class: `badge ${state}`, text: label })),
      el("td", { class: "num", text: since === null ? "never" : age(since) }),
      el("td", { class: "num", text: venue.latency_ms == null ? "–" : `${num(venue.latency_ms, 0)} ms` }));
  });
  tbody.replaceChildren(...rows);
}

// --- today's figures ---------------------------------------------------------------------

function figure(label, value, extra = "") {
  return el("div", { class: "figure" },
    el("div", { class: "label", text: label }),
    el("div", { class: `value ${extra}`, text: value }));
}

export function renderToday(box, { status, today, balances }) {
  const m = today?.metrics;
  const net = m?.net_profit;
  box.replaceChildren(
    figure("Trades today", status ? String(status.trades_today) : "–"),
    figure("Signals last hour", status ? String(status.signals_last_hour) : "–"),
    figure("Net P&L today", net == null ? "–" : signed(net, 2), net > 0 ? "up" : net < 0 ? "down" : ""),
    figure("Fees today", m ? num(m.total_fees, 2) : "–"),
    figure("Win rate today", m && m.total_trades ? percent(m.win_rate, 1) : "–"),
    figure("Equity (USD)", balances ? num(balances.total_value_usd, 2) : "–"),
  );
}

// --- risk limits ---------------------------------------------------------------------------

// The reference's name of a limit's current use (the server's current_key()).
function currentKey(name) {
  if (name === "max_concurrent_trades") return "current_active_trades";
  if (name.startsWith("max_")) return "current_" + name.slice(4);
  if (name.endsWith("_limit")) return "current_" + name.slice(0, -"_limit".length);
  return "current_" + name;
}

const LIMIT_LABELS = {
  max_drawdown_percent: "Drawdown from peak (%)",
  max_concurrent_trades: "Trades in flight",
  daily_loss_limit: "Loss today",
};

export function renderRisk(box, badge, answer) {
  const gauges = [];
  for (const [name, limit] of Object.entries(answer.limits)) {
    if (name.startsWith("current_")) continue;
    const current = answer.limits[currentKey(name)] ?? 0;
    const warning = answer.warnings.find((w) => w.startsWith(name + ":"));
    const level = !warning ? "normal" : warning.endsWith("(critical)") ? "critical" : "warning";
    const share = limit > 0 ? Math.min(1, Math.max(0, current / limit)) : 0;
    const bar = el("div", { class: "bar" });
    bar.style.width = `${(share * 100).toFixed(1)}%`;
    gauges.push(el("div", { class: `gauge ${level}`, "data-limit": name, "data-level": level },
      el("div", { class: "label" }, LIMIT_LABELS[name] || name.replaceAll("_", " "),
         el("span", { class: "level", text: level })),
      el("div", { class: "track" }, bar),
      el("div", { class: "figures", text: `${num(current, 2)} of ${num(limit, 2)}` })));
  }
  box.replaceChildren(...(gauges.length ? gauges : [el("p", { class: "muted", text: "No risk checks enabled." })]));
  badge.textContent = answer.status;
  badge.className = `badge ${answer.status}`;
}

// --- equity and realised P&L ---------------------------------------------------------------

export class EquityHistory {
  constructor() { this.samples = []; }

  add(balances) {
    if (!balances || balances.total_value_usd == null) return;
    const last = this.samples[this.samples.length - 1];
    if (last && balances.timestamp - last[0] < 1) return;
    this.samples.push([balances.timestamp, balances.total_value_usd]);
    if (this.samples.length > EQUITY_SAMPLES) this.samples.splice(0, this.samples.length - EQUITY_SAMPLES);
  }
}

// Realised P&L: the running sum of the final trades' net results, in the order they ended.
export function realisedCurve(trades) {
  const done = trades
    .filter((t) => t.actual_profit != null && t.completed_at)
    .map((t) => [Date.parse(t.completed_at) / 1000, t.actual_profit])
    .sort((a, b) => a[0] - b[0]);
  let total = 0;
  return done.map(([when, profit]) => { total += profit; return [when, total]; });
}

export function drawEquity(canvas, equity) {
  drawChart(canvas, [{ label: "equity", color: "#4ea1ff", points: equity.samples }], {
    yFormat: (v) => num(v, 0), empty: "collecting equity samples…",
  });
}

export function drawRealised(canvas, trades) {
  drawChart(canvas, [{ label: "realised P&L", color: "#3ecf8e", points: realisedCurve(trades), step: true }], {
    yFormat: (v) => num(v, 2), empty: "no finished trades yet",
  });
}
