/**
 * A run's audit log (issue 15): what moat decided and did for the run, one JSON object per line, each entry
 * chained to the one before by its hash, with signed checkpoints, so that changing, removing or reordering an
 * entry is found by `verifyLog`. This module is the format and the checks; lib/audit/log.ts writes.
 *
 * An entry is `{"seq","time","type","data","prev","hash"}`: `seq` counts from 1, `prev` is the hash of the
 * entry before (64 zeros for the first), and
 *
 *     hash = SHA-256("moat-audit-v1\0" ‖ u64be(seq) ‖ lp(time) ‖ lp(type) ‖ lp(prev) ‖ lp(canonical(data)))
 *
 * where `lp` is a 32-bit big-endian length then the UTF-8 bytes, and `canonical` is JSON with object keys
 * sorted and no spaces (RFC 8785 for the values moat writes: strings, integers, booleans, null). Each field
 * has its own length, so no two entries hash the same input, and the hash does not depend on how the line
 * was serialized.
 *
 * A checkpoint is an entry of type `checkpoint` whose data signs the log's head at that point: a note
 * (C2SP tlog-checkpoint's shape) `moat/<run id>\n<size>\n<base64 of the hash of entry size>\n`, signed with
 * Ed25519 by the key of the MOAT_HOME that wrote it (lib/audit/key.ts). The last entry of a finished run's log
 * is a checkpoint with `final: true`. Pure, but for WebCrypto's signature check.
 */
import { hex, sha256 } from "./sha256.ts";

/** A JSON value as the audit log holds it. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export interface AuditEntry {
  seq: number;
  /** ISO 8601, UTC. */
  time: string;
  type: string;
  data: { [key: string]: Json };
  prev: string;
  hash: string;
}

/** What a checkpoint entry's data holds. */
export interface CheckpointData {
  origin: string;
  /** The entries it covers: the log up to and including entry `size`. */
  size: number;
  /** The hash of entry `size`, hex. */
  root: string;
  /** The id of the key that signed it (`keyId`). */
  key: string;
  /** Ed25519 over `checkpointNote`, base64. */
  signature: string;
  /** The last entry of the run's log: the run is over and nothing follows. */
  final?: boolean;
}

export const GENESIS = "0".repeat(64);
const DOMAIN = new TextEncoder().encode("moat-audit-v1\0");
const encoder = new TextEncoder();

/** JSON with object keys sorted (by UTF-16 code units, as RFC 8785), no spaces. Throws for what JSON lacks. */
export function canonical(value: Json): string {
  if (value === null || typeof value === "boolean" || typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError(`${value} is not a JSON number`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (typeof value === "object") {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k]!)}`).join(",")}}`;
  }
  throw new TypeError(`a ${typeof value} is not JSON`);
}

// deno-lint-ignore no-control-regex
const ASCII = /^[\x00-\x7f]*$/;
/** UTF-8 byte length of `s`. */
const utf8Length = (s: string) => ASCII.test(s) ? s.length : encoder.encode(s).byteLength;

/** The hash of an entry from its fields, hex. Pure. */
export function entryHash(e: Omit<AuditEntry, "hash">): string {
  const fields = [e.time, e.type, e.prev, canonical(e.data)];
  // One encoding of all four (each call to the encoder has a cost of its own), cut by their lengths.
  const bytes = encoder.encode(fields.join(""));
  const lengths = fields.slice(0, 3).map(utf8Length);
  lengths.push(bytes.byteLength - lengths[0]! - lengths[1]! - lengths[2]!);
  const buf = new Uint8Array(DOMAIN.byteLength + 8 + 16 + bytes.byteLength);
  const view = new DataView(buf.buffer);
  buf.set(DOMAIN);
  let off = DOMAIN.byteLength;
  view.setUint32(off, Math.floor(e.seq / 2 ** 32));
  view.setUint32(off + 4, e.seq >>> 0);
  off += 8;
  let from = 0;
  for (const n of lengths) {
    view.setUint32(off, n);
    buf.set(bytes.subarray(from, from + n), off + 4);
    off += 4 + n;
    from += n;
  }
  return hex(sha256(buf));
}

/** The entry after the one whose hash is `prev` (at `seq - 1`), hash included. Pure. */
export function makeEntry(
  seq: number,
  prev: string,
  time: string,
  type: string,
  data: { [key: string]: Json },
): AuditEntry {
  const e = { seq, time, type, data, prev };
  return { ...e, hash: entryHash(e) };
}

/** An entry's line in the file. Pure. */
export function entryLine(e: AuditEntry): string {
  return JSON.stringify({
    seq: e.seq,
    time: e.time,
    type: e.type,
    data: e.data,
    prev: e.prev,
    hash: e.hash,
  }) +
    "\n";
}

/** The checkpoint's origin line for run `runId`. Pure. */
export const originOf = (runId: string) => `moat/${runId}`;

/** The note a checkpoint signs. Pure. */
export function checkpointNote(origin: string, size: number, root: string): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(root.match(/../g)!.map((h) => parseInt(h, 16)));
  return encoder.encode(`${origin}\n${size}\n${btoa(String.fromCharCode(...bytes))}\n`);
}

/** A key's id: the first 16 hex digits of the SHA-256 of its raw public key. Pure. */
export function keyId(publicRaw: Uint8Array): string {
  return hex(sha256(publicRaw)).slice(0, 16);
}

/** What `verifyLog` found. */
export type Verdict =
  | { kind: "intact"; entries: number; checkpoints: number }
  | {
    kind: "cut-short";
    /** Entries read and found good. */
    entries: number;
    /** The last entry a signed checkpoint covers (0: none). */
    signedUpTo: number;
    reason: string;
  }
  | {
    kind: "tampered";
    /** The line (= the entry's seq) where the log stops being what moat wrote. */
    line: number;
    reason: string;
    entries: number;
  };

const HEX64 = /^[0-9a-f]{64}$/;

/** Why `v` is not an entry's shape, or `undefined`. Pure. */
function shapeProblem(v: unknown): string | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return "it is not a JSON object";
  const e = v as Record<string, unknown>;
  const keys = Object.keys(e).sort().join(",");
  if (keys !== "data,hash,prev,seq,time,type") return `its fields are ${keys || "none"}`;
  if (typeof e.seq !== "number" || !Number.isSafeInteger(e.seq)) return "its seq is not a whole number";
  if (typeof e.time !== "string" || typeof e.type !== "string") return "its time or type is not text";
  if (typeof e.data !== "object" || e.data === null || Array.isArray(e.data)) {
    return "its data is not an object";
  }
  if (
    typeof e.prev !== "string" || !HEX64.test(e.prev) || typeof e.hash !== "string" || !HEX64.test(e.hash)
  ) {
    return "its prev or hash is not a SHA-256 in hex";
  }
  return undefined;
}

/**
 * Check a log's text: every entry's hash, the chain, the order, and each checkpoint's signature with
 * `publicRaw` (the key the log is checked with: the user's, never one the log could bring along). A log that
 * ends without its final checkpoint is cut short (moat stopped while writing it, or its end was removed).
 */
export async function verifyLog(text: string, publicRaw: Uint8Array): Promise<Verdict> {
  const lines = text.split("\n");
  const partial = lines.pop(); // "" when the text ends with a newline
  const key = await crypto.subtle.importKey("raw", new Uint8Array(publicRaw), { name: "Ed25519" }, false, [
    "verify",
  ]);
  const pinned = keyId(publicRaw);
  const hashes: string[] = [];
  let checkpoints = 0;
  let signedUpTo = 0;
  let finalAt = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const bad = (reason: string): Verdict => ({ kind: "tampered", line, reason, entries: i });
    let v: unknown;
    try {
      v = JSON.parse(lines[i]!);
    } catch {
      return bad(`line ${line} is not an audit entry: it is not JSON`);
    }
    const shape = shapeProblem(v);
    if (shape) return bad(`line ${line} is not an audit entry: ${shape}`);
    const e = v as AuditEntry;
    if (finalAt) return bad(`entry ${e.seq} comes after the final checkpoint (entry ${finalAt})`);
    if (e.seq !== line) {
      return bad(`line ${line} holds entry ${e.seq}: an entry is missing, added or out of order`);
    }
    const prev = i === 0 ? GENESIS : hashes[i - 1]!;
    if (e.prev !== prev) {
      return bad(`entry ${e.seq} does not follow entry ${e.seq - 1}: its prev is not that entry's hash`);
    }
    let computed: string;
    try {
      computed = entryHash(e);
    } catch (err) {
      return bad(`entry ${e.seq} cannot be hashed: ${err instanceof Error ? err.message : err}`);
    }
    if (computed !== e.hash) return bad(`entry ${e.seq} was changed: its hash does not match its contents`);
    hashes.push(e.hash);
    if (e.type !== "checkpoint") continue;
    const c = e.data as unknown as CheckpointData;
    if (
      typeof c.origin !== "string" || typeof c.size !== "number" || typeof c.root !== "string" ||
      typeof c.key !== "string" || typeof c.signature !== "string"
    ) {
      return bad(`checkpoint entry ${e.seq} is missing its origin, size, root, key or signature`);
    }
    if (c.key !== pinned) {
      return bad(
        `checkpoint entry ${e.seq} is signed by key ${c.key}, not by the key checked with (${pinned})`,
      );
    }
    if (!(c.size >= 1 && c.size < e.seq) || hashes[c.size - 1] !== c.root) {
      return bad(`checkpoint entry ${e.seq} signs a head (entry ${c.size}) that is not this log's`);
    }
    // The final one signs every entry before it: none after its head goes unsigned.
    if (c.final === true && c.size !== e.seq - 1) {
      return bad(`the final checkpoint (entry ${e.seq}) signs entry ${c.size}, not the entry before it`);
    }
    let sig: Uint8Array<ArrayBuffer>;
    try {
      sig = Uint8Array.from(atob(c.signature), (ch) => ch.charCodeAt(0));
    } catch {
      return bad(`checkpoint entry ${e.seq}'s signature is not base64`);
    }
    const ok = await crypto.subtle.verify("Ed25519", key, sig, checkpointNote(c.origin, c.size, c.root));
    if (!ok) return bad(`checkpoint entry ${e.seq}'s signature does not verify with key ${pinned}`);
    checkpoints++;
    signedUpTo = Math.max(signedUpTo, c.size);
    if (c.final === true) finalAt = e.seq;
  }
  const entries = lines.length;
  if (partial) {
    return {
      kind: "cut-short",
      entries,
      signedUpTo,
      reason: `the log ends in the middle of entry ${entries + 1} (moat stopped while writing it)`,
    };
  }
  if (!finalAt) {
    return {
      kind: "cut-short",
      entries,
      signedUpTo,
      reason: entries === 0
        ? "the log is empty"
        : `the log ends after entry ${entries} without its final checkpoint (moat stopped before the run's end ` +
          "was written, or the end was removed)",
    };
  }
  return { kind: "intact", entries, checkpoints };
}
