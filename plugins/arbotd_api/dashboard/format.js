// Formatting of figures for display. The API rounds money at the edge already
// (arbotd.figures); here numbers only get a readable number of digits.

// One formatter per number of digits: toLocaleString() builds a new one on every call,
// which the price table (hundreds of cells a render) cannot afford.
const formatters = new Map();

export function num(value, digits = 2) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  let formatter = formatters.get(digits);
  if (!formatter) {
    formatter = new Intl.NumberFormat("en-US", {
      minimumFractionDigits: digits, maximumFractionDigits: digits,
    });
    formatters.set(digits, formatter);
  }
  return formatter.format(Number(value));
}

// A price with as many significant digits as a quote carries (0.5512 and 65012.3 alike).
export function price(value) {
  if (value === null || value === undefined) return "–";
  const abs = Math.abs(value);
  const digits = abs >= 1000 ? 2 : abs >= 1 ? 4 : 6;
  return num(value, digits);
}

export function signed(value, digits = 2) {
  if (value === null || value === undefined) return "–";
  return (value > 0 ? "+" : "") + num(value, digits);
}

export function percent(value, digits = 3) {
  if (value === null || value === undefined) return "–";
  return num(value, digits) + " %";
}

// Epoch seconds or an ISO 8601 string -> "HH:MM:SS" in UTC (the daemon's time zone).
export function clock(value) {
  if (value === null || value === undefined) return "–";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return "–";
  return date.toISOString().slice(11, 19);
}

export function dateTime(value) {
  if (value === null || value === undefined) return "–";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return "–";
  return date.toISOString().slice(0, 19).replace("T", " ");
}

export function age(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  if (seconds < 1) return "<1 s";
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

// An element with text and attributes; the one way views make nodes (never innerHTML
// with data, so nothing the server sends can become markup).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
