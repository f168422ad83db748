/** `moat revoke NAME`: remove a grant kept by `moat grant` (lib/store/grants.ts). */
import { UsageError } from "../errors.ts";
import { grantNameProblem } from "../run/grant_kinds.ts";
import { removeGrant } from "../store/grants.ts";
import { parseCommandArgs } from "./args.ts";
import { cliContext } from "./context.ts";

export const REVOKE_HELP = `Usage: moat revoke NAME

Remove the grant NAME that moat grant stored: its file in MOAT_HOME/grants goes. The credential
itself stays valid where it was issued: revoke it there too if it may have leaked.

Exit codes: 0 removed; 2 usage error (no NAME, no such grant).

Examples:
  moat revoke github
  moat grant list
`;

/** Parse `moat revoke` arguments. Pure; throws `UsageError`. */
export function parseRevokeArgs(args: string[]): { help: boolean; name: string } {
  const { values, positionals } = parseCommandArgs("revoke", args, { help: { type: "boolean", short: "h" } });
  if (values.help) return { help: true, name: "" };
  const hint = "See the grants:  moat grant list";
  if (positionals.length === 0) throw new UsageError("moat revoke needs the NAME of a grant", hint);
  if (positionals.length > 1) {
    throw new UsageError(`Unexpected argument "${positionals[1]}" to moat revoke`, hint);
  }
  const problem = grantNameProblem(positionals[0]!);
  if (problem) throw new UsageError(problem, hint);
  return { help: false, name: positionals[0]! };
}

export async function command(args: string[]): Promise<number> {
  const opts = parseRevokeArgs(args);
  const ctx = cliContext();
  if (opts.help) {
    await ctx.out(REVOKE_HELP);
    return 0;
  }
  if (!removeGrant(ctx.home, opts.name)) {
    throw new UsageError(`There is no grant named "${opts.name}"`, "See the grants:  moat grant list");
  }
  ctx.note(`moat: grant ${opts.name} removed`);
  return 0;
}
