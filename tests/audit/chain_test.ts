/**
 * The audit log (lib/audit/): written by lib/audit/log.ts, checked by lib/audit/chain.ts. Each way of
 * tampering with a log is found and named; a log cut short says so; two processes writing one log keep one
 * chain.
 */
import assert from "node:assert/strict";
import { canonical, entryHash, GENESIS, keyId, makeEntry, verifyLog } from "../../lib/audit/chain.ts";
import { auditKey, formatPublicKey, parsePublicKey, readPublicKey } from "../../lib/audit/key.ts";
import { AUDIT_FILE, AuditLog, CHECKPOINT_EVERY } from "../../lib/audit/log.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function withHome(fn: (home: string) => Promise<void>): Promise<void> {
  const home = await Deno.makeTempDir({ prefix: "moat-audit-" });
  try {
    await fn(home);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

/** A finished run's log of `n` events, written as a run writes it; its text and the home's public key. */
async function writtenLog(
  home: string,
  runId: string,
  n: number,
): Promise<{ text: string; key: Uint8Array }> {
  const dir = `${home}/runs/${runId}`;
  await Deno.mkdir(dir, { recursive: true });
  const log = AuditLog.for(home, runId, dir);
  log.append("run", { id: runId, image: "busybox", command: ["true"] });
  for (let i = 0; i < n; i++) {
    log.append("network", { host: `h${i}.example`, decision: i % 2 ? "allow" : "deny" });
  }
  log.append("record", { state: "exited", exitCode: 0 });
  await log.close(true);
  assert.equal(log.error, undefined);
  return { text: await Deno.readTextFile(`${dir}/${AUDIT_FILE}`), key: readPublicKey(home)! };
}

const lines = (text: string) => text.split("\n").slice(0, -1);
const join = (ls: string[]) => ls.map((l) => l + "\n").join("");

Deno.test("canonical JSON: keys sorted at every level, no spaces; what JSON lacks is refused", () => {
  assert.equal(
    canonical({ b: 1, a: [true, null, "x", { d: 2, c: "é" }] }),
    '{"a":[true,null,"x",{"c":"é","d":2}],"b":1}',
  );
  assert.equal(canonical({ "\u00e9": 1, z: 2, A: 3 }), '{"A":3,"z":2,"é":1}');
  assert.throws(() => canonical({ n: NaN }));
  assert.throws(() => canonical({ n: Infinity }));
});

Deno.test("an entry's hash covers each field with its own length: moving a byte across a boundary changes it", () => {
  const e = { seq: 1, time: "2026-12-07T00:00:00.000Z", type: "ab", prev: GENESIS, data: { c: "d" } };
  const moved = { ...e, time: "2026-12-07T00:00:00.000Za", type: "b" };
  assert.notEqual(entryHash(e), entryHash(moved));
  assert.equal(entryHash(e), entryHash({ ...e, data: JSON.parse(JSON.stringify({ c: "d" })) }));
  assert.equal(makeEntry(1, GENESIS, e.time, e.type, e.data).hash, entryHash(e));
  assert.notEqual(entryHash(e), entryHash({ ...e, seq: 2 }));
});

Deno.test("a run's log as written is intact, with a checkpoint every CHECKPOINT_EVERY entries and a final one", async () => {
  await withHome(async (home) => {
    const { text, key } = await writtenLog(home, "run1", CHECKPOINT_EVERY + 10);
    const verdict = await verifyLog(text, key);
    assert.equal(verdict.kind, "intact", JSON.stringify(verdict));
    assert.ok(verdict.kind === "intact" && verdict.checkpoints === 2, JSON.stringify(verdict));
    const last = JSON.parse(lines(text).at(-1)!);
    assert.equal(last.type, "checkpoint");
    assert.equal(last.data.final, true);
    assert.equal(last.data.origin, "moat/run1");
    assert.equal(last.data.key, keyId(key));
    const info = await Deno.stat(`${home}/runs/run1/${AUDIT_FILE}`);
    assert.equal(info.mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${home}/audit/ed25519.json`)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${home}/audit`)).mode! & 0o777, 0o700);
  });
});

Deno.test("each way of tampering with a log is found, and names the first entry that is not as written", async () => {
  await withHome(async (home) => {
    const { text, key } = await writtenLog(home, "run2", 8);
    const ls = lines(text);
    assert.equal(ls.length, 11); // the run, 8 decisions, its end, the final checkpoint
    const flipped = ls.slice();
    flipped[4] = flipped[4]!.replace("h3.example", "h3.examplf");
    const swapped = ls.slice();
    [swapped[3], swapped[4]] = [swapped[4]!, swapped[3]!];
    // Another key re-signs the whole log (chain recomputed): the checkpoints no longer verify with this one.
    const other = await withOtherKey(8);
    const cases: Array<[string, string, "tampered" | "cut-short", RegExp]> = [
      [
        "a byte flipped in an entry's data",
        join(flipped),
        "tampered",
        /^entry 5 was changed: its hash does not match/,
      ],
      [
        "a byte flipped in JSON's syntax",
        join(ls).replace('{"seq":6,', '{"seq":6;'),
        "tampered",
        /^line 6 is not an audit entry: it is not JSON/,
      ],
      [
        "a line deleted",
        join([...ls.slice(0, 3), ...ls.slice(4)]),
        "tampered",
        /^line 4 holds entry 5: an entry is missing/,
      ],
      ["two lines swapped", join(swapped), "tampered", /^line 4 holds entry 5/],
      [
        "an entry's seq and prev rewritten after a deletion",
        join(renumbered(ls, 3)),
        "tampered",
        /^entry \d+ was changed|^checkpoint entry \d+ signs a head/,
      ],
      [
        "truncated at a line's end",
        join(ls.slice(0, 7)),
        "cut-short",
        /ends after entry 7 without its final checkpoint/,
      ],
      ["truncated inside a line", join(ls).slice(0, -20), "cut-short", /ends in the middle of entry 11/],
      [
        "an entry added after the final checkpoint",
        join([...ls, ls[1]!]),
        "tampered",
        /^entry 2 comes after the final checkpoint \(entry 11\)/,
      ],
      [
        "re-signed with another key",
        other,
        "tampered",
        /is signed by key [0-9a-f]{16}, not by the key checked with/,
      ],
    ];
    for (const [label, bad, kind, reason] of cases) {
      const v = await verifyLog(bad, key);
      assert.equal(v.kind, kind, `${label}: ${JSON.stringify(v)}`);
      assert.match((v as { reason: string }).reason, reason, label);
    }
    assert.equal((await verifyLog(text, key)).kind, "intact");
  });
});

/** `ls` with line `at` removed and every later entry renumbered and rehashed (its signatures left). */
function renumbered(ls: string[], at: number): string[] {
  const entries = ls.map((l) => JSON.parse(l));
  entries.splice(at, 1);
  let prev = GENESIS;
  return entries.map((e, i) => {
    const next = makeEntry(i + 1, prev, e.time, e.type, e.data);
    prev = next.hash;
    return JSON.stringify(next);
  });
}

/** A log of `n` events written in another home: signed by that home's key. */
async function withOtherKey(n: number): Promise<string> {
  let out = "";
  await withHome(async (home) => {
    out = (await writtenLog(home, "run2", n)).text;
  });
  return out;
}

Deno.test("a log cut short by a crash verifies up to its last complete entry and says so", async () => {
  await withHome(async (home) => {
    const dir = `${home}/runs/run3`;
    await Deno.mkdir(dir, { recursive: true });
    const log = AuditLog.for(home, "run3", dir);
    for (let i = 0; i < 5; i++) log.append("network", { i });
    await log.checkpoint();
    log.append("network", { i: 5 });
    const text = await Deno.readTextFile(`${dir}/${AUDIT_FILE}`);
    const v = await verifyLog(text, (await auditKey(home)).publicRaw);
    assert.deepEqual(v, {
      kind: "cut-short",
      entries: 7,
      signedUpTo: 5,
      reason:
        "the log ends after entry 7 without its final checkpoint (moat stopped before the run's end was " +
        "written, or the end was removed)",
    });
    await log.close(true);
  });
});

Deno.test("two processes writing one log keep one chain; nothing is appended after the final checkpoint", async () => {
  await withHome(async (home) => {
    const dir = `${home}/runs/run4`;
    await Deno.mkdir(dir, { recursive: true });
    const log = AuditLog.for(home, "run4", dir);
    log.append("run", { id: "run4" });
    const code = `
      import { AuditLog } from "${ROOT}lib/audit/log.ts";
      const log = AuditLog.for(${JSON.stringify(home)}, "run4", ${JSON.stringify(dir)});
      for (let i = 0; i < 300; i++) log.append("child", { i });
      await log.close(false);
      if (log.error) throw log.error;
    `;
    const child = new Deno.Command(Deno.execPath(), { args: ["eval", code], stderr: "piped" }).spawn();
    for (let i = 0; i < 300; i++) {
      log.append("parent", { i });
      if (i % 50 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    const out = await child.output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    await log.close(true);
    const after = AuditLog.for(home, "run4", dir);
    after.append("late", { x: 1 });
    await after.close(false);
    const text = await Deno.readTextFile(`${dir}/${AUDIT_FILE}`);
    const v = await verifyLog(text, readPublicKey(home)!);
    assert.equal(v.kind, "intact", JSON.stringify(v));
    const types = lines(text).map((l) => JSON.parse(l).type);
    assert.equal(types.filter((t) => t === "child").length, 300);
    assert.equal(types.filter((t) => t === "parent").length, 300);
    assert.ok(!types.includes("late"), "sealed");
  });
});

Deno.test("a public key prints and parses back; anything else is refused saying what is expected", async () => {
  await withHome(async (home) => {
    const key = await auditKey(home);
    const printed = formatPublicKey(key.publicRaw);
    assert.match(printed, /^ed25519:[A-Za-z0-9+/]{43}=$/);
    assert.deepEqual(parsePublicKey(`  ${printed}\n`), key.publicRaw);
    assert.match(parsePublicKey("ssh-ed25519 AAAA") as string, /is not a key as moat audit key prints it/);
    assert.deepEqual(readPublicKey(home), key.publicRaw);
    assert.equal((await auditKey(home)).id, key.id, "made once");
  });
});
