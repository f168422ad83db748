/**
 * The key that signs the audit logs' checkpoints (lib/audit/chain.ts): one Ed25519 key per MOAT_HOME, made on
 * first use, in `MOAT_HOME/audit/ed25519.json` (mode 0600, in a directory of mode 0700). `moat audit key`
 * prints its public half, for users to keep off the host: a log checked with that copy cannot have been
 * re-signed with another key.
 */
import { MoatError } from "../errors.ts";
import { keyId } from "./chain.ts";

export interface AuditKey {
  id: string;
  publicRaw: Uint8Array;
  sign(message: Uint8Array<ArrayBuffer>): Promise<Uint8Array>;
}

const ED25519 = { name: "Ed25519" } as const;
const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

export const keyFile = (home: string) => `${home}/audit/ed25519.json`;

/** A public key as moat prints it: `ed25519:` and the raw key in base64. Pure. */
export const formatPublicKey = (raw: Uint8Array) => `ed25519:${b64(raw)}`;

/** The raw public key of `text` (as `formatPublicKey` writes it), or why it is not one. Pure. */
export function parsePublicKey(text: string): Uint8Array | string {
  const t = text.trim();
  const m = /^ed25519:([A-Za-z0-9+/]{43}=)$/.exec(t);
  if (!m) {
    return `"${
      t.length > 60 ? t.slice(0, 60) + "…" : t
    }" is not a key as moat audit key prints it (ed25519:…)`;
  }
  return unb64(m[1]!);
}

const cache = new Map<string, Promise<AuditKey>>();

/** This MOAT_HOME's key, made when there is none. Throws what the file system says. */
export function auditKey(home: string): Promise<AuditKey> {
  let k = cache.get(home);
  if (!k) {
    k = loadOrMake(home);
    cache.set(home, k);
    k.catch(() => cache.delete(home));
  }
  return k;
}

async function loadOrMake(home: string): Promise<AuditKey> {
  const path = keyFile(home);
  let text: string | undefined;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  if (text === undefined) {
    const pair = await crypto.subtle.generateKey(ED25519, true, ["sign", "verify"]) as CryptoKeyPair;
    const priv = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
    const pub = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
    Deno.mkdirSync(`${home}/audit`, { recursive: true, mode: 0o700 });
    try {
      // Made 0600 before a byte is written; another moat making one at the same time wins, and both use it.
      Deno.writeTextFileSync(
        path,
        JSON.stringify({ schema: 1, private: b64(priv), public: b64(pub) }) + "\n",
        {
          mode: 0o600,
          createNew: true,
        },
      );
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
    text = Deno.readTextFileSync(path);
  }
  let parsed: { private: string; public: string };
  try {
    parsed = JSON.parse(text);
    if (typeof parsed.private !== "string" || typeof parsed.public !== "string") throw new Error();
  } catch {
    throw new MoatError(
      `${path} is not an audit key moat wrote, so moat cannot sign audit logs with it`,
      `Move it away to make a new key (logs it signed are then checked with --key and your copy of its public ` +
        `key):  mv ${path} ${path}.damaged`,
    );
  }
  const publicRaw = unb64(parsed.public);
  const key = await crypto.subtle.importKey("pkcs8", unb64(parsed.private), ED25519, false, ["sign"]);
  return {
    id: keyId(publicRaw),
    publicRaw,
    sign: async (message) => new Uint8Array(await crypto.subtle.sign("Ed25519", key, message)),
  };
}

/** This MOAT_HOME's public key, without making one: `undefined` when there is none yet. */
export function readPublicKey(home: string): Uint8Array | undefined {
  try {
    return unb64(JSON.parse(Deno.readTextFileSync(keyFile(home))).public);
  } catch {
    return undefined;
  }
}
