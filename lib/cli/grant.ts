/**
 * `moat grant NAME …`: keep a credential on the host (lib/store/grants.ts) for the hosts it belongs to, and
 * `moat grant list`: the grants, never their values. Runs do not use grants yet (issue 14 continues: the
 * policy point will add them to requests; the container will hold a placeholder).
 */
import { MoatError, UsageError } from "../errors.ts";
import {
  GRANT_KINDS,
  grantHostProblem,
  grantNameProblem,
  parseHeaderTemplate,
  secretProblem,
} from "../run/grant_kinds.ts";
import { normalizeHost } from "../net/host_policy.ts";
import { type Grant, type GrantTarget, listGrants, saveGrant } from "../store/grants.ts";
import { parseCommandArgs } from "./args.ts";
import { cliContext, formatAge, formatTable } from "./context.ts";

const KINDS = Object.keys(GRANT_KINDS).join(", ");

export const GRANT_HELP = `Usage: moat grant NAME [--from-env VAR] [--host HOST ... --header 'NAME: VALUE']
       moat grant list [--json]

Keep a credential on this host, for the hosts it belongs to, so that moat can add it to a run's
requests to them without it entering the sandbox. It is stored in MOAT_HOME/grants/NAME.json,
readable only by you (see docs/concepts/grants.md for what protects it). Runs do not use grants
yet. The value is read from the variable --from-env names, else from stdin; on a terminal moat
asks for it without echo. Giving a NAME again replaces that grant.

NAME is one of the built-in kinds (${KINDS}), or a name of yours with --host and --header:
  anthropic   x-api-key for api.anthropic.com
  openai      Authorization: Bearer for api.openai.com
  github      Authorization for api.github.com, and for github.com (git over HTTPS, Basic)
  npm         Authorization: Bearer for registry.npmjs.org

Options:
      --from-env VAR       Read the credential from the environment variable VAR
      --host HOST          A host the credential is for (repeatable; one name, no wildcard)
      --header 'H: V{}'    The header that carries it, {} where the credential goes
      --json               (list) Print a JSON array: name, kind, hosts, env, createdAt
  -h, --help               Print this help

Exit codes: 0 stored (or listed); 2 usage error; 125 the grant could not be stored.

Examples:
  moat grant anthropic --from-env ANTHROPIC_API_KEY
  printf %s "$TOKEN" | moat grant github
  moat grant internal-api --host api.internal.example --header 'Authorization: Bearer {}'
  moat grant list
`;

export interface ParsedGrantArgs {
  help: boolean;
  list: boolean;
  json: boolean;
  name: string;
  fromEnv?: string;
  hosts: string[];
  header?: string;
}

/** Parse `moat grant` arguments. Pure; throws `UsageError`. */
export function parseGrantArgs(args: string[]): ParsedGrantArgs {
  const { values, positionals } = parseCommandArgs("grant", args, {
    help: { type: "boolean", short: "h" },
    json: { type: "boolean" },
    "from-env": { type: "string" },
    host: { type: "string", multiple: true },
    header: { type: "string" },
  });
  const parsed: ParsedGrantArgs = {
    help: values.help === true,
    list: positionals[0] === "list",
    json: values.json === true,
    name: positionals[0] ?? "",
    hosts: values.host ?? [],
    ...(values["from-env"] !== undefined ? { fromEnv: values["from-env"] } : {}),
    ...(values.header !== undefined ? { header: values.header } : {}),
  };
  if (parsed.help) return parsed;
  const hint = "See:  moat grant --help";
  if (positionals.length === 0) {
    throw new UsageError("moat grant needs a NAME: a kind (" + KINDS + ") or your own", hint);
  }
  if (positionals.length > 1) {
    throw new UsageError(`Unexpected argument "${positionals[1]}" to moat grant`, hint);
  }
  if (parsed.list) {
    if (parsed.fromEnv !== undefined || parsed.hosts.length > 0 || parsed.header !== undefined) {
      throw new UsageError("moat grant list takes only --json", hint);
    }
    return parsed;
  }
  if (parsed.json) throw new UsageError("--json is an option of moat grant list", hint);
  const nameProblem = grantNameProblem(parsed.name);
  if (nameProblem) throw new UsageError(nameProblem, hint);
  const builtIn = Object.hasOwn(GRANT_KINDS, parsed.name);
  if (builtIn && (parsed.hosts.length > 0 || parsed.header !== undefined)) {
    throw new UsageError(
      `"${parsed.name}" is a built-in kind: its hosts and header are moat's`,
      `Give your own a name of yours:  moat grant my-${parsed.name} --host HOST --header 'NAME: {}'`,
    );
  }
  if (!builtIn && (parsed.hosts.length === 0 || parsed.header === undefined)) {
    throw new UsageError(
      `"${parsed.name}" is not a built-in kind (${KINDS}): say where it goes with --host and --header`,
      `moat grant ${parsed.name} --host api.example.com --header 'Authorization: Bearer {}'`,
    );
  }
  for (const h of parsed.hosts) {
    const problem = grantHostProblem(h);
    if (problem) throw new UsageError(`--host ${problem}`, hint);
  }
  if (parsed.header !== undefined) {
    const t = parseHeaderTemplate(parsed.header);
    if (typeof t === "string") {
      throw new UsageError(`--header: ${t}`, "e.g.  --header 'Authorization: Bearer {}'");
    }
  }
  return parsed;
}

/** The grant `opts` describes, holding `secret`. Pure. */
export function grantOf(opts: ParsedGrantArgs, secret: string, now: Date): Grant {
  const kind = GRANT_KINDS[opts.name];
  let targets: GrantTarget[];
  if (kind) targets = kind.targets.map((t) => ({ ...t }));
  else {
    const t = parseHeaderTemplate(opts.header!) as { header: string; template: string };
    targets = opts.hosts.map((h) => ({ host: normalizeHost(h), ...t }));
  }
  return {
    schema: 1,
    name: opts.name,
    kind: kind ? opts.name : "custom",
    targets,
    env: kind ? [...kind.env] : [],
    createdAt: now.toISOString(),
    secret,
  };
}

/** The hosts a grant is for, each once (github's two targets are two hosts; a target per host). Pure. */
const hostsOf = (g: Pick<Grant, "targets">) => [...new Set(g.targets.map((t) => t.host))];

/** Read the credential: from `--from-env`, else stdin (asked without echo on a terminal). */
async function readSecret(opts: ParsedGrantArgs, env: Record<string, string | undefined>): Promise<string> {
  if (opts.fromEnv !== undefined) {
    const v = env[opts.fromEnv];
    if (v === undefined || v === "") {
      throw new UsageError(
        `--from-env ${opts.fromEnv}: the variable is not set`,
        `export ${opts.fromEnv}=…  first`,
      );
    }
    return v;
  }
  if (Deno.stdin.isTerminal()) return await askHidden(`Credential for ${opts.name} (not shown): `);
  const text = new TextDecoder().decode(await new Response(Deno.stdin.readable).arrayBuffer());
  return text.replace(/\r?\n$/, "");
}

/** Ask on the terminal without echo; Ctrl-C or Ctrl-D gives up. */
async function askHidden(prompt: string): Promise<string> {
  Deno.stderr.writeSync(new TextEncoder().encode(prompt));
  Deno.stdin.setRaw(true);
  const bytes: number[] = [];
  try {
    const buf = new Uint8Array(256);
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      for (const b of buf.subarray(0, n)) {
        if (b === 0x03 || b === 0x04) {
          throw new UsageError("No credential given", "Run it again, or use --from-env");
        }
        if (b === 0x0d || b === 0x0a) return new TextDecoder().decode(new Uint8Array(bytes));
        if (b === 0x7f || b === 0x08) bytes.pop();
        else bytes.push(b);
      }
    }
    return new TextDecoder().decode(new Uint8Array(bytes));
  } finally {
    Deno.stdin.setRaw(false);
    Deno.stderr.writeSync(new TextEncoder().encode("\n"));
  }
}

export async function command(args: string[]): Promise<number> {
  const opts = parseGrantArgs(args);
  const ctx = cliContext();
  if (opts.help) {
    await ctx.out(GRANT_HELP);
    return 0;
  }
  if (opts.list) {
    const { grants, damaged } = listGrants(ctx.home);
    for (const path of damaged) {
      ctx.note(`moat: warning: ${path} is not a grant moat wrote; it is left alone`);
    }
    if (opts.json) {
      const rows = grants.map((g) => ({
        name: g.name,
        kind: g.kind,
        hosts: g.targets.map((t) => t.host),
        env: g.env,
        createdAt: g.createdAt,
      }));
      await ctx.out(JSON.stringify(rows, null, 2) + "\n");
      return 0;
    }
    if (grants.length === 0) {
      ctx.note("moat: no grant is kept; add one with  moat grant NAME");
      return 0;
    }
    const now = Date.now();
    await ctx.out(
      formatTable(
        ["NAME", "KIND", "HOSTS", "ADDED"],
        grants.map((g) => [
          g.name,
          g.kind,
          hostsOf(g).join(","),
          `${formatAge(g.createdAt, now)} ago`,
        ]),
      ),
    );
    return 0;
  }
  const secret = await readSecret(opts, ctx.env);
  const problem = secretProblem(secret);
  if (problem) throw new UsageError(`No grant stored: ${problem}`, "Give the credential alone, on one line");
  const grant = grantOf(opts, secret, new Date());
  try {
    saveGrant(ctx.home, grant);
  } catch (err) {
    throw new MoatError(
      `Could not store grant ${opts.name}: ${err instanceof Error ? err.message : String(err)}`,
      `Check that ${ctx.home}/grants is writable by you`,
    );
  }
  ctx.note(
    `moat: grant ${opts.name} stored for ${hostsOf(grant).join(", ")}`,
  );
  return 0;
}
