// The trading configuration as GET /trading/config answers it: read only here (changes
// go through the file, or PUT /trading/config for the keys on its allow-list).

import { el } from "./format.js";

function show(value) {
  if (Array.isArray(value)) return value.join(", ");
  if (value !== null && typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function renderConfig(box, config) {
  const sections = Object.entries(config).map(([section, values]) => el("section", { class: "card" },
    el("h3", { text: `[${section}]` }),
    el("table", { class: "kv" }, el("tbody", {}, ...Object.entries(values).map(([key, value]) =>
      el("tr", {}, el("th", { scope: "row", text: key }), el("td", { class: "mono", text: show(value) })))))));
  box.replaceChildren(...sections);
}
