/**
 * DNS messages (RFC 1035, and RFC 3596 for AAAA), the little of them moat needs to be the only resolver of a
 * sandbox: read the one question of a query and write the answer moat makes up for it. moat answers every
 * question itself, on the host, from the run's egress policy; it never passes one on, so this module only
 * reads queries and only writes responses. Pure.
 *
 *   header    12 bytes: ID, flags (QR, OPCODE, AA, TC, RD, RA, Z, AD, CD, RCODE), then QDCOUNT, ANCOUNT,
 *             NSCOUNT, ARCOUNT, all 16 bits big-endian
 *   question  a name (labels, each a length octet and that many octets, ending with the empty label or a
 *             compression pointer: two octets, the top two bits set, the other 14 an offset in the message),
 *             then QTYPE and QCLASS (16 bits each)
 *   records   a name, TYPE, CLASS (16 bits each), TTL (32), RDLENGTH (16), then RDLENGTH octets of RDATA
 *
 * What moat takes as a query (`parseQuery`): not a response, exactly one question, every length inside the
 * message and nothing after its last record. The question's name must be a host name: its labels are ASCII
 * letters, digits, '-', '_' and '*' (anything else, a dot or a byte outside printable ASCII, is refused, so
 * a name never needs escaping to be shown or compared), at most 63 octets each and 255 for the name on the
 * wire; the name is given in lower case, its labels joined with dots, without a trailing dot (the root is
 * ""). The records after the question (an EDNS0 OPT record in the additional section is normal, RFC 6891;
 * NOTIFY carries the zone's SOA in the answer section) are walked to check that they fit the message, and
 * their names' pointers, and then ignored: their names may hold any octets.
 *
 * Compression pointers (RFC 1035 4.1.4) are followed, but each must point strictly before the labels that
 * led to it (which is where every compressor points: at a name written earlier), past the header and inside
 * the message. Offsets then only decrease, so no pointer can loop; `MAX_POINTER_JUMPS` bounds the work
 * anyway. In a query the question is the first name, so no pointer in it can be valid: only names after it
 * (in other records) compress against it.
 *
 * What moat writes (`buildAnswer`): the ID, OPCODE and RD of the query, QR set, the question as asked (the
 * case of its letters too, for clients that check it: DNS 0x20), the answer's records naming the question by
 * a pointer to offset 12, no EDNS0 OPT record (moat answers as a server without EDNS, RFC 6891 7, so every
 * answer must fit in 512 bytes), and:
 * - AA set for the answers moat makes up (addresses, "no such record", "no such name"): moat is the
 *   authority for every name the sandbox can ask. It matters: a stub resolver may take an empty NOERROR
 *   answer with neither AA nor RA for a lame referral and try another server (Go's does).
 * - RA clear: moat does no recursion for the sandbox, it answers from the policy alone. Stub resolvers do not
 *   look at RA (`dig` warns "recursion requested but not available").
 */

/** Bytes of the header. */
export const HEADER_SIZE = 12;

/**
 * The largest query moat takes, in bytes, by UDP (carried over a stream) or TCP. A question with an EDNS0 OPT
 * record (a cookie, a padding option) fits in a few hundred bytes; 4096 is the most a client usually offers
 * to receive by UDP, far above any query, and bounds what one hostile frame makes moat hold before it reads
 * it (TCP's 2-byte length could say 65535).
 */
export const MAX_MESSAGE_SIZE = 4096;

/** The largest answer moat writes: a UDP response without EDNS0 (RFC 1035 4.2.1), so any client takes it. */
export const MAX_ANSWER_SIZE = 512;

/** Octets of a label at most (RFC 1035 2.3.4): lengths 64 to 191 are not labels but other label types. */
export const MAX_LABEL_SIZE = 63;

/** Octets of a name on the wire at most, its length octets and the root's empty label included. */
export const MAX_NAME_SIZE = 255;

/**
 * Compression pointers followed in one name at most. A compressor points a name at the longest suffix it has
 * already written, which may itself end in a pointer: one jump per shorter suffix, a handful for real names.
 * Pointers here only ever go back (no loop), and 32 bounds the work on a chain of pointers to pointers.
 */
export const MAX_POINTER_JUMPS = 32;

/** Record types and the class moat speaks of. */
export const TYPE_A = 1;
export const TYPE_AAAA = 28;
export const TYPE_ANY = 255;
export const CLASS_IN = 1;

/** Response codes (RCODE, RFC 1035 4.1.1). */
export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_NXDOMAIN = 3;
export const RCODE_NOTIMP = 4;
export const RCODE_REFUSED = 5;

/** OPCODE of a standard query; moat answers others with `notimp`. */
export const OPCODE_QUERY = 0;

const QR = 0x8000;
const AA = 0x0400;
const RD = 0x0100;

/** The one question of a query, as moat reads it. */
export interface DnsQuery {
  id: number;
  /** The header's flags, raw (16 bits). */
  flags: number;
  /** RD: the client asks for recursion; echoed back. */
  recursionDesired: boolean;
  question: {
    /** Lower case, labels joined with dots, no trailing dot; "" for the root. */
    name: string;
    type: number;
    class: number;
  };
  /** OPCODE (4 bits): 0 for a standard query. */
  opcode: number;
  /**
   * The name as it was asked: `question.name` but for the case of its letters, which the answer echoes.
   * `parseQuery` always sets it; without it the answer asks for `question.name`.
   */
  askedName?: string;
}

/** What moat says to a question. */
export type DnsAnswer =
  /** These IPv4 addresses (A records, dotted quads), each for `ttl` seconds. */
  | { kind: "a"; addresses: string[]; ttl: number }
  /** The name is known but has no record of the type asked (NOERROR, no answer): AAAA and other types. */
  | { kind: "empty" }
  /** No such name (NXDOMAIN). */
  | { kind: "nxdomain" }
  /** moat will not answer this question (REFUSED). */
  | { kind: "refused" }
  /** moat does not do this kind of query (NOTIMP): another OPCODE. */
  | { kind: "notimp" };

/** Why bytes are not a query moat takes (or a frame too big to take). */
export class DnsFormatError extends Error {}

function u16(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 8) | bytes[at + 1]!;
}

function isHostNameOctet(b: number): boolean {
  return (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || (b >= 0x30 && b <= 0x39) || b === 0x2d ||
    b === 0x5f || b === 0x2a; // a-z A-Z 0-9 - _ *
}

/**
 * Walk the name at `offset` of `message`: its end (where what follows the name starts, after its first
 * pointer if it has one) and, with `hostName`, its labels as asked (their octets checked), joined with dots.
 */
function walkName(
  message: Uint8Array,
  offset: number,
  hostName: boolean,
): { asked: string; end: number } {
  const labels: string[] = [];
  let at = offset;
  let segmentStart = offset; // where the labels being read began: a pointer must point before it
  let end = -1;
  let jumps = 0;
  let size = 0;
  for (;;) {
    if (at >= message.byteLength) {
      throw new DnsFormatError(`the name at ${offset} runs past the end of the message`);
    }
    const length = message[at]!;
    if ((length & 0xc0) === 0xc0) {
      if (at + 1 >= message.byteLength) {
        throw new DnsFormatError(`the name at ${offset} runs past the end of the message`);
      }
      const target = u16(message, at) & 0x3fff;
      if (target >= message.byteLength) {
        throw new DnsFormatError(
          `a compression pointer at ${at} points to ${target}, past the end of the message`,
        );
      }
      if (target < HEADER_SIZE) {
        throw new DnsFormatError(`a compression pointer at ${at} points to ${target}, into the header`);
      }
      if (target >= at) {
        throw new DnsFormatError(`a compression pointer at ${at} points forward, to ${target}`);
      }
      if (target >= segmentStart) {
        throw new DnsFormatError(`a compression pointer at ${at} points back to ${target}: a pointer loop`);
      }
      if (++jumps > MAX_POINTER_JUMPS) {
        throw new DnsFormatError(
          `the name at ${offset} has more than ${MAX_POINTER_JUMPS} compression pointers`,
        );
      }
      if (end < 0) end = at + 2;
      at = segmentStart = target;
      continue;
    }
    if (length > MAX_LABEL_SIZE) {
      throw new DnsFormatError(
        `a label of length 0x${length.toString(16)} at ${at}: labels are at most ${MAX_LABEL_SIZE} octets ` +
          `(and no label type but pointers is taken)`,
      );
    }
    size += 1 + length;
    if (size > MAX_NAME_SIZE) {
      throw new DnsFormatError(`the name at ${offset} is longer than ${MAX_NAME_SIZE} octets`);
    }
    if (length === 0) {
      if (end < 0) end = at + 1;
      return { asked: labels.join("."), end };
    }
    if (at + 1 + length > message.byteLength) {
      throw new DnsFormatError(`the name at ${offset} runs past the end of the message`);
    }
    if (hostName) {
      let label = "";
      for (let i = at + 1; i <= at + length; i++) {
        const b = message[i]!;
        if (!isHostNameOctet(b)) {
          throw new DnsFormatError(
            `octet 0x${b.toString(16).padStart(2, "0")} at ${i} in a name: ` +
              `labels are letters, digits, '-', '_' and '*'`,
          );
        }
        label += String.fromCharCode(b);
      }
      labels.push(label);
    }
    at += 1 + length;
  }
}

const lower = (name: string) => name.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) | 0x20));

/**
 * Read the host name at `offset` of `message` (pointers followed, checked as the module's comment says):
 * the name in lower case, and `end`, the offset of what follows it. Throws `DnsFormatError`.
 */
export function readName(message: Uint8Array, offset: number): { name: string; end: number } {
  const { asked, end } = walkName(message, offset, true);
  return { name: lower(asked), end };
}

/**
 * Read a query: its header and its one question. Throws `DnsFormatError` with the reason for anything else:
 * fewer than 12 or more than `MAX_MESSAGE_SIZE` bytes, a response, a count of questions other than 1, a name
 * that is not a host name or not well formed, a record that runs past the end, bytes after the last record.
 * Any OPCODE is read (see `DnsQuery.opcode`).
 */
export function parseQuery(bytes: Uint8Array): DnsQuery {
  if (bytes.byteLength < HEADER_SIZE) {
    throw new DnsFormatError(
      `a message of ${bytes.byteLength} bytes, shorter than the ${HEADER_SIZE}-byte header`,
    );
  }
  if (bytes.byteLength > MAX_MESSAGE_SIZE) {
    throw new DnsFormatError(
      `a message of ${bytes.byteLength} bytes, more than the ${MAX_MESSAGE_SIZE} moat takes`,
    );
  }
  const id = u16(bytes, 0);
  const flags = u16(bytes, 2);
  if (flags & QR) throw new DnsFormatError("a response (QR set), not a query");
  const questions = u16(bytes, 4);
  if (questions !== 1) throw new DnsFormatError(`${questions} questions: moat answers exactly one`);
  const { asked, end } = walkName(bytes, HEADER_SIZE, true);
  if (end + 4 > bytes.byteLength) {
    throw new DnsFormatError("the question runs past the end of the message (no QTYPE and QCLASS)");
  }
  const type = u16(bytes, end);
  const klass = u16(bytes, end + 2);
  let at = end + 4;
  const sections: Array<[string, number]> = [
    ["answer", u16(bytes, 6)],
    ["authority", u16(bytes, 8)],
    ["additional", u16(bytes, 10)],
  ];
  // Each record takes at least 11 bytes, so hostile counts end this at the end of the message.
  for (const [section, count] of sections) {
    for (let i = 0; i < count; i++) {
      if (at >= bytes.byteLength) {
        throw new DnsFormatError(`record ${i + 1} of the ${section} section is missing: the message ended`);
      }
      const nameEnd = walkName(bytes, at, false).end;
      if (nameEnd + 10 > bytes.byteLength) {
        throw new DnsFormatError(
          `record ${i + 1} of the ${section} section runs past the end of the message`,
        );
      }
      const rdEnd = nameEnd + 10 + u16(bytes, nameEnd + 8);
      if (rdEnd > bytes.byteLength) {
        throw new DnsFormatError(`the data of record ${i + 1} of the ${section} section runs past the end`);
      }
      at = rdEnd;
    }
  }
  if (at !== bytes.byteLength) {
    throw new DnsFormatError(`bytes after the last record: ${bytes.byteLength - at}`);
  }
  return {
    id,
    flags,
    recursionDesired: (flags & RD) !== 0,
    question: { name: lower(asked), type, class: klass },
    opcode: (flags >> 11) & 0x0f,
    askedName: asked,
  };
}

function checkUint(value: number, bits: 4 | 16, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** bits) {
    throw new RangeError(`${what} ${value} is not a ${bits}-bit number`);
  }
  return value;
}

/** A name's wire form, uncompressed (throws `RangeError` for a name `readName` would not give). */
function encodeName(name: string): number[] {
  const out: number[] = [];
  if (name !== "") {
    for (const label of name.split(".")) {
      if (label.length === 0 || label.length > MAX_LABEL_SIZE) {
        throw new RangeError(`not a host name: ${JSON.stringify(name)} (a label of ${label.length} octets)`);
      }
      out.push(label.length);
      for (let i = 0; i < label.length; i++) {
        const b = label.charCodeAt(i);
        if (!isHostNameOctet(b)) throw new RangeError(`not a host name: ${JSON.stringify(name)}`);
        out.push(b);
      }
    }
  }
  out.push(0);
  if (out.length > MAX_NAME_SIZE) throw new RangeError(`a name longer than ${MAX_NAME_SIZE} octets: ${name}`);
  return out;
}

/** The octets of a dotted-quad IPv4 address: four decimals 0 to 255, no leading zero (which some read as octal). */
function ipv4Octets(address: string): number[] {
  if (!/^(0|[1-9][0-9]{0,2})(\.(0|[1-9][0-9]{0,2})){3}$/.test(address)) {
    throw new RangeError(`not an IPv4 address: ${JSON.stringify(address)}`);
  }
  const octets = address.split(".").map(Number);
  if (octets.some((o) => o > 255)) throw new RangeError(`not an IPv4 address: ${JSON.stringify(address)}`);
  return octets;
}

/**
 * The response to `query` saying `answer`, as the module's comment describes it. Throws `RangeError` for an
 * answer moat must not send: a field of the query out of range, a name `parseQuery` would not give, A records
 * for a question that is not for type A (or ANY) in class IN, an address that is not a dotted quad, no
 * address, a TTL outside 0 to 2^31 - 1 (RFC 2181 8), an answer longer than `MAX_ANSWER_SIZE`; and anything
 * but `refused` or `notimp` to a query that is not a standard one.
 */
export function buildAnswer(query: DnsQuery, answer: DnsAnswer): Uint8Array {
  const id = checkUint(query.id, 16, "ID");
  const opcode = checkUint(query.opcode, 4, "OPCODE");
  const type = checkUint(query.question.type, 16, "QTYPE");
  const klass = checkUint(query.question.class, 16, "QCLASS");
  const asked = query.askedName ?? query.question.name;
  const question = encodeName(asked);
  if (lower(asked) !== query.question.name) {
    throw new RangeError(`the name asked, ${asked}, is not the question's name, ${query.question.name}`);
  }
  const made = answer.kind === "a" || answer.kind === "empty" || answer.kind === "nxdomain";
  if (made && opcode !== OPCODE_QUERY) {
    throw new RangeError(`a ${answer.kind} answer to a query of OPCODE ${opcode}: only notimp or refused`);
  }
  const rcode = answer.kind === "nxdomain"
    ? RCODE_NXDOMAIN
    : answer.kind === "refused"
    ? RCODE_REFUSED
    : answer.kind === "notimp"
    ? RCODE_NOTIMP
    : RCODE_NOERROR;
  const records: number[][] = [];
  if (answer.kind === "a") {
    if ((type !== TYPE_A && type !== TYPE_ANY) || klass !== CLASS_IN) {
      throw new RangeError(`A records for a question of type ${type} and class ${klass}`);
    }
    if (answer.addresses.length === 0) throw new RangeError("an A answer without an address (use empty)");
    const ttl = answer.ttl;
    if (!Number.isInteger(ttl) || ttl < 0 || ttl > 0x7fffffff) throw new RangeError(`not a TTL: ${ttl}`);
    for (const address of answer.addresses) {
      records.push([
        0xc0,
        HEADER_SIZE, // the name: a pointer to the question's
        0,
        TYPE_A,
        0,
        CLASS_IN,
        (ttl >>> 24) & 0xff,
        (ttl >>> 16) & 0xff,
        (ttl >>> 8) & 0xff,
        ttl & 0xff,
        0,
        4,
        ...ipv4Octets(address),
      ]);
    }
  }
  const size = HEADER_SIZE + question.length + 4 + records.reduce((n, r) => n + r.length, 0);
  if (size > MAX_ANSWER_SIZE) {
    throw new RangeError(
      `an answer of ${size} bytes, more than ${MAX_ANSWER_SIZE} (${records.length} records)`,
    );
  }
  const flags = QR | (opcode << 11) | (made ? AA : 0) | (query.recursionDesired ? RD : 0) | rcode;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint16(0, id);
  view.setUint16(2, flags);
  view.setUint16(4, 1);
  view.setUint16(6, records.length);
  out.set(question, HEADER_SIZE);
  let at = HEADER_SIZE + question.length;
  view.setUint16(at, type);
  view.setUint16(at + 2, klass);
  at += 4;
  for (const record of records) {
    out.set(record, at);
    at += record.length;
  }
  return out;
}

/**
 * A FORMERR response to bytes `parseQuery` refused: the header alone, with their ID, OPCODE and RD, no
 * question. `undefined` when there is no header to answer (fewer than 12 bytes), or when the bytes are a
 * response (QR set): moat never answers a response, so that two servers cannot answer each other forever.
 */
export function formErrorFor(bytes: Uint8Array): Uint8Array | undefined {
  if (bytes.byteLength < HEADER_SIZE) return undefined;
  const flags = u16(bytes, 2);
  if (flags & QR) return undefined;
  const out = new Uint8Array(HEADER_SIZE);
  out[0] = bytes[0]!;
  out[1] = bytes[1]!;
  new DataView(out.buffer).setUint16(2, QR | (flags & 0x7800) | (flags & RD) | RCODE_FORMERR);
  return out;
}

/** A message with the 2-byte big-endian length before it, as DNS over TCP sends it (RFC 1035 4.2.2). */
export function frameTcp(message: Uint8Array): Uint8Array {
  if (message.byteLength > 0xffff) {
    throw new RangeError(`a message of ${message.byteLength} bytes cannot be framed`);
  }
  const out = new Uint8Array(2 + message.byteLength);
  out[0] = message.byteLength >> 8;
  out[1] = message.byteLength & 0xff;
  out.set(message, 2);
  return out;
}

/**
 * The first framed message at the start of `bytes` (a copy) and the bytes its frame takes, or `undefined`
 * when more bytes are needed. Throws `DnsFormatError` when the length says more than `MAX_MESSAGE_SIZE`, before
 * its bytes come: moat reads queries, and a bigger one is not one it takes. A frame of length 0 gives an
 * empty message (which `parseQuery` refuses).
 */
export function unframeTcp(bytes: Uint8Array): { message: Uint8Array; size: number } | undefined {
  if (bytes.byteLength < 2) return undefined;
  const length = u16(bytes, 0);
  if (length > MAX_MESSAGE_SIZE) {
    throw new DnsFormatError(`a frame of ${length} bytes, more than the ${MAX_MESSAGE_SIZE} moat takes`);
  }
  if (bytes.byteLength < 2 + length) return undefined;
  return { message: bytes.slice(2, 2 + length), size: 2 + length };
}
