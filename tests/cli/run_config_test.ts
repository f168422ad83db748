/**
 * Black-box `moat run <ws> -- true` with a bad config: exit 2, the error (with file:line:column when the file
 * has content), and the engine never asked anything, so no container, pull or run record.
 */
import assert from "node:assert/strict";
import { moat, scratch } from "../engine/helpers.ts";
import { FakeEngine } from "../fake_engine.ts";

/** Put the config in place, run, and report what moat said and whether anything was made. */
async function runWith(setup: (ws: string) => Promise<void>, after?: () => Promise<void>) {
  await using engine = await FakeEngine.start();
  const s = await scratch();
  try {
    await setup(s.ws);
    const r = await moat(["run", s.ws, "--", "true"], {
      home: s.home,
      env: { DOCKER_HOST: `unix://${engine.endpoint.path}` },
    });
    const records = await Array.fromAsync(Deno.readDir(`${s.home}/runs`)).catch(() => []);
    await after?.();
    return { ...r, ws: s.ws, calls: engine.calls(), records: records.length };
  } finally {
    await s.cleanup();
  }
}

const text = (body: string) => (ws: string) => Deno.writeTextFile(`${ws}/moat.yaml`, body);
const bytes = (body: number[]) => (ws: string) => Deno.writeFile(`${ws}/moat.yaml`, new Uint8Array(body));
const laughs = "env:\n" +
  ["a", "b", "c", "d", "e", "f", "g"].map((l, i, all) =>
    `  ${l}: &${l} [${Array(9).fill(i === 0 ? "lol" : `*${all[i - 1]}`).join(", ")}]\n`
  ).join("");

// [label, setup, first line of stderr after "moat: <ws>/moat.yaml"]
const cases: [string, (ws: string) => Promise<void>, RegExp][] = [
  [
    "a billion laughs",
    text(laughs),
    /^:\d+:\d+: the aliases \(\*name\) in this file stand for more than 10000/,
  ],
  [
    "an alias with no anchor",
    text("image: *nope\n"),
    /^:1:8: YAML syntax error: the alias \*nope has no anchor/,
  ],
  [
    "100000 nested lists",
    text(`image: ${"[".repeat(100_000)}\n`),
    /^:1:71: lists and maps are nested more than 64/,
  ],
  [
    "a run of 100000 tags",
    text(`image: ${"!t ".repeat(100_000)}x\n`),
    /^:1:\d+: YAML syntax error: more than 64/,
  ],
  ["two documents", text("image: a\n---\nimage: b\n"), /^:2:1: a second YAML document starts here/],
  ["a bad command item", text("command: [echo, [x]]\n"), /^:1:17: command\[1\]: must be a string, number/],
  ["!!binary", text("image: !!binary aGk=\n"), /^:1:17: image: .*; got binary data \(!!binary\)$/m],
  [
    "UTF-16",
    bytes([0xff, 0xfe, 0x61, 0, 0x3a, 0, 0x20, 0, 0x62, 0, 0x0a, 0]),
    /^:1:1: the file is UTF-16LE text/,
  ],
  ["Latin-1", bytes([0x61, 0x3a, 0x20, 0xe9, 0x0a]), /^:1:4: the file is not UTF-8 text/],
  ["more than 1 MiB", text("#".repeat(2 * 1024 * 1024)), /^:1:1048577: the file is larger than 1 MiB/],
];

for (const [label, setup, first] of cases) {
  Deno.test(`run with a config with ${label} exits 2 at file:line:column and asks the engine nothing`, async () => {
    const r = await runWith(setup);
    assert.equal(r.code, 2, r.stderr);
    const prefix = `moat: ${r.ws}/moat.yaml`;
    assert.ok(r.stderr.startsWith(prefix), r.stderr);
    assert.match(r.stderr.slice(prefix.length), first);
    assert.doesNotMatch(r.stderr, /internal error/);
    assert.deepEqual(r.calls, []);
    assert.equal(r.records, 0);
  });
}

const special: [string, (ws: string) => Promise<void>, string][] = [
  ["a directory", (ws) => Deno.mkdir(`${ws}/moat.yaml`), "is a directory, not a regular file"],
  [
    "a link to nothing",
    (ws) => Deno.symlink("none.yaml", `${ws}/moat.yaml`),
    'is a symbolic link to "none.yaml"',
  ],
  [
    "a link loop",
    (ws) => Deno.symlink("moat.yaml", `${ws}/moat.yaml`),
    "is a symbolic link that never reaches",
  ],
];
for (const [label, setup, message] of special) {
  Deno.test(`run with ${label} for moat.yaml exits 2 and asks the engine nothing`, async () => {
    const r = await runWith(setup);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.startsWith(`moat: Config ${r.ws}/moat.yaml ${message}`), r.stderr);
    assert.deepEqual(r.calls, []);
    assert.equal(r.records, 0);
  });
}

Deno.test("run with a named pipe for moat.yaml exits 2 at once instead of waiting for a writer", async () => {
  let fifo = "";
  let opened = false;
  let openedByMoat = false;
  let writer: Promise<void> | undefined;
  const r = await runWith(async (ws) => {
    fifo = `${ws}/moat.yaml`;
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.equal(made.code, 0, "mkfifo");
    // Opening a FIFO to write waits for a reader, so this finishes only if moat opens it; it then closes at
    // once, and moat reads an empty config and goes on (no exit 2) rather than hanging this test.
    writer = Deno.open(fifo, { write: true }).then((f) => {
      opened = true;
      f.close();
    });
  }, async () => {
    openedByMoat = opened;
    if (!opened) (await Deno.open(fifo, { read: true })).close(); // let the waiting writer through
    await writer;
  });
  assert.equal(openedByMoat, false, "moat opened the pipe");
  assert.equal(r.code, 2, r.stderr);
  assert.ok(
    r.stderr.startsWith(`moat: Config ${r.ws}/moat.yaml is a named pipe (FIFO), not a regular file`),
    r.stderr,
  );
  assert.deepEqual(r.calls, []);
});
