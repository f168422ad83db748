/** Shared pieces of the lifecycle tests: a spec, collecting sinks, and a well-behaved fake engine script. */
import { DockerClient } from "../../lib/docker/client.ts";
import { unixTransport } from "../../lib/docker/transport.ts";
import type { LifecycleIO } from "../../lib/run/lifecycle.ts";
import { spec } from "./fixtures.ts";
import { concat, type FakeEngine, frame } from "../fake_engine.ts";

export { spec };

export const ID = "a".repeat(64);

/** A container's whole output as the engine multiplexes it: stdout "one two three", stderr "warn bye". */
export const LOG = concat(
  frame(1, "one\n"),
  frame(2, "warn\n"),
  frame(1, "two\n"),
  frame(1, "three\n"),
  frame(2, "bye\n"),
);
export const dec = new TextDecoder();

/** Sinks that collect bytes (copying: the lifecycle reuses its buffers). */
export function collectingIO(stdin?: Uint8Array) {
  const out: number[] = [], err: number[] = [], record: [number, string][] = [];
  let flushes = 0;
  let fed = false;
  const io: LifecycleIO = {
    stdout: { write: (b) => Promise.resolve(void out.push(...b)) },
    stderr: { write: (b) => Promise.resolve(void err.push(...b)) },
    record: {
      output: (s, d) => Promise.resolve(void record.push([s, dec.decode(d)])),
      flushSoon: () => void flushes++,
      flush: () => Promise.resolve(void flushes++),
    },
    now: () => 1,
    ...(stdin
      ? {
        stdin: {
          read(p: Uint8Array) {
            if (fed) return Promise.resolve(null);
            fed = true;
            p.set(stdin);
            return Promise.resolve(stdin.byteLength);
          },
        },
      }
      : {}),
  };
  return {
    io,
    stdout: () => dec.decode(new Uint8Array(out)),
    stderr: () => dec.decode(new Uint8Array(err)),
    record,
    flushes: () => flushes,
  };
}

export const noHooks = { onCreated: () => Promise.resolve(), onStarted: () => Promise.resolve() };
export const opts = (signal = new AbortController().signal, keep = false) => ({
  keep,
  interrupt: signal,
  stopGraceSeconds: 1,
});

/**
 * A well-behaved engine: the attach stream sends `initial` with the 101 head, the output frames after
 * start, then closes; the wait answers `exitCode` once the output is done.
 */
export function scriptEngine(
  engine: FakeEngine,
  o: { frames: Uint8Array[]; exitCode: number; initial?: Uint8Array },
) {
  const started = Promise.withResolvers<void>();
  const outputDone = Promise.withResolvers<void>();
  let waitSeenBeforeStart = false;
  engine.on("POST /containers/create", { status: 201, json: { Id: ID, Warnings: [] } });
  engine.on("POST /containers/:id/attach", async (_req, res) => {
    const h = await res.hijack(o.initial ? { initial: o.initial } : {});
    await Promise.race([started.promise, res.delay(5000)]);
    for (const f of o.frames) await h.write(f);
    outputDone.resolve();
  });
  engine.on("POST /containers/:id/wait", async (_req, res) => {
    await res.head(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    await Promise.race([outputDone.promise, res.delay(5000)]);
    await res.chunk(JSON.stringify({ StatusCode: o.exitCode }) + "\n");
    await res.endChunks();
  });
  engine.on("POST /containers/:id/start", (_req, res) => {
    waitSeenBeforeStart = engine.requestsTo("POST /containers/:id/wait").length === 1;
    started.resolve();
    return res.empty(204);
  });
  engine.on("GET /containers/:id/json", (_req, res) =>
    res.json(200, {
      Id: ID,
      Name: "/x",
      State: { Status: "exited", Running: false, ExitCode: o.exitCode, StartedAt: "2026-12-06T20:00:00Z" },
      Config: {},
      HostConfig: { Runtime: "runsc" },
    }));
  engine.on("DELETE /containers/:id", { status: 204 });
  engine.on("POST /containers/:id/stop", (_req, res) => {
    outputDone.resolve();
    return res.empty(204);
  });
  return { waitSeenBeforeStart: () => waitSeenBeforeStart, started, outputDone };
}

export const clientFor = (engine: FakeEngine) =>
  new DockerClient(unixTransport(engine.endpoint), { timeoutMs: 3000 });
