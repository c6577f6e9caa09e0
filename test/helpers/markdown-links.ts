/**
 * Relative links in Markdown files and the headings they may point at, as GitHub renders them: links
 * inside code (fenced blocks, inline spans) are not links; a heading's anchor is GitHub's slug of its
 * text (lower case, punctuation dropped, spaces to hyphens, `-1`, `-2` … for repeats).
 */
import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, extname, join, relative, resolve, sep } from "node:path";

/** Markdown text without fenced code blocks (kept as empty lines, so line numbers stay). */
function withoutFences(markdown: string): string[] {
  const out: string[] = [];
  let fence: string | undefined;
  for (const line of markdown.split("\n")) {
    const opener = /^\s{0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence === undefined && opener !== undefined) {
      fence = opener;
      out.push("");
    } else if (fence !== undefined) {
      if (line.trim().startsWith(fence) && line.trim().replace(/[`~]/g, "") === "") fence = undefined;
      out.push("");
    } else out.push(line);
  }
  return out;
}

function withoutCodeSpans(line: string): string {
  return line.replace(/(`+)(?:(?!\1).)+?\1/g, "");
}

/** GitHub's anchor for a heading text (github-slugger's rules). */
export function githubSlug(heading: string): string {
  const text = heading
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/<[^>]+>/g, "")
    .replace(/`/g, "")
    .replace(/\*\*|__|\*/g, "");
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
    .replace(/ /g, "-");
}

/** Every anchor a Markdown file offers: heading slugs (repeats numbered) and explicit `<a id|name>`. */
export function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of withoutFences(markdown)) {
    const heading = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading !== undefined) {
      const slug = githubSlug(heading);
      const n = seen.get(slug) ?? 0;
      seen.set(slug, n + 1);
      anchors.add(n === 0 ? slug : `${slug}-${n}`);
    }
    for (const m of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(m[1]!);
  }
  return anchors;
}

export interface Link {
  readonly line: number;
  readonly target: string;
}

/** The link targets of a Markdown text: inline links and images, reference definitions, href/src. */
export function linksOf(markdown: string): Link[] {
  const links: Link[] = [];
  withoutFences(markdown).forEach((raw, i) => {
    const line = withoutCodeSpans(raw);
    const patterns = [
      /!?\[(?:[^\]]|\\\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g,
      /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/g,
      /(?:href|src)="([^"]+)"/g,
    ];
    for (const re of patterns) for (const m of line.matchAll(re)) links.push({ line: i + 1, target: m[1]! });
  });
  return links;
}

function isExternal(target: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("//");
}

/**
 * What is wrong with the relative links of one Markdown file inside `root`: a target that does not
 * exist, lies outside `root`, or names an anchor its Markdown file lacks. One message per problem.
 */
export function brokenLinks(root: string, file: string, markdown = readFileSync(file, "utf8")): string[] {
  const problems: string[] = [];
  const where = (link: Link): string => `${relative(root, file)}:${link.line}: ${link.target}`;
  for (const link of linksOf(markdown)) {
    if (isExternal(link.target)) continue;
    const hashAt = link.target.indexOf("#");
    const pathPart = decodeURI(hashAt === -1 ? link.target : link.target.slice(0, hashAt));
    const anchor = hashAt === -1 ? undefined : decodeURIComponent(link.target.slice(hashAt + 1));
    const target = pathPart === "" ? file : resolve(dirname(file), pathPart);
    if (target !== root && !target.startsWith(root + sep)) {
      problems.push(`${where(link)}: points outside the repository`);
      continue;
    }
    if (pathPart !== "" && !existsSync(target)) {
      problems.push(`${where(link)}: no such file`);
      continue;
    }
    if (anchor === undefined || anchor === "" || extname(target) !== ".md") continue;
    if (target !== file && statSync(target).isDirectory()) continue;
    const text = target === file ? markdown : readFileSync(target, "utf8");
    if (!anchorsOf(text).has(anchor)) problems.push(`${where(link)}: no heading with this anchor`);
  }
  return problems;
}

/**
 * The repository's files under `root`: what git tracks plus new files it does not ignore (so local
 * artifacts such as CPU profiles or bench output never count). Outside a git checkout (a source
 * tarball), every file below `root` except the `skip` names.
 */
export function repositoryFiles(root: string, skip: ReadonlySet<string>): string[] {
  try {
    const listed = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
      cwd: root,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    return listed
      .split("\0")
      .filter((f) => f !== "")
      .map((f) => join(root, f))
      .filter((f) => existsSync(f) && lstatSync(f).isFile())
      .sort();
  } catch {
    // not a git checkout: walk the tree
  }
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      if (skip.has(name)) continue;
      const path = join(dir, name);
      const stat = lstatSync(path); // a symbolic link (node_modules in a worktree) is not followed
      if (stat.isDirectory()) walk(path);
      else if (stat.isFile()) out.push(path);
    }
  };
  walk(root);
  return out;
}
