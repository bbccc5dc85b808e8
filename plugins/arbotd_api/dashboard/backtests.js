// The backtests the daemon ran (GET /backtests) and each result's equity curve, rebuilt
// from its trades as the report's is: the starting equity plus the net result of each
// finished trade, in the order they finished.

import { get } from "./api.js";
import { drawChart } from "./chart.js";
import { dateTime, el, num, percent, signed } from "./format.js";

const PAGE = 1000;
const MAX_PAGES = 20;
const FINAL = new Set(["completed", "unwound", "failed", "cancelled"]);

export class Backtests {
  constructor(tbody, detail) {
    this.tbody = tbody;
    this.detail = detail;
    this.selected = null;
  }

  render(answer) {
    // Polled every few seconds: rows are rebuilt only when something changed, so a row
    // being clicked is not swapped for its copy.
    const shown = JSON.stringify(answer.backtests);
    if (shown === this.shown) return;
    this.shown = shown;
    const rows = answer.backtests.map((b) => {
      const m = b.metrics;
      return el("tr", {
        "data-backtest": b.backtest_id, "data-status": b.status, tabindex: 0,
        class: b.backtest_id === this.selected ? "selected" : "",
        onclick: () => this.show(b.backtest_id),
        onkeydown: (e) => { if (e.key === "Enter") this.show(b.backtest_id); },
      },
      el("td", { class: "num", text: `#${b.backtest_id}` }),
      el("td", { text: b.status === "running" ? `running ${num(b.progress_percent, 0)} %` : b.status }),
      el("td", { text: dateTime(b.created_at) }),
      el("td", { text: `${dateTime(b.request.start_time)} → ${dateTime(b.request.end_time)}` }),
      el("td", { class: "num", text: m ? String(m.total_trades) : "–" }),
      el("td", { class: "num", text: m ? signed(m.net_profit, 4) : "–" }),
      el("td", { class: "num", text: m ? percent(m.return_percent, 4) : "–" }),
      el("td", { class: "num", text: m ? percent(m.max_drawdown_percent, 4) : "–" }),
      el("td", { text: b.error || "" }));
    });
    this.tbody.replaceChildren(...(rows.length ? rows
      : [el("tr", {}, el("td", { colspan: 9, class: "muted", text: "No backtests yet: POST /api/v1/trading/start with \"mode\": \"backtest\", or run arbotd backtest." }))]));
  }

  async show(id) {
    this.selected = id;
    for (const row of this.tbody.rows) row.classList.toggle("selected", Number(row.dataset.backtest) === id);
    let job;
    const trades = [];
    try {
      for (let page = 0; page < MAX_PAGES; page += 1) {
        job = await get(`/backtests/${id}?limit=${PAGE}&offset=${page * PAGE}`);
        trades.push(...job.trades);
        if (!job.pagination.has_more) break;
      }
    } catch (err) {
      this.detail.replaceChildren(el("p", { class: "muted", text: `Backtest #${id}: ${err.message}` }));
      return;
    }
    if (this.selected !== id) return;
    const m = job.metrics;
    const canvas = el("canvas", { class: "chart", "data-chart": "backtest-equity" });
    this.detail.replaceChildren(
      el("h3", { text: `Backtest #${id}: equity` }),
      m ? el("p", { class: "muted", text: `${m.total_trades} trades, net ${signed(m.net_profit, 4)}, ` +
        `return ${percent(m.return_percent, 4)}, max drawdown ${percent(m.max_drawdown_percent, 4)}` }) : null,
      canvas);
    const points = [];
    if (m) {
      let equity = m.starting_equity;
      points.push([Date.parse(m.start) / 1000, equity]);
      const done = trades.filter((t) => FINAL.has(t.state))
        .map((t) => [Date.parse(t.completed_at || t.started_at) / 1000, t.net_profit])
        .sort((a, b) => a[0] - b[0]);
      for (const [when, net] of done) { equity += net; points.push([when, equity]); }
      points.push([Math.max(Date.parse(m.end) / 1000, points[points.length - 1][0]), m.final_equity]);
    }
    drawChart(canvas, [{ label: "equity", color: "#4ea1ff", points, step: true }], {
      yFormat: (v) => num(v, 2), empty: job.status === "completed" ? "no trades" : `backtest ${job.status}`,
    });
  }
}
