/** Grant kinds and a user's own (lib/run/grant_kinds.ts): header templates, hosts, names, secrets, values. */
import assert from "node:assert/strict";
import {
  GRANT_KINDS,
  grantHostProblem,
  grantNameProblem,
  headerValue,
  loadRunGrants,
  parseHeaderTemplate,
  placeholder,
  runGrants,
  secretProblem,
} from "../../lib/run/grant_kinds.ts";
import { type Grant, saveGrant } from "../../lib/store/grants.ts";
import { MoatError, UsageError } from "../../lib/errors.ts";

Deno.test("parseHeaderTemplate: a header name and a value with one {} for the secret", () => {
  const table: [string, ReturnType<typeof parseHeaderTemplate>][] = [
    ["Authorization: Bearer {}", { header: "Authorization", template: "Bearer {}" }],
    ["x-api-key:{}", { header: "x-api-key", template: "{}" }],
    ["  X-Token :  token={}; v=1 ", { header: "X-Token", template: "token={}; v=1" }],
    [
      "Authorization Bearer {}",
      '"Authorization Bearer {}" is not a header: write it as  Name: value with {}',
    ],
    [": {}", '": {}" is not a header: write it as  Name: value with {}'],
    ["Bad Name: {}", '"Bad Name" is not a header name'],
    ["Authorization: Bearer", 'the header "Authorization: Bearer" has no {} for the secret'],
    ["A: {} {}", 'the header "A: {} {}" has more than one {}'],
  ];
  for (const [text, want] of table) assert.deepEqual(parseHeaderTemplate(text), want, text);
});

Deno.test("headerValue: the secret in its place; Basic for git's user and the secret", () => {
  assert.equal(headerValue("Bearer {}", "s3cret"), "Bearer s3cret");
  assert.equal(headerValue("{}", "k"), "k");
  assert.equal(headerValue("Basic {basic:x-access-token}", "ghp_x"), `Basic ${btoa("x-access-token:ghp_x")}`);
  assert.equal(
    headerValue("Basic {basic:u}", "pässwörd"),
    "Basic dTpww6Rzc3fDtnJk",
    "UTF-8, as HTTP sends it",
  );
});

Deno.test("the built-in kinds: their hosts, headers and placeholder variables", () => {
  const flat = Object.fromEntries(
    Object.entries(GRANT_KINDS).map((
      [k, v],
    ) => [k, v.targets.map((t) => `${t.host} ${t.header}: ${t.template}`)]),
  );
  assert.deepEqual(flat, {
    anthropic: ["api.anthropic.com x-api-key: {}"],
    openai: ["api.openai.com Authorization: Bearer {}"],
    github: [
      "api.github.com Authorization: Bearer {}",
      "github.com Authorization: Basic {basic:x-access-token}",
    ],
    npm: ["registry.npmjs.org Authorization: Bearer {}"],
  });
  assert.deepEqual(GRANT_KINDS.github!.env, ["GITHUB_TOKEN", "GH_TOKEN"]);
});

Deno.test("names, hosts and secrets a grant may have", () => {
  for (const ok of ["anthropic", "my-api", "a.b_c", "X1"]) assert.equal(grantNameProblem(ok), undefined, ok);
  for (const bad of ["", "-x", "a b", "../x", "a".repeat(65), "list"]) assert.ok(grantNameProblem(bad), bad);
  for (const ok of ["api.example.com", "API.Example.com.", "localhost"]) {
    assert.equal(grantHostProblem(ok), undefined, ok);
  }
  for (const bad of ["*.example.com", "api.example.com:443", "", "10.0.0.5", "a b"]) {
    assert.ok(grantHostProblem(bad), bad);
  }
  assert.equal(secretProblem("sk-ant-123"), undefined);
  assert.equal(secretProblem(""), "the credential is empty");
  for (const bad of ["a\nb", "a\rb", "a\x00b", "a\x7f"]) assert.ok(secretProblem(bad), JSON.stringify(bad));
});

const grant = (name: string, kind: string, secret: string): Grant => ({
  schema: 1,
  name,
  kind,
  ...(GRANT_KINDS[kind] ??
    { targets: [{ host: "API.Internal.test", header: "X-Key", template: "{}" }], env: [] }),
  createdAt: "2026-12-07T00:00:00.000Z",
  secret,
});

Deno.test("runGrants: the credential for each host, its entry on HTTPS, and a placeholder per variable", () => {
  const made = runGrants([grant("gh", "github", "tok"), grant("mine", "custom", "k")]);
  assert.ok(typeof made !== "string");
  assert.deepEqual([...made.uses], [
    ["api.github.com", { name: "gh", header: "Authorization", value: "Bearer tok" }],
    ["github.com", { name: "gh", header: "Authorization", value: `Basic ${btoa("x-access-token:tok")}` }],
    ["api.internal.test", { name: "mine", header: "X-Key", value: "k" }],
  ]);
  assert.deepEqual(made.allow, ["api.github.com:443", "github.com:443", "api.internal.test:443"]);
  assert.deepEqual(made.env, { GITHUB_TOKEN: placeholder("gh"), GH_TOKEN: placeholder("gh") });
  assert.ok(!JSON.stringify(made.env).includes("tok"), "a placeholder is not the secret");
  assert.equal(
    runGrants([grant("a", "github", "1"), grant("b", "github", "2")]),
    "the grants a and b both add a credential for api.github.com",
  );
  assert.deepEqual(runGrants([]), { uses: new Map(), allow: [], env: {} });
});

Deno.test("loadRunGrants: a run's grants from MOAT_HOME; one missing, or two for one host, said as such", async () => {
  const home = await Deno.makeTempDir({ prefix: "moat-grants-" });
  try {
    saveGrant(home, grant("a", "github", "1"));
    saveGrant(home, grant("b", "github", "2"));
    assert.deepEqual(loadRunGrants(home, ["a"]).allow, ["api.github.com:443", "github.com:443"]);
    assert.throws(
      () => loadRunGrants(home, ["a", "b"]),
      (e: unknown) =>
        e instanceof UsageError &&
        e.message ===
          "The run's grants cannot go together: the grants a and b both add a credential for api.github.com",
    );
    assert.throws(
      () => loadRunGrants(home, ["c"]),
      (e: unknown) => e instanceof MoatError && /There is no grant named c/.test(e.message),
    );
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
