/**
 * Crafted run records and container summaries for the stop/destroy/clean/system tests: a record as
 * `moat run` writes it, written into a test's own MOAT_HOME, and owners that are alive (this test
 * process) or certainly dead (another boot).
 */
import type { ContainerSummary } from "../../lib/docker/types.ts";
import { currentOwner } from "../../lib/store/owner.ts";
import type { Owner, RunRecord } from "../../lib/store/records.ts";

/** An owner that cannot be alive: its boot id is not this boot's. */
export const DEAD_OWNER: Owner = { pid: 1, bootId: "another-boot", startTicks: 1 };

/** This test process as an owner: alive for as long as the test runs. */
export function liveOwner(): Owner {
  return currentOwner();
}

export function record(over: Partial<RunRecord> & { id: string }): RunRecord {
  return {
    schema: 1,
    name: null,
    workspace: "/ws",
    image: "busybox",
    command: ["true"],
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
    moatVersion: "0.0.0-test",
    owner: DEAD_OWNER,
    detached: false,
    ...over,
  };
}

/** A container summary with moat's labels for run `runId`. */
export function summary(
  id: string,
  runId: string | undefined,
  over: Partial<ContainerSummary> = {},
  labels: Record<string, string> = {},
): ContainerSummary {
  return {
    Id: id,
    Names: [`/moat-${runId ?? "x"}`],
    Image: "busybox",
    State: "exited",
    Status: "Exited (0) 1 minute ago",
    Labels: {
      "dev.moat.managed": "true",
      ...(runId ? { "dev.moat.run-id": runId } : {}),
      "dev.moat.workspace": "/ws",
      ...labels,
    },
    Created: 1,
    ...over,
  };
}

/** Write `rec` as `MOAT_HOME/runs/<id>/run.json`, with an output file of `outputBytes` bytes. */
export async function writeRecord(home: string, rec: RunRecord, outputBytes = 0): Promise<string> {
  const dir = `${home}/runs/${rec.id}`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/run.json`, JSON.stringify(rec, null, 2) + "\n");
  if (outputBytes) await Deno.writeFile(`${dir}/output.bin`, new Uint8Array(outputBytes));
  return dir;
}

export async function readRecord(home: string, id: string): Promise<RunRecord> {
  return JSON.parse(await Deno.readTextFile(`${home}/runs/${id}/run.json`));
}

export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}
