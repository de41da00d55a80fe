// omnirelay console: draws the overview's charts as SVG from /console/overview.json and polls it,
// so the numbers refresh without a reload. No library; every value is set as text, never as markup.
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const root = document.getElementById("overview");
  if (!root) return;

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }
  function svg(width, height) {
    return el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" });
  }
  function setText(id, value) {
    const node = document.getElementById(id);
    if (node) node.textContent = value;
  }
  function ms(value) {
    if (value === null || value === undefined) return "—";
    return value < 1000 ? `${value} ms` : `${(value / 1000).toFixed(value < 10000 ? 2 : 1)} s`;
  }
  function replacePlot(id, node) {
    const plot = document.querySelector(`#${id} .plot`);
    plot.replaceChildren(node);
  }

  function minutesChart(minutes) {
    const w = 900, h = 120, pad = 28;
    const top = Math.max(1, ...minutes.map((m) => Math.max(m.accepted, m.finished)));
    const slot = (w - pad) / Math.max(1, minutes.length);
    const s = svg(w, h + 20);
    s.appendChild(el("text", { x: 0, y: 12 }, top));
    s.appendChild(el("text", { x: 0, y: h }, 0));
    s.appendChild(el("line", { x1: pad, y1: h, x2: w, y2: h, stroke: "#d8dde6" }));
    minutes.forEach((m, i) => {
      const x = pad + i * slot;
      const bar = Math.max(1, slot / 2 - 1);
      for (const [k, dx] of [["accepted", 0], ["finished", bar]]) {
        const height = (m[k] / top) * (h - 14);
        if (m[k] > 0) {
          const r = el("rect", { x: x + dx, y: h - height, width: bar, height, class: k, "data-minute": m.t });
          r.appendChild(el("title", {}, `${new Date(m.t).toISOString().slice(11, 16)} UTC: ${m[k]} ${k}`));
          s.appendChild(r);
        }
      }
      if (i % 10 === 0 && x < w - 40) s.appendChild(el("text", { x, y: h + 14 }, new Date(m.t).toISOString().slice(11, 16)));
    });
    return s;
  }

  function funnelChart(funnel) {
    const w = 520, row = 34, label = 130;
    const s = svg(w, Math.max(1, funnel.length) * row + 4);
    if (!funnel.length) s.appendChild(el("text", { x: 0, y: 20 }, "no attempts in this window"));
    funnel.forEach((f, i) => {
      const y = i * row + 4;
      s.appendChild(el("text", { x: 0, y: y + 18 }, `step ${f.step} ${f.channel}`));
      let x = label;
      for (const [k, cls] of [["delivered", "delivered"], ["failedOver", "failedover"], ["failed", "failed"], ["pending", "pending"]]) {
        const width = f.attempts ? (f[k] / f.attempts) * (w - label - 50) : 0;
        if (width > 0) {
          const r = el("rect", { x, y, width, height: row - 10, class: cls, "data-step": f.step });
          r.appendChild(el("title", {}, `${f[k]} of ${f.attempts}`));
          s.appendChild(r);
        }
        x += width;
      }
      s.appendChild(el("text", { x: x + 6, y: y + 18 }, f.attempts));
    });
    return s;
  }

  function deliveryChart(delivery) {
    const w = 520, row = 34, label = 100;
    const s = svg(w, Math.max(1, delivery.length) * row + 4);
    if (!delivery.length) s.appendChild(el("text", { x: 0, y: 20 }, "no final attempt in this window"));
    delivery.forEach((d, i) => {
      const y = i * row + 4;
      const width = (d.rate || 0) * (w - label - 90);
      s.appendChild(el("text", { x: 0, y: y + 18 }, d.channel));
      s.appendChild(el("rect", { x: label, y, width: w - label - 90, height: row - 10, fill: "#eef1f6" }));
      if (width > 0) s.appendChild(el("rect", { x: label, y, width, height: row - 10, class: "delivered", "data-channel": d.channel }));
      const pct = d.rate === null ? "—" : `${(d.rate * 100).toFixed(1)} %`;
      s.appendChild(el("text", { x: w - 84, y: y + 18 }, `${pct} of ${d.final}`));
    });
    return s;
  }

  function funnelTable(funnel) {
    const body = document.querySelector("#funnel tbody");
    body.replaceChildren(...funnel.map((f) => {
      const tr = document.createElement("tr");
      for (const [v, num] of [[f.step, false], [f.channel, false], [f.attempts, true], [f.delivered, true], [f.failedOver, true], [f.failed, true], [f.pending, true]]) {
        const td = document.createElement("td");
        td.textContent = String(v);
        if (num) td.className = "num";
        tr.appendChild(td);
      }
      return tr;
    }));
  }

  function scenarioTable(scenarios) {
    const body = document.querySelector("#scenario-funnel tbody");
    if (!body) return;
    const rows = [];
    for (const sc of scenarios) {
      for (const f of sc.steps) {
        const tr = document.createElement("tr");
        tr.dataset.scenario = sc.key === null ? "" : sc.key;
        tr.dataset.step = String(f.step);
        const name = sc.name || sc.key || "(not recorded)";
        const cells = [[name, false], [f.step, false], [f.channel, false], [f.criterion || "—", false], [f.sent, true],
          [f.met, true], [f.failed.rejected, true], [f.failed.failureReceipt, true], [f.failed.expired, true], [f.lateSuccess, true]];
        for (const [v, num] of cells) {
          const td = document.createElement("td");
          td.textContent = String(v);
          if (num) td.className = "num";
          tr.appendChild(td);
        }
        rows.push(tr);
      }
    }
    body.replaceChildren(...rows);
  }

  function draw(data) {
    setText("total-accepted", data.totals.accepted);
    setText("total-finished", data.totals.finished);
    setText("latency-p50", ms(data.latency.p50));
    setText("latency-p90", ms(data.latency.p90));
    setText("latency-p99", ms(data.latency.p99));
    replacePlot("chart-minutes", minutesChart(data.minutes));
    replacePlot("chart-funnel", funnelChart(data.funnel));
    replacePlot("chart-delivery", deliveryChart(data.delivery));
    funnelTable(data.funnel);
    scenarioTable(data.scenarios || []);
    setText("updated", new Date().toISOString().slice(11, 19) + " UTC" + (data.sampled ? " (sampled)" : ""));
    root.dataset.refreshes = String(Number(root.dataset.refreshes || 0) + 1);
  }

  async function refresh() {
    try {
      const r = await fetch(root.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (r.redirected || !(r.headers.get("content-type") || "").startsWith("application/json")) {
        window.location.assign("/console/login"); // the session ended
        return;
      }
      draw(await r.json());
    } catch (e) {
      setText("updated", "failed, retrying");
    }
  }
  refresh();
  setInterval(refresh, Number(root.dataset.pollMs) || 5000);
})();
