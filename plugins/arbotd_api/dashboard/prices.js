// The live price and spread table: one row per symbol, a bid and an ask cell per venue,
// the best spread across venues, and the routes above the trading threshold highlighted.
//
// Built for many symbols streaming at once (150 symbols x 3 venues is thousands of
// updates a second): a price update only overwrites the latest quote of its (symbol,
// venue) in a map, and render() - called at most a few times a second from
// requestAnimationFrame - writes the text of the cells that changed since. Rows and
// cells are created once; nothing is rebuilt per message.

import { el, percent, price } from "./format.js";

// Writing the same text again still costs the browser a layout: skip it.
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

export class PriceBoard {
  constructor(table, { staleSeconds = 10 } = {}) {
    this.table = table;
    this.staleSeconds = staleSeconds;
    this.venues = [];
    this.rows = new Map(); // symbol -> {row, cells: Map(venue -> {bid, ask}), spread, route}
    this.quotes = new Map(); // "symbol venue" -> {data, at}
    this.pending = new Map(); // "symbol venue" -> data, the latest since the last render
    this.hot = new Map(); // symbol -> the best route above the threshold
    this.hotChanged = false;
    this.filterText = "";
    this.stats = { updates: 0, renders: 0, applied: 0, lastRenderMs: 0, maxRenderMs: 0 };
    this._head();
  }

  setVenues(venues) {
    const sorted = [...new Set(venues)].sort();
    if (sorted.join() === this.venues.join()) return;
    this.venues = sorted;
    this._head();
    for (const symbol of [...this.rows.keys()]) {
      this.rows.get(symbol).row.remove();
      this.rows.delete(symbol);
    }
    for (const [key, quote] of this.quotes) this.pending.set(key, quote.data);
  }

  update(data) {
    this.stats.updates += 1;
    this.pending.set(`${data.symbol} ${data.exchange}`, data);
  }

  // The routes /spreads/current lists at or above the threshold (percent), best first.
  setRoutes(spreads, thresholdPercent) {
    const hot = new Map();
    for (const spread of spreads) {
      if (spread.profit_percent >= thresholdPercent && !hot.has(spread.symbol)) {
        hot.set(spread.symbol, spread);
      }
    }
    this.hot = hot;
    this.hotChanged = true;
  }

  filter(text) {
    this.filterText = text.trim().toUpperCase();
    for (const [symbol, entry] of this.rows) {
      entry.row.hidden = Boolean(this.filterText) && !symbol.includes(this.filterText);
    }
  }

  get symbolCount() { return this.rows.size; }

  render() {
    if (this.pending.size === 0 && !this.hotChanged) return;
    const started = performance.now();
    const now = Date.now();
    const touched = new Set();
    for (const [key, data] of this.pending) {
      if (!this.venues.includes(data.exchange)) this.setVenues([...this.venues, data.exchange]);
      this.quotes.set(key, { data, at: now });
      const entry = this._row(data.symbol);
      const cells = entry.cells.get(data.exchange);
      setText(cells.bid, price(data.bid));
      setText(cells.ask, price(data.ask));
      if (cells.stale) {
        cells.stale = false;
        cells.bid.classList.remove("stale");
        cells.ask.classList.remove("stale");
      }
      touched.add(data.symbol);
    }
    this.stats.applied += this.pending.size;
    this.pending.clear();
    if (this.hotChanged) {
      this.hotChanged = false;
      for (const symbol of this.rows.keys()) touched.add(symbol);
    }
    for (const symbol of touched) this._spread(symbol);
    const took = performance.now() - started;
    this.stats.renders += 1;
    this.stats.lastRenderMs = took;
    this.stats.maxRenderMs = Math.max(this.stats.maxRenderMs, took);
  }

  // Grey out the quotes older than staleSeconds (by the time this page received them).
  markStale() {
    const limit = Date.now() - this.staleSeconds * 1000;
    let stale = 0;
    for (const [key, quote] of this.quotes) {
      if (quote.at >= limit) continue;
      stale += 1;
      const [symbol, venue] = key.split(" ");
      const cells = this.rows.get(symbol)?.cells.get(venue);
      if (cells && !cells.stale) {
        cells.stale = true;
        cells.bid.classList.add("stale");
        cells.ask.classList.add("stale");
      }
    }
    return stale;
  }

  _head() {
    const head = this.table.tHead || this.table.createTHead();
    head.replaceChildren();
    const top = el("tr", {}, el("th", { rowspan: 2, text: "Symbol" }));
    const sub = el("tr");
    for (const venue of this.venues) {
      top.append(el("th", { colspan: 2, class: "venue", text: venue }));
      sub.append(el("th", { class: "num", text: "bid" }), el("th", { class: "num", text: "ask" }));
    }
    top.append(el("th", { rowspan: 2, class: "num", text: "Best spread" }),
               el("th", { rowspan: 2, text: "Best route (after fees)" }));
    head.append(top, sub);
    if (!this.table.tBodies.length) this.table.append(el("tbody"));
  }

  _row(symbol) {
    let entry = this.rows.get(symbol);
    if (entry) return entry;
    const row = el("tr", { "data-symbol": symbol }, el("th", { scope: "row", text: symbol }));
    const cells = new Map();
    for (const venue of this.venues) {
      const bid = el("td", { class: "num bid", text: "–" });
      const ask = el("td", { class: "num ask", text: "–" });
      row.append(bid, ask);
      cells.set(venue, { bid, ask, stale: false });
    }
    const spread = el("td", { class: "num spread", text: "–" });
    const route = el("td", { class: "route", text: "" });
    row.append(spread, route);
    row.hidden = Boolean(this.filterText) && !symbol.includes(this.filterText);
    entry = { row, cells, spread, route };
    this.rows.set(symbol, entry);
    // Rows stay sorted by symbol: insert before the first that sorts after this one.
    const body = this.table.tBodies[0];
    const after = [...this.rows.keys()].filter((s) => s > symbol).sort()[0];
    body.insertBefore(row, after ? this.rows.get(after).row : null);
    return entry;
  }

  _spread(symbol) {
    const entry = this.rows.get(symbol);
    if (!entry) return;
    let bestBid = null;
    let bestAsk = null;
    for (const venue of this.venues) {
      const quote = this.quotes.get(`${symbol} ${venue}`);
      if (!quote) continue;
      if (!bestBid || quote.data.bid > bestBid.bid) bestBid = { bid: quote.data.bid, venue };
      if (!bestAsk || quote.data.ask < bestAsk.ask) bestAsk = { ask: quote.data.ask, venue };
    }
    if (bestBid && bestAsk && bestBid.venue !== bestAsk.venue && bestAsk.ask > 0) {
      const spread = ((bestBid.bid - bestAsk.ask) / bestAsk.ask) * 100;
      setText(entry.spread, percent(spread, 3));
      entry.spread.classList.toggle("positive", spread > 0);
    } else {
      setText(entry.spread, "–");
      entry.spread.classList.remove("positive");
    }
    const hot = this.hot.get(symbol);
    const route = hot
      ? `buy ${hot.buy_exchange} → sell ${hot.sell_exchange}: ${percent(hot.profit_percent, 3)}`
      : "";
    if (entry.route.textContent === route) return; // the highlight is as it was
    entry.row.classList.toggle("hot", Boolean(hot));
    entry.row.dataset.hot = hot ? "true" : "false";
    for (const [venue, cells] of entry.cells) {
      cells.ask.classList.toggle("route-buy", Boolean(hot) && hot.buy_exchange === venue);
      cells.bid.classList.toggle("route-sell", Boolean(hot) && hot.sell_exchange === venue);
    }
    entry.route.textContent = route;
  }
}
