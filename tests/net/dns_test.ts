/** DNS queries read and answers written: real query bytes made by hand, every refusal, round trips (tables). */
import assert from "node:assert/strict";
import {
  buildAnswer,
  type DnsAnswer,
  DnsFormatError,
  type DnsQuery,
  formErrorFor,
  frameTcp,
  MAX_MESSAGE_SIZE,
  parseQuery,
  readName,
  unframeTcp,
} from "../../lib/net/dns.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const ascii = (s: string) => Array.from(s, (c) => c.charCodeAt(0));
const u16 = (n: number) => [n >> 8, n & 0xff];
const bytes = (...parts: number[][]) => new Uint8Array(parts.flat());

/** A header: ID, flags, then the four counts. */
function header(id: number, flags: number, qd: number, an = 0, ns = 0, ar = 0): number[] {
  return [...u16(id), ...u16(flags), ...u16(qd), ...u16(an), ...u16(ns), ...u16(ar)];
}

/** A name's labels, uncompressed, with the root's empty label. */
function name(...labels: string[]): number[] {
  return [...labels.flatMap((l) => [l.length, ...ascii(l)]), 0];
}

/** An EDNS0 OPT record as `dig` 9.18 sends it: 1232 bytes of UDP payload, DO clear, a client cookie. */
const digOpt = [
  0, // the root
  ...u16(41), // OPT
  ...u16(1232), // UDP payload size
  0,
  0,
  0,
  0, // extended RCODE, version 0, flags
  ...u16(12), // RDLENGTH
  ...u16(10), // COOKIE
  ...u16(8),
  0x5a,
  0x31,
  0x0e,
  0x77,
  0xc2,
  0x9d,
  0x41,
  0x08,
];

/** `dig Example.COM`: RD and AD set, the question, the OPT record. */
const digQuery = bytes(header(0x1234, 0x0120, 1, 0, 0, 1), name("Example", "COM"), u16(1), u16(1), digOpt);

/** A stub resolver's AAAA question (glibc sends no OPT record): RD set. */
const aaaaQuery = bytes(header(0xbeef, 0x0100, 1), name("example", "com"), u16(28), u16(1));

/**
 * A NOTIFY (RFC 1996, OPCODE 4, AA set) with the zone's SOA in its answer section, compressed as servers send
 * it: the record's name and the SOA's two names point back at the question's name, at offset 12. (A pointer
 * in the question's own name cannot be valid: the question is the first name, and nothing before it but the
 * header. Those are refused below; `readName` is shown following pointers further down.)
 */
const notify = bytes(
  header(0x0001, 0x2400, 1, 1),
  name("example", "com"),
  u16(6), // SOA
  u16(1),
  [0xc0, 12], // the record's name: the question's
  u16(6),
  u16(1),
  [0, 0, 0x0e, 0x10], // TTL
  u16(39),
  [3, ...ascii("ns1"), 0xc0, 12], // MNAME ns1.example.com
  [10, ...ascii("hostmaster"), 0xc0, 12], // RNAME
  [0, 0, 0, 1, 0, 0, 0x1c, 0x20, 0, 0, 0x0e, 0x10, 0, 0x12, 0x75, 0, 0, 0, 0x0e, 0x10],
);

const label63 = "a".repeat(63);

/** A query for `labels`, type A, no OPT. */
function queryFor(...labels: string[]): Uint8Array {
  return bytes(header(7, 0x0100, 1), name(...labels), u16(1), u16(1));
}

/**
 * A query whose additional section holds a record of a private type whose data is a ladder of `rungs`
 * pointers, each to the one before it and the first to the question's name, then a record whose name points
 * at the top rung: that name takes `rungs + 1` pointers to read.
 */
function pointerLadder(rungs: number): Uint8Array {
  const question = [...name("example", "com"), ...u16(1), ...u16(1)];
  const ladderAt = 12 + question.length + 11;
  const ladder = Array.from(
    { length: rungs },
    (_, i) => i === 0 ? [0xc0, 12] : [0xc0, ladderAt + 2 * (i - 1)],
  )
    .flat();
  return bytes(
    header(9, 0x0100, 1, 0, 0, 2),
    question,
    [0, ...u16(65280), ...u16(1), 0, 0, 0, 0, ...u16(ladder.length), ...ladder],
    [0xc0, ladderAt + 2 * (rungs - 1), ...u16(1), ...u16(1), 0, 0, 0, 0, ...u16(0)],
  );
}

Deno.test("parseQuery reads real queries", () => {
  const cases: Array<[string, Uint8Array, DnsQuery]> = [
    [
      "dig Example.COM (A, RD and AD, an EDNS0 OPT record with a cookie): lower case, case kept for the answer",
      digQuery,
      {
        id: 0x1234,
        flags: 0x0120,
        recursionDesired: true,
        question: { name: "example.com", type: 1, class: 1 },
        opcode: 0,
        askedName: "Example.COM",
      },
    ],
    [
      "AAAA from a stub resolver",
      aaaaQuery,
      {
        id: 0xbeef,
        flags: 0x0100,
        recursionDesired: true,
        question: { name: "example.com", type: 28, class: 1 },
        opcode: 0,
        askedName: "example.com",
      },
    ],
    [
      "NOTIFY, its answer section compressed against the question",
      notify,
      {
        id: 1,
        flags: 0x2400,
        recursionDesired: false,
        question: { name: "example.com", type: 6, class: 1 },
        opcode: 4,
        askedName: "example.com",
      },
    ],
    [
      "the root, RD clear",
      bytes(header(0, 0, 1), [0], u16(2), u16(1)),
      {
        id: 0,
        flags: 0,
        recursionDesired: false,
        question: { name: "", type: 2, class: 1 },
        opcode: 0,
        askedName: "",
      },
    ],
  ];
  for (const [what, query, expected] of cases) assert.deepEqual(parseQuery(query), expected, what);
  // Every octet a label may hold, and the limits themselves: a label of 63 octets, a name of 255.
  const odd = parseQuery(queryFor("_Srv-1", "*", "Z09az"));
  assert.equal(odd.question.name, "_srv-1.*.z09az");
  assert.equal(odd.askedName, "_Srv-1.*.Z09az");
  const longest = [label63, label63, label63, "b".repeat(61)]; // 3 * 64 + 62 + 1 = 255 octets
  assert.equal(parseQuery(queryFor(...longest)).question.name, longest.join("."));
  // A chain of exactly MAX_POINTER_JUMPS (32) pointers in a record after the question is read.
  assert.equal(parseQuery(pointerLadder(31)).id, 9);
});

Deno.test("readName follows compression pointers back, in lower case, and says where the name ends", () => {
  const message = bytes(
    header(0, 0, 0),
    name("Example", "com"), // at 12
    [3, ...ascii("WWW"), 0xc0, 12], // at 25: www + pointer to 12
    [0xc0, 25], // at 31: only a pointer, to a name that ends in a pointer
    [2, ...ascii("m0"), 0xc0, 31], // at 33
  );
  const cases: Array<[number, string, number]> = [
    [12, "example.com", 25],
    [25, "www.example.com", 31],
    [31, "www.example.com", 33],
    [33, "m0.www.example.com", 38],
  ];
  for (const [at, expected, end] of cases) {
    assert.deepEqual(readName(message, at), { name: expected, end }, `${at}`);
  }
});

Deno.test("parseQuery refuses everything else, and formErrorFor answers what has a header", () => {
  const question = [...name("example", "com"), ...u16(1), ...u16(1)];
  const tooBig = bytes(
    header(1, 0x0100, 1, 0, 0, 1),
    question,
    [0, ...u16(41), ...u16(4096), 0, 0, 0, 0, ...u16(4100 - 11 - 29)],
    new Array(4100 - 11 - 29).fill(0),
  );
  assert.equal(tooBig.byteLength, 4100);
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ["nothing", bytes(), /0 bytes, shorter than the 12-byte header/],
    ["a truncated header", digQuery.slice(0, 11), /11 bytes, shorter than the 12-byte header/],
    ["more than MAX_MESSAGE_SIZE bytes", tooBig, /4100 bytes, more than the 4096/],
    ["a response (QR set)", bytes(header(1, 0x8180, 1), question), /a response/],
    ["two questions", bytes(header(1, 0x0100, 2), question, question), /2 questions/],
    ["no question", bytes(header(1, 0x0100, 0)), /0 questions/],
    ["a label of 64 octets", queryFor("a".repeat(64), "com"), /label of length 0x40 at 12.*at most 63/],
    ["a label type 0x80", bytes(header(1, 0, 1), [0x80, 0], u16(1), u16(1)), /length 0x80/],
    ["a name of 256 octets", queryFor(label63, label63, label63, "b".repeat(62)), /longer than 255 octets/],
    ["a name of far more", queryFor(label63, label63, label63, label63, label63), /longer than 255 octets/],
    [
      "a pointer loop",
      bytes(header(1, 0, 1), [1, ...ascii("a"), 0xc0, 12], u16(1), u16(1)),
      /pointer at 14 points back to 12: a pointer loop/,
    ],
    [
      "a pointer to itself",
      bytes(header(1, 0, 1), [0xc0, 12], u16(1), u16(1)),
      /pointer at 12 points forward, to 12/,
    ],
    [
      "a pointer forward, to a name in the additional section",
      bytes(
        header(1, 0, 1, 0, 0, 1),
        [0xc0, 18],
        u16(1),
        u16(1),
        name("x"),
        u16(1),
        u16(1),
        [0, 0, 0, 0],
        u16(0),
      ),
      /pointer at 12 points forward, to 18/,
    ],
    [
      "a pointer past the end",
      bytes(header(1, 0, 1), [1, ...ascii("a"), 0xc0, 0xff], u16(1), u16(1)),
      /pointer at 14 points to 255, past the end/,
    ],
    [
      "the largest pointer",
      bytes(header(1, 0, 1), [0xff, 0xff], u16(1), u16(1)),
      /points to 16383, past the end/,
    ],
    [
      "a pointer into the header (its ARCOUNT's zero octet would end the name)",
      bytes(header(1, 0, 1), [1, ...ascii("a"), 0xc0, 10], u16(1), u16(1)),
      /points to 10, into the header/,
    ],
    ["33 pointers in one name", pointerLadder(32), /more than 32 compression pointers/],
    ["a dot in a label", queryFor("a.b", "com"), /octet 0x2e at 14/],
    ["a space", queryFor("a b"), /octet 0x20 at 14/],
    ["a NUL in a label", queryFor("a\0"), /octet 0x00 at 14/],
    ["DEL", queryFor("a\x7f"), /octet 0x7f/],
    ["UTF-8", bytes(header(1, 0, 1), [2, 0xc3, 0xa9, 0], u16(1), u16(1)), /octet 0xc3 at 13/],
    ["a slash", queryFor("a/b"), /octet 0x2f/],
    ["a name cut short", bytes(header(1, 0, 1), [7, ...ascii("exa")]), /name at 12 runs past the end/],
    ["a name without its end", bytes(header(1, 0, 1), [3, ...ascii("com")]), /name at 12 runs past the end/],
    ["half a pointer", bytes(header(1, 0, 1), [1, ...ascii("a"), 0xc0]), /name at 12 runs past the end/],
    ["no QTYPE and QCLASS", bytes(header(1, 0, 1), name("com")), /no QTYPE and QCLASS/],
    ["half of them", bytes(header(1, 0, 1), name("com"), u16(1)), /no QTYPE and QCLASS/],
    ["a byte after the question", bytes(header(1, 0, 1), question, [0]), /bytes after the last record: 1/],
    ["a byte after the OPT record", bytes(Array.from(digQuery), [0]), /bytes after the last record: 1/],
    [
      "an OPT record counted, not there",
      bytes(header(1, 0, 1, 0, 0, 1), question),
      /record 1 of the additional section is missing/,
    ],
    [
      "65535 answers counted",
      bytes(header(1, 0, 1, 0xffff), question),
      /record 1 of the answer section is missing/,
    ],
    ["an OPT record cut short", digQuery.slice(0, 29 + 5), /record 1 of the additional section runs past/],
    ["its data cut short", digQuery.slice(0, -1), /data of record 1 of the additional section runs past/],
    [
      "a bad pointer in an authority record's name",
      bytes(header(1, 0, 1, 0, 1), question, [0xc0, 0x40], u16(1), u16(1), [0, 0, 0, 0], u16(0)),
      /pointer at 29 points to 64, past the end/,
    ],
  ];
  for (const [what, message, reason] of cases) {
    assert.throws(
      () => parseQuery(message),
      (e) => e instanceof DnsFormatError && reason.test(e.message),
      what,
    );
    const answer = formErrorFor(message);
    if (message.byteLength < 12 || (message[2]! & 0x80)) {
      assert.equal(answer, undefined, what);
    } else {
      // QR, the OPCODE and RD of the query (0x79 of its third byte), RCODE 1, no question.
      const flags = [0x80 | (message[2]! & 0x79), 0x01];
      assert.equal(hex(answer!), hex(message.slice(0, 2)) + hex(bytes(flags)) + "0".repeat(16), what);
    }
  }
});

Deno.test("formErrorFor: the header alone, its ID, OPCODE and RD echoed, RCODE 1; nothing to a response", () => {
  const cases: Array<[string, number[], string | undefined]> = [
    ["nothing", [], undefined],
    ["11 bytes", header(0xabcd, 0x0100, 1).slice(0, 11), undefined],
    ["a header, RD set", header(0xabcd, 0x0100, 1, 2, 3, 4), "abcd8101" + "0".repeat(16)],
    ["OPCODE 4, RD clear", header(0xabcd, 0x2000, 1), "abcda001" + "0".repeat(16)],
    ["AA, TC, Z, AD, CD and an RCODE are not echoed", header(0xabcd, 0x07ff, 1), "abcd8101" + "0".repeat(16)],
    ["bytes after the header do not matter", [...header(1, 0, 1), 0xff, 0xff], "00018001" + "0".repeat(16)],
    ["a response", header(0xabcd, 0x8100, 1), undefined],
    ["a FORMERR moat wrote", Array.from(formErrorFor(bytes(header(0xabcd, 0x0100, 1)))!), undefined],
  ];
  for (const [what, message, expected] of cases) {
    const answer = formErrorFor(bytes(message));
    assert.equal(answer === undefined ? undefined : hex(answer), expected, what);
  }
});

/** What a response says, read by a decoder of the tests' own (names followed through pointers). */
function decodeResponse(message: Uint8Array) {
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  let at = 0;
  const n16 = () => {
    const v = view.getUint16(at);
    at += 2;
    return v;
  };
  const nameAt = (start: number): [string, number] => {
    const labels: string[] = [];
    let p = start;
    let end = -1;
    for (let jumps = 0; jumps < 10; jumps++) {
      const len = message[p]!;
      if (len >= 0xc0) {
        if (end < 0) end = p + 2;
        p = view.getUint16(p) & 0x3fff;
        continue;
      }
      if (len === 0) return [labels.join("."), end < 0 ? p + 1 : end];
      labels.push(String.fromCharCode(...message.subarray(p + 1, p + 1 + len)));
      p += 1 + len;
    }
    throw new Error("too many pointers");
  };
  const id = n16();
  const flags = n16();
  const [qd, an, ns, ar] = [n16(), n16(), n16(), n16()];
  const questions = [];
  for (let i = 0; i < qd; i++) {
    const [n, end] = nameAt(at);
    at = end;
    questions.push({ name: n, type: n16(), class: n16() });
  }
  const answers = [];
  for (let i = 0; i < an; i++) {
    const nameBytes = hex(message.subarray(at, at + 2));
    const [n, end] = nameAt(at);
    at = end;
    const type = n16();
    const klass = n16();
    const ttl = view.getUint32(at);
    at += 4;
    const length = n16();
    const data = Array.from(message.subarray(at, at + length)).join(".");
    at += length;
    answers.push({ nameBytes, name: n, type, class: klass, ttl, data });
  }
  assert.equal(at, message.byteLength, "nothing after the last record");
  return {
    id,
    qr: flags >> 15,
    opcode: (flags >> 11) & 0xf,
    aa: (flags >> 10) & 1,
    tc: (flags >> 9) & 1,
    rd: (flags >> 8) & 1,
    ra: (flags >> 7) & 1,
    z: (flags >> 4) & 7,
    rcode: flags & 0xf,
    counts: [qd, an, ns, ar],
    questions,
    answers,
  };
}

Deno.test("buildAnswer: each kind of answer to a parsed query, decoded", () => {
  const dig = parseQuery(digQuery);
  const question = [{ name: "Example.COM", type: 1, class: 1 }];
  const common = { id: 0x1234, qr: 1, opcode: 0, tc: 0, rd: 1, ra: 0, z: 0, questions: question };
  const a = (address: string, ttl: number) => ({
    nameBytes: "c00c",
    name: "Example.COM",
    type: 1,
    class: 1,
    ttl,
    data: address,
  });
  const cases: Array<[string, DnsQuery, DnsAnswer, object]> = [
    [
      "two addresses",
      dig,
      { kind: "a", addresses: ["10.237.0.2", "255.0.0.1"], ttl: 300 },
      {
        ...common,
        aa: 1,
        rcode: 0,
        counts: [1, 2, 0, 0],
        answers: [a("10.237.0.2", 300), a("255.0.0.1", 300)],
      },
    ],
    [
      "one address, TTL 0",
      dig,
      { kind: "a", addresses: ["0.0.0.0"], ttl: 0 },
      { ...common, aa: 1, rcode: 0, counts: [1, 1, 0, 0], answers: [a("0.0.0.0", 0)] },
    ],
    [
      "the largest TTL",
      dig,
      { kind: "a", addresses: ["1.2.3.4"], ttl: 0x7fffffff },
      { ...common, aa: 1, rcode: 0, counts: [1, 1, 0, 0], answers: [a("1.2.3.4", 0x7fffffff)] },
    ],
    ["empty", dig, { kind: "empty" }, { ...common, aa: 1, rcode: 0, counts: [1, 0, 0, 0], answers: [] }],
    ["nxdomain", dig, { kind: "nxdomain" }, {
      ...common,
      aa: 1,
      rcode: 3,
      counts: [1, 0, 0, 0],
      answers: [],
    }],
    ["refused", dig, { kind: "refused" }, { ...common, aa: 0, rcode: 5, counts: [1, 0, 0, 0], answers: [] }],
    ["notimp", dig, { kind: "notimp" }, { ...common, aa: 0, rcode: 4, counts: [1, 0, 0, 0], answers: [] }],
    [
      "AAAA: empty",
      parseQuery(aaaaQuery),
      { kind: "empty" },
      {
        ...common,
        id: 0xbeef,
        aa: 1,
        rcode: 0,
        counts: [1, 0, 0, 0],
        questions: [{ name: "example.com", type: 28, class: 1 }],
        answers: [],
      },
    ],
    [
      "NOTIFY: notimp, OPCODE 4 and RD clear echoed",
      parseQuery(notify),
      { kind: "notimp" },
      {
        ...common,
        id: 1,
        opcode: 4,
        rd: 0,
        aa: 0,
        rcode: 4,
        counts: [1, 0, 0, 0],
        questions: [{ name: "example.com", type: 6, class: 1 }],
        answers: [],
      },
    ],
    [
      "ANY: the addresses",
      { ...dig, question: { ...dig.question, type: 255 } },
      { kind: "a", addresses: ["192.168.1.1"], ttl: 5 },
      {
        ...common,
        aa: 1,
        rcode: 0,
        counts: [1, 1, 0, 0],
        questions: [{ name: "Example.COM", type: 255, class: 1 }],
        answers: [a("192.168.1.1", 5)],
      },
    ],
    [
      "a query made by hand, without askedName: its name",
      {
        id: 65535,
        flags: 0,
        recursionDesired: false,
        opcode: 0,
        question: { name: "a-b.c", type: 1, class: 1 },
      },
      { kind: "nxdomain" },
      {
        ...common,
        id: 65535,
        rd: 0,
        aa: 1,
        rcode: 3,
        counts: [1, 0, 0, 0],
        questions: [{ name: "a-b.c", type: 1, class: 1 }],
        answers: [],
      },
    ],
  ];
  for (const [what, query, answer, expected] of cases) {
    const response = buildAnswer(query, answer);
    assert.deepEqual(decodeResponse(response), expected, what);
    // The question as asked, byte for byte, right after the header (uncompressed, the query's case).
    if (query === dig) assert.equal(hex(response.subarray(12, 29)), hex(digQuery.subarray(12, 29)), what);
  }
});

Deno.test("an A answer, byte for byte", () => {
  const response = buildAnswer(parseQuery(queryFor("example", "com")), {
    kind: "a",
    addresses: ["93.184.215.14"],
    ttl: 60,
  });
  assert.equal(
    hex(response),
    "0007" + "8500" + "0001" + "0001" + "0000" + "0000" + // AA and RD set, one question, one answer
      "076578616d706c6503636f6d00" + "0001" + "0001" + // example.com A IN
      "c00c" + "0001" + "0001" + "0000003c" + "0004" + "5db8d70e", // a pointer to 12, A IN, 60 s, 93.184.215.14
  );
});

Deno.test("buildAnswer refuses answers moat must not send", () => {
  const dig = parseQuery(digQuery);
  const thirty = Array.from({ length: 30 }, (_, i) => `10.0.0.${i}`);
  // 12 + 17 + 30 * 16 = 509 bytes: the most addresses an answer for example.com holds.
  assert.equal(buildAnswer(dig, { kind: "a", addresses: thirty, ttl: 1 }).byteLength, 509);
  const a = (addresses: string[], ttl = 60): DnsAnswer => ({ kind: "a", addresses, ttl });
  const cases: Array<[string, DnsQuery, DnsAnswer, RegExp]> = [
    ...[
      "",
      "1.2.3",
      "1.2.3.4.5",
      "256.0.0.1",
      "1.2.3.999",
      "01.2.3.4",
      " 1.2.3.4",
      "1.2.3.4 ",
      "a.b.c.d",
      "1..2.3",
      "-1.2.3.4",
      "1e2.0.0.1",
      "::1",
    ]
      .map((
        s,
      ): [string, DnsQuery, DnsAnswer, RegExp] => [
        `address ${JSON.stringify(s)}`,
        dig,
        a(["1.2.3.4", s]),
        /not an IPv4 address/,
      ]),
    ...[-1, 1.5, 2 ** 31, NaN, Infinity].map((
      t,
    ): [string, DnsQuery, DnsAnswer, RegExp] => [`TTL ${t}`, dig, a(["1.2.3.4"], t), /not a TTL/]),
    ["no address", dig, a([]), /without an address/],
    ["31 addresses (525 bytes)", dig, a([...thirty, "10.0.1.0"]), /525 bytes, more than 512/],
    ["addresses for AAAA", parseQuery(aaaaQuery), a(["1.2.3.4"]), /type 28/],
    ["addresses in class CH", { ...dig, question: { ...dig.question, class: 3 } }, a(["1.2.3.4"]), /class 3/],
    [
      "addresses to NOTIFY",
      { ...parseQuery(notify), question: { name: "example.com", type: 1, class: 1 } },
      a(["1.2.3.4"]),
      /OPCODE 4/,
    ],
    ["empty to NOTIFY", parseQuery(notify), { kind: "empty" }, /OPCODE 4/],
    ["nxdomain to NOTIFY", parseQuery(notify), { kind: "nxdomain" }, /OPCODE 4/],
    ["an ID of 17 bits", { ...dig, id: 65536 }, { kind: "refused" }, /ID 65536/],
    ["an OPCODE of 5 bits", { ...dig, opcode: 16 }, { kind: "notimp" }, /OPCODE 16/],
    [
      "a QTYPE of 17 bits",
      { ...dig, question: { ...dig.question, type: 65536 } },
      { kind: "empty" },
      /QTYPE/,
    ],
    [
      "another name asked",
      { ...dig, askedName: "Example.ORG" },
      { kind: "empty" },
      /not the question's name/,
    ],
    [
      "a name with a trailing dot",
      { ...dig, askedName: undefined, question: { ...dig.question, name: "example.com." } },
      { kind: "empty" },
      /not a host name/,
    ],
    ["an empty label", { ...dig, askedName: "a..b", question: { ...dig.question, name: "a..b" } }, {
      kind: "empty",
    }, /not a host name/],
    [
      "a space",
      { ...dig, askedName: "a b", question: { ...dig.question, name: "a b" } },
      { kind: "empty" },
      /not a host name/,
    ],
    [
      "a label of 64",
      { ...dig, askedName: "a".repeat(64), question: { ...dig.question, name: "a".repeat(64) } },
      { kind: "empty" },
      /a label of 64/,
    ],
    [
      "a name of 256 octets",
      {
        ...dig,
        askedName: undefined,
        question: { ...dig.question, name: [label63, label63, label63, "b".repeat(62)].join(".") },
      },
      { kind: "empty" },
      /longer than 255/,
    ],
  ];
  for (const [what, query, answer, reason] of cases) {
    assert.throws(
      () => buildAnswer(query, answer),
      (e) => e instanceof RangeError && reason.test(e.message),
      what,
    );
  }
});

Deno.test("DNS over TCP: a 2-byte length, then the message", () => {
  const framed = frameTcp(digQuery);
  assert.equal(hex(framed), hex(bytes(u16(digQuery.byteLength), Array.from(digQuery))));
  for (let n = 0; n < framed.byteLength; n++) {
    assert.equal(unframeTcp(framed.subarray(0, n)), undefined, `${n} bytes`);
  }
  const two = bytes(Array.from(framed), Array.from(frameTcp(aaaaQuery)), [0]);
  const first = unframeTcp(two)!;
  assert.deepEqual(first, { message: digQuery, size: 2 + digQuery.byteLength });
  const second = unframeTcp(two.subarray(first.size))!;
  assert.deepEqual(second, { message: aaaaQuery, size: 2 + aaaaQuery.byteLength });
  assert.equal(unframeTcp(two.subarray(first.size + second.size)), undefined);
  // The message is a copy: the caller may reuse its buffer.
  two[2] = 0;
  assert.equal(first.message[0], 0x12);
  assert.deepEqual(unframeTcp(bytes([0, 0])), { message: new Uint8Array(), size: 2 });
  // The largest query is framed and read; a length above it is refused before its bytes come.
  const largest = new Uint8Array(MAX_MESSAGE_SIZE).fill(7);
  assert.equal(unframeTcp(frameTcp(largest))!.message.byteLength, MAX_MESSAGE_SIZE);
  assert.throws(
    () => unframeTcp(bytes(u16(MAX_MESSAGE_SIZE + 1))),
    (e) => e instanceof DnsFormatError && /4097 bytes/.test(e.message),
  );
  assert.throws(() => unframeTcp(bytes([0xff, 0xff])), DnsFormatError);
  assert.equal(frameTcp(new Uint8Array(0xffff)).byteLength, 0x10001);
  assert.throws(() => frameTcp(new Uint8Array(0x10000)), RangeError);
});
