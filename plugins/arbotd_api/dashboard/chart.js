// Line charts drawn on a <canvas>: no library to ship, a few dozen lines to read.
//
// drawChart(canvas, series, options): series are {label, color, points: [[x, y], ...],
// step} with x in epoch seconds; options.yFormat formats the axis' figures and
// options.empty is said when there is nothing to draw.

const PAD = { right: 12, top: 12, bottom: 26 };

function niceTicks(low, high, count) {
  const span = high - low || Math.abs(high) || 1;
  const raw = span / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  const ticks = [];
  for (let v = Math.ceil(low / step) * step; v <= high + step * 1e-9; v += step) ticks.push(v);
  return ticks;
}

function timeLabel(seconds, span) {
  const iso = new Date(seconds * 1000).toISOString();
  if (span > 2 * 86400) return iso.slice(5, 10);
  return iso.slice(11, span > 600 ? 16 : 19);
}

export function drawChart(canvas, series, options = {}) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 600;
  const height = canvas.clientHeight || 220;
  if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
  if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const style = getComputedStyle(canvas);
  const ink = style.getPropertyValue("--chart-ink").trim() || "#9aa4b2";
  const grid = style.getPropertyValue("--chart-grid").trim() || "#2a3240";
  ctx.font = "11px system-ui, sans-serif";

  const points = series.flatMap((s) => s.points);
  canvas.dataset.points = String(points.length);
  if (points.length === 0) {
    ctx.fillStyle = ink;
    ctx.textAlign = "center";
    ctx.fillText(options.empty || "no data yet", width / 2, height / 2);
    return;
  }
  let [x0, x1] = [Math.min(...points.map((p) => p[0])), Math.max(...points.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...points.map((p) => p[1])), Math.max(...points.map((p) => p[1]))];
  if (x1 === x0) { x0 -= 30; x1 += 30; }
  if (y1 === y0) { const d = Math.abs(y0) * 0.001 || 1; y0 -= d; y1 += d; }
  const margin = (y1 - y0) * 0.08;
  y0 -= margin; y1 += margin;
  const yFormat = options.yFormat || ((v) => v.toFixed(2));
  const yTicks = niceTicks(y0, y1, 4);
  // The left margin fits the widest figure of the axis.
  const left = 12 + Math.max(...yTicks.map((t) => ctx.measureText(yFormat(t)).width));
  const padLeft = Math.max(40, left);
  const plotW = width - padLeft - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  const sx = (x) => padLeft + ((x - x0) / (x1 - x0)) * plotW;
  const sy = (y) => PAD.top + (1 - (y - y0) / (y1 - y0)) * plotH;

  ctx.strokeStyle = grid;
  ctx.fillStyle = ink;
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const tick of yTicks) {
    const y = Math.round(sy(tick)) + 0.5;
    ctx.beginPath(); ctx.moveTo(padLeft, y); ctx.lineTo(width - PAD.right, y); ctx.stroke();
    ctx.fillText(yFormat(tick), padLeft - 6, y);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const span = x1 - x0;
  for (let i = 0; i <= 4; i += 1) {
    const x = x0 + (span * i) / 4;
    ctx.fillText(timeLabel(x, span), Math.min(Math.max(sx(x), padLeft + 20), width - 30),
                 height - PAD.bottom + 6);
  }

  for (const s of series) {
    if (s.points.length === 0) continue;
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 1.6;
    ctx.beginPath();
    s.points.forEach(([x, y], i) => {
      if (i === 0) ctx.moveTo(sx(x), sy(y));
      else {
        if (s.step) ctx.lineTo(sx(x), sy(s.points[i - 1][1]));
        ctx.lineTo(sx(x), sy(y));
      }
    });
    if (s.points.length === 1) ctx.lineTo(sx(x1), sy(s.points[0][1]));
    ctx.stroke();
  }
  if (series.length > 1) {
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    let x = padLeft + 6;
    for (const s of series) {
      ctx.fillStyle = s.color;
      ctx.fillRect(x, PAD.top + 4, 10, 3);
      ctx.fillStyle = ink;
      ctx.fillText(s.label, x + 14, PAD.top);
      x += ctx.measureText(s.label).width + 30;
    }
  }
}
