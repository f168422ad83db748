/**
 * `moat logs`: the tail/line logic as tables, and the command black-box on crafted records (no engine:
 * DOCKER_HOST points at a socket that does not exist, and logs must not need one).
 */
import assert from "node:assert/strict";
import {
  clipPiece,
  fdOf,
  LineRenderer,
  parseLogsArgs,
  TailFinder,
  timestampPrefix,
} from "../../lib/cli/logs.ts";
import { UsageError } from "../../lib/errors.ts";
import { OutputDecoder, type OutputPiece } from "../../lib/store/output_reader.ts";
import { currentOwner } from "../../lib/store/owner.ts";
import { type RunRecord, RunStore } from "../../lib/store/records.ts";
import { moat, moatEnv, ROOT } from "../engine/helpers.ts";
import { concat, FakeEngine } from "../fake_engine.ts";
import { outFrame } from "../store/output_frames.ts";
import { withHome } from "../temp_home.ts";
import { profileFor } from "../../lib/run/profile.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

// --- arguments ----------------------------------------------------------------------------------------------

Deno.test("logs args: -n, -f, -t and one RUN", () => {
  assert.deepEqual(parseLogsArgs(["-n", "3", "-f", "-t", "abc"]), {
    help: false,
    follow: true,
    exitCode: false,
    timestamps: true,
    tail: 3,
    network: false,
    json: false,
    ref: "abc",
  });
  assert.deepEqual(parseLogsArgs(["--tail=0", "--follow", "--timestamps"]), {
    help: false,
    follow: true,
    exitCode: false,
    timestamps: true,
    tail: 0,
    network: false,
    json: false,
    ref: undefined,
  });
  assert.deepEqual([
    parseLogsArgs(["--network", "--json", "x"]).network,
    parseLogsArgs(["--network", "--json"]).json,
  ], [
    true,
    true,
  ]);
  assert.equal(parseLogsArgs([]).tail, undefined);
  assert.equal(parseLogsArgs(["-f", "--exit-code", "abc"]).exitCode, true);
});

const badArgs: [string, string[], RegExp][] = [
  ["two runs", ["a", "b"], /Unexpected argument "b": moat logs takes one RUN/],
  ["a tail that is not a number", ["-n", "x"], /-n\/--tail "x" is not a number of lines/],
  [
    "a negative tail",
    ["-n", "-1"],
    /looks like an option; to give a value that starts with '-', write --tail=-1$/,
  ],
  ["an unknown option", ["--since", "1h"], /Unknown option '--since'/],
  ["a missing tail", ["-n"], /^Option '-n' needs a value$/],
  ["--json without --network", ["--json", "abc"], /^--json goes with --network$/],
  [
    "--network with -f",
    ["--network", "-f"],
    /^--network prints the run's network decisions, which -f, -n and -t/,
  ],
  ["--network with -n", ["--network", "-n", "3"], /which -f, -n and -t do not apply to/],
  [
    "--exit-code without -f",
    ["--exit-code", "abc"],
    /^--exit-code needs -f: moat logs waits for the run's end only while following it$/,
  ],
];
for (const [label, args, re] of badArgs) {
  Deno.test(`logs args: ${label} is a usage error`, () => {
    assert.throws(
      () => parseLogsArgs(args),
      (err: unknown) => err instanceof UsageError && re.test(err.message),
    );
  });
}

// --- tail and lines -----------------------------------------------------------------------------------------

type F = [stream: number, text: string, timeMs?: number];

function file(frames: F[]): Uint8Array {
  return concat(...frames.map(([s, t, ms], i) => outFrame(s, t, ms ?? 1000 * (i + 1))));
}

function cutAt(all: Uint8Array, cuts: number[]): Uint8Array[] {
  const bounds = [0, ...cuts.filter((c) => c > 0 && c < all.byteLength), all.byteLength];
  return bounds.slice(1).map((end, i) => all.subarray(bounds[i]!, end)).filter((b) => b.byteLength > 0);
}

/**
 * What `moat logs [-n N] [-t]` prints for `bytes`, as the command does it: pass 1 finds the start of the last
 * N lines, pass 2 decodes from that frame and clips. Each pass reads `bytes` cut at `cuts`.
 */
function logsOf(bytes: Uint8Array, n: number | undefined, timestamps: boolean, cuts: number[] = []) {
  let start = { frame: 0, offset: 0 };
  if (n !== undefined) {
    const finder = new TailFinder(n);
    const d = new OutputDecoder();
    for (const seg of cutAt(bytes, cuts)) for (const p of d.push(seg)) finder.feed(p);
    start = finder.start(d.next);
  }
  const d = new OutputDecoder(start.frame);
  const r = new LineRenderer(timestamps);
  const out: Record<1 | 2, string> = { 1: "", 2: "" };
  let combined = "";
  const rest = bytes.subarray(start.frame);
  for (const seg of cutAt(rest, cuts.map((c) => c - start.frame))) {
    for (const piece of d.push(seg)) {
      const p = clipPiece(piece, start);
      if (!p) continue;
      for (const s of r.render(p)) {
        out[s.fd] += dec.decode(s.bytes);
        combined += dec.decode(s.bytes);
      }
    }
  }
  return { stdout: out[1], stderr: out[2], combined };
}

const tails: [string, F[], number | undefined, { stdout: string; stderr: string }][] = [
  ["all lines without -n", [[1, "a\nb\n"], [2, "c\n"]], undefined, { stdout: "a\nb\n", stderr: "c\n" }],
  ["the last three of four lines", [[1, "a\nb\nc\nd\n"]], 3, { stdout: "b\nc\nd\n", stderr: "" }],
  ["a partial last line counts as a line", [[1, "a\nb\nc"]], 2, { stdout: "b\nc", stderr: "" }],
  ["more lines asked than there are", [[1, "a\nb\n"]], 10, { stdout: "a\nb\n", stderr: "" }],
  ["exactly as many lines as there are", [[1, "a\n"], [1, "b\n"]], 2, { stdout: "a\nb\n", stderr: "" }],
  ["-n 0 prints nothing", [[1, "a\nb\n"]], 0, { stdout: "", stderr: "" }],
  ["empty output", [], 3, { stdout: "", stderr: "" }],
  ["empty lines are lines", [[1, "x\n\n\n\n"]], 2, { stdout: "\n\n", stderr: "" }],
  [
    "lines are counted over stdout and stderr together",
    [[1, "one\ntw"], [2, "o\nthree\n"], [1, "four"]],
    2,
    { stdout: "four", stderr: "three\n" },
  ],
  [
    "a line that starts inside a frame of one stream and ends in another",
    [[1, "one\ntw"], [2, "o\nthree\n"], [1, "four"]],
    3,
    { stdout: "twfour", stderr: "o\nthree\n" },
  ],
  [
    "empty frames and the engine's stream 3 and stdin echo 0",
    [[1, ""], [3, "daemon\n"], [0, "echo\n"], [1, ""]],
    1,
    { stdout: "echo\n", stderr: "" },
  ],
  ["-n 1 of a file ending in a newline", [[1, "a\nb\n"]], 1, { stdout: "b\n", stderr: "" }],
];
for (const [label, frames, n, want] of tails) {
  Deno.test(`logs tail: ${label}, at every split point`, () => {
    const bytes = file(frames);
    const whole = logsOf(bytes, n, false);
    assert.deepEqual({ stdout: whole.stdout, stderr: whole.stderr }, want);
    for (let cut = 1; cut < bytes.byteLength; cut++) {
      const got = logsOf(bytes, n, false, [cut]);
      assert.deepEqual({ stdout: got.stdout, stderr: got.stderr }, want, `split at ${cut}`);
    }
  });
}

Deno.test("logs tail: the last N lines at every pair of split points", () => {
  const bytes = file([[1, "one\ntw"], [2, "o\nthree\n"], [1, "four\nfi"], [2, "ve"]]);
  for (let a = 1; a < bytes.byteLength; a++) {
    for (let b = a + 1; b < bytes.byteLength; b++) {
      const got = logsOf(bytes, 3, false, [a, b]);
      assert.equal(got.combined, "three\nfour\nfive", `split at ${a} and ${b}`);
    }
  }
});

Deno.test("logs tail: a TailFinder keeps N positions however many lines it sees", () => {
  const f = new TailFinder(2);
  const d = new OutputDecoder();
  for (const p of d.push(file([[1, "x\n".repeat(10_000)]]))) f.feed(p);
  assert.equal(f.lines, 10_000);
  assert.deepEqual(f.start(d.next), { frame: 0, offset: 2 * 9_998 });
});

const T1 = Date.UTC(2026, 10, 26, 17, 4, 41, 104);
const T2 = T1 + 1500;
const T3 = T1 + 60_000;
const I1 = "2026-11-26T17:04:41.104Z", I2 = "2026-11-26T17:04:42.604Z", I3 = "2026-11-26T17:05:41.104Z";

const stamped: [string, F[], number | undefined, { stdout: string; stderr: string }][] = [
  [
    "each line gets the time of the chunk its first byte came in",
    [[1, "a\nb", T1], [1, "c\n", T2], [2, "d\n", T3]],
    undefined,
    { stdout: `${I1} a\n${I1} bc\n`, stderr: `${I3} d\n` },
  ],
  [
    "a line continued on the other stream is stamped once",
    [[1, "a", T1], [2, "b\n", T2], [1, "c", T3]],
    undefined,
    { stdout: `${I1} a${I3} c`, stderr: "b\n" },
  ],
  [
    "with -n, only the printed lines are stamped",
    [[1, "a\nb\n", T1], [2, "c\n", T2]],
    2,
    { stdout: `${I1} b\n`, stderr: `${I2} c\n` },
  ],
];
for (const [label, frames, n, want] of stamped) {
  Deno.test(`logs --timestamps: ${label}, at every split point`, () => {
    const bytes = file(frames);
    for (let cut = 0; cut < bytes.byteLength; cut++) {
      const got = logsOf(bytes, n, true, [cut]);
      assert.deepEqual({ stdout: got.stdout, stderr: got.stderr }, want, `split at ${cut}`);
    }
  });
}

Deno.test("stream 0 and 1 go to stdout, 2 and 3 to stderr", () => {
  assert.deepEqual([0, 1, 2, 3].map(fdOf), [1, 1, 2, 2]);
});

Deno.test("a timestamp prefix is ISO 8601 UTC with milliseconds and a space", () => {
  assert.equal(timestampPrefix(T1), `${I1} `);
  assert.equal(timestampPrefix(NaN), "- ");
});

Deno.test("clipPiece drops the bytes before the start in the start's frame only", () => {
  const piece: OutputPiece = { stream: 1, timeMs: 0, data: enc.encode("hello"), frame: 32, offset: 10 };
  assert.equal(dec.decode(clipPiece(piece, { frame: 32, offset: 12 })!.data), "llo");
  assert.equal(clipPiece(piece, { frame: 32, offset: 12 })!.offset, 12);
  assert.equal(clipPiece(piece, { frame: 32, offset: 15 }), undefined);
  assert.equal(clipPiece(piece, { frame: 32, offset: 3 }), piece);
  assert.equal(clipPiece(piece, { frame: 0, offset: 100 }), piece);
});

// --- black box on crafted records ---------------------------------------------------------------------------

const NO_ENGINE = { DOCKER_HOST: "unix:///nonexistent/moat-logs-test.sock" };
const DEAD_OWNER = { pid: 999_999, bootId: "not-this-boot", startTicks: 1 };

function record(id: string, over: Partial<RunRecord> = {}): RunRecord {
  return {
    schema: 1,
    id,
    name: null,
    workspace: "/w",
    image: "moat-test/busybox:latest",
    command: ["sh"],
    sandbox: "gvisor",
    runtime: "runsc",
    containerId: null,
    state: "exited",
    exitCode: 0,
    signal: null,
    error: null,
    kept: false,
    removed: true,
    createdAt: "2026-01-01T00:00:00.000Z",
    startedAt: "2026-01-01T00:00:01.000Z",
    finishedAt: "2026-01-01T00:00:02.000Z",
    moatVersion: "0.1.0",
    owner: DEAD_OWNER,
    detached: false,
    ...over,
  };
}

async function craft(home: string, rec: RunRecord, output?: Uint8Array): Promise<void> {
  const dir = `${home}/runs/${rec.id}`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/run.json`, JSON.stringify(rec));
  if (output) await Deno.writeFile(`${dir}/output.bin`, output);
}

const logs = (home: string, args: string[]) => moat(["logs", ...args], { home, env: NO_ENGINE });

Deno.test("moat logs RUN puts stdout frames on stdout and stderr frames on stderr, byte for byte", async () => {
  await withHome(async (home) => {
    const binary = new Uint8Array([0, 0xff, 0xfe, 10, 13, 0x80]);
    await craft(
      home,
      record("aaaa00000001"),
      concat(
        outFrame(1, "out1\n", 1),
        outFrame(2, "err1\n", 2),
        outFrame(1, binary, 3),
        outFrame(3, "daemon\n", 4),
        outFrame(0, "echo", 5),
        outFrame(2, binary, 6),
      ),
    );
    const r = await logs(home, ["aaaa00000001"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout, concat("out1\n", binary, "echo"));
    assert.deepEqual(r.stderrBytes, concat("err1\n", "daemon\n", binary));
  });
});

Deno.test("moat logs of a run whose moat process was killed prints its output, then one notice line", async () => {
  await using engine = await FakeEngine.start();
  // The run's container still runs; its owner (on the label and in the record) is gone.
  engine.on("GET /containers/json", {
    status: 200,
    json: [{
      Id: "c".repeat(64),
      Names: ["/moat-aaaa00000001"],
      Image: "moat-test/busybox:latest",
      State: "running",
      Status: "Up 1 minute",
      Labels: {
        "dev.moat.managed": "true",
        "dev.moat.run-id": "aaaa00000001",
        "dev.moat.owner-pid": String(DEAD_OWNER.pid),
        "dev.moat.boot-id": DEAD_OWNER.bootId,
      },
      Created: 1,
    }],
  });
  await withHome(async (home) => {
    const rec = record("aaaa00000001", { state: "running", exitCode: null, finishedAt: null });
    await craft(home, rec, concat(outFrame(1, "out\n", 1), outFrame(2, "err\n", 2)));
    const r = await moat(["logs", "aaaa"], { home, env: { DOCKER_HOST: `unix://${engine.endpoint.path}` } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, "out\n", "stdout is the run's stdout alone");
    assert.equal(
      r.stderr,
      "err\nmoat: notice: 1 container left behind by a moat process that is gone (moat-aaaa00000001); " +
        "remove it with:  moat clean\n",
    );
  });
});

Deno.test("moat logs -n 3 prints the last three lines", async () => {
  await withHome(async (home) => {
    await craft(home, record("aaaa00000001"), file([[1, "1\n2\n3\n"], [2, "4\n"], [1, "5\n"]]));
    const r = await logs(home, ["-n", "3", "aaaa"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, "3\n5\n");
    assert.equal(r.stderr, "4\n");
  });
});

Deno.test("moat logs --timestamps starts each line with the chunk's time", async () => {
  await withHome(async (home) => {
    await craft(home, record("aaaa00000001"), file([[1, "a\nb\n", T1], [1, "c\n", T2]]));
    const r = await logs(home, ["--timestamps", "aaaa00000001"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, `${I1} a\n${I1} b\n${I2} c\n`);
  });
});

Deno.test("moat logs without RUN shows the newest run and says which on stderr", async () => {
  await withHome(async (home) => {
    await craft(
      home,
      record("aaaa00000001", { createdAt: "2026-01-01T00:00:00.000Z" }),
      file([[1, "old\n"]]),
    );
    await craft(
      home,
      record("bbbb00000002", { name: "fix-tests", createdAt: "2026-01-02T00:00:00.000Z" }),
      file([[1, "new\n"]]),
    );
    const r = await logs(home, []);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, "new\n");
    assert.equal(r.stderr, "moat: showing logs of run bbbb00000002 (fix-tests)\n");
  });
});

Deno.test("moat logs finds a run by name, and a run without output prints nothing", async () => {
  await withHome(async (home) => {
    await craft(home, record("aaaa00000001", { name: "quiet" }));
    const r = await logs(home, ["quiet"]);
    assert.deepEqual([r.code, r.out, r.stderr], [0, "", ""]);
  });
});

Deno.test("moat logs of an unknown run exits 2 with the No run matches message", async () => {
  await withHome(async (home) => {
    await craft(home, record("aaaa00000001"));
    const r = await logs(home, ["zzz"]);
    assert.equal(r.code, 2);
    assert.equal(r.out, "");
    assert.equal(r.stderr, `moat: No run matches "zzz"\n  See the runs:  moat list\n`);
  });
});

Deno.test("moat logs with an ambiguous id prefix exits 2 and lists the candidates", async () => {
  await withHome(async (home) => {
    await craft(home, record("abcd00000001"));
    await craft(home, record("abcd00000002"));
    const r = await logs(home, ["abcd"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^moat: "abcd" matches 2 runs: give more of the id/);
    assert.match(r.stderr, /abcd00000001/);
    assert.match(r.stderr, /abcd00000002/);
  });
});

Deno.test("moat logs with no runs at all exits 2", async () => {
  await withHome(async (home) => {
    const r = await logs(home, []);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^moat: There is no recorded run/);
  });
});

Deno.test("moat logs --help prints the help on stdout and exits 0", async () => {
  await withHome(async (home) => {
    const r = await logs(home, ["--help"]);
    assert.equal(r.code, 0);
    assert.match(r.out, /^Usage: moat logs \[OPTIONS\] \[RUN\]/);
    assert.match(r.out, /-n, --tail N/);
    assert.equal(r.stderr, "");
  });
});

Deno.test("moat logs with a bad -n exits 2 without reading records", async () => {
  await withHome(async (home) => {
    const r = await logs(home, ["-n", "lots"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^moat: -n\/--tail "lots" is not a number of lines/);
  });
});

Deno.test("moat logs prints what it can of a damaged output file, then fails with 125", async () => {
  await withHome(async (home) => {
    await craft(home, record("aaaa00000001"), concat(outFrame(1, "good\n", 1), new Uint8Array(16).fill(9)));
    const r = await logs(home, ["aaaa00000001"]);
    assert.equal(r.code, 125);
    assert.equal(r.out, "good\n");
    assert.match(
      r.stderr,
      /^moat: The recorded output of run aaaa00000001 is damaged: unrecognized frame header/,
    );
  });
});

Deno.test("moat logs -f of a finished run prints everything and ends at once", async () => {
  await withHome(async (home) => {
    await craft(home, record("aaaa00000001"), file([[1, "done\n"]]));
    const r = await logs(home, ["-f", "aaaa00000001"]);
    assert.deepEqual([r.code, r.out, r.stderr], [0, "done\n", ""]);
  });
});

Deno.test("moat logs -f of a run whose moat process died, with no engine to ask, ends and says why", async () => {
  await withHome(async (home) => {
    await craft(
      home,
      record("aaaa00000001", { state: "running", exitCode: null, containerId: "c".repeat(64) }),
      file([[1, "partial\n"]]),
    );
    const r = await logs(home, ["-f", "aaaa00000001"]);
    assert.equal(r.code, 0);
    assert.equal(r.out, "partial\n");
    assert.match(
      r.stderr,
      /^moat: stopped following run aaaa00000001: the moat process that ran it is gone, and the engine could not be asked/,
    );
  });
});

Deno.test("moat logs -f --exit-code of a finished run prints everything and exits with the run's code", async () => {
  await withHome(async (home) => {
    await craft(home, record("aaaa00000001", { exitCode: 3 }), file([[1, "out\n"], [2, "err\n"]]));
    const r = await logs(home, ["-f", "--exit-code", "aaaa00000001"]);
    assert.deepEqual([r.code, r.out, r.stderr], [3, "out\n", "err\n"]);
    // Without --exit-code, following ends with 0 whatever the run's code.
    const plain = await logs(home, ["-f", "aaaa00000001"]);
    assert.equal(plain.code, 0);
  });
});

Deno.test("moat logs -f --exit-code of a run that ended without an exit code prints it all, then exits 125", async () => {
  await withHome(async (home) => {
    await craft(
      home,
      record("aaaa00000001", { state: "failed", exitCode: null, error: "The engine said no\nmore" }),
      file([[3, "engine trouble\n"]]),
    );
    const r = await logs(home, ["-f", "--exit-code", "aaaa00000001"]);
    assert.equal(r.code, 125);
    assert.equal(
      r.stderr,
      "engine trouble\nmoat: Run aaaa00000001 ended (failed) without an exit code: The engine said no\n" +
        "  See what it printed:  moat logs aaaa00000001\n",
    );
  });
});

Deno.test("moat logs -f --exit-code of a run whose moat process died, with no engine to ask, exits 125 saying why", async () => {
  await withHome(async (home) => {
    await craft(
      home,
      record("aaaa00000001", { state: "running", exitCode: null, containerId: "c".repeat(64) }),
      file([[1, "partial\n"]]),
    );
    const r = await logs(home, ["-f", "--exit-code", "aaaa00000001"]);
    assert.equal(r.code, 125);
    assert.equal(r.out, "partial\n");
    const lines = r.stderr.split("\n");
    assert.match(
      lines[0]!,
      /^moat: stopped following run aaaa00000001: the moat process that ran it is gone, and/,
    );
    assert.match(
      lines[1]!,
      /^moat: Run aaaa00000001 has no exit code: the moat process that ran it is gone, and the engine could not be asked about its container \(Docker engine not found/,
    );
  });
});

/** Read from `reader` until the text so far contains `want`; return all of it. */
async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  sofar: { text: string },
  want: string,
): Promise<void> {
  while (!sofar.text.includes(want)) {
    const { value, done } = await reader.read();
    if (done) assert.fail(`stream ended before ${JSON.stringify(want)}; got ${JSON.stringify(sofar.text)}`);
    sofar.text += dec.decode(value, { stream: true });
  }
}

Deno.test("moat logs -f streams a run in progress as it is recorded and ends when the record is final", async () => {
  await withHome(async (home) => {
    // This test process plays the run's owner: alive, so logs -f keeps following.
    const store = RunStore.create(
      home,
      record("aaaa00000001", {
        state: "running",
        exitCode: null,
        finishedAt: null,
        owner: currentOwner(),
      }),
    );
    await store.output(1, enc.encode("first\n"), T1);
    await store.flush();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}/main.ts`, "logs", "-f", "-n", "5", "aaaa00000001"],
      env: moatEnv(home, NO_ENGINE),
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    const reader = child.stdout.getReader();
    const seen = { text: "" };
    // Never hang: a logs -f that does not show what is expected is ended, and the test fails.
    const guard = setTimeout(() => child.kill("SIGKILL"), 60_000);
    try {
      await readUntil(reader, seen, "first\n");
      // A frame written in two pieces, as a slow writer might leave it between polls.
      const frame = outFrame(2, "second\n", T2);
      const f = await Deno.open(`${store.dir}/output.bin`, { append: true });
      await f.write(frame.subarray(0, 10));
      await new Promise((r) => setTimeout(r, 250));
      await f.write(frame.subarray(10));
      f.close();
      await store.output(1, enc.encode("third\n"), T2);
      await store.flush();
      await readUntil(reader, seen, "third\n");
      await store.output(1, enc.encode("last\n"), T2);
      await store.close();
      store.update({ state: "exited", exitCode: 0, finishedAt: new Date().toISOString() });
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        seen.text += dec.decode(value, { stream: true });
      }
    } finally {
      clearTimeout(guard);
      reader.releaseLock();
      await child.stdout.cancel().catch(() => {});
    }
    const status = await child.status;
    assert.equal(status.code, 0, await stderr);
    assert.equal(seen.text, "first\nthird\nlast\n");
    assert.equal(await stderr, "second\n");
  });
});

// --- damaged records ----------------------------------------------------------------------------------------

Deno.test("moat logs of a run whose run.json is not JSON prints its output after a warning naming the file", async () => {
  await withHome(async (home) => {
    await Deno.mkdir(`${home}/runs/d0d0d0d0d0d1`, { recursive: true });
    await Deno.writeTextFile(`${home}/runs/d0d0d0d0d0d1/run.json`, "{ half");
    await Deno.writeFile(
      `${home}/runs/d0d0d0d0d0d1/output.bin`,
      file([[1, "one\n"], [2, "two\n"], [1, "three\n"]]),
    );
    for (const args of [["d0d0d0d0d0d1"], ["d0d0"], ["-f", "d0d0d0d0d0d1"]]) {
      const r = await logs(home, args);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.out, "one\nthree\n");
      assert.match(
        r.stderr,
        new RegExp(
          `^moat: warning: damaged run record d0d0d0d0d0d1: ${home}/runs/d0d0d0d0d0d1/run\\.json: not valid JSON ` +
            "\\(.+\\); its recorded output is shown, but its state is unknown\ntwo\n$",
        ),
      );
    }
    const tail = await logs(home, ["-n", "1", "d0d0d0d0d0d1"]);
    assert.equal(tail.out, "three\n");
    // --exit-code: the output, then no exit code to give.
    const code = await logs(home, ["-f", "--exit-code", "d0d0d0d0d0d1"]);
    assert.equal(code.code, 125);
    assert.equal(code.out, "one\nthree\n");
    assert.match(code.stderr, /\nmoat: Damaged run record d0d0d0d0d0d1: .*run\.json: not valid JSON/);
    assert.match(code.stderr, /\n {2}Its exit code cannot be read\.\n {2}Remove it: {2}moat clean\n$/);
  });
});

Deno.test("moat logs of a damaged run with nothing to show is an error, never silence with exit 0", async () => {
  await withHome(async (home) => {
    // run.json is a directory, and there is no output.
    await Deno.mkdir(`${home}/runs/d0d0d0d0d0d2/run.json`, { recursive: true });
    const dir = await logs(home, ["d0d0d0d0d0d2"]);
    assert.equal(dir.code, 125);
    assert.equal(dir.out, "");
    assert.equal(
      dir.stderr,
      `moat: Damaged run record d0d0d0d0d0d2: ${home}/runs/d0d0d0d0d0d2/run.json: a directory, not a file\n` +
        "  It has no recorded output to show.\n  Remove it:  moat clean\n",
    );
    // A readable record whose output.bin (which moat made with the record) is gone; also as the newest run.
    await craft(home, record("d0d0d0d0d0d3", { outputFile: true, createdAt: "2026-02-01T00:00:00.000Z" }));
    for (const args of [["d0d0d0d0d0d3"], []]) {
      const gone = await logs(home, args);
      assert.equal(gone.code, 125, gone.stderr);
      assert.equal(gone.out, "");
      assert.match(
        gone.stderr,
        new RegExp(
          `moat: Damaged run record d0d0d0d0d0d3: ${home}/runs/d0d0d0d0d0d3/output\\.bin: missing \\(moat created ` +
            "it with the record\\)\n {2}Its output cannot be shown\\.\n {2}Remove the record: {2}moat destroy d0d0d0d0d0d3",
        ),
      );
    }
    // An older record never had output.bin when the command printed nothing: not damaged.
    await craft(home, record("d0d0d0d0d0d4", { createdAt: "2026-03-01T00:00:00.000Z" }));
    const old = await logs(home, ["d0d0d0d0d0d4"]);
    assert.deepEqual([old.code, old.out, old.stderr], [0, "", ""]);
  });
});

Deno.test("moat logs --network prints a run's decisions as a table, or --json; a run without the log is an error", async () => {
  await withHome(async (home) => {
    const allow = record("aaaa00000101", {
      profile: { ...profileFor({ network: "allowlist", allow: ["x.io"] }) },
    });
    await craft(home, allow, new Uint8Array());
    const decisions = [
      {
        time: "2026-01-01T00:00:01.123Z",
        via: "dns",
        source: "10.237.0.3:5",
        host: "x.io",
        port: null,
        decision: "allow",
        rule: "x.io",
      },
      {
        time: "2026-01-01T00:00:02.000Z",
        via: "proxy",
        source: "10.237.0.3:6",
        host: "evil.example",
        port: 443,
        method: "CONNECT",
        path: "",
        decision: "deny",
        reason: "not in the allow list",
      },
      {
        time: "2026-01-01T00:00:03.000Z",
        via: "tls",
        source: "10.237.0.3:7",
        host: "x.io",
        port: 443,
        decision: "allow",
        rule: "x.io",
        sent: 10,
        received: 20,
      },
    ];
    await Deno.writeTextFile(
      `${home}/runs/aaaa00000101/network.jsonl`,
      decisions.map((d) => JSON.stringify(d) + "\n").join("") + '{"time":"2026', // an append in progress
    );
    const table = await logs(home, ["--network", "aaaa00000101"]);
    assert.equal(table.code, 0, table.stderr);
    assert.deepEqual(table.out.trimEnd().split("\n").map((l) => l.split(/ {2,}/)), [
      ["TIME", "VIA", "HOST", "REQUEST", "DECISION", "RULE OR REASON", "BYTES OUT/IN"],
      ["00:00:01.123", "dns", "x.io", "-", "allow", "x.io", "-"],
      ["00:00:02.000", "proxy", "evil.example:443", "CONNECT", "deny", "not in the allow list", "-"],
      ["00:00:03.000", "tls", "x.io:443", "-", "allow", "x.io", "10/20"],
    ]);
    const json = await logs(home, ["--network", "--json", "aaaa00000101"]);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.out), decisions);

    await craft(home, record("aaaa00000102"), new Uint8Array());
    const none = await logs(home, ["--network", "aaaa00000102"]);
    assert.equal(none.code, 2);
    assert.match(
      none.stderr,
      /^moat: Run aaaa00000102 has no network log: its network was default, not an allowlist/,
    );
    assert.match(none.stderr, /moat run --allow HOST -- COMMAND/);
  });
});
