/** `moat audit` (lib/cli/audit.ts): its arguments, and the table it prints. */
import assert from "node:assert/strict";
import { formatAuditLog, parseAuditArgs } from "../../lib/cli/audit.ts";
import { UsageError } from "../../lib/errors.ts";
import { GENESIS, makeEntry } from "../../lib/audit/chain.ts";

Deno.test("moat audit arguments: a run, verify, export, key; what does not go together is a usage error", () => {
  assert.deepEqual(parseAuditArgs(["3f2a"]), { action: "show", ref: "3f2a", json: false });
  assert.deepEqual(parseAuditArgs(["3f2a", "--json"]), { action: "show", ref: "3f2a", json: true });
  assert.deepEqual(parseAuditArgs(["verify", "3f2a"]), { action: "verify", target: "3f2a", key: undefined });
  assert.deepEqual(parseAuditArgs(["verify", "f.json", "--key", "ed25519:x"]), {
    action: "verify",
    target: "f.json",
    key: "ed25519:x",
  });
  assert.deepEqual(parseAuditArgs(["export", "3f2a", "-o", "out.json"]), {
    action: "export",
    ref: "3f2a",
    out: "out.json",
  });
  assert.deepEqual(parseAuditArgs(["key"]), { action: "key" });
  assert.deepEqual(parseAuditArgs(["--help"]), { help: true });
  const refused: Array<[string[], RegExp]> = [
    [[], /needs a RUN, or one of verify, export, key/],
    [["verify"], /moat audit verify needs a RUN or a FILE/],
    [["export", "3f2a"], /moat audit export needs -o FILE/],
    [["export", "-o", "x"], /moat audit export needs a RUN/],
    [["key", "extra"], /Unexpected argument "extra" to moat audit key/],
    [["3f2a", "--key", "k"], /--key does not go with moat audit$/],
    [["verify", "3f2a", "--json"], /--json does not go with moat audit verify/],
    [["a", "b"], /Unexpected argument "b" to moat audit/],
  ];
  for (const [args, re] of refused) {
    assert.throws(
      () => parseAuditArgs(args),
      (e: unknown) => e instanceof UsageError && e.exitCode === 2 && re.test(e.message),
      args.join(" "),
    );
  }
});

Deno.test("moat audit's table: a line per entry, decisions and checkpoints in words", () => {
  const t = "2026-12-07T04:04:14.454Z";
  const a = makeEntry(1, GENESIS, t, "record", { state: "running", exitCode: null });
  const b = makeEntry(2, a.hash, t, "network", {
    via: "tls",
    host: "api.github.com",
    port: 443,
    method: "GET",
    path: "/user",
    decision: "allow",
    rule: "api.github.com:443",
    grant: "github",
  });
  const c = makeEntry(3, b.hash, t, "checkpoint", { size: 2, key: "6404ef2d671d4a88", final: true });
  const r = makeEntry(4, c.hash, t, "run", {
    id: "abc",
    image: "debian:bookworm-slim",
    command: ["npm", "test"],
    sandbox: "gvisor",
    runtime: "runsc",
    workspace: "/w",
    profile: { network: "allowlist", allow: ["api.github.com:443"], grants: ["github"], capDrop: ["ALL"] },
  });
  assert.equal(
    formatAuditLog([a, b, c, r]),
    [
      "SEQ  TIME          TYPE        WHAT",
      "1    04:04:14.454  record      state=running",
      "2    04:04:14.454  network     allow tls api.github.com:443 GET /user (api.github.com:443; grant github)",
      "3    04:04:14.454  checkpoint  signed entries 1-2 with key 6404ef2d671d4a88 (final: the run is over)",
      '4    04:04:14.454  run         image=debian:bookworm-slim command=["npm","test"] sandbox=gvisor (runsc) ' +
      "network allowlist [api.github.com:443] grants=github workspace=/w",
      "",
    ].join("\n"),
  );
});
