/** `moat system containers|images`: black-box against a fake engine, and the pure selection as tables. */
import assert from "node:assert/strict";
import type { ImageSummary, NetworkInspect } from "../../lib/docker/types.ts";
import {
  formatNetworksTable,
  reasonsText,
  systemImages,
  systemNetworks,
  withTag,
} from "../../lib/cli/system.ts";
import { moat, scratch } from "../engine/helpers.ts";
import { FakeEngine } from "../fake_engine.ts";
import { liveOwner, record, summary, writeRecord } from "./records_fixture.ts";
import { homeLabel, OTHER_HOME } from "./run_records.ts";

const NO_ENGINE = "unix:///nonexistent/moat-test/docker.sock";
const KEPT = "1".repeat(64);
const PROBE = "9".repeat(64);
const ACTIVE = "3".repeat(64);

async function system(args: string[], home: string, dockerHost: string) {
  return await moat(["system", ...args], { home, env: { DOCKER_HOST: dockerHost } });
}

function image(id: string, tags: string[] | null, over: Partial<ImageSummary> = {}): ImageSummary {
  return {
    Id: `sha256:${id.repeat(64).slice(0, 64)}`,
    RepoTags: tags,
    Size: 1_000_000,
    Created: 1,
    Labels: null,
    ...over,
  };
}

Deno.test("system without a subcommand is a usage error naming the subcommands", async () => {
  const s = await scratch();
  try {
    const r = await system([], s.home, NO_ENGINE);
    assert.equal(r.code, 2);
    assert.equal(r.out, "");
    assert.match(r.stderr, /^moat: moat system needs a subcommand: containers, images or networks\n/);
    assert.match(r.stderr, /moat system containers/);
    assert.match(r.stderr, /moat system images/);
    assert.match(r.stderr, /moat system networks/);
    const bad = await system(["volumes"], s.home, NO_ENGINE);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^moat: Unknown subcommand "volumes" for moat system/);
  } finally {
    await s.cleanup();
  }
});

const OTHER = "8".repeat(64);
const UNKNOWN = "7".repeat(64);

Deno.test("system containers lists each moat container with its role and its docker rm -f command", async () => {
  await using engine = await FakeEngine.start();
  const owner = await liveOwner();
  const s = await scratch();
  engine.on("GET /containers/json", {
    status: 200,
    json: [
      summary(KEPT, "a2a2a2a2a2a2", { Created: 30, Image: "moat-test/busybox:latest" }),
      summary(PROBE, "d5d5d5d5d5d5", { State: "created", Created: 20 }, {
        "dev.moat.probe": "passwd",
        "dev.moat.owner-pid": "1",
        "dev.moat.boot-id": "another-boot",
        ...homeLabel(s.home),
      }),
      summary(ACTIVE, "c4c4c4c4c4c4", { State: "running", Created: 10 }, {
        "dev.moat.owner-pid": String(owner.pid),
        "dev.moat.boot-id": owner.bootId,
        ...homeLabel(s.home),
      }),
      // Not this MOAT_HOME's: listed only with --all-homes.
      summary(OTHER, "e6e6e6e6e6e6", { State: "running", Created: 5 }, OTHER_HOME),
      summary(UNKNOWN, "f7f7f7f7f7f7", { Created: 4 }),
    ],
  });
  try {
    await writeRecord(s.home, record({ id: "a2a2a2a2a2a2", kept: true, removed: false, containerId: KEPT }));
    const r = await system(["containers"], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.out.trimEnd().split("\n");
    assert.match(lines[0]!, /^CONTAINER\s+RUN\s+ROLE\s+STATE\s+IMAGE\s+REMOVE WITH$/);
    assert.match(
      lines[1]!,
      /^111111111111\s+a2a2a2a2a2a2\s+kept\s+exited\s+moat-test\/busybox:latest\s+docker rm -f 111111111111$/,
    );
    assert.match(
      lines[2]!,
      /^999999999999\s+d5d5d5d5d5d5\s+orphaned, probe\s+created\s+busybox\s+docker rm -f 999999999999$/,
    );
    assert.match(
      lines[3]!,
      /^333333333333\s+c4c4c4c4c4c4\s+active\s+running\s+busybox\s+docker rm -f 333333333333$/,
    );
    const filters = JSON.parse(engine.requestsTo("GET /containers/json")[0]!.query.get("filters")!);
    assert.deepEqual(filters, { label: ["dev.moat.managed=true"] });
    assert.equal(engine.requestsTo("GET /info").length, 0, "system never asks about gVisor");
    assert.equal(engine.requestsTo("DELETE /containers/:id").length, 0, "and never removes anything");

    const j = await system(["containers", "--json"], s.home, `unix://${engine.path}`);
    assert.equal(j.code, 0, j.stderr);
    const items = JSON.parse(j.out);
    assert.deepEqual(items[0], {
      id: KEPT,
      name: "moat-a2a2a2a2a2a2",
      image: "moat-test/busybox:latest",
      state: "exited",
      status: "Exited (0) 1 minute ago",
      created: 30,
      runId: "a2a2a2a2a2a2",
      runName: null,
      workspace: "/ws",
      probe: false,
      role: "kept",
      home: "this",
      remove: "docker rm -f 111111111111",
    });
    assert.deepEqual(items.map((i: { role: string }) => i.role), ["kept", "orphaned", "active"]);

    const all = await system(["containers", "--all-homes"], s.home, `unix://${engine.path}`);
    assert.equal(all.code, 0, all.stderr);
    const rows = all.out.trimEnd().split("\n").map((l) => l.split(/ {2,}/));
    assert.deepEqual(rows[0], ["CONTAINER", "RUN", "ROLE", "STATE", "IMAGE", "HOME", "REMOVE WITH"]);
    assert.deepEqual(rows.slice(1).map((r) => [r[0], r[5]]), [
      ["111111111111", "this"],
      ["999999999999", "this"],
      ["333333333333", "this"],
      ["888888888888", "other"],
      ["777777777777", "unknown"],
    ]);
  } finally {
    await s.cleanup();
  }
});

Deno.test("system containers with only other MOAT_HOMEs' containers says so and names --all-homes", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/json", { status: 200, json: [summary(OTHER, "e6e6e6e6e6e6", {}, OTHER_HOME)] });
  const s = await scratch();
  try {
    const r = await system(["containers"], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0);
    assert.equal(r.out, "");
    assert.equal(
      r.stderr,
      "moat: no container of this MOAT_HOME on this engine; 1 of other MOAT_HOMEs:  " +
        "moat system containers --all-homes\n",
    );
    const bad = await system(["images", "--all-homes"], s.home, `unix://${engine.path}`);
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /^moat: --all-homes is an option of moat system containers and networks, not of moat system images/,
    );
  } finally {
    await s.cleanup();
  }
});

Deno.test("system containers with none says so on stderr and prints nothing", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/json", { status: 200, json: [] });
  const s = await scratch();
  try {
    const r = await system(["containers"], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0);
    assert.equal(r.out, "");
    assert.match(r.stderr, /^moat: no container on this engine carries moat's labels$/m);
    const j = await system(["containers", "--json"], s.home, `unix://${engine.path}`);
    assert.equal(j.out, "[]\n");
  } finally {
    await s.cleanup();
  }
});

Deno.test("system images lists used, setup-built and default images with their docker rmi command", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/json", {
    status: 200,
    json: [summary(KEPT, "a2a2a2a2a2a2", { Image: "alpine", ImageID: image("e", null).Id })],
  });
  engine.on("GET /images/json", {
    status: 200,
    json: [
      image("a", ["debian:bookworm-slim"], { Size: 117_000_000 }),
      image("b", ["moat-test/busybox:latest"], { Labels: { "dev.moat.built-by": "setup" } }),
      image("c", ["unrelated:1"]),
      image("e", ["alpine:latest", "alpine:3"]),
    ],
  });
  const s = await scratch();
  try {
    const r = await system(["images"], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.out.trimEnd().split("\n");
    assert.match(lines[0]!, /^IMAGE\s+ID\s+SIZE\s+WHY\s+REMOVE WITH$/);
    assert.equal(lines.length, 4, r.out);
    assert.match(
      lines[1]!,
      /^alpine:latest,alpine:3\s+eeeeeeeeeeee\s+1\.0 MB\s+used by 1 container\s+docker rmi alpine:latest alpine:3$/,
    );
    assert.match(
      r.out,
      /^debian:bookworm-slim\s+aaaaaaaaaaaa\s+117 MB\s+default image\s+docker rmi debian:bookworm-slim$/m,
    );
    assert.match(
      r.out,
      /^moat-test\/busybox:latest\s+bbbbbbbbbbbb\s+1\.0 MB\s+built by setup\s+docker rmi moat-test\/busybox:latest$/m,
    );
    assert.doesNotMatch(r.out, /unrelated/);

    const j = await system(["images", "--json"], s.home, `unix://${engine.path}`);
    const used = JSON.parse(j.out)[0];
    assert.deepEqual(used.reasons, ["in-use"]);
    assert.deepEqual(used.usedBy, [KEPT]);
  } finally {
    await s.cleanup();
  }
});

Deno.test("system images counts MOAT_IMAGE as an image moat uses", async () => {
  await using engine = await FakeEngine.start();
  engine.on("GET /containers/json", { status: 200, json: [] });
  engine.on("GET /images/json", { status: 200, json: [image("f", ["node:22"])] });
  const s = await scratch();
  try {
    const r = await moat(["system", "images"], {
      home: s.home,
      env: { DOCKER_HOST: `unix://${engine.path}`, MOAT_IMAGE: "node:22" },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.out, /^node:22\s+ffffffffffff\s+1\.0 MB\s+MOAT_IMAGE\s+docker rmi node:22$/m);
  } finally {
    await s.cleanup();
  }
});

Deno.test("system with the engine down fails with the engine error", async () => {
  const s = await scratch();
  try {
    const r = await system(["containers"], s.home, NO_ENGINE);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /^moat: Docker engine not found/);
  } finally {
    await s.cleanup();
  }
});

Deno.test("system --help and system containers --help print on stdout", async () => {
  const s = await scratch();
  try {
    const top = await system(["--help"], s.home, NO_ENGINE);
    assert.equal(top.code, 0);
    assert.match(top.out, /^Usage: moat system SUBCOMMAND/);
    const sub = await system(["containers", "-h"], s.home, NO_ENGINE);
    assert.equal(sub.code, 0);
    assert.match(sub.out, /^Usage: moat system containers/);
    assert.match(sub.out, /Examples:/);
  } finally {
    await s.cleanup();
  }
});

Deno.test("withTag adds :latest only to references without a tag or digest", () => {
  const table: Array<[string, string]> = [
    ["busybox", "busybox:latest"],
    ["busybox:1.36", "busybox:1.36"],
    ["localhost:5000/x", "localhost:5000/x:latest"],
    ["localhost:5000/x:2", "localhost:5000/x:2"],
    ["x@sha256:abc", "x@sha256:abc"],
  ];
  for (const [ref, want] of table) assert.equal(withTag(ref), want, ref);
});

Deno.test("systemImages matches a container to its image by id, by reference, and by short reference", () => {
  const img = image("a", ["busybox:latest"]);
  const byId = summary(KEPT, "r1", { Image: "sha256:whatever", ImageID: img.Id });
  const byRef = summary(PROBE, "r2", { Image: "busybox" });
  const bare = summary(ACTIVE, "r3", { Image: img.Id });
  const [only] = systemImages([img, image("b", null)], [byId, byRef, bare], []);
  assert.deepEqual(only!.usedBy, [KEPT, PROBE, ACTIVE]);
  assert.equal(reasonsText(only!), "used by 3 containers");
  const untagged = systemImages(
    [image("b", ["<none>:<none>"], { Labels: { "dev.moat.built-by": "setup" } })],
    [],
    [],
  );
  assert.equal(untagged[0]!.remove, "docker rmi bbbbbbbbbbbb");
});

/** One of moat's networks for `runId` (named after it unless `name` says otherwise). */
function net(runId: string, labels: Record<string, string> = {}, name = `moat-net-${runId}`): NetworkInspect {
  return {
    Name: name,
    Id: `${runId}`.padEnd(64, "0"),
    Driver: "bridge",
    Internal: true,
    IPAM: { Config: [{ Subnet: "10.237.0.16/28" }] },
    Labels: { "dev.moat.managed": "true", "dev.moat.run-id": runId, "dev.moat.workspace": "/ws", ...labels },
  };
}

Deno.test("systemNetworks: role from the owner (the record's first), home, doctor's marked, others left out", () => {
  const live = { pid: 10, bootId: "b", startTicks: 1 };
  const alive = (o: { pid: number } | undefined) => o?.pid === 10;
  const items = systemNetworks(
    [
      net("bbb", { "dev.moat.owner-pid": "10", "dev.moat.boot-id": "b", "dev.moat.home": "h1" }),
      net("aaa", {
        "dev.moat.owner-pid": "1",
        "dev.moat.boot-id": "b",
        "dev.moat.home": "h1",
        "dev.moat.probe": "doctor",
      }),
      net("ccc", { "dev.moat.home": "h2", "dev.moat.name": "api" }),
      // Recorded here with a live owner: active, whatever its labels say; no home label: this home's.
      net("ddd", { "dev.moat.owner-pid": "1", "dev.moat.boot-id": "b" }),
      net("eee", {}, "not-named-after-its-run"),
    ],
    [record({ id: "ddd", owner: live })],
    alive,
    "h1",
  );
  assert.deepEqual(
    items.map((n) => [n.name, n.runId, n.role, n.home, n.probe, n.runName]),
    [
      ["moat-net-aaa", "aaa", "orphaned", "this", "doctor", null],
      ["moat-net-bbb", "bbb", "active", "this", null, null],
      ["moat-net-ccc", "ccc", "orphaned", "other", null, "api"],
      ["moat-net-ddd", "ddd", "active", "this", null, null],
    ],
  );
  assert.equal(items[0]!.remove, "docker network rm moat-net-aaa");
  assert.equal(items[0]!.subnet, "10.237.0.16/28");
  const table = formatNetworksTable(items.slice(0, 1)).split("\n");
  assert.match(table[0]!, /^NETWORK\s+RUN\s+ROLE\s+SUBNET\s+REMOVE WITH$/);
  assert.match(
    table[1]!,
    /^moat-net-aaa\s+aaa\s+orphaned, doctor\s+10\.237\.0\.16\/28\s+docker network rm moat-net-aaa$/,
  );
});

Deno.test("system networks lists this MOAT_HOME's run networks; --all-homes every one; --json the array", async () => {
  await using engine = await FakeEngine.start();
  const s = await scratch();
  try {
    const mine = { ...homeLabel(s.home), "dev.moat.owner-pid": "1", "dev.moat.boot-id": "another-boot" };
    engine.withNetworks([
      net("a1a1a1a1a1a1", mine),
      net("b2b2b2b2b2b2", OTHER_HOME),
      { Name: "bridge", Id: "b".repeat(64), Driver: "bridge" },
    ]);
    const r = await system(["networks"], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    const lines = r.out.trimEnd().split("\n");
    assert.equal(lines.length, 2, r.out);
    assert.match(
      lines[1]!,
      /^moat-net-a1a1a1a1a1a1\s+a1a1a1a1a1a1\s+orphaned\s+10\.237\.0\.16\/28\s+docker network rm moat-net-a1a1a1a1a1a1$/,
    );
    const filters = engine.requestsTo("GET /networks")[0]!.query.get("filters");
    assert.deepEqual(JSON.parse(filters!), { label: ["dev.moat.managed=true"] });

    const all = await system(["networks", "--all-homes"], s.home, `unix://${engine.path}`);
    assert.match(all.out, /^NETWORK\s+RUN\s+ROLE\s+SUBNET\s+HOME\s+REMOVE WITH$/m);
    assert.match(
      all.out,
      /^moat-net-b2b2b2b2b2b2\s+b2b2b2b2b2b2\s+orphaned\s+\S+\s+other\s+docker network rm/m,
    );

    const j = await system(["networks", "--json"], s.home, `unix://${engine.path}`);
    const parsed = JSON.parse(j.out);
    assert.deepEqual(Object.keys(parsed[0]), [
      "id",
      "name",
      "runId",
      "runName",
      "workspace",
      "subnet",
      "probe",
      "role",
      "home",
      "remove",
    ]);
    assert.equal(parsed.length, 1);
  } finally {
    await s.cleanup();
  }
});

Deno.test("system networks with none says so on stderr and prints nothing", async () => {
  await using engine = await FakeEngine.start();
  engine.withNetworks();
  const s = await scratch();
  try {
    const r = await system(["networks"], s.home, `unix://${engine.path}`);
    assert.equal(r.code, 0);
    assert.equal(r.out, "");
    assert.match(r.stderr, /^moat: no network on this engine carries moat's labels$/m);
    const help = await system(["networks", "--help"], s.home, NO_ENGINE);
    assert.match(help.out, /^Usage: moat system networks/);
  } finally {
    await s.cleanup();
  }
});
