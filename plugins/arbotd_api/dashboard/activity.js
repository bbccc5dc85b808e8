// The signal feed, the trade list, and one trade's legs, fills, fees and slippage.

import { get } from "./api.js";
import { clock, dateTime, el, num, percent, price, signed } from "./format.js";

const KEPT = 100; // signals and trades shown; older ones are in the history endpoints

// The reasons the core and the builtin risk checks give; a plugin's own are shown as
// they come.
const REASONS = {
  balance: "balances too low",
  balance_threshold: "a venue's holdings below threshold",
  max_concurrent_trades: "too many trades in flight",
  max_position_size: "above the largest position",
  daily_loss_limit: "daily loss limit reached",
  max_drawdown: "drawdown limit reached",
  symbol_not_selected: "symbol not selected",
  exchange_not_selected: "exchange not selected",
  storage: "no trade id: storage not writing",
};

// A signal that is neither executed nor rejected was found while trading was off.
function reasonText(reason) {
  if (!reason) return "trading off";
  return REASONS[reason] || reason.replaceAll("_", " ");
}

export class SignalFeed {
  constructor(tbody) {
    this.tbody = tbody;
    this.seen = new Set();
  }

  load(signals) {
    // Oldest first, so that add() leaves the newest on top.
    for (const signal of [...signals].reverse()) this.add(signal);
  }

  add(signal) {
    if (this.seen.has(signal.id)) return;
    this.seen.add(signal.id);
    const outcome = signal.executed
      ? el("span", { class: "badge up", text: "executed" })
      : el("span", { class: "badge muted", title: signal.reject_reason,
                     text: reasonText(signal.reject_reason) });
    const row = el("tr", { "data-signal": signal.id, "data-executed": String(signal.executed) },
      el("td", { text: clock(signal.timestamp) }),
      el("th", { scope: "row", text: signal.symbol }),
      el("td", { text: `${signal.buy_exchange} → ${signal.sell_exchange}` }),
      el("td", { class: "num", text: `${price(signal.buy_price)} / ${price(signal.sell_price)}` }),
      el("td", { class: "num", text: percent(signal.profit_percent, 3) }),
      el("td", {}, outcome));
    this.tbody.prepend(row);
    while (this.tbody.rows.length > KEPT) {
      const last = this.tbody.rows[this.tbody.rows.length - 1];
      this.seen.delete(Number(last.dataset.signal));
      last.remove();
    }
  }
}

const STATE_CLASS = { completed: "up", unwound: "warning", failed: "down", cancelled: "muted" };

export class TradeList {
  constructor(tbody, detail) {
    this.tbody = tbody;
    this.detail = detail;
    this.trades = new Map(); // id -> the latest summary
    this.rows = new Map(); // id -> its row, kept while shown: updates change text only,
    // so a row being clicked or read is never swapped for another
    this.selected = null;
    this.asking = null; // the timer of the next asking for the selected trade
  }

  get all() { return [...this.trades.values()]; }

  load(trades) {
    for (const trade of trades) this.trades.set(trade.id, trade);
    this._render();
  }

  update(trade) {
    this.trades.set(trade.id, trade);
    this._render();
    if (this.selected === trade.id) this.show(trade.id);
  }

  _render() {
    const newest = this.all.sort((a, b) => b.id - a.id).slice(0, KEPT);
    const shown = new Set(newest.map((t) => t.id));
    for (const [id, row] of this.rows) {
      if (!shown.has(id)) { row.remove(); this.rows.delete(id); }
    }
    let previous = null;
    for (const trade of newest) {
      const row = this._row(trade);
      // Move only what is out of place (a new trade goes on top).
      const expected = previous ? previous.nextSibling : this.tbody.firstChild;
      if (row !== expected) this.tbody.insertBefore(row, expected);
      previous = row;
    }
    if (this.trades.size > KEPT * 2) {
      for (const id of this.trades.keys()) if (!shown.has(id)) this.trades.delete(id);
    }
  }

  _row(t) {
    const texts = [`#${t.id}`, clock(t.started_at), t.symbol, `${t.buy_exchange} → ${t.sell_exchange}`,
      num(t.quantity, 6), signed(t.planned_profit, 4),
      t.actual_profit == null ? "–" : signed(t.actual_profit, 4), num(t.fees_paid, 4)];
    let row = this.rows.get(t.id);
    if (!row) {
      row = el("tr", {
        "data-trade": t.id, tabindex: 0, onclick: () => this.show(t.id),
        onkeydown: (e) => { if (e.key === "Enter") this.show(t.id); },
      },
      el("td", { class: "num" }), el("td"), el("th", { scope: "row" }), el("td"),
      el("td", { class: "num" }), el("td", { class: "num" }), el("td", { class: "num" }),
      el("td", { class: "num" }), el("td", {}, el("span")));
      row.classList.toggle("selected", t.id === this.selected);
      this.rows.set(t.id, row);
    }
    texts.forEach((text, i) => {
      if (row.cells[i].textContent !== text) row.cells[i].textContent = text;
    });
    if (row.dataset.status !== t.status) {
      row.dataset.status = t.status;
      const badge = row.cells[8].firstChild;
      badge.className = `badge ${STATE_CLASS[t.status] || "info"}`;
      badge.textContent = t.status;
    }
    return row;
  }

  async show(id, attempt = 0) {
    this.selected = id;
    for (const [rowId, row] of this.rows) row.classList.toggle("selected", rowId === id);
    let trade;
    try {
      trade = await get(`/trades/${id}`);
    } catch (err) {
      if (this.selected !== id) return;
      this.detail.replaceChildren(el("p", { class: "muted", text: `Trade #${id}: ${err.message}` }));
      // A trade the live stream just brought may not be stored yet.
      if (err.status === 404 && attempt < MISSING_RETRIES) this._again(id, attempt);
      return;
    }
    if (this.selected !== id) return;
    this.detail.replaceChildren(tradeDetail(trade));
    // Storage lags the live stream (its writer commits in batches): the list can show a
    // trade settled while its stored state is still in flight, its fills not written
    // yet. Ask again, as long as the detail is open, until the stored trade is settled
    // and every filled leg shows its fills.
    if (!SETTLED.has(trade.status) || fillsPending(trade)) this._again(id, attempt);
  }

  _again(id, attempt) {
    // One asking at a time, however many updates of the trade come meanwhile.
    clearTimeout(this.asking);
    const delay = attempt < 30 ? 1000 : 5000;
    this.asking = setTimeout(() => { if (this.selected === id) this.show(id, attempt + 1); }, delay);
  }
}

const SETTLED = new Set(["completed", "unwound", "failed", "cancelled"]);
const MISSING_RETRIES = 30;

function fillsPending(t) {
  return (t.legs || []).some((leg) => leg.filled_quantity > 0 && !(leg.fills || []).length);
}

function pair(label, value) {
  return [el("dt", { text: label }), el("dd", { text: value })];
}

export function tradeDetail(t) {
  const summary = el("dl", { class: "pairs" },
    ...pair("Status", t.status + (t.reason ? ` (${t.reason})` : "")),
    ...pair("Route", `${t.symbol}: buy ${t.buy_exchange}, sell ${t.sell_exchange}`),
    ...pair("Quantity", `${num(t.quantity, 8)} of ${num(t.planned_quantity ?? t.quantity, 8)} planned`),
    ...pair("Buy price", `${price(t.actual_buy_price)} (planned ${price(t.planned_buy_price)})`),
    ...pair("Sell price", `${price(t.actual_sell_price)} (planned ${price(t.planned_sell_price)})`),
    ...(t.buy_rate == null && t.sell_rate == null ? [] : pair("Planned in the venue's currency",
      [t.buy_rate == null ? null : `buy ${price(t.buy_native_price)} at ${t.buy_rate}`,
       t.sell_rate == null ? null : `sell ${price(t.sell_native_price)} at ${t.sell_rate}`]
        .filter(Boolean).join(", "))),
    ...pair("Planned profit", signed(t.planned_profit, 8)),
    ...pair("Realised profit", t.actual_profit == null ? "not final yet" : signed(t.actual_profit, 8)),
    ...pair("Fees", num(t.fees_paid, 8)),
    ...pair("Slippage", t.slippage == null ? "–" : `${signed(t.slippage, 8)} (positive: worse than planned)`),
    ...pair("Started", dateTime(t.started_at)),
    ...pair("Took", t.execution_time_ms == null ? "running" : `${num(t.execution_time_ms, 0)} ms`));
  const legs = el("tbody");
  for (const leg of t.legs || []) {
    legs.append(el("tr", { class: "leg" },
      el("td", { text: leg.purpose }), el("td", { text: leg.side }), el("td", { text: leg.exchange }),
      el("td", { class: "num", text: (leg.price ? price(leg.price) : "market")
        + (leg.rate != null ? ` (${leg.price ? price(leg.native_price) + " " : ""}at ${leg.rate})` : "") }),
      el("td", { class: "num", text: `${num(leg.filled_quantity, 8)} / ${num(leg.quantity, 8)}` }),
      el("td", { text: leg.status + (leg.reason ? ` (${leg.reason})` : "") }),
      el("td", { class: "mono", text: leg.client_order_id })));
    for (const fill of leg.fills) {
      legs.append(el("tr", { class: "fill" },
        el("td", { text: "fill" }), el("td", { text: clock(fill.timestamp) }), el("td"),
        el("td", { class: "num", text: price(fill.price)
          + (fill.native_price != null ? ` (${price(fill.native_price)} ${fill.native_asset})` : "") }),
        el("td", { class: "num", text: num(fill.quantity, 8) }),
        el("td", { text: `fee ${fill.fee} ${fill.fee_asset}` + (fill.fee_value != null ? ` (= ${fill.fee_value})` : "") }),
        el("td")));
    }
  }
  const table = el("table", { class: "legs" },
    el("thead", {}, el("tr", {}, ...["Leg", "Side", "Venue", "Price", "Filled / qty", "Status", "Client order id"]
      .map((h) => el("th", { text: h })))), legs);
  return el("div", { "data-trade-detail": t.id },
    el("h3", { text: `Trade #${t.id}` }), summary, el("h4", { text: "Legs and fills" }), table);
}
