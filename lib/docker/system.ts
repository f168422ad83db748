/** System operations: `/_ping`, `/info` (swagger SystemPing, SystemInfo). */
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
