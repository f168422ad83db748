/** Networks made ahead of allowlist runs (lib/run/standby.ts): settings, key, files, taking one, roles. */
import assert from "node:assert/strict";
import { classifyContainer, classifyNetwork, waitingStandby } from "../../lib/run/orphans.ts";
import {
  adoptStandby,
  CLAIM_MARGIN_MS,
  claimStandby,
  discardStandby,
  type NetStandby,
  ownStandbyKey,
  parseStandby,
  prepareStandby,
  type Standby,
  STANDBY_IDLE_MS,
  standbyKey,
  standbySettings,
} from "../../lib/run/standby.ts";
import { withHome } from "../temp_home.ts";
import { FakeEngine } from "../fake_engine.ts";
import { DockerClient } from "../../lib/docker/client.ts";
import { unixTransport } from "../../lib/docker/transport.ts";
import { encodeLocalHeader } from "../../lib/net/proxy_header.ts";
import { ensureHomeId } from "../../lib/store/home_id.ts";
import { parseStandbyArgs } from "../../lib/cli/standby.ts";
import { UsageError } from "../../lib/errors.ts";
import { record, summary } from "../cli/records_fixture.ts";
import { parseWarmSpec, warmSpec } from "../../lib/run/warm.ts";
import { profileFor } from "../../lib/run/profile.ts";

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

const standby = (id: string, over: Partial<Standby> = {}): NetStandby => ({
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

/** A fake engine that makes networks and relays; a relay "gets ready" when started (it signs on the socket). */
async function standbyEngine(networks: unknown[] = []) {
  const engine = await FakeEngine.start();
  // As the engine does: a label filter lists only the networks carrying it.
  engine.on("GET /networks", (req, res) => {
    const labels: string[] = JSON.parse(req.query.get("filters") ?? "{}").label ?? [];
    const carries = (n: { Labels?: Record<string, string> }) =>
      labels.every((l) => {
        const [k, v] = l.split("=");
        return n.Labels?.[k!] === v;
      });
    return res.json(200, (networks as { Labels?: Record<string, string> }[]).filter(carries));
  });
  engine.on("POST /networks/create", { status: 201, json: { Id: "net1" } });
  engine.on("POST /containers/create", { status: 201, json: { Id: "relay1", Warnings: [] } });
  engine.on("POST /containers/:id/wait", async (_req, res) => {
    await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    await res.delay(60_000); // a relay that runs on
  });
  engine.on("POST /containers/:id/start", async (_req, res) => {
    const body = engine.requestsTo("POST /containers/create").at(-1)!.json as {
      HostConfig: { Binds: string[] };
    };
    const dir = body.HostConfig.Binds.find((b) => b.endsWith(":/run/moat"))!.split(":")[0]!;
    const conn = await Deno.connect({ transport: "unix", path: `${dir}/relay.sock` });
    await conn.write(encodeLocalHeader());
    conn.close();
    await res.empty(204);
  });
  engine.on("DELETE /containers/:id", { status: 204 });
  engine.on("DELETE /networks/:id", { status: 204 });
  return { engine, client: new DockerClient(unixTransport(engine.endpoint), { timeoutMs: 5000 }) };
}

Deno.test("prepareStandby makes a network and a relay that expires, waits for it, then writes the file once", async () => {
  await withHome(async (home) => {
    // A network of someone else's covers half of moat's pool: the standby's subnet is in the other half.
    const { engine, client } = await standbyEngine([
      { Name: "theirs", Id: "t", Labels: {}, IPAM: { Config: [{ Subnet: "10.237.0.0/17" }] } },
    ]);
    await using _ = engine;
    const before = Date.now();
    assert.equal(await prepareStandby(client, home, "sha256:img", 90_000), "made");
    const made = engine.requestsTo("POST /networks/create")[0]!.json as {
      IPAM: { Config: { Subnet: string }[] };
    };
    assert.match(made.IPAM.Config[0]!.Subnet, /^10\.237\.(12[89]|1[3-9]\d|2\d\d)\.\d+\/28$/);
    const [s] = [...Deno.readDirSync(`${home}/standby`)].filter((e) => e.name.endsWith(".json"))
      .map((e) => parseStandby(Deno.readTextFileSync(`${home}/standby/${e.name}`))!);
    assert.ok(s);
    assert.deepEqual([s.key, s.network, s.relayId], [
      ownStandbyKey("sha256:img"),
      `moat-net-${s.id}`,
      "relay1",
    ]);
    assert.equal(s.expiresAt - s.madeAt, 90_000);
    assert.ok(s.madeAt >= before);
    const net = engine.requestsTo("POST /networks/create")[0]!.json as {
      Name: string;
      Labels: Record<string, string>;
    };
    assert.deepEqual([net.Name, net.Labels["dev.moat.standby"]], [s.network, String(s.expiresAt)]);
    const relay = engine.requestsTo("POST /containers/create")[0]!;
    assert.equal(relay.query.get("name"), `moat-net-${s.id}-relay`);
    const body = relay.json as { Image: string; Cmd: string[]; HostConfig: { AutoRemove: boolean } };
    assert.equal(body.Image, "sha256:img");
    assert.deepEqual(body.Cmd.slice(-2), ["--expire-at", String(s.expiresAt)]);
    assert.equal(body.HostConfig.AutoRemove, true, "the engine removes it when it stops");
    // One is there, not about to expire: no second one.
    assert.equal(await prepareStandby(client, home, "sha256:img", 90_000), "there");
    assert.equal(engine.requestsTo("POST /networks/create").length, 1);
  });
});

Deno.test("prepareStandby removes this home's expired standbys that no run took, and nothing else", async () => {
  await withHome(async (home) => {
    const homeId = ensureHomeId(home);
    const net = (id: string, labels: Record<string, string>) => ({
      Name: `moat-net-${id}`,
      Id: `id-${id}`,
      Labels: { "dev.moat.managed": "true", "dev.moat.run-id": id, ...labels },
      IPAM: { Config: [] },
    });
    const past = String(Date.now() - 1000);
    const { engine, client } = await standbyEngine([
      net("aaa", { "dev.moat.home": homeId, "dev.moat.standby": past }), // expired, not taken: goes
      net("bbb", { "dev.moat.home": homeId, "dev.moat.standby": past }), // expired, but taken by a run
      net("ccc", { "dev.moat.home": "another", "dev.moat.standby": past }), // another home's
      net("ddd", { "dev.moat.home": homeId, "dev.moat.standby": String(Date.now() + 60_000) }), // waiting
      net("eee", { "dev.moat.home": homeId }), // a run's own
    ]);
    await using _ = engine;
    for (const id of ["aaa", "bbb"]) await Deno.mkdir(`${home}/standby/${id}`, { recursive: true });
    await Deno.writeTextFile(`${home}/standby/bbb/claimed.json`, "{}");
    await prepareStandby(client, home, "sha256:img", 90_000);
    const deletes = engine.calls().filter((c) => c.startsWith("DELETE"));
    // Its relay, its network (and its waiting sandbox, a warm standby's, which there is none of here).
    assert.deepEqual(deletes, ["DELETE /containers/moat-net-aaa-relay", "DELETE /networks/moat-net-aaa"]);
    await assert.rejects(Deno.stat(`${home}/standby/aaa`));
    await Deno.stat(`${home}/standby/bbb/claimed.json`);
  });
});

Deno.test("adoptStandby serves the run's policy on the relay's socket; stop removes all, or all but the network", async () => {
  await withHome(async (home) => {
    const engine = await FakeEngine.start();
    await using _ = engine;
    let running = false;
    let relayName = "/moat-net-abc123-relay";
    let internal = true;
    engine.on("GET /containers/:id/json", (_req, res) =>
      res.json(200, {
        Id: "relay1",
        Name: relayName,
        State: { Running: running },
        Config: {},
        HostConfig: {},
        NetworkSettings: { Networks: { "moat-net-abc123": { IPAddress: "10.237.0.2" } } },
      }));
    engine.on("GET /networks/:id", (_req, res) =>
      res.json(200, {
        Name: "moat-net-abc123",
        Id: "n1",
        Internal: internal,
        Options: { "com.docker.network.bridge.inhibit_ipv4": "true" },
      }));
    engine.on("DELETE /containers/:id", { status: 204 });
    engine.on("DELETE /networks/:id", { status: 204 });
    const client = new DockerClient(unixTransport(engine.endpoint), { timeoutMs: 5000 });
    const s = standby("abc123", { network: "moat-net-abc123", relayId: "relay1" });
    const runDir = `${home}/runs/${s.id}`;
    await Deno.mkdir(runDir, { recursive: true });
    await Deno.mkdir(`${home}/standby/${s.id}`, { recursive: true });
    const req = { runDir, allow: ["x.test"] };
    // Its relay stopped (expired, removed by hand): refused, nothing left listening.
    await assert.rejects(adoptStandby(client, home, s, req, {}), /has no relay running/);
    await assert.rejects(Deno.stat(`${home}/standby/${s.id}/relay.sock`));

    running = true;
    // A file that names another container, or a network that is not isolated: refused too.
    relayName = "/someone-else";
    await assert.rejects(adoptStandby(client, home, s, req, {}), /has a relay that is not its own/);
    relayName = "/moat-net-abc123-relay";
    internal = false;
    await assert.rejects(adoptStandby(client, home, s, req, {}), /is not an isolated network of moat's/);
    internal = true;
    await assert.rejects(
      adoptStandby(client, home, { ...s, address: "10.237.0.3" }, req, {}),
      /has a relay that is not its own/,
    );
    for (const keepNetwork of [true, false]) {
      const egress = await adoptStandby(client, home, s, req, {});
      assert.deepEqual(egress.spec, {
        network: s.network,
        relayAddress: s.address,
        resolvConf: `${runDir}/resolv.conf`,
      });
      assert.match(
        await Deno.readTextFile(`${runDir}/resolv.conf`),
        new RegExp(`^nameserver ${s.address}\n`),
      );
      // The run's policy point answers on the relay's socket.
      const conn = await Deno.connect({ transport: "unix", path: `${home}/standby/${s.id}/relay.sock` });
      conn.close();
      const deletesBefore = engine.calls().filter((c) => c.startsWith("DELETE")).length;
      await egress.stop({ keepNetwork });
      const deletes = engine.calls().filter((c) => c.startsWith("DELETE")).slice(deletesBefore);
      assert.deepEqual(
        deletes,
        keepNetwork
          ? ["DELETE /containers/relay1"]
          : ["DELETE /containers/relay1", `DELETE /networks/${s.network}`],
      );
      await assert.rejects(Deno.stat(`${home}/standby/${s.id}`), "its directory goes with it");
      await Deno.mkdir(`${home}/standby/${s.id}`, { recursive: true });
    }
  });
});

Deno.test("parseStandby: a warm sandbox alone, or with a network; never neither, nor part of a network", () => {
  const sandbox = "c".repeat(64);
  const { network: _n, relayId: _r, address: _a, ...bare } = standby("abc123");
  const alone: Standby = { ...bare, sandbox };
  assert.deepEqual(parseStandby(JSON.stringify(alone)), alone, "a sandbox alone");
  const both = standby("abc123", { sandbox });
  assert.deepEqual(parseStandby(JSON.stringify(both)), both, "a network and a sandbox");
  const refused: [string, unknown][] = [
    ["neither", bare],
    ["a network without its relay", { ...bare, network: "moat-net-abc123", address: "10.237.0.2" }],
    ["a network without its address", { ...bare, network: "moat-net-abc123", relayId: "r".repeat(64) }],
    ["a relay without its network", { ...bare, relayId: "r".repeat(64), address: "10.237.0.2" }],
    ["a sandbox with part of a network", { ...alone, network: "moat-net-abc123" }],
    ["a sandbox that is not a string", { ...bare, sandbox: 1 }],
    ["a network and a sandbox that is not a string", { ...both, sandbox: null }],
  ];
  for (const [label, s] of refused) assert.equal(parseStandby(JSON.stringify(s)), undefined, label);
});

Deno.test("parseStandbyArgs: --warm gives the sandbox's settings, with --image only", () => {
  const spec = warmSpec({
    runId: "0123456789ab",
    name: undefined,
    image: "sha256:a",
    command: ["true"],
    env: { A: "1" },
    workspace: "/w",
    user: "1000:1000",
    runtime: "runsc",
    interactive: false,
    profile: profileFor({ network: "allowlist", allow: ["x.io"] }),
    moatVersion: "0.9.0",
  });
  const json = JSON.stringify(spec);
  const got = parseStandbyArgs(["--image", "sha256:a", "--warm", json]);
  assert.deepEqual(got, { help: false, image: "sha256:a", warm: parseWarmSpec(json) });
  assert.equal(got.warm?.workspace, "/w");
  assert.deepEqual(got.warm?.profile?.allow, []);
  assert.deepEqual(parseStandbyArgs(["--image", "sha256:a", "--warm", json, "--release", "abc123"]), {
    help: false,
    image: "sha256:a",
    warm: parseWarmSpec(json),
    release: "abc123",
  });
  const refused: [string, string[], RegExp][] = [
    ["--warm alone", ["--warm", json], /needs --image ID or --release RUN/],
    ["--warm with --release only", ["--release", "abc123", "--warm", json], /--warm needs --image/],
    ["--warm notjson", ["--image", "sha256:a", "--warm", "notjson"], /--warm is not a sandbox's settings/],
    [
      "--warm with a command",
      ["--image", "sha256:a", "--warm", JSON.stringify({ ...spec, command: ["sh"] })],
      /--warm is not a sandbox's settings/,
    ],
  ];
  for (const [label, args, message] of refused) {
    assert.throws(
      () => parseStandbyArgs(args),
      (e: unknown) => e instanceof UsageError && message.test(e.message),
      label,
    );
  }
});

Deno.test("discardStandby removes a sandbox made ahead of that name, never a run's own container", async () => {
  await withHome(async (home) => {
    const { engine, client } = await standbyEngine();
    try {
      const inspect = (labels: Record<string, string>) => ({
        Id: "c".repeat(64),
        Name: "/moat-x",
        State: { Status: "running", Running: true, ExitCode: 0 },
        Config: { Labels: labels },
        HostConfig: {},
      });
      engine.on("GET /containers/moat-aaa/json", { status: 200, json: inspect({ "dev.moat.standby": "1" }) });
      engine.on("GET /containers/moat-bbb/json", {
        status: 200,
        json: inspect({ "dev.moat.run-id": "bbb" }),
      });
      await discardStandby(client, home, { id: "aaa" });
      await discardStandby(client, home, { id: "bbb" });
      const deletes = engine.calls().filter((c) => c.startsWith("DELETE /containers/c"));
      assert.deepEqual(deletes, [`DELETE /containers/${"c".repeat(64)}`], "only the sandbox made ahead");
    } finally {
      await engine.close();
    }
  });
});
