/**
 * `moat audit`: a run's audit log (lib/audit/): print it, check it, export it for another host, and print the
 * public key that checks this MOAT_HOME's logs.
 */
import { type AuditEntry, type CheckpointData, checkpointNote, keyId, verifyLog } from "../audit/chain.ts";
import { auditKey, formatPublicKey, parsePublicKey, readPublicKey } from "../audit/key.ts";
import { AUDIT_FILE } from "../audit/log.ts";
import { MoatError, UsageError } from "../errors.ts";
import { readRuns } from "../store/run_index.ts";
import { isFinal } from "../store/records.ts";
import { resolveRunRef } from "../store/refs.ts";
import { parseCommandArgs } from "./args.ts";
import { type CliContext, cliContext, formatTable } from "./context.ts";

export const AUDIT_HELP = `Usage: moat audit RUN [--json]
       moat audit verify RUN|FILE [--key KEY]
       moat audit export RUN -o FILE
       moat audit key

Every run has an audit log: what moat decided and did for it (the run's settings, each change of its
state, every network decision and the grant each request got), each entry chained to the one before by
its hash, with checkpoints signed by this MOAT_HOME's key. Changing, removing or reordering an entry is
found by moat audit verify.

  moat audit RUN           Print the run's log (RUN: an id, a unique id prefix, or a name)
      --json               Print its entries as JSON instead
  moat audit verify RUN    Check the chain and the signed checkpoints; exit 0 when intact, 1 naming
                           the first entry that is not as written, or saying the log was cut short
  moat audit verify FILE   The same for a bundle made by moat audit export, on any host
      --key KEY            The public key to check with (as moat audit key prints it); by default this
                           MOAT_HOME's, or for a bundle the key it names (pass --key to be sure)
  moat audit export RUN -o FILE
                           Write the run's log, its id and the public key into one file
  moat audit key           Print this MOAT_HOME's public key (made on first use): keep it off the host

Exit codes: 0 done (verify: intact); 1 verify: not intact; 2 usage error; 125 a log that cannot be read.

Examples:
  moat audit 3f2a
  moat audit verify 3f2a
  moat audit key > moat-audit.pub
  moat audit export 3f2a -o run.audit.json && moat audit verify run.audit.json --key "$(cat moat-audit.pub)"
`;

/** What `moat audit export` writes. */
export interface AuditBundle {
  format: "moat-audit-bundle/1";
  run: string;
  key: string;
  log: string;
}

type Opts =
  | { help: true }
  | { action: "show"; ref: string; json: boolean }
  | { action: "verify"; target: string; key: string | undefined }
  | { action: "export"; ref: string; out: string }
  | { action: "key" };

const HINT = "See:  moat audit --help";

/** Parse `moat audit` arguments. Pure; throws `UsageError`. */
export function parseAuditArgs(args: string[]): Opts {
  const { values, positionals } = parseCommandArgs("audit", args, {
    help: { type: "boolean", short: "h" },
    json: { type: "boolean" },
    key: { type: "string" },
    output: { type: "string", short: "o" },
  });
  if (values.help) return { help: true };
  const [first, ...rest] = positionals;
  const one = (what: string) => {
    if (rest.length === 0) throw new UsageError(`moat audit ${first} needs ${what}`, HINT);
    if (rest.length > 1) {
      throw new UsageError(`Unexpected argument "${rest[1]}" to moat audit ${first}`, HINT);
    }
    return rest[0]!;
  };
  const only = (action: string, allowed: string[]) => {
    for (
      const [flag, given] of [["--json", values.json], ["--key", values.key], ["-o", values.output]] as const
    ) {
      if (given !== undefined && given !== false && !allowed.includes(flag)) {
        throw new UsageError(`${flag} does not go with moat audit${action ? ` ${action}` : ""}`, HINT);
      }
    }
  };
  switch (first) {
    case undefined:
      throw new UsageError("moat audit needs a RUN, or one of verify, export, key", HINT);
    case "verify":
      only("verify", ["--key"]);
      return { action: "verify", target: one("a RUN or a FILE"), key: values.key };
    case "export": {
      only("export", ["-o"]);
      const ref = one("a RUN");
      if (!values.output) throw new UsageError("moat audit export needs -o FILE", HINT);
      return { action: "export", ref, out: values.output };
    }
    case "key":
      only("key", []);
      if (rest.length) throw new UsageError(`Unexpected argument "${rest[0]}" to moat audit key`, HINT);
      return { action: "key" };
    default:
      only("", ["--json"]);
      if (rest.length) throw new UsageError(`Unexpected argument "${rest[0]}" to moat audit`, HINT);
      return { action: "show", ref: first, json: values.json ?? false };
  }
}

export async function command(args: string[]): Promise<number> {
  const opts = parseAuditArgs(args);
  const ctx = cliContext();
  if ("help" in opts) {
    await ctx.out(AUDIT_HELP);
    return 0;
  }
  switch (opts.action) {
    case "key": {
      const key = await auditKey(ctx.home);
      await ctx.out(`${formatPublicKey(key.publicRaw)}\n`);
      ctx.note(`moat: key ${key.id} of ${ctx.home}: keep a copy off this host to check its runs' logs with`);
      return 0;
    }
    case "show": {
      const { id, text } = readLog(ctx, opts.ref);
      const entries = parseEntries(text);
      if (opts.json) await ctx.out(JSON.stringify(entries, null, 2) + "\n");
      else await ctx.out(formatAuditLog(entries));
      if (!text.endsWith("\n") && text !== "") {
        ctx.note(`moat: run ${id}'s log ends in the middle of an entry`);
      }
      return 0;
    }
    case "export": {
      const { id, text } = readLog(ctx, opts.ref);
      const pub = readPublicKey(ctx.home);
      if (!pub) throw new MoatError(`${ctx.home} has no audit key: run ${id}'s log was never signed`);
      const bundle: AuditBundle = {
        format: "moat-audit-bundle/1",
        run: id,
        key: formatPublicKey(pub),
        log: text,
      };
      try {
        Deno.writeTextFileSync(opts.out, JSON.stringify(bundle) + "\n");
      } catch (err) {
        throw new MoatError(
          `Cannot write ${opts.out}: ${err instanceof Error ? err.message : String(err)}`,
          "Choose a file you can write:  -o ./run.audit.json",
        );
      }
      ctx.note(
        `moat: run ${id}'s audit log written to ${opts.out}; check it with  moat audit verify ${opts.out}`,
      );
      return 0;
    }
    case "verify":
      return await verify(ctx, opts.target, opts.key);
  }
}

/** The audit log of the run `ref` names, and whether its record says it is not over. */
function readLog(ctx: CliContext, ref: string): { id: string; text: string; inProgress: boolean } {
  const run = resolveRunRef(readRuns(ctx.home).runs, ref);
  const path = `${ctx.home}/runs/${run.id}/${AUDIT_FILE}`;
  try {
    return { id: run.id, text: Deno.readTextFileSync(path), inProgress: !isFinal(run.state) };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new MoatError(
        `Run ${run.id} has no audit log (${path}): it was made by a moat without audit logs`,
        "Only runs made since have one:  moat list",
      );
    }
    throw new MoatError(`Cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The entries of a log's text, as far as they parse (for printing: `verify` is what checks them). */
function parseEntries(text: string): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    try {
      out.push(JSON.parse(line));
    } catch { /* verify names it */ }
  }
  return out;
}

async function verify(ctx: CliContext, target: string, keyText: string | undefined): Promise<number> {
  let pinned: Uint8Array | undefined;
  if (keyText !== undefined) {
    const parsed = parsePublicKey(keyText);
    if (typeof parsed === "string") {
      throw new UsageError(`--key: ${parsed}`, "Print the key:  moat audit key");
    }
    pinned = parsed;
  }
  let what: string;
  let text: string;
  let id: string;
  let bundleKey: Uint8Array | undefined;
  let inProgress = false;
  if (isFile(target)) {
    const bundle = readBundle(target);
    ({ run: id, log: text } = bundle);
    what = `the audit log of run ${id} in ${target}`;
    const parsed = parsePublicKey(bundle.key);
    if (typeof parsed === "string") throw new MoatError(`${target} names no key moat can read: ${parsed}`);
    bundleKey = parsed;
  } else {
    ({ id, text, inProgress } = readLog(ctx, target));
    what = `run ${id}'s audit log`;
  }
  // This MOAT_HOME's key, made now if no log was ever signed here (its runs' checkpoints would be its).
  const key = pinned ?? bundleKey ?? readPublicKey(ctx.home) ?? (await auditKey(ctx.home)).publicRaw;
  const v = await verifyLog(text, key);
  const by = `key ${keyId(key)}${
    pinned ? "" : bundleKey ? " (named by the file: pass --key to be sure it is yours)" : ""
  }`;
  if (v.kind === "intact") {
    const last = lastCheckpoint(text);
    await ctx.out(
      `${what} is intact: ${v.entries} entries, ${v.checkpoints} signed checkpoint${
        v.checkpoints === 1 ? "" : "s"
      }, ` +
        `checked with ${by}\n`,
    );
    if (last) ctx.note(`moat: its final checkpoint (keep it off the host to compare later):\n${last}`);
    return 0;
  }
  if (v.kind === "cut-short") {
    await ctx.out(
      `${what} was cut short: ${v.reason}. The ${v.entries} entries before are as written` +
        `${
          v.signedUpTo
            ? `, entries 1-${v.signedUpTo} under a signed checkpoint`
            : ", none under a signed checkpoint"
        }` +
        ` (checked with ${by})\n`,
    );
    // Its record says the run goes on: the final checkpoint is written when it ends (or moat was killed).
    if (inProgress) {
      ctx.note(`moat: run ${id} is not over by its record: wait for it, then check again:  moat wait ${id}`);
    }
    return 1;
  }
  await ctx.out(`${what} is not as moat wrote it: ${v.reason} (checked with ${by})\n`);
  return 1;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function readBundle(path: string): AuditBundle {
  let b: AuditBundle;
  try {
    b = JSON.parse(Deno.readTextFileSync(path));
  } catch (err) {
    throw new MoatError(
      `${path} is not an audit bundle: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  if (
    !b || b.format !== "moat-audit-bundle/1" || typeof b.run !== "string" || typeof b.key !== "string" ||
    typeof b.log !== "string"
  ) {
    throw new MoatError(
      `${path} is not an audit bundle moat audit export wrote`,
      "Export one:  moat audit export RUN -o FILE",
    );
  }
  return b;
}

/** The note of the log's last checkpoint, with its signature line, as the text of a signed note. */
function lastCheckpoint(text: string): string | undefined {
  const last = parseEntries(text).findLast((e) => e.type === "checkpoint");
  if (!last) return undefined;
  const c = last.data as unknown as CheckpointData;
  return `${new TextDecoder().decode(checkpointNote(c.origin, c.size, c.root))}\n— ${c.key} ${c.signature}`;
}

/** One line per entry: when, what, and the gist of its data. Pure. */
export function formatAuditLog(entries: readonly AuditEntry[]): string {
  return formatTable(
    ["SEQ", "TIME", "TYPE", "WHAT"],
    entries.map((e) => [String(e.seq), e.time.slice(11, 23), e.type, summary(e)]),
  );
}

function summary(e: AuditEntry): string {
  const d = e.data as Record<string, unknown>;
  switch (e.type) {
    case "network": {
      const where = d.host === null
        ? "-"
        : d.port === null || d.port === undefined
        ? d.host
        : `${d.host}:${d.port}`;
      const req = d.method ? ` ${d.method} ${d.path ?? ""}` : "";
      const why = [d.rule, d.grant ? `grant ${d.grant}` : undefined, d.reason].filter(Boolean).join("; ");
      return `${d.decision} ${d.via} ${where}${req}${why ? ` (${why})` : ""}`;
    }
    case "checkpoint":
      return `signed entries 1-${d.size} with key ${d.key}${d.final ? " (final: the run is over)" : ""}`;
    case "run": {
      // The whole record is in --json; the line says what the run is.
      const p = (d.profile ?? {}) as { network?: string; allow?: string[]; grants?: string[] };
      const net = p.network === "allowlist"
        ? `network allowlist [${(p.allow ?? []).join(", ")}]`
        : `network ${p.network ?? "?"}`;
      return [
        `image=${d.image}`,
        `command=${d.command === null ? "(the image's)" : JSON.stringify(d.command)}`,
        `sandbox=${d.sandbox}${d.runtime ? ` (${d.runtime})` : ""}`,
        net,
        ...(p.grants?.length ? [`grants=${p.grants.join(",")}`] : []),
        `workspace=${d.workspace}`,
      ].join(" ");
    }
    default:
      return Object.entries(d).filter(([, v]) => v !== null && v !== undefined)
        .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
  }
}
