/**
 * `moat grant` and `moat revoke`, black box: what is stored where and with which mode, that listing never shows
 * a value, replacing and revoking, and each refusal with nothing stored.
 */
import assert from "node:assert/strict";
import { moat, scratch } from "../engine/helpers.ts";

const SECRET = "sk-moat-test-4f1c2e";
const enc = new TextEncoder();

async function withHome(fn: (home: string) => Promise<void>) {
  const s = await scratch();
  try {
    await fn(s.home);
  } finally {
    await s.cleanup();
  }
}

Deno.test("moat grant stores a kind's credential readable only by its user; list never shows it", async () => {
  await withHome(async (home) => {
    const r = await moat(["grant", "anthropic"], { home, stdin: enc.encode(`${SECRET}\n`) });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, "");
    assert.equal(r.stderr, "moat: grant anthropic stored for api.anthropic.com\n");
    const file = `${home}/grants/anthropic.json`;
    assert.equal((await Deno.stat(`${home}/grants`)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
    const stored = JSON.parse(await Deno.readTextFile(file));
    assert.deepEqual(
      [stored.kind, stored.secret, stored.env, stored.targets],
      ["anthropic", SECRET, ["ANTHROPIC_API_KEY"], [{
        host: "api.anthropic.com",
        header: "x-api-key",
        template: "{}",
      }]],
    );
    // From a variable, and a user's own kind.
    const g = await moat(["grant", "github", "--from-env", "TOKEN"], {
      home,
      env: { TOKEN: `${SECRET}-gh` },
    });
    assert.equal(g.code, 0, g.stderr);
    const own = await moat(
      [
        "grant",
        "internal",
        "--host",
        "API.Internal.Example",
        "--host",
        "b.internal.example",
        "--header",
        "X-Key: k={}",
      ],
      { home, stdin: enc.encode(`${SECRET}-own`) },
    );
    assert.equal(own.code, 0, own.stderr);
    const custom = JSON.parse(await Deno.readTextFile(`${home}/grants/internal.json`));
    assert.deepEqual(custom.targets.map((t: { host: string }) => t.host), [
      "api.internal.example",
      "b.internal.example",
    ]);
    assert.equal(custom.kind, "custom");

    const list = await moat(["grant", "list"], { home });
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(list.out.split("\n").map((l) => l.split(/\s+/).slice(0, 3).join(" ")), [
      "NAME KIND HOSTS",
      "anthropic anthropic api.anthropic.com",
      "github github api.github.com,github.com",
      "internal custom api.internal.example,b.internal.example",
      "",
    ]);
    const json = await moat(["grant", "list", "--json"], { home });
    assert.deepEqual(
      JSON.parse(json.out).map((x: { name: string; hosts: string[] }) => [x.name, x.hosts.length]),
      [["anthropic", 1], ["github", 2], ["internal", 2]],
    );
    for (const out of [r, g, own, list, json]) {
      assert.ok(!(out.out + out.stderr).includes(SECRET), "a value was printed");
    }
  });
});

Deno.test("moat grant again replaces the grant; moat revoke removes it, and says so when there is none", async () => {
  await withHome(async (home) => {
    for (const v of ["one", "two"]) {
      const r = await moat(["grant", "npm"], { home, stdin: enc.encode(v) });
      assert.equal(r.code, 0, r.stderr);
    }
    assert.equal(JSON.parse(await Deno.readTextFile(`${home}/grants/npm.json`)).secret, "two");
    assert.deepEqual(
      [...Deno.readDirSync(`${home}/grants`)].map((e) => e.name),
      ["npm.json"],
      "no temporary file",
    );
    const rv = await moat(["revoke", "npm"], { home });
    assert.equal(rv.code, 0, rv.stderr);
    assert.equal(rv.stderr, "moat: grant npm removed\n");
    await assert.rejects(Deno.stat(`${home}/grants/npm.json`));
    const again = await moat(["revoke", "npm"], { home });
    assert.equal(again.code, 2);
    assert.match(
      again.stderr,
      /^moat: There is no grant named "npm"\n {2}See the grants: {2}moat grant list\n$/,
    );
    const none = await moat(["grant", "list"], { home });
    assert.equal(none.code, 0);
    assert.equal(none.out, "");
    assert.match(none.stderr, /no grant is kept/);
  });
});

Deno.test("moat grant refuses what it cannot use, and stores nothing", async () => {
  await withHome(async (home) => {
    const cases: [string[], Record<string, string>, string, RegExp][] = [
      [["grant"], {}, "", /moat grant needs a NAME/],
      [
        ["grant", "foo"],
        {},
        "x",
        /"foo" is not a built-in kind .*: say where it goes with --host and --header/,
      ],
      [["grant", "github", "--host", "x.example"], {}, "x", /"github" is a built-in kind/],
      [
        ["grant", "mine", "--host", "*.example.com", "--header", "A: {}"],
        {},
        "x",
        /--host "\*\.example\.com"/,
      ],
      [
        ["grant", "mine", "--host", "a.example", "--header", "A: none"],
        {},
        "x",
        /has no \{\} for the secret/,
      ],
      [["grant", "list", "--from-env", "X"], {}, "", /moat grant list takes only --json/],
      [["grant", "../x"], {}, "x", /Grant name "\.\.\/x" is not valid/],
      [["grant", "openai"], {}, "", /the credential is empty/],
      [["grant", "openai"], {}, "a\nb\n", /line break or another control character/],
      [["grant", "openai", "--from-env", "NOPE"], {}, "", /--from-env NOPE: the variable is not set/],
      [["revoke"], {}, "", /moat revoke needs the NAME of a grant/],
    ];
    for (const [args, env, stdin, want] of cases) {
      const r = await moat(args, { home, env, stdin: enc.encode(stdin) });
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, want, args.join(" "));
      assert.equal(r.out, "");
    }
    await assert.rejects(Deno.stat(`${home}/grants/openai.json`));
  });
});
