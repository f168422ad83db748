/**
 * Writing a run's audit log, `MOAT_HOME/runs/<id>/audit.jsonl` (mode 0600): the format is lib/audit/chain.ts.
 *
 * Each entry is written by the call that records the event, in one write, so a crash loses at most the entry
 * being written (a process that dies leaves the page cache to the kernel; a checkpoint is also synced to the
 * disk). More than one moat process may write one run's log: a detached run's `moat run -d` until its
 * recorder takes over, `moat stop`. Each append takes the file's lock and, when the file grew since this
 * process last wrote, reads the last entry to chain to it. A log whose last entry is the final checkpoint is
 * sealed: nothing is appended after it.
 *
 * Writing never fails the run: a log that cannot be written keeps the reason in `error` (and its verification
 * will say it is cut short).
 */
import {
  type AuditEntry,
  type CheckpointData,
  checkpointNote,
  entryLine,
  GENESIS,
  type Json,
  makeEntry,
  originOf,
} from "./chain.ts";
import { auditKey } from "./key.ts";

export const AUDIT_FILE = "audit.jsonl";

/** Where `settleAuditLogs` is left for main.ts (the same symbol there). */
const SETTLE = Symbol.for("moat.settleAuditLogs");

/** A checkpoint after this many entries, and one at the end of the run. */
export const CHECKPOINT_EVERY = 1000;

const encoder = new TextEncoder();

export class AuditLog {
  static #open = new Map<string, AuditLog>();

  #home: string;
  #runId: string;
  #path: string;
  /** What this process knows of the file: its size then, the last entry's seq and hash, and whether sealed. */
  #size = -1;
  #seq = 0;
  #last = GENESIS;
  #sealed = false;
  #sinceCheckpoint = 0;
  #pending = new Set<Promise<void>>();
  /** The file, kept open while something appends many entries (`hold`). */
  #held: Deno.FsFile | undefined;
  #holds = 0;
  /** The run is over: the final checkpoint is due when this process is done with the log (`settleAuditLogs`). */
  #ended = false;
  /** Why the log could not be written, when it could not. */
  error: unknown;

  private constructor(home: string, runId: string, path: string) {
    this.#home = home;
    this.#runId = runId;
    this.#path = path;
  }

  /** The log of run `runId`, whose directory is `runDir`, as this process writes it (one per file). */
  static for(home: string, runId: string, runDir: string): AuditLog {
    const path = `${runDir}/${AUDIT_FILE}`;
    let log = AuditLog.#open.get(path);
    if (!log) AuditLog.#open.set(path, log = new AuditLog(home, runId, path));
    // For main.ts, which settles the logs before moat exits without loading this module when none was used.
    (globalThis as { [SETTLE]?: () => Promise<string[]> })[SETTLE] = settleAuditLogs;
    return log;
  }

  get runId(): string {
    return this.#runId;
  }

  /** The run's directory is removed (a run refused before anything ran): nothing more is written or signed. */
  forget(): void {
    this.#held?.close();
    this.#held = undefined;
    AuditLog.#open.delete(this.#path);
  }

  /** Every log this process wrote to. */
  static get open(): AuditLog[] {
    return [...AuditLog.#open.values()];
  }

  /** Say the run is over: `close` seals the log with the final checkpoint. */
  ended(): void {
    this.#ended = true;
  }

  /**
   * Keep the file open until the function returned is called: for a writer of many entries (the policy
   * point), whose appends then skip opening and closing it.
   */
  hold(): () => void {
    this.#holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.#holds === 0) {
        this.#held?.close();
        this.#held = undefined;
      }
    };
  }

  /** Append an entry for what moat decided or did. Never throws. */
  append(type: string, data: { [key: string]: Json }): void {
    if (this.#locked((entry) => entry(type, data)) && ++this.#sinceCheckpoint >= CHECKPOINT_EVERY) {
      this.#sinceCheckpoint = 0;
      this.#track(this.checkpoint());
    }
  }

  /**
   * Sign the log's head and append the checkpoint; `final` for the last entry of a finished run, which then
   * signs every entry before it (signed again when one was appended meanwhile). Never throws.
   */
  async checkpoint(final = false): Promise<void> {
    try {
      const key = await auditKey(this.#home);
      for (let attempt = 0; attempt < 10; attempt++) {
        const head = this.#head();
        if (!head || head.seq === 0) return;
        const origin = originOf(this.#runId);
        const signature = await key.sign(checkpointNote(origin, head.seq, head.hash));
        const data: CheckpointData = {
          origin,
          size: head.seq,
          root: head.hash,
          key: key.id,
          signature: btoa(String.fromCharCode(...signature)),
          ...(final ? { final: true } : {}),
        };
        const written = this.#locked((entry, seq) => {
          if (final && seq !== head.seq) return false; // moved on meanwhile: sign the new head
          entry("checkpoint", data as unknown as { [key: string]: Json });
          return true;
        });
        if (written !== false) return;
      }
    } catch (err) {
      this.error ??= err;
    }
  }

  /** Wait for the checkpoints started along the way; then the final one, when `final`. Never throws. */
  async close(final = this.#ended): Promise<void> {
    await Promise.all(this.#pending);
    if (final) await this.checkpoint(true);
    else if (this.#sinceCheckpoint > 0) await this.checkpoint(false);
    AuditLog.#open.delete(this.#path);
  }

  #track(p: Promise<void>): void {
    this.#pending.add(p);
    p.finally(() => this.#pending.delete(p));
  }

  /** The last entry's seq and hash, as the file has it now. */
  #head(): { seq: number; hash: string } | undefined {
    let head: { seq: number; hash: string } | undefined;
    this.#locked((_, seq, hash) => void (head = { seq, hash }));
    return head;
  }

  /**
   * Run `fn` with the file locked and this process's view of it up to date; `fn` may append entries with
   * `entry`. `fn`'s result, or `undefined` when the file could not be used (or is sealed).
   */
  #locked<T>(
    fn: (entry: (type: string, data: { [key: string]: Json }) => AuditEntry, seq: number, hash: string) => T,
  ): T | undefined {
    // Opened for each append: no file stays open between events (a run may last days), and closing it
    // releases the lock whatever happens.
    let file: Deno.FsFile | undefined;
    try {
      file = this.#held ?? Deno.openSync(this.#path, { read: true, append: true, create: true, mode: 0o600 });
      if (this.#holds > 0) this.#held = file;
      const f = file;
      f.lockSync(true);
      this.#catchUp(f);
      if (this.#sealed) return undefined;
      return fn(
        (type, data) => {
          const e = makeEntry(this.#seq + 1, this.#last, new Date().toISOString(), type, data);
          const bytes = encoder.encode(entryLine(e));
          let off = 0;
          while (off < bytes.byteLength) off += f.writeSync(bytes.subarray(off));
          this.#size += bytes.byteLength;
          this.#seq = e.seq;
          this.#last = e.hash;
          if (type === "checkpoint") {
            f.syncDataSync(); // a checkpoint is on the disk before moat goes on
            if (data.final === true) this.#sealed = true;
          }
          return e;
        },
        this.#seq,
        this.#last,
      );
    } catch (err) {
      this.error ??= err;
      return undefined;
    } finally {
      if (file && file !== this.#held) file.close();
      else file?.unlockSync();
    }
  }

  /** When another process wrote since: read the last entry to chain to it. */
  #catchUp(file: Deno.FsFile): void {
    const size = file.statSync().size;
    if (size === this.#size) return;
    this.#size = size;
    if (size === 0) {
      this.#seq = 0;
      this.#last = GENESIS;
      return;
    }
    const text = readTail(this.#path, size);
    // A line a writer left unfinished (it died mid-write) is ended, so that what follows is a line of its
    // own; the check then names it.
    if (!text.endsWith("\n")) {
      const nl = encoder.encode("\n");
      file.writeSync(nl);
      this.#size += 1;
    }
    const lines = text.split("\n").filter((l) => l !== "");
    for (let i = lines.length - 1; i >= 0; i--) {
      try {
        const e = JSON.parse(lines[i]!) as AuditEntry;
        if (typeof e.seq === "number" && typeof e.hash === "string") {
          this.#seq = e.seq;
          this.#last = e.hash;
          this.#sealed = e.type === "checkpoint" && (e.data as { final?: boolean }).final === true;
          return;
        }
      } catch { /* the unfinished line */ }
    }
    throw new Error(`${this.#path} has no entry moat can chain to`);
  }
}

/** The end of the file at `path` (`size` bytes long), enough to hold its last two lines. */
function readTail(path: string, size: number): string {
  let window = 64 * 1024;
  for (;;) {
    const start = Math.max(0, size - window);
    const f = Deno.openSync(path, { read: true });
    try {
      f.seekSync(start, Deno.SeekMode.Start);
      const buf = new Uint8Array(size - start);
      let off = 0;
      while (off < buf.byteLength) {
        const n = f.readSync(buf.subarray(off));
        if (n === null) break;
        off += n;
      }
      const text = new TextDecoder().decode(buf.subarray(0, off));
      if (start === 0 || text.slice(0, -1).includes("\n")) {
        return start === 0 ? text : text.slice(text.indexOf("\n") + 1);
      }
      window *= 4;
    } finally {
      f.close();
    }
  }
}

/**
 * Finish every audit log this process wrote to: the final checkpoint of each run that ended here, a
 * checkpoint of what the others got since their last one. For main.ts, before moat exits: the warnings to
 * print, one for each log that could not be written in full (its check will say it was cut short). Never
 * throws.
 */
export async function settleAuditLogs(): Promise<string[]> {
  const logs = AuditLog.open;
  await Promise.all(logs.map((log) => log.close()));
  return logs.filter((log) => log.error !== undefined).map((log) => {
    const err = log.error as { message?: string; hint?: string };
    return `moat: warning: run ${log.runId}'s audit log could not be written in full: ${
      err?.message ?? err
    }` +
      (err?.hint ? `\n  ${err.hint}` : "");
  });
}
