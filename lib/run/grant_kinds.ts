/**
 * What a grant is (issue 14): a credential kept on the host, the hosts it belongs to, and the header that
 * carries it to each; moat's policy point will add that header to the requests for those hosts, and the
 * sandbox gets only a placeholder in the variables its clients read. This module is the pure part: the
 * built-in kinds, a user's own (`--host`, `--header`), and the header a secret makes; and `loadRunGrants`,
 * which reads a run's grants from MOAT_HOME for it.
 */
import { UsageError } from "../errors.ts";
import { isHostName, normalizeHost } from "../net/host_policy.ts";
import type { GrantUse } from "../net/intercept.ts";
import { type Grant, type GrantTarget, readRunGrants } from "../store/grants.ts";

/** What a grant's kind says. */
export interface GrantKind {
  /** Where the credential is sent, and how. */
  targets: GrantTarget[];
  /** The variables the sandbox gets a placeholder in, so that its clients start as they would with the key. */
  env: string[];
}

/** The built-in kinds, by name: `moat grant anthropic` and the like. */
export const GRANT_KINDS: Readonly<Record<string, GrantKind>> = {
  anthropic: {
    targets: [{ host: "api.anthropic.com", header: "x-api-key", template: "{}" }],
    env: ["ANTHROPIC_API_KEY"],
  },
  openai: {
    targets: [{ host: "api.openai.com", header: "Authorization", template: "Bearer {}" }],
    env: ["OPENAI_API_KEY"],
  },
  github: {
    targets: [
      { host: "api.github.com", header: "Authorization", template: "Bearer {}" },
      { host: "github.com", header: "Authorization", template: "Basic {basic:x-access-token}" },
    ],
    env: ["GITHUB_TOKEN", "GH_TOKEN"],
  },
  npm: {
    targets: [{ host: "registry.npmjs.org", header: "Authorization", template: "Bearer {}" }],
    env: ["NPM_TOKEN"],
  },
};

/** A header name as RFC 9110 allows one (a token). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * A user's header template, `Name: value with {}`: the header's name and its value's template, or the reason
 * it is refused. The secret goes where `{}` is, once; the rest is sent as written. Pure.
 */
export function parseHeaderTemplate(text: string): { header: string; template: string } | string {
  const colon = text.indexOf(":");
  if (colon <= 0) return `"${text}" is not a header: write it as  Name: value with {}`;
  const header = text.slice(0, colon).trim();
  const template = text.slice(colon + 1).trim();
  if (!TOKEN.test(header)) return `"${header}" is not a header name`;
  const holes = template.split("{}").length - 1;
  if (holes !== 1) {
    return holes === 0
      ? `the header "${text}" has no {} for the secret`
      : `the header "${text}" has more than one {}`;
  }
  if (/[\r\n]/.test(template)) return "a header value cannot hold a line break";
  return { header, template };
}

/** A host a grant may name: one DNS name, no wildcard, no port (the credential goes to that name only). Pure. */
export function grantHostProblem(host: string): string | undefined {
  return isHostName(normalizeHost(host))
    ? undefined
    : `"${host}" is not a host name (one name, no wildcard, no port)`;
}

/** The header value for `secret` from a target's template. Pure. */
export function headerValue(template: string, secret: string): string {
  const basic = /\{basic:([^}]*)\}/.exec(template);
  if (basic) return template.replace(basic[0], btoa(binary(`${basic[1]}:${secret}`)));
  return template.replace("{}", secret);
}

/** A string's UTF-8 bytes as a binary string, for `btoa`. */
function binary(s: string): string {
  return String.fromCharCode(...new TextEncoder().encode(s));
}

/** A grant's name: letters, digits, `.`, `_` and `-`, starting with a letter or digit, at most 64. Pure. */
export function grantNameProblem(name: string): string | undefined {
  if (name === "list") return `"list" is moat grant's subcommand: choose another name`;
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)
    ? undefined
    : `Grant name "${name}" is not valid: use letters, digits, '.', '_' or '-' (at most 64)`;
}

/** A secret moat can send in a header: not empty, one line, no control characters. Pure. */
export function secretProblem(secret: string): string | undefined {
  if (secret === "") return "the credential is empty";
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(secret)) return "the credential holds a line break or another control character";
  return undefined;
}

/** What a run's grants make: the policy point's credentials by host, the entries they allow, placeholders. */
export interface RunGrants {
  /** By host (normalized): the grant's name and the header it adds. */
  uses: Map<string, GrantUse>;
  /** Allow-list entries for the granted hosts: `host:443` (HTTPS only: a credential never goes in the clear). */
  allow: string[];
  /** A placeholder for each of the grants' variables, for clients that will not start without one. */
  env: Record<string, string>;
}

/** The placeholder a sandbox sees in a grant's variables: not a credential, and says whose it is. Pure. */
export const placeholder = (name: string) => `moat-grant-${name}-placeholder`;

/** What `grants` make for a run, or why they cannot go together (two credentials for one host). Pure. */
export function runGrants(grants: readonly Grant[]): RunGrants | string {
  const uses = new Map<string, GrantUse>();
  const env: Record<string, string> = {};
  for (const g of grants) {
    for (const t of g.targets) {
      const host = normalizeHost(t.host);
      const other = uses.get(host);
      if (other) return `the grants ${other.name} and ${g.name} both add a credential for ${host}`;
      uses.set(host, { name: g.name, header: t.header, value: headerValue(t.template, g.secret) });
    }
    for (const v of g.env) env[v] ??= placeholder(g.name);
  }
  return { uses, allow: [...uses.keys()].map((h) => `${h}:443`), env };
}

/**
 * What the grants `names` of MOAT_HOME `home` make for a run (`runGrants`), for `moat run` and a detached
 * run's recorder alike. Throws a `MoatError` for a grant missing or damaged, a `UsageError` for two that add
 * a credential for one host.
 */
export function loadRunGrants(home: string, names: readonly string[]): RunGrants {
  const made = runGrants(readRunGrants(home, names));
  if (typeof made === "string") {
    throw new UsageError(
      `The run's grants cannot go together: ${made}`,
      "Name only one of them for this run",
    );
  }
  return made;
}
