/**
 * Crafted run records and container summaries for `moat list` / `moat status` tests: records are written
 * straight into a temp MOAT_HOME as `run.json` files, the way `moat run` leaves them.
 */
import type { ContainerSummary } from "../../lib/docker/types.ts";
import { ensureHomeId } from "../../lib/store/home_id.ts";
import type { RunRecord } from "../../lib/store/records.ts";

/** An owner that cannot be alive: its boot id is not this boot's. */
export const DEAD_OWNER = { pid: 1, bootId: "00000000-dead-boot-0000-000000000000", startTicks: 1 };

/** A finished gVisor run; override what a test is about. */
export function record(id: string, patch: Partial<RunRecord> = {}): RunRecord {
  return {
    schema: 1,
    id,
    name: null,
    workspace: "/w",
    image: "moat-test/busybox:latest",
    command: ["true"],
    sandbox: "gvisor",
    runtime: "runsc",
    containerId: `${id}${"0".repeat(64 - id.length)}`,
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
    ...patch,
  };
}

/** Write records as `MOAT_HOME/runs/<id>/run.json` (plus `output.bin` when given). */
export async function writeRecords(
  home: string,
  records: RunRecord[],
  output: Record<string, Uint8Array> = {},
): Promise<void> {
  await Promise.all(records.map(async (r) => {
    await Deno.mkdir(`${home}/runs/${r.id}`, { recursive: true });
    await Deno.writeTextFile(`${home}/runs/${r.id}/run.json`, JSON.stringify(r, null, 2) + "\n");
    const out = output[r.id];
    if (out) await Deno.writeFile(`${home}/runs/${r.id}/output.bin`, out);
  }));
}

/** Every `run.json` under `home`, as text, to prove a read-only command wrote nothing. */
export async function snapshotRecords(home: string): Promise<Record<string, string>> {
  const snap: Record<string, string> = {};
  for await (const e of Deno.readDir(`${home}/runs`)) {
    snap[e.name] = await Deno.readTextFile(`${home}/runs/${e.name}/run.json`);
    for await (const f of Deno.readDir(`${home}/runs/${e.name}`)) {
      if (f.name !== "run.json" && f.name !== "output.bin") snap[`${e.name}/${f.name}`] = "(extra file)";
    }
  }
  return snap;
}

/** A `GET /containers/json` item carrying moat's labels for `runId`. */
export function summary(
  runId: string,
  state: string,
  status: string,
  labels: Record<string, string> = {},
): ContainerSummary {
  return {
    Id: `${runId}${"0".repeat(64 - runId.length)}`,
    Names: [`/moat-${runId}`],
    Image: "moat-test/busybox:latest",
    State: state,
    Status: status,
    Labels: {
      "dev.moat.managed": "true",
      "dev.moat.run-id": runId,
      "dev.moat.sandbox": "gvisor",
      "dev.moat.runtime": "runsc",
      ...labels,
    },
    Created: 1767225600,
  };
}

/**
 * Three damaged runs, as moat would find them after a crash or a stray `rm`: `run.json` not JSON (its
 * output.bin holds `output`), `run.json` a directory (no output), and a readable record whose output.bin
 * — which moat creates with the record — is gone. Returns their ids.
 */
export async function writeDamaged(
  home: string,
  output: Uint8Array,
): Promise<{ corrupt: string; dirRecord: string; noOutput: string }> {
  const corrupt = "d0d0d0d0d0d1", dirRecord = "d0d0d0d0d0d2", noOutput = "d0d0d0d0d0d3";
  await Deno.mkdir(`${home}/runs/${corrupt}`, { recursive: true });
  await Deno.writeTextFile(`${home}/runs/${corrupt}/run.json`, '{"schema": 1, "id": "d0d0');
  await Deno.writeFile(`${home}/runs/${corrupt}/output.bin`, output);
  await Deno.mkdir(`${home}/runs/${dirRecord}/run.json`, { recursive: true });
  await writeRecords(home, [
    record(noOutput, {
      name: "no-output",
      exitCode: 4,
      createdAt: "2026-01-01T00:00:09.000Z",
      outputFile: true,
    }),
  ]);
  return { corrupt, dirRecord, noOutput };
}

/** The label that makes a container `home`'s own (its MOAT_HOME id, made if need be), as a run sets it. */
export function homeLabel(home: string): Record<string, string> {
  return { "dev.moat.home": ensureHomeId(home) };
}

/** The label of a container made by another MOAT_HOME. */
export const OTHER_HOME = { "dev.moat.home": "0123456789abcdef0123456789abcdef" };
