/**
 * `moat.yaml` text → validated config, or a `ConfigError` naming `file:line:column` and the field path.
 * Pure. Loaded lazily (only when a config file exists) because the YAML parser and zod are the heaviest
 * modules moat has.
 */
import * as z from "zod/mini";
import { ConfigError } from "../errors.ts";
import { checkMountTargets } from "../run/mounts.ts";
import { parseCpus, parseMemory, parsePids, type ParseResult } from "../run/resources.ts";
import { SANDBOX_VALUES } from "../sandbox/decide.ts";
import type { ConfigMount, MoatConfig } from "./types.ts";
import { readYaml, showPath, whereOf } from "./yaml.ts";
import { normalizeHost, parseHostPattern } from "../net/host_policy.ts";
import { parseTcpMapping } from "../net/tcp_map.ts";
import { parseHttpRule } from "../net/http_rules.ts";

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** `network:` as a word; `open` is another name for `default` (the engine's default network). */
const NETWORK_VALUES = ["default", "open", "none", "allowlist"] as const;
/** Keys `network:` may have as a map. */
const NETWORK_KEYS = ["policy", "allow", "tcp"];

/** The resource parsers by field; each also gives the words for its errors. */
const RESOURCES: Record<string, (v: string | number) => ParseResult<number>> = {
  memory: parseMemory,
  // The host's CPU count is checked at run time, against the engine's host.
  cpus: (v) => parseCpus(v),
  pids: parsePids,
};
const resource = (field: string) =>
  z.union([z.string(), z.number()]).check(z.refine((v) => RESOURCES[field]!(v).ok));

const mount = z.strictObject({
  source: z.string().check(z.minLength(1)),
  target: z.string().check(z.minLength(1)),
  readonly: z.optional(z.boolean()),
});

/** Keys a `mounts:` entry may have, for "did you mean". */
export const MOUNT_KEYS = Object.keys(mount.shape);

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
  memory: z.optional(resource("memory")),
  cpus: z.optional(resource("cpus")),
  pids: z.optional(resource("pids")),
  // A word or a map: checked by `checkNetwork`, which says where exactly what is wrong.
  network: z.optional(z.unknown()),
  read_only: z.optional(z.boolean()),
  mounts: z.optional(z.array(mount)),
  grants: z.optional(z.array(z.string().check(z.regex(NAME)))),
  warm: z.optional(z.boolean()),
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
  memory: "a size such as 512m or 2g",
  cpus: "a number of CPUs such as 1.5 or 2",
  pids: "a whole number of processes such as 1024",
  network: 'one of "default" (or "open"), "none", "allowlist", or a map such as {allow: [api.github.com]}',
  read_only: "true or false",
  mounts: "a list of mounts, each a map such as {source: ./data, target: /data}",
  grants: "a list of grant names, such as [anthropic]",
  warm: "true or false",
};

/** The same for the fields of one `mounts:` entry (the entry itself under ""). */
const MOUNT_EXPECT: Record<string, string> = {
  "": "a map of source, target and (optionally) readonly, such as {source: ./data, target: /data}",
  source: "a host path, absolute or relative to the workspace, such as ./data",
  target: "an absolute path in the container, such as /data",
  readonly: "true or false",
};

/** What to write instead, by field. */
const HINT: Record<string, string> = {
  sandbox: "Write  sandbox: gvisor  (the default) or  sandbox: none  to run without gVisor",
  memory: "Write a size with its unit, e.g.  memory: 2g   (k, m, g and t are powers of 1024)",
  cpus: "Write a number of CPUs, e.g.  cpus: 1.5",
  pids: "Write a whole number, e.g.  pids: 4096",
  network: "Write  network: {allow: [api.github.com]}  to reach only the hosts named,  network: none  for " +
    "loopback only, or  network: default  for the engine's network",
  read_only: "Write  read_only: true  or  read_only: false",
  warm: "Write  warm: true  (runs take a sandbox booted ahead) or  warm: false",
  grants: "Name grants made with  moat grant NAME  (see them:  moat grant list), e.g.  grants: [anthropic]",
  mounts: "Write each mount as a map, e.g.\n" +
    "  mounts:\n" +
    "    - {source: ./data, target: /data, readonly: true}",
};

/** Parse and validate. `file` is the path shown in errors. */
export function parseConfig(text: string, file: string): MoatConfig {
  const { value, where, position } = readYaml(text, file);
  if (value === undefined || value === null) return {};
  const fail = (offset: number, path: string, problem: string, hint?: string): never => {
    const { line, col } = position(offset);
    throw new ConfigError(file, line, col, path, problem, hint);
  };
  if (!isMap(value)) {
    fail(
      where.at,
      "",
      `the config must be a map of settings (e.g.  image: debian:bookworm-slim); got ${describeValue(value)}`,
    );
  }
  const offsetOf = (path: (string | number)[]) => whereOf(where, path).where.at;
  const result = schema.safeParse(value);
  if (result.success) {
    // Numbers and booleans in `env` and `command` are passed on as written (`1.50` stays "1.50").
    const asWritten = (path: (string | number)[], v: string | number | boolean) => {
      if (typeof v === "string") return v;
      const written = whereOf(where, path).where.written;
      return written ? text.slice(written[0], written[1]) : String(v);
    };
    // The env as validated, not as the schema rebuilt it: that would drop a variable named __proto__.
    const env = (value as { env?: Record<string, string | number | boolean> }).env;
    const config = normalise(
      { ...result.data, ...(env ? { env } : {}) },
      asWritten,
      (i) => ({ file, ...position(offsetOf(["mounts", i])) }),
    );
    // Checked against the host only at run time, so the value's position travels with it.
    if (config.cpus !== undefined) config.cpusWhere = { file, ...position(offsetOf(["cpus"])) };
    const network = (value as { network?: unknown }).network;
    if (network !== undefined) {
      const keyOf = (path: (string | number)[]) => whereOf(where, path).where.key ?? offsetOf(path);
      Object.assign(config, checkNetwork(network, offsetOf, keyOf, fail));
    }
    const bad = checkMountTargets(config.mounts ?? [], { readOnly: config.readOnly ?? false });
    if (bad) {
      fail(offsetOf(["mounts", bad.index, "target"]), `mounts[${bad.index}].target`, bad.problem, bad.hint);
    }
    return config;
  }

  // An unknown key first: a misspelt key also makes the key it was meant to be look missing.
  const issues = result.error.issues;
  const issue = issues.find((i) => i.code === "unrecognized_keys") ?? issues[0]!;
  const path = issue.path.map(String);
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0]!;
    const keyWhere = whereOf(where, [...path, key]).where;
    const known = path[0] === "mounts" ? MOUNT_KEYS : CONFIG_KEYS;
    const near = nearest(key, known);
    fail(
      keyWhere.key ?? keyWhere.at,
      showPath([...issue.path, key]),
      `unknown key "${key}"${path[0] === "mounts" ? " in a mount" : ""}`,
      near
        ? `Did you mean "${near}"?`
        : `Known keys${path[0] === "mounts" ? " of a mount" : ""}: ${known.join(", ")}`,
    );
  }
  const top = path[0] ?? "";
  // A bad item of a command list is pointed at by the item (the schema blames the whole list).
  const command = (value as { command?: unknown }).command;
  if (top === "command" && Array.isArray(command)) {
    const i = command.findIndex((v) => !["string", "number", "boolean"].includes(typeof v));
    if (i !== -1) {
      fail(
        offsetOf(["command", i]),
        `command[${i}]`,
        `must be a string, number or boolean (one argument); got ${describeValue(command[i])}`,
        'Write each argument as a string, e.g.  command: ["npm", "test"]',
      );
    }
  }
  // A bad key is pointed at by its key; a bad value by its value (a missing one by its entry).
  const found = whereOf(where, path);
  const offset = issue.code === "invalid_key" ? found.where.key ?? found.where.at : found.where.at;
  const bad = getPath(value, path);
  if (top === "mounts" && path.length === 3 && bad === undefined) {
    fail(
      offset,
      showPath(issue.path),
      `missing: every mount needs a source and a target`,
      HINT["mounts"],
    );
  }
  const got = issue.code === "invalid_key" ? JSON.stringify(path.at(-1)) : describeValue(bad);
  const parser = RESOURCES[top];
  const parsed = parser && (typeof bad === "string" || typeof bad === "number") ? parser(bad) : undefined;
  const expected = top === "env" && issue.code === "invalid_key"
    ? "an environment variable name (letters, digits and _, not starting with a digit)"
    : top === "env" && path.length === 2
    ? "a string, number or boolean"
    : parsed && !parsed.ok
    ? parsed.expected
    : top === "mounts" && path.length > 1
    ? MOUNT_EXPECT[path[2] ?? ""] ?? "a valid value"
    : EXPECT[top] ?? "a valid value";
  const dockerStyle = top === "mounts" && path.length === 2 && typeof bad === "string" && bad.includes(":");
  return fail(
    offset,
    showPath(issue.path),
    `must be ${expected}; got ${got}`,
    dockerStyle
      ? `moat does not read docker's source:target form. ${HINT["mounts"]}`
      : top === "mounts" && path[2] === "readonly"
      ? "Write  readonly: true  or  readonly: false  (the default)"
      : HINT[top],
  );
}

/** A map as the YAML reader builds it (no prototype) or as written in code. */
function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function normalise(
  data: z.infer<typeof schema>,
  asWritten: (path: (string | number)[], v: string | number | boolean) => string,
  mountWhere: (index: number) => ConfigMount["where"],
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
  // The schema has run each parser already; here they give the value.
  const parsed = (field: string, v: string | number) => (RESOURCES[field]!(v) as { value: number }).value;
  if (data.memory !== undefined) out.memory = parsed("memory", data.memory);
  if (data.cpus !== undefined) out.cpus = parsed("cpus", data.cpus);
  if (data.pids !== undefined) out.pids = parsed("pids", data.pids);
  if (data.read_only !== undefined) out.readOnly = data.read_only;
  if (data.grants !== undefined) out.grants = [...new Set(data.grants)];
  if (data.warm !== undefined) out.warm = data.warm;
  if (data.mounts !== undefined) {
    out.mounts = data.mounts.map((m, i) => ({
      source: m.source,
      target: m.target,
      readonly: m.readonly ?? false,
      where: mountWhere(i),
    }));
  }
  return out;
}

/**
 * `network:` checked: a word (`default`/`open`, `none`, `allowlist`), or a map of `policy` and `allow` (the
 * hosts a run may reach, lib/net/host_policy.ts; `policy` then defaults to `allowlist`). Each problem is
 * reported where it is written.
 */
function checkNetwork(
  v: unknown,
  at: (path: (string | number)[]) => number,
  keyAt: (path: (string | number)[]) => number,
  fail: (offset: number, path: string, problem: string, hint?: string) => never,
): Pick<MoatConfig, "network" | "allow" | "tcp" | "rules"> {
  const mode = (w: unknown, path: (string | number)[]): "default" | "none" | "allowlist" => {
    if (typeof w === "string" && (NETWORK_VALUES as readonly string[]).includes(w)) {
      return w === "open" ? "default" : w as "default" | "none" | "allowlist";
    }
    return fail(
      at(path),
      showPath(path),
      `must be ${EXPECT["network"]}; got ${describeValue(w)}`,
      HINT["network"],
    );
  };
  if (!isMap(v)) {
    const m = mode(v, ["network"]);
    return m === "allowlist" ? { network: m, allow: [] } : { network: m };
  }
  for (const key of Object.keys(v)) {
    if (!NETWORK_KEYS.includes(key)) {
      const near = nearest(key, NETWORK_KEYS);
      fail(
        keyAt(["network", key]),
        `network.${key}`,
        `unknown key "${key}" in network`,
        near ? `Did you mean "${near}"?` : `Known keys of network: ${NETWORK_KEYS.join(", ")}`,
      );
    }
  }
  const policy = v.policy === undefined ? "allowlist" : mode(v.policy, ["network", "policy"]);
  const list = v.allow ?? [];
  if (!Array.isArray(list)) {
    fail(
      at(["network", "allow"]),
      "network.allow",
      `must be a list of hosts; got ${describeValue(list)}`,
      ALLOW_HINT,
    );
  }
  const rules: Array<{ host: string; rules: string[]; index: number }> = [];
  const allow = (list as unknown[]).map((entry, i) => {
    const path = ["network", "allow", i];
    if (isMap(entry)) {
      const withRules = checkHostRules(entry, path, at, keyAt, fail);
      const same = (h: string) => normalizeHost(h.trim());
      const twice = rules.findIndex((r) => same(r.host) === same(withRules.host));
      if (twice !== -1) {
        fail(
          at([...path, "host"]),
          showPath([...path, "host"]),
          `"${withRules.host}" has rules already, in network.allow[${rules[twice]!.index}]`,
          "Give a host's rules in one entry, in the order they apply",
        );
      }
      rules.push({ ...withRules, index: i });
      return withRules.host;
    }
    if (typeof entry !== "string") {
      fail(
        at(path),
        showPath(path),
        `must be a host, such as api.github.com, or a map of host and rules; got ${describeValue(entry)}`,
        ALLOW_HINT,
      );
    }
    const pattern = parseHostPattern(entry as string);
    if (typeof pattern === "string") return fail(at(path), showPath(path), pattern, ALLOW_HINT);
    return entry as string;
  });
  const tcp = checkTcp(v.tcp ?? [], at, fail);
  for (const [key, given] of [["allow", allow], ["tcp", tcp]] as const) {
    if (policy !== "allowlist" && given.length > 0) {
      fail(
        keyAt(["network", key]),
        `network.${key}`,
        `${key === "allow" ? "names hosts" : "maps ports"} a run may reach, which policy ${
          policy === "default" ? "open" : policy
        } does not limit`,
        `Drop policy (a network with ${key} is an allowlist), or write  policy: allowlist`,
      );
    }
  }
  if (policy !== "allowlist") return { network: policy };
  return {
    network: "allowlist",
    allow,
    ...(tcp.length > 0 ? { tcp } : {}),
    ...(rules.length > 0 ? { rules: rules.map(({ host, rules }) => ({ host, rules })) } : {}),
  };
}

/** Keys of an allow entry written as a map. */
const HOST_RULES_KEYS = ["host", "rules"];

/** An allow entry written as a map: `host` (an allow-list entry) and its `rules` (lib/net/http_rules.ts). */
function checkHostRules(
  entry: Record<string, unknown>,
  path: (string | number)[],
  at: (path: (string | number)[]) => number,
  keyAt: (path: (string | number)[]) => number,
  fail: (offset: number, path: string, problem: string, hint?: string) => never,
): { host: string; rules: string[] } {
  for (const key of Object.keys(entry)) {
    if (!HOST_RULES_KEYS.includes(key)) {
      const near = nearest(key, HOST_RULES_KEYS);
      fail(
        keyAt([...path, key]),
        showPath([...path, key]),
        `unknown key "${key}" in an allow entry`,
        near ? `Did you mean "${near}"?` : "An allow entry written as a map has host and rules",
      );
    }
  }
  if (entry.host === undefined || entry.rules === undefined) {
    fail(
      at(path),
      showPath(path),
      `missing: an allow entry written as a map needs a host and its rules`,
      RULES_HINT,
    );
  }
  if (typeof entry.host !== "string") {
    fail(
      at([...path, "host"]),
      showPath([...path, "host"]),
      `must be a host, such as api.example.com; got ${describeValue(entry.host)}`,
      RULES_HINT,
    );
  }
  const pattern = parseHostPattern(entry.host as string);
  if (typeof pattern === "string") {
    return fail(at([...path, "host"]), showPath([...path, "host"]), pattern, RULES_HINT);
  }
  if (!Array.isArray(entry.rules) || entry.rules.length === 0) {
    fail(
      at([...path, "rules"]),
      showPath([...path, "rules"]),
      Array.isArray(entry.rules)
        ? "is empty, which would deny every request: a host with rules is reached only as they allow"
        : `must be a list of rules, such as "allow GET /v1/*"; got ${describeValue(entry.rules)}`,
      RULES_HINT,
    );
  }
  const rules = (entry.rules as unknown[]).map((rule, j) => {
    const rulePath = [...path, "rules", j];
    if (typeof rule !== "string") {
      fail(
        at(rulePath),
        showPath(rulePath),
        `must be a rule ACTION METHOD PATH, such as "allow GET /v1/*"; got ${describeValue(rule)}`,
        RULES_HINT,
      );
    }
    const parsed = parseHttpRule(rule as string);
    if (typeof parsed === "string") return fail(at(rulePath), showPath(rulePath), parsed, RULES_HINT);
    return parsed.text;
  });
  return { host: entry.host as string, rules };
}

const RULES_HINT = "Write a host with rules as a map; the first rule that matches a request decides, e.g.\n" +
  "  network:\n    allow:\n      - host: api.example.com\n" +
  '        rules: ["allow GET /v1/*", "deny * /*"]';

/** `network.tcp`: a list of `PORT=HOST:PORT` (lib/net/tcp_map.ts), each local port once. */
function checkTcp(
  list: unknown,
  at: (path: (string | number)[]) => number,
  fail: (offset: number, path: string, problem: string, hint?: string) => never,
): string[] {
  if (!Array.isArray(list)) {
    fail(
      at(["network", "tcp"]),
      "network.tcp",
      `must be a list of mappings; got ${describeValue(list)}`,
      TCP_HINT,
    );
  }
  const seen = new Map<number, number>();
  return (list as unknown[]).map((entry, i) => {
    const path = ["network", "tcp", i];
    if (typeof entry !== "string") {
      fail(
        at(path),
        showPath(path),
        `must be a mapping PORT=HOST:PORT, such as "22=github.com:22"; got ${describeValue(entry)}`,
        TCP_HINT,
      );
    }
    const m = parseTcpMapping(entry as string);
    if (typeof m === "string") {
      const own = typeof entry === "string" && m.includes("relay's own");
      const upstream = (entry as string).slice((entry as string).indexOf("=") + 1).trim();
      return fail(
        at(path),
        showPath(path),
        m,
        own ? `Map another port to it, e.g.  "2222=${upstream}"` : TCP_HINT,
      );
    }
    const first = seen.get(m.port);
    if (first !== undefined) {
      fail(
        at(path),
        showPath(path),
        `port ${m.port} is mapped already, by network.tcp[${first}]: a port goes to one upstream`,
        "Give each mapping its own port",
      );
    }
    seen.set(m.port, i);
    return m.text;
  });
}

const TCP_HINT =
  'Write each mapping as PORT=HOST:PORT, quoted, e.g.\n  network:\n    tcp:\n      - "22=github.com:22"';

const ALLOW_HINT =
  'Write each host on its own line, e.g.\n  network:\n    allow:\n      - api.github.com\n      - "*.npmjs.org"';

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
  if (typeof v === "symbol") return v.description ?? "a value moat cannot read"; // a tagged value (yaml.ts)
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
