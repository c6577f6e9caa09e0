/**
 * The repository's documents hold together on their own: every relative link of every Markdown file
 * points at a file that exists inside the repository (and, with `#anchor` into a Markdown file, at a
 * heading GitHub renders with that anchor), and no text file names a file outside the repository.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, it } from "node:test";
import { anchorsOf, brokenLinks, githubSlug, repositoryFiles } from "../helpers/markdown-links.js";
import { repoRoot } from "../helpers/repo-root.js";

const ROOT = repoRoot();
/** Outside a git checkout: what .gitignore keeps out of the repository, plus git's own directory. */
const SKIP = new Set([".git", "node_modules", "dist", "test-artifacts"]);
const FILES = repositoryFiles(ROOT, SKIP);
const MARKDOWN = FILES.filter((f) => f.endsWith(".md"));

/**
 * Names of files that live beside the repository, never in it. Built from parts so that this file does
 * not name them itself.
 */
const OUTSIDE = [
  ["DESIGN", "md"].join("."),
  ["STYLE", "md"].join("."),
  ["..", "shared"].join("/"),
  ["", "work", ""].join("/"),
];

function isText(bytes: Buffer): boolean {
  return !bytes.subarray(0, 8192).includes(0);
}

describe("documentation links", { timeout: 60_000 }, () => {
  it("finds the repository's Markdown files", () => {
    const names = MARKDOWN.map((f) => relative(ROOT, f));
    for (const expected of [
      "README.md",
      "bench/RESULTS.md",
      "docs/architecture.md",
      "docs/configuration.md",
    ]) {
      assert.ok(names.includes(expected), `${expected} not found among ${names.length} Markdown files`);
    }
  });

  it("every relative link points at a file (and heading) that exists", () => {
    const problems = MARKDOWN.flatMap((f) => brokenLinks(ROOT, f));
    assert.deepEqual(problems, []);
  });

  it("no text file names a file outside the repository", () => {
    const hits: string[] = [];
    for (const file of FILES) {
      const bytes = readFileSync(file);
      if (!isText(bytes)) continue;
      const lines = bytes.toString("utf8").split("\n");
      lines.forEach((line, i) => {
        for (const s of OUTSIDE) if (line.includes(s)) hits.push(`${relative(ROOT, file)}:${i + 1}: ${s}`);
      });
    }
    assert.deepEqual(hits, []);
  });

  it("the checker reports a missing file, a missing anchor and a path outside the repository", () => {
    const file = join(ROOT, "docs", "example.md");
    const markdown = [
      "# Title",
      "## Health timing: `(threshold + 1) × interval`",
      "[fine](../README.md) [self](#title) [tail](#health-timing-threshold--1--interval)",
      "[gone](missing.md) [anchor](../README.md#no-such-heading) [out](../../elsewhere.md)",
      "```",
      "[in code](not-a-link.md)",
      "```",
      "`[in a span](also-not.md)` [site](https://example.com/x.md)",
    ].join("\n");
    assert.deepEqual(brokenLinks(ROOT, file, markdown), [
      "docs/example.md:4: missing.md: no such file",
      "docs/example.md:4: ../README.md#no-such-heading: no heading with this anchor",
      "docs/example.md:4: ../../elsewhere.md: points outside the repository",
    ]);
  });

  it("slugs headings as GitHub does", () => {
    assert.equal(githubSlug("Semantics that outside tools rely on"), "semantics-that-outside-tools-rely-on");
    assert.equal(githubSlug("`clusters[].health_check`"), "clustershealth_check");
    assert.equal(githubSlug("A 5-minute tour"), "a-5-minute-tour");
    assert.equal(githubSlug("Retries (64 KiB)"), "retries-64-kib");
    assert.deepEqual([...anchorsOf("# A\n## A\n## A\n")], ["a", "a-1", "a-2"]);
  });
});
