/**
 * moat under load, on the real engine with gVisor and default settings: 20 foreground runs at once, then 20
 * detached runs at once, on a two-core host. Each run's stdout and `moat logs` are byte-exact, each exit code
 * is the command's, each record is final, and no container is left. (Before the start budget, most of these
 * runs failed with "POST …/start took longer than 5 s" while their commands were in fact running.)
 */
import assert from "node:assert/strict";
import { containersFor, moat, requireEngine, TEST_IMAGE, withScratch } from "./helpers.ts";

const RUNS = 20;
const LINES = 2000;

/** The command of run `k`: LINES numbered lines on stdout, one on stderr, exit code k % 7. */
function command(k: number): string[] {
  return [
    "sh",
    "-c",
    `i=0; while [ $i -lt ${LINES} ]; do echo "run ${k} line $i"; i=$((i+1)); done; echo "err ${k}" >&2; exit ${
      k % 7
    }`,
  ];
}

function expectedStdout(k: number): string {
  let s = "";
  for (let i = 0; i < LINES; i++) s += `run ${k} line ${i}\n`;
  return s;
}

function record(home: string, id: string): Record<string, unknown> {
  return JSON.parse(Deno.readTextFileSync(`${home}/runs/${id}/run.json`));
}

/** The run id of the run named `name` (each name is used once here). */
function idByName(home: string, name: string): string {
  for (const e of Deno.readDirSync(`${home}/runs`)) {
    if (record(home, e.name).name === name) return e.name;
  }
  throw new Error(`no run named ${name}`);
}

Deno.test(`${RUNS} foreground gVisor runs at once all succeed, byte-exact, with their exit codes`, async () => {
  await requireEngine();
  await withScratch(async ({ ws, home }) => {
    const ks = Array.from({ length: RUNS }, (_, k) => k);
    const results = await Promise.all(
      ks.map((k) =>
        moat(["run", "--image", TEST_IMAGE, "--name", `fg-${k}`, ws, "--", ...command(k)], { home })
      ),
    );
    for (const k of ks) {
      const r = results[k]!;
      assert.equal(r.code, k % 7, `run ${k}: ${r.stderr}`);
      assert.equal(r.out, expectedStdout(k), `run ${k} stdout`);
      assert.equal(r.stderr, `err ${k}\n`, `run ${k} stderr`);
    }
    for (const k of ks) {
      const id = idByName(home, `fg-${k}`);
      const rec = record(home, id);
      assert.deepEqual([rec.state, rec.exitCode, rec.runtime, rec.outputIncomplete], [
        "exited",
        k % 7,
        "runsc",
        undefined,
      ]);
      const logs = await moat(["logs", id], { home });
      assert.equal(logs.out, expectedStdout(k), `moat logs of run ${k}`);
      assert.equal(logs.stderr, `err ${k}\n`);
    }
    assert.deepEqual(await containersFor(ws), []);
  });
});

Deno.test(`${RUNS} detached gVisor runs at once all start and record everything`, async () => {
  await requireEngine();
  await withScratch(async ({ ws, home }) => {
    const ks = Array.from({ length: RUNS }, (_, k) => k);
    const started = await Promise.all(
      ks.map((k) =>
        moat(["run", "-d", "--image", TEST_IMAGE, "--name", `bg-${k}`, ws, "--", ...command(k)], { home })
      ),
    );
    const ids = started.map((r, k) => {
      assert.equal(r.code, 0, `run ${k}: ${r.stderr}`);
      assert.equal(r.stderr, "", `run ${k}`);
      return r.out.trim();
    });
    // Follow each to its end (the recorders work meanwhile), then read the records and the whole logs.
    const followed = await Promise.all(ids.map((id) => moat(["logs", "-f", id], { home })));
    for (const k of ks) {
      const got = followed[k]!.out;
      if (got === expectedStdout(k)) continue;
      // What the follower missed and why it stopped: where the output differs, what it said on stderr, and
      // what the record and the whole log say now.
      const lines = got.split("\n");
      const first = lines.findIndex((l, i) => l !== `run ${k} line ${i}`);
      const whole = await moat(["logs", ids[k]!], { home });
      assert.fail(
        `moat logs -f of run ${k} (${ids[k]}): ${got.length} bytes of ${expectedStdout(k).length}, ` +
          `first wrong line ${first} (${JSON.stringify(lines[first])}); exit ${followed[k]!.code}, stderr ` +
          `${JSON.stringify(followed[k]!.stderr)}; moat logs now ${
            whole.out === expectedStdout(k) ? "complete" : `${whole.out.length} bytes`
          }; record ${JSON.stringify(record(home, ids[k]!))}`,
      );
    }
    for (const k of ks) {
      const id = ids[k]!;
      // `moat logs -f` ended: the record is final (the recorder writes it last).
      const rec = record(home, id);
      assert.deepEqual([rec.state, rec.exitCode, rec.outputIncomplete, rec.error], [
        "exited",
        k % 7,
        undefined,
        null,
      ], `run ${k}`);
      const logs = await moat(["logs", id], { home });
      assert.equal(logs.out, expectedStdout(k), `moat logs of run ${k}`);
      assert.equal(logs.stderr, `err ${k}\n`);
    }
    // The recorders removed the containers before they wrote the final records.
    assert.deepEqual(await containersFor(ws), []);
  });
});
