/**
 * The two texts inference awareness reads from workers, parsed without sockets: Prometheus text for
 * `load_metrics` (summed over label sets) and TorchServe's Ping health document.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sumPromMetric } from "../../src/health/load-metrics-scraper.js";
import { torchServeStatus } from "../../src/health/prober-torchserve.js";

const METRIC = "nv_inference_pending_request_count";

describe("load metrics text", { timeout: 10_000 }, () => {
  const cases: { name: string; text: string; want: number | undefined }[] = [
    {
      name: "sums every label set",
      text: [
        `# HELP ${METRIC} Instantaneous number of pending requests awaiting execution per-model.`,
        `# TYPE ${METRIC} gauge`,
        `${METRIC}{model="resnet",version="1"} 3`,
        `${METRIC}{model="bert",version="2"} 4`,
      ].join("\n"),
      want: 7,
    },
    { name: "a sample without labels, with a timestamp", text: `${METRIC} 5 1712345678000\n`, want: 5 },
    {
      name: "quoted label values may hold braces, commas, spaces and escaped quotes",
      text: `${METRIC}{model="a}b, c \\" d",version="1"} 2\n${METRIC}{model="x"} 1.5\n`,
      want: 3.5,
    },
    {
      name: "longer names that start with the metric are other metrics",
      text: `${METRIC}_total 100\n${METRIC}s{model="a"} 7\n${METRIC} 1\n`,
      want: 1,
    },
    {
      name: "NaN and ±Inf samples are skipped",
      text: `${METRIC}{m="a"} NaN\n${METRIC}{m="b"} +Inf\n${METRIC}{m="c"} 2\n`,
      want: 2,
    },
    {
      name: "CRLF line ends and indentation",
      text: `  ${METRIC}{m="a"} 2\r\n${METRIC}{m="b"} 3\r\n`,
      want: 5,
    },
    { name: "absent metric", text: `nv_inference_request_success{model="a"} 9\n`, want: undefined },
    { name: "only HELP/TYPE lines", text: `# HELP ${METRIC} x\n# TYPE ${METRIC} gauge\n`, want: undefined },
    { name: "an unclosed label set is skipped", text: `${METRIC}{model="a" 3\n${METRIC} 1\n`, want: 1 },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(sumPromMetric(c.text, METRIC), c.want));
  }
});

describe("TorchServe Ping health", { timeout: 10_000 }, () => {
  const cases: { body: string; want: string | undefined }[] = [
    { body: '{"status": "Healthy"}', want: "Healthy" },
    { body: '{\n  "status": "Partial Healthy"\n}', want: "Partial Healthy" },
    { body: '{"status":"Unhealthy"}', want: "Unhealthy" },
    { body: "Healthy", want: undefined },
    { body: "", want: undefined },
    { body: '["Healthy"]', want: undefined },
    { body: '{"status": 1}', want: undefined },
    { body: '{"state": "Healthy"}', want: undefined },
    { body: "null", want: undefined },
  ];
  for (const c of cases) {
    it(`${JSON.stringify(c.body)} → ${String(c.want)}`, () => assert.equal(torchServeStatus(c.body), c.want));
  }
});
