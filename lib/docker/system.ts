/** System operations: `/_ping`, `/info` (swagger SystemPing, SystemInfo). */
import { readAll } from "./http.ts";
import type { EngineHttp } from "./transport.ts";
import type { PingResult, SystemInfo } from "./types.ts";

/** Negotiate (once) and report what the engine said. */
export async function systemPing(http: EngineHttp): Promise<PingResult> {
  const apiVersion = await http.apiVersion();
  return { apiVersion, serverApiVersion: http.serverApiVersion, server: http.server };
}

/** `GET /info`. `timeoutMs` bounds the whole call (the sandbox check uses MOAT_ENGINE_TIMEOUT). */
export async function systemInfo(http: EngineHttp, timeoutMs?: number): Promise<SystemInfo> {
  const { body } = await http.call<SystemInfo>("GET", "/info", timeoutMs === undefined ? {} : { timeoutMs });
  return body;
}

/** One of the engine's events (swagger EventMessage), as far as moat reads it. */
export interface EngineEvent {
  Type: string;
  Action: string;
  Actor?: { ID?: string };
  /** Seconds since the epoch. */
  time?: number;
}

/**
 * `GET /events?since=&until=&filters=`: the events the engine has kept from `since` to `until` (ms since the
 * epoch; a window that has ended, so the engine sends what it kept and closes), filtered as the engine's
 * filters say (e.g. `{container: [id], event: ["oom"]}`). The body is one JSON object per line.
 */
export async function systemEvents(
  http: EngineHttp,
  since: number,
  until: number,
  filters: Record<string, string[]>,
): Promise<EngineEvent[]> {
  const query = { since: timestamp(since), until: timestamp(Math.min(until, Date.now())), filters };
  const res = await http.stream("GET", "/events", { query });
  try {
    const text = new TextDecoder().decode(await readAll(res.body, 4 * 1024 * 1024));
    return text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as EngineEvent);
  } finally {
    res.close();
  }
}

/** A time for the engine's filters: seconds, a dot and nine digits of nanoseconds (a shorter fraction is nanoseconds). */
function timestamp(ms: number): string {
  const t = Math.floor(ms);
  return `${Math.floor(t / 1000)}.${String((t % 1000) * 1_000_000).padStart(9, "0")}`;
}
