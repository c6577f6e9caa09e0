/**
 * SVG charts the bench writes beside its reports: latency percentiles per group (a row of `overhead`,
 * a load level of `policies`), one series per target or policy. Each series is one `<g
 * data-series="NAME">`: a bar to p99 with a p50 tick (and a p99.9 tick when known), on a log scale so
 * 0.05 ms and 500 ms read on one chart. Plain SVG, no script, no external font.
 */

export interface LatencyPoint {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms?: number | undefined;
}

export interface LatencyChart {
  readonly title: string;
  readonly groups: readonly string[];
  /** `values[i]` belongs to `groups[i]`; undefined leaves a gap. */
  readonly series: readonly {
    readonly name: string;
    readonly values: readonly (LatencyPoint | undefined)[];
  }[];
}

const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f"];

const esc = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

function fmtMs(ms: number): string {
  return ms >= 1 ? `${Number(ms.toPrecision(3))} ms` : `${Number((ms * 1000).toPrecision(3))} µs`;
}

export function latencyChartSvg(chart: LatencyChart): string {
  const all = chart.series.flatMap((s) =>
    s.values.flatMap((v) => (v ? [v.p50Ms, v.p99Ms, v.p999Ms ?? v.p99Ms] : [])),
  );
  const positive = all.filter((x) => x > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...positive, 1)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...positive, lo * 10)));
  const groupW = Math.max(90, chart.series.length * 22 + 30);
  const left = 70;
  const top = 40;
  const plotH = 300;
  const legendH = 24 * Math.ceil(chart.series.length / 4);
  const width = left + chart.groups.length * groupW + 20;
  const height = top + plotH + 60 + legendH;
  const y = (ms: number): number =>
    top +
    plotH -
    ((Math.log10(Math.max(ms, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${left}" y="22" font-size="15" font-weight="bold">${esc(chart.title)}</text>`,
  ];
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    const yy = y(d).toFixed(1);
    out.push(`<line x1="${left}" x2="${width - 20}" y1="${yy}" y2="${yy}" stroke="#dddddd"/>`);
    out.push(
      `<text x="${left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">${fmtMs(d)}</text>`,
    );
  }
  chart.groups.forEach((g, gi) => {
    const x = left + gi * groupW + groupW / 2;
    out.push(`<text x="${x}" y="${top + plotH + 18}" text-anchor="middle">${esc(g)}</text>`);
  });
  chart.series.forEach((s, si) => {
    const color = PALETTE[si % PALETTE.length] ?? "#333333";
    out.push(`<g data-series="${esc(s.name)}" fill="${color}" stroke="${color}">`);
    s.values.forEach((v, gi) => {
      if (!v) return;
      const x = left + gi * groupW + 15 + si * 22;
      const yTop = y(v.p99Ms);
      const tip = `${s.name}, ${chart.groups[gi] ?? ""}: p50 ${fmtMs(v.p50Ms)}, p99 ${fmtMs(v.p99Ms)}`;
      out.push(
        `<rect x="${x}" y="${yTop.toFixed(1)}" width="16" height="${(top + plotH - yTop).toFixed(1)}" fill-opacity="0.45"><title>${esc(tip)}</title></rect>`,
      );
      out.push(
        `<line x1="${x - 2}" x2="${x + 18}" y1="${y(v.p50Ms).toFixed(1)}" y2="${y(v.p50Ms).toFixed(1)}" stroke-width="3"/>`,
      );
      if (v.p999Ms !== undefined) {
        const y9 = y(v.p999Ms).toFixed(1);
        out.push(
          `<line x1="${x + 8}" x2="${x + 8}" y1="${y9}" y2="${yTop.toFixed(1)}" stroke-dasharray="2,2"/>`,
        );
        out.push(`<circle cx="${x + 8}" cy="${y9}" r="3"/>`);
      }
    });
    const lx = left + (si % 4) * 170;
    const ly = top + plotH + 40 + Math.floor(si / 4) * 24;
    out.push(`<rect x="${lx}" y="${ly - 10}" width="14" height="14" fill-opacity="0.45"/>`);
    out.push(`<text x="${lx + 20}" y="${ly + 1}" stroke="none" fill="#222222">${esc(s.name)}</text>`);
    out.push(`</g>`);
  });
  out.push(
    `<text x="${width - 20}" y="${top - 6}" text-anchor="end" fill="#555555">bar: p99 · thick tick: p50${
      chart.series.some((s) => s.values.some((v) => v?.p999Ms !== undefined)) ? " · dot: p99.9" : ""
    } · log scale</text>`,
  );
  out.push(`</svg>`);
  return `${out.join("\n")}\n`;
}
