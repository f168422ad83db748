import assert from "node:assert/strict";
import { decodeConfig, firstInvalidUtf8, MAX_CONFIG_BYTES } from "../../lib/config/decode.ts";
import { ConfigError } from "../../lib/errors.ts";

const utf8 = (s: string) => new TextEncoder().encode(s);
const utf16 = (s: string, le: boolean, bom: boolean) =>
  new Uint8Array(
    [...(bom ? [0xfeff] : []), ...Array.from(s, (c) => c.charCodeAt(0))]
      .flatMap((u) => le ? [u & 0xff, u >> 8] : [u >> 8, u & 0xff]),
  );
const utf32 = (s: string, le: boolean, bom: boolean) =>
  new Uint8Array([...(bom ? [0xfeff] : []), ...Array.from(s, (c) => c.codePointAt(0)!)].flatMap((p) => {
    const b = [p >>> 24, (p >>> 16) & 0xff, (p >>> 8) & 0xff, p & 0xff];
    return le ? b.reverse() : b;
  }));

Deno.test("decode: UTF-8 text is read as is, a UTF-8 byte-order mark dropped", () => {
  assert.equal(decodeConfig(utf8("image: café 😀\n"), "/w/moat.yaml"), "image: café 😀\n");
  assert.equal(decodeConfig(new Uint8Array([0xef, 0xbb, 0xbf, ...utf8("a: b\n")]), "/w/moat.yaml"), "a: b\n");
  assert.equal(decodeConfig(new Uint8Array(), "/w/moat.yaml"), "");
});

// [label, bytes, line, column, message pattern, hint pattern]
const bad: [string, Uint8Array, number, number, RegExp, RegExp][] = [
  [
    "UTF-16LE with a byte-order mark",
    utf16("image: x\n", true, true),
    1,
    1,
    /^\/w\/moat\.yaml:1:1: the file is UTF-16LE text \(it starts with a byte-order mark\), not UTF-8$/,
    /^moat reads config files as UTF-8\. Convert it: {2}iconv -f UTF-16 -t UTF-8 \/w\/moat\.yaml > \/w\/moat\.yaml\.utf8 && mv \/w\/moat\.yaml\.utf8 \/w\/moat\.yaml$/,
  ],
  ["UTF-16BE with a byte-order mark", utf16("image: x\n", false, true), 1, 1, /UTF-16BE text/, /-f UTF-16 /],
  [
    "UTF-16LE without one",
    utf16("image: x\n", true, false),
    1,
    1,
    /UTF-16LE text, not UTF-8$/,
    /-f UTF-16LE /,
  ],
  [
    "UTF-16BE without one",
    utf16("image: x\n", false, false),
    1,
    1,
    /UTF-16BE text, not UTF-8$/,
    /-f UTF-16BE /,
  ],
  [
    "UTF-32LE with a byte-order mark",
    utf32("image: x\n", true, true),
    1,
    1,
    /UTF-32LE text \(it starts/,
    /-f UTF-32 /,
  ],
  [
    "UTF-32BE with a byte-order mark",
    utf32("image: x\n", false, true),
    1,
    1,
    /UTF-32BE text \(it starts/,
    /-f UTF-32 /,
  ],
  [
    "UTF-32LE without one",
    utf32("image: x\n", true, false),
    1,
    1,
    /UTF-32LE text, not UTF-8$/,
    /-f UTF-32LE /,
  ],
  [
    "UTF-32BE without one",
    utf32("image: x\n", false, false),
    1,
    1,
    /UTF-32BE text, not UTF-8$/,
    /-f UTF-32BE /,
  ],
  [
    "a NUL byte",
    utf8("name: x\nimage: a\0b\n"),
    2,
    9,
    /:2:9: the file holds a NUL byte, which YAML text cannot contain$/,
    /Remove that byte/,
  ],
  [
    "Latin-1",
    new Uint8Array([...utf8("name: x\nimage: caf"), 0xe9, 0x0a]),
    2,
    11,
    /:2:11: the file is not UTF-8 text: byte 0xe9 here does not belong to a UTF-8 character$/,
    /iconv -f LATIN1 -t UTF-8/,
  ],
  [
    "a UTF-8 sequence cut short at the end",
    new Uint8Array([...utf8("a: é"), 0xf0, 0x9f]),
    1,
    5,
    /byte 0xf0/,
    /iconv/,
  ],
  ["an encoded surrogate", new Uint8Array([...utf8("a: "), 0xed, 0xa0, 0x80]), 1, 4, /byte 0xed/, /iconv/],
  ["an overlong encoding", new Uint8Array([...utf8("a: "), 0xc0, 0xaf]), 1, 4, /byte 0xc0/, /iconv/],
  [
    "more than 1 MiB",
    utf8(`#${"x".repeat(1022)}\n`.repeat(1024) + "x"),
    1025,
    1,
    /:1025:1: the file is larger than 1 MiB \(1048576 bytes\), the most moat reads; the limit is passed here$/,
    /ls -l \/w\/moat\.yaml/,
  ],
];
for (const [label, bytes, line, column, message, hint] of bad) {
  Deno.test(`decode error: ${label}`, () => {
    assert.throws(() => decodeConfig(bytes, "/w/moat.yaml"), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.deepEqual([err.file, err.line, err.column, err.path, err.exitCode], [
        "/w/moat.yaml",
        line,
        column,
        "",
        2,
      ]);
      assert.match(err.message, message);
      assert.match(err.hint ?? "", hint);
      return true;
    });
  });
}

Deno.test("decode: exactly 1 MiB is read", () => {
  const text = `#${"x".repeat(1022)}\n`.repeat(1024);
  assert.equal(utf8(text).length, MAX_CONFIG_BYTES);
  assert.equal(decodeConfig(utf8(text), "/w/moat.yaml"), text);
});

Deno.test("firstInvalidUtf8 agrees with a fatal TextDecoder for every lead byte and each boundary after it", () => {
  const fatal = new TextDecoder("utf-8", { fatal: true });
  const valid = (b: Uint8Array) => {
    try {
      fatal.decode(b);
      return true;
    } catch {
      return false;
    }
  };
  const boundaries = [0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff];
  for (let lead = 0; lead < 256; lead++) {
    for (const b of boundaries) {
      for (const rest of [[], [0x80], [0x80, 0x80], [0x41]]) {
        const bytes = new Uint8Array([lead, b, ...rest]);
        assert.equal(
          firstInvalidUtf8(bytes) === -1,
          valid(bytes),
          [...bytes].map((x) => x.toString(16)).join(" "),
        );
      }
    }
  }
});
