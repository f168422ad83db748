/**
 * `moat.yaml` text → validated config, or a `ConfigError` naming `file:line:column` and the field path.
 * Pure. Loaded lazily (only when a config file exists) because the YAML parser and zod are the heaviest
 * modules moat has.
 */
import { isMap, isPair, isScalar, LineCounter, parseDocument, type YAMLMap } from "yaml";
import * as z from "zod/mini";
import { ConfigError } from "../errors.ts";
import { SANDBOX_VALUES } from "../sandbox/decide.ts";
import type { MoatConfig } from "./types.ts";

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

const schema = z.strictObject({
  name: z.optional(z.string().check(z.regex(NAME))),
  image: z.optional(z.string().check(z.minLength(1))),
  command: z.optional(
    z.union([
      z.string().check(z.minLength(1)),
      z.array(z.union([z.string(), z.number(), z.boolean()])).check(z.minLength(1)),
    ]),
  ),
  env: z.optional(
    z.record(z.string().check(z.regex(ENV_KEY)), z.union([z.string(), z.number(), z.boolean()])),
  ),
  sandbox: z.optional(z.enum(SANDBOX_VALUES)),
  runtime: z.optional(z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/))),
});

/** Keys a config may have, for "did you mean". */
export const CONFIG_KEYS = Object.keys(schema.shape);

/** What each field must look like, in words, for error messages. */
const EXPECT: Record<string, string> = {
  name: "a name of letters, digits, '.', '_' or '-' (at most 64, starting with a letter or digit)",
  image: "an image reference such as debian:bookworm-slim",
  command: 'a string (run by sh -c) or a list of strings, e.g. ["npm", "test"]',
  env: "a map of NAME: value",
  sandbox: `one of ${SANDBOX_VALUES.map((v) => `"${v}"`).join(", ")}`,
  runtime: "the name of a gVisor runtime registered with Docker, e.g. runsc",
};

/** Parse and validate. `file` is the path shown in errors. */
export function parseConfig(text: string, file: string): MoatConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined) => {
    const p = lineCounter.linePos(offset ?? 0);
    return { line: p.line, col: p.col };
  };
  const firstError = doc.errors[0];
  if (firstError) {
    const { line, col } = at(firstError.pos[0]);
    const problem = firstError.message.split("\n")[0]!.replace(/ at line \d+, column \d+.*$/, "");
    throw new ConfigError(
      file,
      line,
      col,
      "",
      `YAML syntax error: ${problem}`,
      "Fix the YAML at that position",
    );
  }
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return {};
  if (!isMap(root)) {
    const { line, col } = at(root.range?.[0]);
    throw new ConfigError(
      file,
      line,
      col,
      "",
      "the config must be a map of settings, e.g.  image: debian:bookworm-slim",
    );
  }
  const value = doc.toJS();
  const result = schema.safeParse(value);
  if (result.success) {
    // Numbers and booleans in `env` and `command` are passed on as written (`1.50` stays "1.50").
    const asWritten = (path: (string | number)[], v: string | number | boolean) => {
      if (typeof v === "string") return v;
      const node = doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
      return node?.range ? text.slice(node.range[0], node.range[1]) : String(v);
    };
    return normalise(result.data, asWritten);
  }

  const issue = result.error.issues[0]!;
  const path = issue.path.map(String);
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0]!;
    const keyNode = findKeyNode(root, [...path, key]);
    const { line, col } = at(keyNode?.range?.[0]);
    const near = nearest(key, CONFIG_KEYS);
    throw new ConfigError(
      file,
      line,
      col,
      [...path, key].join("."),
      `unknown key "${key}"`,
      near ? `Did you mean "${near}"?` : `Known keys: ${CONFIG_KEYS.join(", ")}`,
    );
  }
  // A bad key is pointed at by its key; a bad value by its value (or its key when the value is empty).
  const node = issue.code === "invalid_key"
    ? findKeyNode(root, path)
    : doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
  const { line, col } = at(node?.range?.[0] ?? findKeyNode(root, path)?.range?.[0]);
  const top = path[0] ?? "";
  const got = issue.code === "invalid_key"
    ? JSON.stringify(path.at(-1))
    : describeValue(getPath(value, path));
  const expected = top === "env" && issue.code === "invalid_key"
    ? "an environment variable name (letters, digits and _, not starting with a digit)"
    : top === "env" && path.length === 2
    ? "a string, number or boolean"
    : EXPECT[top] ?? "a valid value";
  throw new ConfigError(
    file,
    line,
    col,
    path.join("."),
    `must be ${expected}; got ${got}`,
    top === "sandbox"
      ? "Write  sandbox: gvisor  (the default) or  sandbox: none  to run without gVisor"
      : undefined,
  );
}

function normalise(
  data: z.infer<typeof schema>,
  asWritten: (path: (string | number)[], v: string | number | boolean) => string,
): MoatConfig {
  const out: MoatConfig = {};
  if (data.name !== undefined) out.name = data.name;
  if (data.image !== undefined) out.image = data.image;
  if (data.command !== undefined) {
    const cmd = data.command;
    out.command = typeof cmd === "string"
      ? ["/bin/sh", "-c", cmd]
      : cmd.map((v, i) => asWritten(["command", i], v));
  }
  if (data.env !== undefined) {
    out.env = Object.fromEntries(Object.entries(data.env).map(([k, v]) => [k, asWritten(["env", k], v)]));
  }
  if (data.sandbox !== undefined) out.sandbox = data.sandbox;
  if (data.runtime !== undefined) out.runtime = data.runtime;
  return out;
}

function findKeyNode(root: YAMLMap, path: string[]): { range?: [number, number, number] | null } | undefined {
  let map: unknown = root;
  let found: { range?: [number, number, number] | null } | undefined;
  for (const seg of path) {
    if (!isMap(map)) return found;
    const pair = map.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === seg);
    if (!pair) return found;
    found = pair.key as { range?: [number, number, number] | null };
    map = pair.value;
  }
  return found;
}

function getPath(value: unknown, path: string[]): unknown {
  let v = value;
  for (const seg of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string, unknown>)[seg];
  }
  return v;
}

function describeValue(v: unknown): string {
  if (v === null || v === undefined) return "nothing (null)";
  if (typeof v === "boolean") return `${v} (a YAML boolean)`;
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number") return String(v);
  if (Array.isArray(v)) return "a list";
  return "a map";
}

/** The closest known key by edit distance, if it is close enough to be a typo. */
export function nearest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
