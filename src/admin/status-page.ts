/**
 * The status page at `/`: one self-contained HTML page (no build step, no external assets) that
 * polls `/status` every second and shows every listener, cluster and endpoint — name, health and
 * its last change, weight, drained, active and cap, request rate, errors, non-OK gRPC statuses, p50/p99
 * over the last minute and a 5-minute sparkline (inline SVG) of rate and p99 — like HAProxy's stats
 * page, with Fulcrum's version and uptime, and each cluster's queue depth when it has a queue. When a fetch of `/status` fails the last data stays,
 * greyed out, under "cannot reach Fulcrum since HH:MM:SS". `?refresh=MS` changes the period.
 */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Fulcrum status</title>
<style>
  :root { font-family: system-ui, sans-serif; color: #1d2430; background: #f6f7f9; }
  body { margin: 1.5rem; }
  h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
  h1 .version { font-size: .85rem; font-weight: 400; color: #5b6472; }
  h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
  .meta { color: #5b6472; font-size: .85rem; }
  table { border-collapse: collapse; background: #fff; min-width: 40rem; box-shadow: 0 1px 2px #0001; }
  th, td { padding: .35rem .55rem; text-align: left; border-bottom: 1px solid #e5e8ec; font-variant-numeric: tabular-nums; vertical-align: middle; }
  th { background: #eef1f5; font-weight: 600; font-size: .8rem; white-space: nowrap; }
  td.num { text-align: right; }
  td.name { font-weight: 600; white-space: nowrap; }
  td.change { font-size: .78rem; color: #5b6472; max-width: 18rem; }
  .health { display: inline-block; padding: 0 .5rem; border-radius: .6rem; font-size: .8rem; font-weight: 600; }
  .healthy { background: #d9f2e3; color: #14633a; }
  .unhealthy { background: #fbdcdc; color: #8a1c1c; }
  .ejected { background: #fde9c8; color: #7a4a00; }
  .drained { background: #e3e6ea; color: #39414d; }
  .status { display: inline-block; margin: 0 .3rem .1rem 0; padding: 0 .35rem; border-radius: .3rem; background: #fbe4e4; color: #8a1c1c; font-size: .75rem; white-space: nowrap; }
  .model { display: inline-block; margin-right: .3rem; font-size: .75rem; }
  .model.not-ready { color: #8a1c1c; font-weight: 600; }
  .none { color: #9aa1ab; }
  .error { color: #8a1c1c; font-weight: 600; margin-top: .4rem; }
  svg.spark { display: block; background: #f1f3f6; border-radius: 2px; }
  svg.spark .calls { fill: #9cc3ec; }
  svg.spark .p99 { fill: none; stroke: #c4541a; stroke-width: 1.3; }
  .legend { font-size: .75rem; color: #5b6472; margin-top: .4rem; }
  .legend i { display: inline-block; width: .7rem; height: .5rem; margin: 0 .25rem 0 .6rem; }
  .scroll { overflow-x: auto; padding-bottom: 2px; }
  body.stale #content { opacity: .45; filter: grayscale(1); }
</style>
</head>
<body>
<h1>Fulcrum <span class="version" id="version"></span></h1>
<div class="meta"><span id="uptime"></span><span id="updated">loading…</span> · refreshes every <span id="period"></span> ms</div>
<div id="error" class="error" role="alert"></div>
<div id="content">
<h2>Listeners</h2>
<table id="listeners"><thead><tr><th>name</th><th>protocol</th><th>engine</th><th>address</th><th>active</th></tr></thead><tbody></tbody></table>
<div id="clusters"></div>
<div class="legend">last 5 min, 10 s per bar:<i style="background:#9cc3ec"></i>calls<i style="background:#c4541a;height:2px"></i>p99 latency</div>
</div>
<script>
(() => {
  const period = Number(new URLSearchParams(location.search).get("refresh")) || 1000;
  document.getElementById("period").textContent = String(period);
  const SVG = "http://www.w3.org/2000/svg";
  let last = new Map();
  let lastAt = 0;
  let failingSince = 0;
  const el = (tag, attrs, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  };
  const svg = (tag, attrs) => {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  };
  const num = (v, col) => el("td", { class: "num", "data-col": col }, v);
  const clock = (t) => new Date(t).toLocaleTimeString([], { hour12: false });
  const ms = (v) => (v === null || v === undefined ? "—" : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0));
  const duration = (s) => {
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60, sec = Math.floor(s % 60);
    return (d ? d + "d " : "") + (d || h ? h + "h " : "") + (d || h || m ? m + "m " : "") + sec + "s";
  };
  /** Calls per 10 s bucket as bars, p99 as a line, each scaled to its own maximum. */
  function sparkline(history, bucketSeconds) {
    const w = 120, h = 28, n = history.length || 1, bw = w / n;
    const root = svg("svg", { class: "spark", width: w, height: h, viewBox: "0 0 " + w + " " + h, role: "img" });
    const maxCalls = Math.max(1, ...history.map((b) => b.calls));
    const maxP99 = Math.max(0, ...history.map((b) => b.p99_ms || 0));
    const points = [];
    history.forEach((b, i) => {
      if (b.calls > 0) {
        const bh = Math.max(1, (b.calls / maxCalls) * (h - 2));
        root.append(svg("rect", { class: "calls", x: (i * bw).toFixed(1), y: (h - bh).toFixed(1), width: Math.max(1, bw - 1).toFixed(1), height: bh.toFixed(1) }));
      }
      if (b.p99_ms !== null && maxP99 > 0) points.push((i * bw + bw / 2).toFixed(1) + "," + (h - 1 - (b.p99_ms / maxP99) * (h - 3)).toFixed(1));
    });
    if (points.length > 1) root.append(svg("polyline", { class: "p99", points: points.join(" ") }));
    const recent = history.slice(-6).reduce((a, b) => a + b.calls, 0);
    const title = svg("title");
    title.textContent = "last 5 min: up to " + (maxCalls / bucketSeconds).toFixed(1) + " calls/s, p99 up to " + ms(maxP99) + " ms; " + recent + " calls in the last minute";
    root.prepend(title);
    return root;
  }
  function statuses(e) {
    const entries = Object.entries(e.statuses || {}).sort((a, b) => b[1] - a[1]);
    if (entries.length === 0) return el("td", { "data-col": "statuses" }, el("span", { class: "none" }, "—"));
    return el("td", { "data-col": "statuses" }, ...entries.map(([name, n]) => el("span", { class: "status", "data-status": name, title: n + " streams ended with " + name }, name + " " + n)));
  }
  function change(e) {
    const c = e.last_health_change;
    if (!c) return el("td", { class: "change", "data-col": "change" }, el("span", { class: "none" }, "—"));
    return el("td", { class: "change", "data-col": "change", title: c.at }, c.to + " at " + clock(c.at) + ": " + c.reason);
  }
  function models(e) {
    if (!e.models || e.models.length === 0) return [];
    return [el("div", {}, ...e.models.map((m) => el("span", { class: "model" + (m.ready ? "" : " not-ready"), "data-model": m.model }, (m.ready ? "✓ " : "✗ ") + m.model + (m.version ? ":" + m.version : ""))))];
  }
  function render(status) {
    const now = performance.now();
    const seconds = lastAt ? (now - lastAt) / 1000 : 0;
    if (status.version) document.getElementById("version").textContent = status.version;
    if (status.uptime_seconds !== undefined) document.getElementById("uptime").textContent = "up " + duration(status.uptime_seconds) + " · ";
    const tbody = document.querySelector("#listeners tbody");
    tbody.replaceChildren(...status.listeners.map((l) =>
      el("tr", { "data-listener": l.name }, el("td", {}, l.name), el("td", {}, l.protocol), el("td", {}, l.engine ?? "—"), el("td", {}, l.address), num(l.active))));
    const next = new Map();
    const bucketSeconds = status.history_bucket_seconds || 10;
    const clusters = status.clusters.map((c) => {
      const hasModels = c.endpoints.some((e) => e.models && e.models.length > 0);
      const rows = c.endpoints.map((e) => {
        const key = c.name + "|" + e.address;
        next.set(key, e.total);
        const before = last.get(key);
        const rate = seconds > 0 && before !== undefined ? ((e.total - before) / seconds).toFixed(1) : "—";
        const state = e.drained ? "drained" : e.health;
        const latency = e.latency_ms || {};
        return el("tr", { "data-endpoint": e.address, "data-state": state },
          el("td", { "data-col": "endpoint" }, e.address, ...models(e)),
          el("td", { class: "name", "data-col": "name" }, e.name ?? ""),
          el("td", { "data-col": "health" }, el("span", { class: "health " + e.health }, e.health)),
          change(e),
          el("td", { "data-col": "drained" }, e.drained ? el("span", { class: "health drained" }, "drained") : "no"),
          num(e.effective_weight !== undefined && e.effective_weight !== e.weight ? e.weight + " → " + e.effective_weight.toFixed(2) : e.weight, "weight"), num(e.active, "active"), num(e.max_active ? e.max_active : "—", "cap"), num(rate, "rate"), num(e.total, "total"), num(e.failures, "errors"),
          statuses(e),
          num(ms(latency.p50), "p50"), num(ms(latency.p99), "p99"),
          el("td", { "data-col": "spark" }, e.history ? sparkline(e.history, bucketSeconds) : ""));
      });
      const heads = ["endpoint" + (hasModels ? " · models" : ""), "name", "health", "last health change", "drained", "weight", "active", "cap", "req/s", "total", "errors", "statuses", "p50 ms", "p99 ms", "last 5 min"];
      return el("section", { "data-cluster": c.name },
        el("h2", {}, "Cluster " + c.name + " · " + c.policy,
          c.queue && (c.queue.max_size > 0 || c.queue.depth > 0)
            ? el("span", { class: "queue", "data-col": "queue", title: JSON.stringify(c.queue.by_priority) }, " · queued " + c.queue.depth + " / " + c.queue.max_size)
            : ""),
        el("div", { class: "scroll" }, el("table", {},
          el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", {}, h)))),
          el("tbody", {}, ...rows))));
    });
    document.getElementById("clusters").replaceChildren(...clusters);
    last = next;
    lastAt = now;
    document.getElementById("updated").textContent = (status.draining ? "DRAINING · " : "") + "updated " + clock(Date.now());
  }
  async function tick() {
    try {
      const res = await fetch("status", { cache: "no-store" });
      if (!res.ok) throw new Error("status " + res.status);
      render(await res.json());
      failingSince = 0;
      document.body.classList.remove("stale");
      document.getElementById("error").textContent = "";
    } catch (err) {
      if (!failingSince) failingSince = Date.now();
      document.body.classList.add("stale");
      document.getElementById("error").textContent = "cannot reach Fulcrum since " + clock(failingSince) + " (" + err.message + "); the figures below are from before";
    }
    setTimeout(tick, period);
  }
  tick();
})();
</script>
</body>
</html>
`;
