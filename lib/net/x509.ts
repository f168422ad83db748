/**
 * The certificates of a run's own certificate authority, for the TLS moat will terminate for hosts that carry
 * a grant (issue 14): a CA made per run, whose private key never leaves this process's memory (WebCrypto,
 * not extractable), and short-lived leaves for one host each. ECDSA P-256 with SHA-256 throughout.
 *
 * X.509 (RFC 5280) is written here with a small DER encoder (ITU-T X.690) for exactly these two shapes:
 * - the CA: `BasicConstraints CA:TRUE, pathlen:0` and `KeyUsage keyCertSign, cRLSign` (both critical), its
 *   subject key identifier;
 * - a leaf: `BasicConstraints CA:FALSE` and `KeyUsage digitalSignature` (critical), `ExtendedKeyUsage
 *   serverAuth`, the host in `subjectAltName` (clients check it, not the common name), the CA's key
 *   identifier; valid from an hour ago (clocks differ) for a few days.
 */

// --- DER ---------------------------------------------------------------------------------------------------

/** Bytes over a plain ArrayBuffer, as WebCrypto takes them. */
type Bytes = Uint8Array<ArrayBuffer>;

/** A DER element: tag, length, contents. Pure. */
export function tlv(tag: number, contents: Uint8Array): Bytes {
  const n = contents.byteLength;
  let head: number[];
  if (n < 0x80) head = [tag, n];
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    head = [tag, 0x80 | bytes.length, ...bytes];
  }
  const out = new Uint8Array(head.length + n);
  out.set(head);
  out.set(contents, head.length);
  return out;
}

/** Concatenate byte arrays. Pure. */
export function concat(...parts: Uint8Array[]): Bytes {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), at += p.byteLength;
  return out;
}

export const sequence = (...items: Uint8Array[]) => tlv(0x30, concat(...items));
const set = (...items: Uint8Array[]) => tlv(0x31, concat(...items));
const octets = (b: Uint8Array) => tlv(0x04, b);
const utf8 = (s: string) => tlv(0x0c, new TextEncoder().encode(s));
const bool = (v: boolean) => tlv(0x01, new Uint8Array([v ? 0xff : 0]));
/** An explicit context tag `[n]` around `inner`. */
const explicit = (n: number, inner: Uint8Array) => tlv(0xa0 | n, inner);

/** A non-negative INTEGER from its big-endian bytes (leading zeros dropped, a 0 added when the top bit is set). Pure. */
export function integer(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.byteLength - 1 && bytes[i] === 0) i++;
  const v = bytes.subarray(i);
  return tlv(0x02, v[0]! & 0x80 ? concat(new Uint8Array([0]), v) : v);
}

/** A small INTEGER. Pure. */
export const smallInteger = (n: number) => integer(new Uint8Array([n]));

/** An OBJECT IDENTIFIER from its dotted form. Pure. */
export function oid(dotted: string): Uint8Array {
  const arcs = dotted.split(".").map(Number);
  const out: number[] = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const b: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) b.unshift(0x80 | (v & 0x7f));
    out.push(...b);
  }
  return tlv(0x06, new Uint8Array(out));
}

/** A BIT STRING of whole bytes. Pure. */
const bits = (b: Uint8Array) => tlv(0x03, concat(new Uint8Array([0]), b));

/**
 * A KeyUsage BIT STRING with the named bits set (bit 0 is the first byte's top bit), with its unused
 * trailing bits counted as DER requires. Pure.
 */
export function keyUsageBits(named: readonly number[]): Uint8Array {
  const top = Math.max(...named);
  const bytes = new Uint8Array(Math.floor(top / 8) + 1);
  for (const b of named) bytes[Math.floor(b / 8)]! |= 0x80 >> (b % 8);
  const unused = 7 - (top % 8);
  return tlv(0x03, concat(new Uint8Array([unused]), bytes));
}

/** UTCTime before 2050, GeneralizedTime from then on (RFC 5280 4.1.2.5), to the second, in UTC. Pure. */
export function time(d: Date): Uint8Array {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-T:]/g, "") + "Z";
  return d.getUTCFullYear() < 2050
    ? tlv(0x17, new TextEncoder().encode(digits.slice(2)))
    : tlv(0x18, new TextEncoder().encode(digits));
}

/** An IPv4 address's four bytes, or `undefined` for anything else. Pure. */
function ipv4Bytes(host: string): Uint8Array | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!m) return undefined;
  const b = m.slice(1).map(Number);
  return b.every((x) => x <= 255) ? new Uint8Array(b) : undefined;
}

// --- X.509 ---------------------------------------------------------------------------------------------------

const OID = {
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  subjectAltName: "2.5.29.17",
  subjectKeyId: "2.5.29.14",
  authorityKeyId: "2.5.29.35",
} as const;

const ECDSA_SHA256 = sequence(oid(OID.ecdsaWithSha256));
const P256 = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGN = { name: "ECDSA", hash: "SHA-256" } as const;

/** A Name of one common name (and moat as its organization). Pure. */
function name(cn: string): Uint8Array {
  return sequence(
    set(sequence(oid(OID.organization), utf8("moat"))),
    set(sequence(oid(OID.commonName), utf8(cn))),
  );
}

function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return sequence(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

/** WebCrypto's ECDSA signature (r ‖ s, 32 bytes each) as DER's Ecdsa-Sig-Value. Pure. */
export function ecdsaSigValue(raw: Uint8Array): Uint8Array {
  return sequence(integer(raw.subarray(0, raw.byteLength / 2)), integer(raw.subarray(raw.byteLength / 2)));
}

/** The SHA-1 of a P-256 key's public point (RFC 5280 4.2.1.2, method 1): its key identifier. */
async function keyId(spki: Bytes): Promise<Bytes> {
  // A P-256 SubjectPublicKeyInfo ends with its 65-byte uncompressed point.
  return new Uint8Array(await crypto.subtle.digest("SHA-1", spki.subarray(spki.byteLength - 65)));
}

/** Sign a TBSCertificate with `key`: the whole certificate, DER. */
async function signed(tbs: Bytes, key: CryptoKey): Promise<Bytes> {
  const sig = new Uint8Array(await crypto.subtle.sign(SIGN, key, tbs));
  return sequence(tbs, ECDSA_SHA256, bits(ecdsaSigValue(sig)));
}

/** A positive random serial number of 16 bytes. */
function serial(): Uint8Array {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[0] = b[0]! & 0x7f | 0x01; // positive, and never shortened below 16 bytes
  return integer(b);
}

/** PEM text of DER `der` with `label` (CERTIFICATE, PRIVATE KEY). Pure. */
export function pem(label: string, der: Uint8Array): string {
  let b64 = "";
  const chunk = 0x8000;
  for (let i = 0; i < der.byteLength; i += chunk) {
    b64 += String.fromCharCode(...der.subarray(i, i + chunk));
  }
  const body = btoa(b64).replace(/.{64}/g, "$&\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

/** A run's certificate authority: its certificate, and the key that signs leaves (never extractable). */
export interface RunCa {
  /** The CA's certificate, PEM: what the sandbox's clients are made to trust. */
  certPem: string;
  /** The CA's certificate, DER. */
  der: Uint8Array;
  /** Signs the leaves; WebCrypto will not export it. */
  key: CryptoKey;
  /** Its subject (a leaf's issuer), DER. */
  subject: Uint8Array;
  /** Its key identifier (a leaf's authority key identifier). */
  keyId: Uint8Array;
  notAfter: Date;
}

/** A leaf for one host: its certificate and private key, PEM, as `Deno.listenTls` takes them. */
export interface Leaf {
  certPem: string;
  keyPem: string;
  notAfter: Date;
}

const HOUR = 3600_000;
/** How far back a certificate's validity starts: clocks differ. */
export const BACKDATE_MS = HOUR;
/** How long a run's CA is valid: the longest a run is expected to last. */
export const CA_VALIDITY_MS = 7 * 24 * HOUR;
/** How long a leaf is valid. */
export const LEAF_VALIDITY_MS = 7 * 24 * HOUR;

/**
 * Make a run's CA, named after the run. Its key exists only in this process, unless `extractable` (for a
 * detached run's, handed to its recorder through a pipe: `exportRunCa`).
 */
export async function makeRunCa(runId: string, now = new Date(), extractable = false): Promise<RunCa> {
  const pair = await crypto.subtle.generateKey(P256, extractable, ["sign", "verify"]) as CryptoKeyPair;
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey));
  const id = await keyId(spki);
  const subject = name(`moat run ${runId} CA`);
  const notAfter = new Date(now.getTime() + CA_VALIDITY_MS);
  const tbs = sequence(
    explicit(0, smallInteger(2)),
    serial(),
    ECDSA_SHA256,
    subject,
    sequence(time(new Date(now.getTime() - BACKDATE_MS)), time(notAfter)),
    subject,
    spki,
    explicit(
      3,
      sequence(
        extension(OID.basicConstraints, true, sequence(bool(true), smallInteger(0))),
        extension(OID.keyUsage, true, keyUsageBits([5, 6])), // keyCertSign, cRLSign
        extension(OID.subjectKeyId, false, octets(id)),
      ),
    ),
  );
  const der = await signed(tbs, pair.privateKey);
  return { certPem: pem("CERTIFICATE", der), der, key: pair.privateKey, subject, keyId: id, notAfter };
}

/**
 * Make a leaf for `host` (a DNS name, or an IPv4 address) signed by `ca`, valid from an hour ago for
 * `LEAF_VALIDITY_MS` or until the CA's end, whichever comes first.
 */
export async function makeLeaf(ca: RunCa, host: string, now = new Date()): Promise<Leaf> {
  const pair = await crypto.subtle.generateKey(P256, true, ["sign", "verify"]) as CryptoKeyPair;
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey));
  const ip = ipv4Bytes(host);
  const altName = ip ? tlv(0x87, ip) : tlv(0x82, new TextEncoder().encode(host.toLowerCase()));
  const notAfter = new Date(Math.min(now.getTime() + LEAF_VALIDITY_MS, ca.notAfter.getTime()));
  const tbs = sequence(
    explicit(0, smallInteger(2)),
    serial(),
    ECDSA_SHA256,
    ca.subject,
    sequence(time(new Date(now.getTime() - BACKDATE_MS)), time(notAfter)),
    name(host),
    spki,
    explicit(
      3,
      sequence(
        extension(OID.basicConstraints, true, sequence()),
        extension(OID.keyUsage, true, keyUsageBits([0])), // digitalSignature
        extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth))),
        extension(OID.subjectAltName, false, sequence(altName)),
        extension(OID.subjectKeyId, false, octets(await keyId(spki))),
        extension(OID.authorityKeyId, false, sequence(tlv(0x80, ca.keyId))),
      ),
    ),
  );
  const der = await signed(tbs, ca.key);
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  return { certPem: pem("CERTIFICATE", der), keyPem: pem("PRIVATE KEY", pkcs8), notAfter };
}

const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

/** A CA made `extractable`, key included, as text for `importRunCa` in another moat process. */
export async function exportRunCa(ca: RunCa): Promise<string> {
  const key = new Uint8Array(await crypto.subtle.exportKey("pkcs8", ca.key));
  return JSON.stringify({
    der: b64(ca.der),
    key: b64(key),
    subject: b64(ca.subject),
    keyId: b64(ca.keyId),
    notAfter: ca.notAfter.toISOString(),
  });
}

/** The CA `exportRunCa` wrote, its key not extractable again. Throws for anything else. */
export async function importRunCa(text: string): Promise<RunCa> {
  const o = JSON.parse(text);
  const der = unb64(o.der);
  const key = await crypto.subtle.importKey("pkcs8", unb64(o.key), P256, false, ["sign"]);
  return {
    certPem: pem("CERTIFICATE", der),
    der,
    key,
    subject: unb64(o.subject),
    keyId: unb64(o.keyId),
    notAfter: new Date(o.notAfter),
  };
}
