/**
 * The status page at `/`: one self-contained HTML page (no build step, no external assets) that
 * polls `/status` every second and shows every listener, cluster and endpoint — health, weight,
 * drained, active, request rate and errors — like HAProxy's stats page. `?refresh=MS` changes the
 * period.
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
  h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
  .meta { color: #5b6472; font-size: .85rem; }
  table { border-collapse: collapse; background: #fff; min-width: 40rem; box-shadow: 0 1px 2px #0001; }
  th, td { padding: .35rem .75rem; text-align: left; border-bottom: 1px solid #e5e8ec; font-variant-numeric: tabular-nums; }
  th { background: #eef1f5; font-weight: 600; font-size: .85rem; }
  td.num { text-align: right; }
  .health { display: inline-block; padding: 0 .5rem; border-radius: .6rem; font-size: .8rem; font-weight: 600; }
  .healthy { background: #d9f2e3; color: #14633a; }
  .unhealthy { background: #fbdcdc; color: #8a1c1c; }
  .ejected { background: #fde9c8; color: #7a4a00; }
  .drained { background: #e3e6ea; color: #39414d; }
  .error { color: #8a1c1c; }
</style>
</head>
<body>
<h1>Fulcrum</h1>
<div class="meta"><span id="updated">loading…</span> · refreshes every <span id="period"></span> ms</div>
<div id="error" class="error"></div>
<h2>Listeners</h2>
<table id="listeners"><thead><tr><th>name</th><th>protocol</th><th>engine</th><th>address</th><th>active</th></tr></thead><tbody></tbody></table>
<div id="clusters"></div>
<script>
(() => {
  const period = Number(new URLSearchParams(location.search).get("refresh")) || 1000;
  document.getElementById("period").textContent = String(period);
  let last = new Map();
  let lastAt = 0;
  const el = (tag, attrs, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  };
  const num = (v) => el("td", { class: "num" }, v);
  function render(status) {
    const now = performance.now();
    const seconds = lastAt ? (now - lastAt) / 1000 : 0;
    const tbody = document.querySelector("#listeners tbody");
    tbody.replaceChildren(...status.listeners.map((l) =>
      el("tr", { "data-listener": l.name }, el("td", {}, l.name), el("td", {}, l.protocol), el("td", {}, l.engine ?? "—"), el("td", {}, l.address), num(l.active))));
    const next = new Map();
    const clusters = status.clusters.map((c) => {
      const rows = c.endpoints.map((e) => {
        const key = c.name + "|" + e.address;
        next.set(key, e.total);
        const before = last.get(key);
        const rate = seconds > 0 && before !== undefined ? ((e.total - before) / seconds).toFixed(1) : "—";
        const state = e.drained ? "drained" : e.health;
        return el("tr", { "data-endpoint": e.address, "data-state": state },
          el("td", {}, e.address),
          el("td", {}, el("span", { class: "health " + e.health }, e.health)),
          el("td", {}, e.drained ? el("span", { class: "health drained" }, "drained") : "no"),
          num(e.weight), num(e.active), num(rate), num(e.total), num(e.failures));
      });
      return el("section", { "data-cluster": c.name },
        el("h2", {}, "Cluster " + c.name + " · " + c.policy),
        el("table", {},
          el("thead", {}, el("tr", {}, ...["endpoint", "health", "drained", "weight", "active", "req/s", "total", "errors"].map((h) => el("th", {}, h)))),
          el("tbody", {}, ...rows)));
    });
    document.getElementById("clusters").replaceChildren(...clusters);
    last = next;
    lastAt = now;
    document.getElementById("updated").textContent = (status.draining ? "DRAINING · " : "") + "updated " + new Date().toLocaleTimeString();
  }
  async function tick() {
    try {
      const res = await fetch("status", { cache: "no-store" });
      if (!res.ok) throw new Error("status " + res.status);
      render(await res.json());
      document.getElementById("error").textContent = "";
    } catch (err) {
      document.getElementById("error").textContent = "cannot reach Fulcrum: " + err.message;
    }
    setTimeout(tick, period);
  }
  tick();
})();
</script>
</body>
</html>
`;
