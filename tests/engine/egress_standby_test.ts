/**
 * Networks made ahead of allowlist runs (lib/run/standby.ts) on the real engine, under gVisor: after an
 * `--allow` run moat makes the next run's network and relay in the background; the next run with the same
 * image takes it (its id becomes the run's), reaches what it allows through it, and removes it as it ends;
 * a run with another image does not take it; a detached run takes one too; one nobody takes stops by itself
 * and `moat clean` removes what is left of it. The upstream is the test's own server on loopback.
 */
import assert from "node:assert/strict";
import { docker, moat, requireEngine, TEST_IMAGE, withScratch } from "./helpers.ts";

const ON = { MOAT_STANDBY: "1" };

interface StandbyFile {
  id: string;
  network: string;
  relayId: string;
  expiresAt: number;
}

/** The ready standbys of `home` (`standby/<id>.json`). */
function readyStandbys(home: string): StandbyFile[] {
  try {
    return [...Deno.readDirSync(`${home}/standby`)].filter((e) => e.name.endsWith(".json"))
      .map((e) => JSON.parse(Deno.readTextFileSync(`${home}/standby/${e.name}`)) as StandbyFile);
  } catch {
    return [];
  }
}

/** Wait (up to 60 s: it is made in the background) until `home` has `n` ready standbys besides `not`. */
async function standbysReady(home: string, n: number, not: string[] = []): Promise<StandbyFile[]> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const found = readyStandbys(home).filter((s) => !not.includes(s.id));
    if (found.length >= n) return found;
    if (Date.now() > deadline) throw new Error(`no standby was made in ${home} within 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Remove every standby of `home` (the test's end: they would outlive its MOAT_HOME). */
async function removeStandbys(home: string): Promise<void> {
  for (const s of readyStandbys(home)) {
    await docker("rm", "-f", s.relayId).catch(() => {});
    await docker("network", "rm", s.network).catch(() => {});
  }
}

async function isRunning(container: string): Promise<boolean> {
  return (await docker("inspect", "-f", "{{.State.Running}}", container).catch(() => "gone")).trim() ===
    "true";
}

async function networkExists(name: string): Promise<boolean> {
  return (await docker("network", "ls", "-q", "--filter", `name=^${name}$`)).trim() !== "";
}

function upstream() {
  const ac = new AbortController();
  const web = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (req) => new Response(`path=${new URL(req.url).pathname}\n`),
  );
  return {
    env: { MOAT_TEST_UPSTREAMS: JSON.stringify({ "web.allowed.test": `127.0.0.1:${web.addr.port}` }) },
    async close() {
      ac.abort();
      await web.finished;
    },
  };
}

const fetchScript = (path: string) => `wget -q -O - http://web.allowed.test${path}`;

/**
 * A scratch workspace and home with networks made ahead on (`env` added), an upstream of the test's, and one
 * `--allow` run done: `fn` gets the standby made after it. Every standby of the home is removed afterwards.
 */
async function afterFirstRun(
  env: Record<string, string>,
  fn: (s: { ws: string; home: string; env: Record<string, string>; made: StandbyFile }) => Promise<void>,
): Promise<void> {
  await requireEngine();
  const web = upstream();
  try {
    await withScratch(async ({ ws, home }) => {
      const all = { ...ON, ...web.env, ...env };
      const args = ["run", "--image", TEST_IMAGE, "--allow", "web.allowed.test", ws, "--", "true"];
      const first = await moat(args, { home, env: all });
      assert.equal(first.code, 0, first.stderr);
      try {
        const [made] = await standbysReady(home, 1);
        assert.ok(made);
        await fn({ ws, home, env: all, made });
      } finally {
        await removeStandbys(home);
      }
    });
  } finally {
    await web.close();
  }
}

/** The role `moat system networks|containers` gives the item named `name` (by its `key`). */
async function roleOf(home: string, what: "networks" | "containers", key: "name" | "id", name: string) {
  const items = JSON.parse((await moat(["system", what, "--json"], { home })).out) as Record<
    string,
    string
  >[];
  return items.filter((i) => i[key] === name).map((i) => i.role);
}

Deno.test("a network made ahead: made after an --allow run, taken by the next of the same image, gone with it", async () => {
  await afterFirstRun({}, async ({ ws, home, env, made }) => {
    assert.ok(await isRunning(made.relayId), "its relay runs");
    assert.ok(await networkExists(made.network));

    // Waiting, it is nobody's leftover: listed as standby, left alone by moat clean.
    assert.deepEqual(await roleOf(home, "networks", "name", made.network), ["standby"]);
    assert.deepEqual(await roleOf(home, "containers", "id", made.relayId), ["standby"]);
    const listed = await moat(["list"], { home });
    assert.doesNotMatch(listed.stderr, /left behind|orphan/i, listed.stderr);
    const clean = await moat(["clean", "-f"], { home });
    assert.equal(clean.code, 0, clean.stderr);
    assert.ok(await isRunning(made.relayId), "moat clean removed a waiting standby");

    // Another image does not take it (its relay runs on the image it was made for).
    const other = await moat(
      ["run", "--image", "debian:bookworm-slim", "--allow", "web.allowed.test", ws, "--", "true"],
      { home, env },
    );
    assert.equal(other.code, 0, other.stderr);
    assert.ok(readyStandbys(home).some((s) => s.id === made.id), "taken by a run of another image");

    // The same image takes it: the run's id is the standby's, and it reaches the allowed host through it.
    const second = await moat(
      [
        "run",
        "--image",
        TEST_IMAGE,
        "--allow",
        "web.allowed.test",
        ws,
        "--",
        "sh",
        "-c",
        fetchScript("/taken"),
      ],
      { home, env },
    );
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.out, "path=/taken\n");
    const ids = [...Deno.readDirSync(`${home}/runs`)].map((e) => e.name);
    assert.ok(ids.includes(made.id), `no run took standby ${made.id}: runs ${ids.join(", ")}`);
    const decisions = await Deno.readTextFile(`${home}/runs/${made.id}/network.jsonl`);
    assert.match(decisions, /"decision":"allow"/);
    // Gone with its run, in the background (the process that makes the next one ahead), which the run's
    // record names as its owner meanwhile: the relay, then the network; the files at once.
    await assert.rejects(Deno.stat(`${home}/standby/${made.id}`));
    const owner = JSON.parse(await Deno.readTextFile(`${home}/runs/${made.id}/run.json`)).owner;
    const cmdline = await Deno.readTextFile(`/proc/${owner.pid}/cmdline`).catch(() => "(exited)");
    assert.ok(cmdline === "(exited)" || cmdline.includes("standby"), `the run's owner now: ${cmdline}`);
    // Meanwhile the run is not running, and nothing of it is left behind.
    const listed2 = await moat(["list"], { home });
    assert.doesNotMatch(listed2.stderr, /left behind|orphan/i, listed2.stderr);
    const deadline = Date.now() + 30_000;
    while (
      await networkExists(made.network) ||
      await docker("ps", "-aq", "--filter", `label=dev.moat.run-id=${made.id}`) !== ""
    ) {
      assert.ok(Date.now() < deadline, "the run's relay and network were not removed in the background");
      await new Promise((r) => setTimeout(r, 100));
    }
    // And the next one is made for the run after.
    await standbysReady(home, 2, [made.id]); // the debian run's and the next busybox run's
  });
});

Deno.test("moat run -d takes a network made ahead; its recorder serves it and removes it at the end", async () => {
  await afterFirstRun({}, async ({ ws, home, env, made }) => {
    const script = `${fetchScript("/first")}; sleep 1; ${fetchScript("/second")}`;
    const d = await moat(
      ["run", "-d", "--image", TEST_IMAGE, "--allow", "web.allowed.test", ws, "--", "sh", "-c", script],
      { home, env },
    );
    assert.equal(d.code, 0, d.stderr);
    assert.equal(d.out.trim(), made.id, "the detached run did not take the standby");
    const waited = await moat(["wait", made.id], { home });
    assert.equal(waited.code, 0, waited.stderr);
    const logs = await moat(["logs", made.id], { home });
    assert.equal(logs.out, "path=/first\npath=/second\n", logs.stderr);
    // The recorder removes the relay and the network before it writes the final record.
    assert.equal(await docker("ps", "-aq", "--filter", `label=dev.moat.run-id=${made.id}`), "");
    assert.equal(await networkExists(made.network), false);
    await standbysReady(home, 1, [made.id]);
  });
});

Deno.test("a network made ahead that no run takes stops by itself; moat clean removes its network", async () => {
  // Waits 4 s: taken only in its first 3 s (the last quarter is too close to its end).
  await afterFirstRun({ MOAT_STANDBY_IDLE: "4" }, async ({ home, made }) => {
    // The relay stops at its time, and the engine removes it.
    const deadline = made.expiresAt + 30_000;
    while ((await docker("ps", "-aq", "--filter", `id=${made.relayId}`)).trim() !== "") {
      assert.ok(Date.now() < deadline, "the relay did not stop by itself");
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(Date.now() >= made.expiresAt - 1000, "it stopped before its time");
    // Its network is left, now nobody's (orphaned), and never taken: a run makes its own.
    assert.deepEqual(await roleOf(home, "networks", "name", made.network), ["orphaned"]);
    const clean = await moat(["clean", "-f"], { home });
    assert.equal(clean.code, 0, clean.stderr);
    assert.equal(await networkExists(made.network), false, "moat clean left an expired standby's network");
  });
});
