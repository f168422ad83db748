/**
 * Issue 4: an interrupt at any moment of `moat run` — while the engine and image are checked, between create
 * and start, while the command runs, while it is being stopped — leaves no container behind and a final
 * record. 50 runs get SIGINT or SIGTERM at a random moment (some the same signal again shortly after, as moat
 * tells users to do to stop a run at once), a few at a
 * time. Each run has its own workspace and MOAT_HOME, so its containers and its record are exactly its own.
 * About a third of the runs have the allowlist network (`--allow x.example`, issue 13): for those, their
 * relay (a container of the run's) and their network (`moat-net-<id>`) must be gone too, whenever the
 * signal came (while the network or the relay was being made included).
 *
 * A signal that lands before moat listens (Deno still starting) kills it by the default action: such an
 * attempt must leave nothing, and is redrawn; so is one whose moment came after moat had exited.
 *
 * The moments come from a seeded PRNG; the seed is printed. Replay with MOAT_INTERRUPT_SEED=<seed>: the same
 * draws, scaled to this machine's measured run times, so which phase a moment hits depends on its speed.
 */
import assert from "node:assert/strict";
import { docker, moatEnv, requireEngine, ROOT, TEST_IMAGE } from "./helpers.ts";

await requireEngine();

const RUNS = 50;
const CONCURRENCY = 3;
/** Attempts redrawn (signal before moat's handlers, or after moat had exited) are bounded, not endless. */
const MAX_ATTEMPTS = RUNS * 3;
/** A run that has not ended this long after its signal is hung: killed and reported. */
const HANG_MS = 60_000;
const SCRIPT = "echo start; sleep 2; echo end";
/** The share of runs with the allowlist network, and the flags that give it. */
const ALLOW_SHARE = 1 / 3;
const ALLOW_FLAGS = ["--allow", "x.example"];
const FULL_OUTPUT = "start\nend\n";
const FINAL_STATES = new Set(["interrupted", "exited", "failed"]);
const CODES: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };
/** Default settings: several gVisor starts at once on a small host fit in moat's start budget. */
const ENV = {};

/** mulberry32: small, seedable, good enough to spread moments. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Draw {
  /** Milliseconds after spawn for the first signal. */
  atMs: number;
  signal: "SIGINT" | "SIGTERM";
  /**
   * Milliseconds after the first signal for the same signal again; undefined for a single signal. The same
   * signal, not another: two different signals pending at once reach a process in signal-number order
   * (SIGINT before SIGTERM) whichever was sent first, so "which came first" is not the sender's to decide.
   */
  secondAfterMs: number | undefined;
  /** With the allowlist network (`ALLOW_FLAGS`). */
  allow: boolean;
}

interface Attempt {
  n: number;
  draw: Draw;
  ws: string;
  home: string;
  code: number;
  /** The signal that ended moat itself (default action), if it did not exit with a code. */
  killedBy: string | null;
  /** Wall-clock time the first signal was sent (to place it against the record's timestamps). */
  sentAt: number;
  /** Whether the second signal was delivered (the process was still there). */
  secondSent: boolean;
  stdout: string;
  stderr: string;
  hung: boolean;
}

type Rec = Record<string, unknown>;

/** An uninterrupted run's times, in milliseconds after its spawn. */
interface Calibration {
  lifeMs: number;
  createdMs: number;
  startedMs: number;
}

/** Wait up to `ms` for `p`; true when `p` settled first. Clears its timer either way (op sanitizer). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((r) => timer = setTimeout(() => r(false), ms));
  try {
    return await Promise.race([p.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** `deno run … main.ts run …` for one run in `ws`, with the allowlist network or without. */
function runArgs(ws: string, allow: boolean): string[] {
  return [
    "run",
    "-A",
    `${ROOT}/main.ts`,
    "run",
    "--image",
    TEST_IMAGE,
    ...(allow ? ALLOW_FLAGS : []),
    ws,
    "--",
    "sh",
    "-c",
    SCRIPT,
  ];
}

/** Spawn one `moat run`, signal it as drawn (unless it ended first), and collect how it ended. */
async function attempt(
  n: number,
  draw: Draw,
  ws: string,
  home: string,
): Promise<Attempt | { missedAfterMs: number }> {
  const spawnedAt = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: runArgs(ws, draw.allow),
    cwd: ROOT,
    env: moatEnv(home, ENV),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  const send = (sig: Deno.Signal) => {
    try {
      child.kill(sig);
      return true;
    } catch {
      return false; // it had already exited
    }
  };
  let sent = false;
  let sentAt = 0;
  let secondSent = false;
  if (!await settlesWithin(output, draw.atMs)) {
    sentAt = Date.now();
    sent = send(draw.signal);
    if (sent && draw.secondAfterMs !== undefined && !await settlesWithin(output, draw.secondAfterMs)) {
      secondSent = send(draw.signal);
    }
  }
  let hung = false;
  if (!await settlesWithin(output, HANG_MS)) {
    hung = true;
    send("SIGKILL");
  }
  const out = await output;
  if (!sent && !hung) return { missedAfterMs: performance.now() - spawnedAt };
  const dec = new TextDecoder();
  return {
    n,
    draw,
    ws,
    home,
    code: out.code,
    killedBy: out.signal,
    sentAt,
    secondSent,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    hung,
  };
}

/** The records under a MOAT_HOME: id → parsed run.json, or the read error as text. */
async function recordsIn(home: string): Promise<Map<string, Rec | string>> {
  const recs = new Map<string, Rec | string>();
  let entries: Deno.DirEntry[] = [];
  try {
    entries = await Array.fromAsync(Deno.readDir(`${home}/runs`));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return recs;
    throw err;
  }
  for (const e of entries) {
    try {
      recs.set(e.name, JSON.parse(await Deno.readTextFile(`${home}/runs/${e.name}/run.json`)));
    } catch (err) {
      recs.set(e.name, `unreadable run.json: ${err instanceof Error ? err.message : err}`);
    }
  }
  return recs;
}

/**
 * Everything moat labelled with a workspace under `dir` that `list` lists (`["ps", "-a"]`: containers, running
 * or not; `["network", "ls"]`: a run's `moat-net-<id>`); `line` describes it, its `fields` after id and workspace.
 */
async function managedUnder(
  dir: string,
  list: string[],
  fields: string,
): Promise<{ id: string; ws: string; line: string }[]> {
  const out = await docker(
    ...list,
    "--filter",
    "label=dev.moat.managed=true",
    "--format",
    `{{.ID}}\t{{.Label "dev.moat.workspace"}}\t${fields}`,
  );
  return out.split("\n").filter(Boolean).map((line) => {
    const [id = "", ws = ""] = line.split("\t");
    return { id, ws, line };
  }).filter((c) => c.ws.startsWith(dir + "/"));
}

const containersUnder = (dir: string) =>
  managedUnder(dir, ["ps", "-a"], "{{.Names}}\t{{.State}}\t{{.Status}}");
const networksUnder = (dir: string) => managedUnder(dir, ["network", "ls"], "{{.Name}}");

/** What of workspace `ws` is left on the engine: its containers, then its networks. */
async function leftoversOf(dir: string, ws: string): Promise<string[]> {
  return [
    ...(await containersUnder(dir)).filter((c) => c.ws === ws).map((c) => `container ${c.line}`),
    ...(await networksUnder(dir)).filter((n) => n.ws === ws).map((n) => `network ${n.line}`),
  ];
}

/**
 * Which phase the first signal hit, read from the record: no container id → before create (engine and image
 * checks); no start time → between create and start. The start time is written once the engine's start
 * call returns, so a signal sent before it landed while the container was starting.
 */
function phaseOf(a: Attempt, rec: Rec | undefined): string {
  if (!rec) return "no record";
  if (rec.state === "exited") return "after the command finished";
  if (rec.containerId === null) return "before create";
  if (rec.startedAt === null) return "between create and start";
  const phase = a.sentAt < Date.parse(String(rec.startedAt))
    ? "while the engine started it"
    : "while running";
  return phase + (a.secondSent ? ", second while stopping" : "");
}

/** What is wrong with one counted run; empty when it met the contract. */
function problems(a: Attempt, recs: Map<string, Rec | string>, leftovers: string[]): string[] {
  const p: string[] = [];
  const first = a.draw.signal;
  if (a.hung) p.push(`moat had not exited ${HANG_MS / 1000} s after the signal (killed)`);
  // Killed by a signal's default action with a record on disk: the signal came after moat removed its
  // handlers on its way out, so the run was over and its record must already be final (checked below).
  if (a.killedBy === null && a.code === 0) {
    if (a.stdout !== FULL_OUTPUT) p.push(`exit 0 but stdout is ${JSON.stringify(a.stdout)}`);
  } else if (a.killedBy === null && a.code !== CODES[first]) {
    p.push(`exit code ${a.code}, expected ${CODES[first]} (${first}) or 0 (signal after the command ended)`);
  }
  if (!["", "start\n", FULL_OUTPUT].includes(a.stdout)) {
    p.push(`stdout holds more than the command's output: ${JSON.stringify(a.stdout)}`);
  }
  if (/internal error/.test(a.stderr)) p.push("moat reported an internal error");
  if (recs.size !== 1) p.push(`expected 1 record, found ${recs.size}`);
  for (const [id, rec] of recs) {
    if (typeof rec === "string") {
      p.push(`record ${id}: ${rec}`);
      continue;
    }
    if (!FINAL_STATES.has(String(rec.state))) p.push(`record ${id} is left in state "${rec.state}"`);
    if (rec.state === "interrupted" && rec.signal !== first) {
      p.push(`record ${id} says signal ${JSON.stringify(rec.signal)}, the first signal was ${first}`);
    }
    if (a.killedBy === null && a.code === 0 && (rec.state !== "exited" || rec.exitCode !== 0)) {
      p.push(`exit 0 but record ${id} says state "${rec.state}", exitCode ${rec.exitCode}`);
    }
    if (a.killedBy === null && a.code === CODES[first] && rec.state !== "interrupted") {
      p.push(`exit ${a.code} but record ${id} says state "${rec.state}"`);
    }
    if (rec.containerId !== null && rec.removed !== true) {
      p.push(`record ${id} has a container but removed=${rec.removed}`);
    }
  }
  if (leftovers.length) p.push(`left on the engine: ${leftovers.join(" | ")}`);
  return p;
}

/** The record fields that say how a run ended. */
function brief(rec: Rec): Rec {
  const keys = ["id", "state", "signal", "exitCode", "containerId", "removed", "error"] as const;
  const out: Rec = Object.fromEntries(keys.map((k) => [k, rec[k]]));
  if (typeof out.containerId === "string") out.containerId = out.containerId.slice(0, 12);
  for (const k of ["createdAt", "startedAt", "finishedAt"]) out[k] = rec[k];
  return out;
}

function describe(a: Attempt, recs: Map<string, Rec | string>): string {
  const d = a.draw;
  const how = `${d.signal} at ${d.atMs.toFixed(0)} ms` +
    (d.secondAfterMs === undefined
      ? ""
      : ` + ${d.signal} again ${d.secondAfterMs.toFixed(0)} ms later${
        a.secondSent ? "" : " (not sent: moat had exited)"
      }`);
  const ended = a.killedBy === null ? `exit ${a.code}` : `killed by ${a.killedBy}`;
  return `#${a.n}${d.allow ? " (--allow)" : ""}: ${how}; ${ended}; stdout ${JSON.stringify(a.stdout)}\n` +
    `    stderr: ${a.stderr.trim().replaceAll("\n", "\n            ")}\n` +
    [...recs.values()].map((r) => `    record: ${JSON.stringify(typeof r === "string" ? r : brief(r))}`)
      .join("\n");
}

Deno.test(`${RUNS} interrupts at random moments leave no container, no network and ${RUNS} final records`, async () => {
  const seed = Number(Deno.env.get("MOAT_INTERRUPT_SEED") ?? Math.floor(Math.random() * 2 ** 32));
  assert.ok(Number.isInteger(seed), "MOAT_INTERRUPT_SEED must be an integer");
  console.log(
    `interrupt seed ${seed} (replay: MOAT_INTERRUPT_SEED=${seed} deno test -A ${import.meta.filename})`,
  );
  const rand = prng(seed);
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "moat-interrupt-" }));
  const t0 = performance.now();
  let made = 0;
  const fresh = async () => {
    const n = ++made;
    const ws = `${dir}/ws-${n}`;
    await Deno.mkdir(ws);
    return { n, ws, home: `${dir}/home-${n}` };
  };
  try {
    // How long an uninterrupted run lasts with this many alongside, when its record is written and when
    // its container has started: the spans the moments are drawn from (the whole life is shortened
    // whenever a run ends before its moment), for runs without and with the allowlist network (whose
    // network and relay come between the record and the container). These runs also show the baseline
    // holds: exit 0, the full output, an exited record, nothing left on the engine.
    // All settled before a failure is reported, so that none is still running when its directory goes.
    const calibrate = async (allow: boolean) => {
      const settled = await Promise.allSettled(Array.from({ length: CONCURRENCY }, async () => {
        const { n, ws, home } = await fresh();
        const spawnedAt = Date.now();
        const out = await new Deno.Command(Deno.execPath(), {
          args: runArgs(ws, allow),
          cwd: ROOT,
          env: moatEnv(home, ENV),
          clearEnv: true,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output();
        const lifeMs = Date.now() - spawnedAt;
        const stderr = new TextDecoder().decode(out.stderr);
        assert.equal(out.code, 0, `uninterrupted run #${n}: ${stderr}`);
        assert.equal(new TextDecoder().decode(out.stdout), FULL_OUTPUT);
        const recs = [...(await recordsIn(home)).values()];
        assert.equal(recs.length, 1);
        const rec = recs[0] as Rec;
        assert.equal(rec.state, "exited");
        assert.deepEqual(await leftoversOf(dir, ws), []);
        return {
          lifeMs,
          createdMs: Date.parse(String(rec.createdAt)) - spawnedAt,
          startedMs: Date.parse(String(rec.startedAt)) - spawnedAt,
        };
      }));
      const failed = settled.find((r) => r.status === "rejected");
      if (failed) throw failed.reason;
      return settled.map((r) => (r as PromiseFulfilledResult<Calibration>).value);
    };
    const spans = {
      plain: { spanMs: 0, startedMs: 0, createdMs: 0 },
      allow: { spanMs: 0, startedMs: 0, createdMs: 0 },
    };
    for (const kind of ["plain", "allow"] as const) {
      const calibration = await calibrate(kind === "allow");
      const spanMs = Math.min(...calibration.map((c) => c.lifeMs));
      const startedMs = Math.min(spanMs, ...calibration.map((c) => c.startedMs));
      spans[kind] = {
        spanMs,
        startedMs,
        createdMs: Math.min(startedMs, ...calibration.map((c) => c.createdMs)),
      };
      console.log(
        `uninterrupted runs${kind === "allow" ? " with --allow" : ""}: ${
          calibration.map((c) => `record ${c.createdMs} ms, started ${c.startedMs} ms, ended ${c.lifeMs} ms`)
            .join("; ")
        }`,
      );
    }

    const counted: { a: Attempt; recs: Map<string, Rec | string>; leftovers: string[] }[] = [];
    const early: string[] = []; // signal before moat's handlers: problems, if any
    let redrawnEarly = 0;
    let redrawnMissed = 0;
    let inFlight = 0;
    let attempts = 0;
    const worker = async () => {
      while (counted.length + inFlight < RUNS && attempts < MAX_ATTEMPTS) {
        attempts++;
        inFlight++;
        try {
          // Six draws every time, so a replay with the same seed draws the same sequence. Some moments
          // fall anywhere in the run's life; the rest are spread over its short phases, which a uniform
          // moment rarely hits: Deno's start and the checks up to the record (written just before create);
          // create, attach and the start call (the start call itself is long under gVisor); the end (exit,
          // removal, the last record update). With the allowlist network, "create" begins with the network
          // and the relay.
          const [where, at, which, twice, gap, net] = [rand(), rand(), rand(), rand(), rand(), rand()];
          const allow = net < ALLOW_SHARE;
          const span = spans[allow ? "allow" : "plain"];
          const { spanMs, startedMs, createdMs } = span;
          const starting = startedMs - createdMs;
          const draw: Draw = {
            atMs: where < 0.35
              ? at * spanMs
              : where < 0.55
              ? at * 1.5 * createdMs
              : where < 0.75
              ? createdMs + at * 0.25 * starting
              : where < 0.85
              ? createdMs + at * starting
              : spanMs * (0.9 + 0.1 * at),
            signal: which < 0.5 ? "SIGINT" : "SIGTERM",
            secondAfterMs: twice < 0.25 ? 20 + gap * 380 : undefined,
            allow,
          };
          const { n, ws, home } = await fresh();
          const a = await attempt(n, draw, ws, home);
          if ("missedAfterMs" in a) {
            // The host got faster than when calibrated (its load changes): draw from the shorter life.
            span.spanMs = Math.min(span.spanMs, a.missedAfterMs);
            redrawnMissed++;
            continue;
          }
          const recs = await recordsIn(home);
          const leftovers = await leftoversOf(dir, ws);
          // Deno's default action: the signal came before moat listened. Nothing may exist; not counted.
          if (a.killedBy !== null && recs.size === 0) {
            redrawnEarly++;
            if (leftovers.length) {
              early.push(`${describe(a, recs)}\n    left on the engine: ${leftovers.join(" | ")}`);
            }
            continue;
          }
          counted.push({ a, recs, leftovers });
        } finally {
          inFlight--;
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));

    // Summary: which phase each counted interrupt hit.
    const phases = new Map<string, number>();
    const failures: string[] = [];
    let finalRecords = 0;
    for (const { a, recs, leftovers } of counted) {
      const rec = [...recs.values()].find((r): r is Rec => typeof r !== "string");
      const phase = phaseOf(a, rec) + (a.killedBy === null ? "" : ` (moat then killed by ${a.killedBy})`);
      const key = `${phase}, ${a.draw.signal}${a.draw.secondAfterMs !== undefined ? " twice" : ""}${
        a.draw.allow ? ", --allow" : ""
      }`;
      phases.set(key, (phases.get(key) ?? 0) + 1);
      for (const r of recs.values()) {
        if (typeof r !== "string" && FINAL_STATES.has(String(r.state))) finalRecords++;
      }
      const p = problems(a, recs, leftovers);
      if (p.length) failures.push(`${describe(a, recs)}\n    phase: ${phase}\n    PROBLEMS: ${p.join("; ")}`);
    }
    console.log(
      `${counted.length} interrupts counted out of ${attempts} attempts; redrawn: ${redrawnEarly} signalled ` +
        `before moat's handlers, ${redrawnMissed} after moat had exited; ` +
        `${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    for (const [k, v] of [...phases].sort()) console.log(`  ${String(v).padStart(3)}  ${k}`);

    const left = [
      ...(await containersUnder(dir)).map((c) => `container ${c.line}`),
      ...(await networksUnder(dir)).map((n) => `network ${n.line}`),
    ];
    const withAllow = counted.filter((c) => c.a.draw.allow).length;
    console.log(`  ${withAllow} of the counted runs had --allow`);
    const report = [
      ...failures,
      ...early.map((e) => `${e}\n    PROBLEMS: killed before moat's handlers, yet something is left`),
    ];
    // Plain messages (not deepEqual): the report is the diagnosis, a diff would only repeat it.
    assert.ok(
      counted.length === RUNS,
      `only ${counted.length} runs counted in ${attempts} attempts (seed ${seed})`,
    );
    assert.ok(
      report.length === 0,
      `seed ${seed}: ${report.length} runs broke the contract:\n${report.join("\n")}`,
    );
    assert.ok(
      left.length === 0,
      `seed ${seed}: left behind:\n${left.join("\n")}`,
    );
    assert.ok(withAllow > 0, `seed ${seed}: no counted run had --allow`);
    assert.ok(finalRecords === RUNS, `seed ${seed}: ${finalRecords} final records, expected ${RUNS}`);
  } finally {
    // Only this test's containers: their workspace label lies under this test's directory.
    const mine = await containersUnder(dir).catch(() => []);
    if (mine.length) await docker("rm", "-f", ...mine.map((c) => c.id)).catch(() => {});
    for (const n of await networksUnder(dir).catch(() => [])) {
      await docker("network", "rm", n.id).catch(() => {});
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
