/** Networks made ahead of allowlist runs (lib/run/standby.ts): settings, key, files, taking one, roles. */
import assert from "node:assert/strict";
import { classifyContainer, classifyNetwork, waitingStandby } from "../../lib/run/orphans.ts";
import {
  CLAIM_MARGIN_MS,
  claimStandby,
  parseStandby,
  type Standby,
  STANDBY_IDLE_MS,
  standbyKey,
  standbySettings,
} from "../../lib/run/standby.ts";
import { withHome } from "../temp_home.ts";
import { parseStandbyArgs } from "../../lib/cli/standby.ts";
import { UsageError } from "../../lib/errors.ts";
import { record, summary } from "../cli/records_fixture.ts";

const T = 1_800_000_000_000;

Deno.test("standbySettings: on by default, MOAT_STANDBY=0 turns it off, MOAT_STANDBY_IDLE in seconds", () => {
  const table: [Record<string, string>, ReturnType<typeof standbySettings>][] = [
    [{}, { enabled: true, idleMs: STANDBY_IDLE_MS }],
    [{ MOAT_STANDBY: "0" }, { enabled: false, idleMs: STANDBY_IDLE_MS }],
    [{ MOAT_STANDBY: "1" }, { enabled: true, idleMs: STANDBY_IDLE_MS }],
    [{ MOAT_STANDBY_IDLE: "" }, { enabled: true, idleMs: STANDBY_IDLE_MS }],
    [{ MOAT_STANDBY_IDLE: "90" }, { enabled: true, idleMs: 90_000 }],
    [{ MOAT_STANDBY_IDLE: "0" }, 'MOAT_STANDBY_IDLE must be a whole number of seconds above 0 (it is "0")'],
    [
      { MOAT_STANDBY_IDLE: "1.5" },
      'MOAT_STANDBY_IDLE must be a whole number of seconds above 0 (it is "1.5")',
    ],
    [
      { MOAT_STANDBY_IDLE: "10m" },
      'MOAT_STANDBY_IDLE must be a whole number of seconds above 0 (it is "10m")',
    ],
  ];
  for (const [env, want] of table) assert.deepEqual(standbySettings(env), want, JSON.stringify(env));
});

Deno.test("standbyKey: any difference in image, moat or user is another key", () => {
  const base = {
    image: "sha256:a",
    executable: "/usr/bin/deno",
    main: "file:///m/moat.js",
    user: "1000:1000",
  };
  const k = standbyKey(base);
  assert.equal(standbyKey({ ...base }), k);
  for (
    const change of [{ image: "sha256:b" }, { executable: "/x/deno" }, { main: "file:///n.js" }, {
      user: "0:0",
    }]
  ) {
    assert.notEqual(standbyKey({ ...base, ...change }), k, JSON.stringify(change));
  }
});

const standby = (id: string, over: Partial<Standby> = {}): Standby => ({
  id,
  key: "K",
  network: `moat-net-${id}`,
  relayId: "r".repeat(64),
  address: "10.237.0.2",
  madeAt: T - 60_000,
  expiresAt: T + STANDBY_IDLE_MS - 60_000,
  ...over,
});

Deno.test("parseStandby: a whole standby file, nothing else", () => {
  const s = standby("abc123");
  assert.deepEqual(parseStandby(JSON.stringify(s)), s);
  assert.equal(parseStandby("{"), undefined);
  assert.equal(parseStandby("[]"), undefined);
  assert.equal(parseStandby(JSON.stringify({ ...s, id: "../x" })), undefined);
  assert.equal(parseStandby(JSON.stringify({ ...s, expiresAt: "soon" })), undefined);
  const { relayId: _, ...noRelay } = s;
  assert.equal(parseStandby(JSON.stringify(noRelay)), undefined);
});

async function put(home: string, s: Standby, name = `${s.id}.json`): Promise<void> {
  await Deno.mkdir(`${home}/standby/${s.id}`, { recursive: true });
  await Deno.writeTextFile(`${home}/standby/${name}`, JSON.stringify(s));
}

Deno.test("claimStandby: takes a ready standby of the key once, the oldest first; never a near-expiry one", async () => {
  await withHome(async (home) => {
    assert.equal(claimStandby(home, "K", T), undefined, "no standby directory at all");
    await put(home, standby("a1", { expiresAt: T + 200_000 }));
    await put(home, standby("b2", { expiresAt: T + 100_000 }));
    await put(home, standby("c3", { key: "other" }));
    await put(home, standby("d4", { madeAt: T - STANDBY_IDLE_MS, expiresAt: T + CLAIM_MARGIN_MS - 1 }));
    await put(home, standby("e5"), "e5.tmp"); // not ready yet
    await Deno.writeTextFile(`${home}/standby/f6.json`, "{"); // damaged

    assert.equal(claimStandby(home, "K", T)?.id, "b2");
    assert.equal(claimStandby(home, "K", T)?.id, "a1");
    assert.equal(claimStandby(home, "K", T), undefined, "each is taken once; d4 expires too soon");
    assert.equal(claimStandby(home, "other", T)?.id, "c3");
    // Taken: renamed into its own directory, where the run's socket goes.
    assert.deepEqual(JSON.parse(await Deno.readTextFile(`${home}/standby/b2/claimed.json`)).id, "b2");
    await assert.rejects(Deno.stat(`${home}/standby/b2.json`));
  });
});

Deno.test("claimStandby: a short-lived standby (tests) may be taken until its last quarter", async () => {
  await withHome(async (home) => {
    await put(home, standby("a1", { madeAt: T - 4000, expiresAt: T + 4000 })); // 8 s idle: 2 s margin
    assert.equal(claimStandby(home, "K", T + 1999)?.id, "a1");
    await put(home, standby("b2", { madeAt: T - 4000, expiresAt: T + 4000 }));
    assert.equal(claimStandby(home, "K", T + 2000), undefined);
  });
});

Deno.test("claimStandby: two processes at once never take the same standby", async () => {
  await withHome(async (home) => {
    for (let i = 0; i < 20; i++) await put(home, standby(`a${i.toString(16).padStart(2, "0")}`));
    const script = `import { claimStandby } from "${new URL("../../lib/run/standby.ts", import.meta.url)}";
      const got = []; for (;;) { const s = claimStandby(Deno.args[0], "K", ${T}); if (!s) break; got.push(s.id); }
      console.log(JSON.stringify(got));`;
    const run = () =>
      new Deno.Command(Deno.execPath(), { args: ["eval", script, home], stdout: "piped" }).output()
        .then((o) => JSON.parse(new TextDecoder().decode(o.stdout)) as string[]);
    const [a, b, c] = await Promise.all([run(), run(), run()]);
    const all = [...a!, ...b!, ...c!];
    assert.equal(all.length, 20);
    assert.equal(new Set(all).size, 20, "a standby was taken twice");
  });
});

Deno.test("waitingStandby and the roles: a standby waits until its time, unless a run took it", () => {
  const labels = (expires: number) => ({ "dev.moat.standby": String(expires) });
  assert.equal(waitingStandby({ Labels: labels(T + 1) }, false, T), true);
  assert.equal(waitingStandby({ Labels: labels(T) }, false, T), false, "expired");
  assert.equal(waitingStandby({ Labels: labels(T + 1) }, true, T), false, "taken: its run decides");
  assert.equal(waitingStandby({ Labels: {} }, false, T), false);
  assert.equal(waitingStandby({ Labels: { "dev.moat.standby": "soon" } }, false, T), false);

  const relay = summary("1".repeat(64), "abc", { State: "running" }, {
    ...labels(T + 1),
    "dev.moat.probe": "relay",
  });
  assert.equal(classifyContainer(relay, undefined, false, T), "standby");
  assert.equal(classifyContainer(relay, undefined, false, T + 2), "orphaned", "expired and still there");
  assert.equal(classifyContainer(relay, record({ id: "abc", state: "running" }), false, T), "orphaned");
  assert.equal(classifyContainer(relay, record({ id: "abc", state: "running" }), true, T), "active");
  const net = { Labels: labels(T + 1) };
  assert.equal(classifyNetwork(net, false, false, T), "standby");
  assert.equal(classifyNetwork(net, false, false, T + 1), "orphaned");
  assert.equal(classifyNetwork(net, true, false, T), "orphaned");
  assert.equal(classifyNetwork(net, true, true, T), "active");
  assert.equal(classifyNetwork({ Labels: {} }, false, false, T), "orphaned");
});

Deno.test("parseStandbyArgs: an image to make one for, a run whose network to remove, or both", () => {
  assert.deepEqual(parseStandbyArgs(["--image", "sha256:a"]), { help: false, image: "sha256:a" });
  assert.deepEqual(parseStandbyArgs(["--release", "abc123"]), { help: false, release: "abc123" });
  assert.deepEqual(parseStandbyArgs(["--image", "sha256:a", "--release", "abc123"]), {
    help: false,
    image: "sha256:a",
    release: "abc123",
  });
  for (const args of [[], ["--release", "../x"], ["--release", "ABC"], ["--image", "a", "extra"]]) {
    assert.throws(() => parseStandbyArgs(args), UsageError, JSON.stringify(args));
  }
});
