/**
 * What every command needs from the edge: environment, MOAT_HOME, an engine client made on demand, and
 * output helpers. Commands print results on stdout and everything else on stderr.
 */
import { clientFromEnv, type DockerClient, engineStartTimeoutMs, engineTimeoutMs } from "../docker/client.ts";
import { moatHome } from "../store/records.ts";

const encoder = new TextEncoder();

export interface CliContext {
  env: Record<string, string | undefined>;
  home: string;
  /** Created on first use, so commands that never need the engine never touch it. */
  client(): DockerClient;
  /** Write to stdout (all of it). */
  out(text: string | Uint8Array): Promise<void>;
  /** One line on stderr. */
  note(line: string): void;
  stdoutIsTerminal: boolean;
  /**
   * Refuse a setting no command can work with as the usage error it is (exit 2), the same in every
   * command: today a bad `MOAT_ENGINE_TIMEOUT`. Called by each command once `--help` is handled, so that an
   * engine problem is never confused with a typo in moat's own setting.
   */
  checkEnv(): void;
}

export function cliContext(): CliContext {
  const env = Deno.env.toObject();
  let client: DockerClient | undefined;
  return {
    env,
    get home() {
      return moatHome(env);
    },
    client: () => client ??= clientFromEnv(env),
    async out(text: string | Uint8Array) {
      const bytes = typeof text === "string" ? encoder.encode(text) : text;
      let off = 0;
      while (off < bytes.byteLength) off += await Deno.stdout.write(bytes.subarray(off));
    },
    note(line: string) {
      Deno.stderr.writeSync(encoder.encode(line + "\n"));
    },
    stdoutIsTerminal: Deno.stdout.isTerminal(),
    checkEnv() {
      engineTimeoutMs(env);
      engineStartTimeoutMs(env);
    },
  };
}

/** "3s", "5m", "2h", "4d" since `iso`. Pure given `now`. */
export function formatAge(iso: string, now: number): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** Left-aligned columns separated by two spaces. Pure. */
export function formatTable(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return all.map((r) => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i]!)).join("  ").trimEnd())
    .join("\n") + "\n";
}
