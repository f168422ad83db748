/**
 * A config file's bytes → its text, or a `ConfigError` at the first byte that cannot be config text: past the
 * size limit, a UTF-16 or UTF-32 file, a NUL byte, or bytes that are not UTF-8. Pure and light (no YAML
 * parser), so the loader can check a file before the parser is imported.
 */
import { ConfigError } from "../errors.ts";

/** The largest config file moat reads, in bytes (1 MiB); the loader reads at most one byte more. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** Decode a config file read whole (or its first `MAX_CONFIG_BYTES + 1` bytes). `file` is shown in errors. */
export function decodeConfig(bytes: Uint8Array, file: string): string {
  const fail = (offset: number, problem: string, hint: string): never => {
    const { line, col } = bytePosition(bytes, offset);
    throw new ConfigError(file, line, col, "", problem, hint);
  };
  if (bytes.length > MAX_CONFIG_BYTES) {
    fail(
      MAX_CONFIG_BYTES,
      `the file is larger than 1 MiB (${MAX_CONFIG_BYTES} bytes), the most moat reads; the limit is passed here`,
      `A config holds settings, not data; check its size:  ls -l ${file}`,
    );
  }
  const foreign = foreignEncoding(bytes);
  if (foreign) {
    const to = `${file}.utf8`;
    fail(
      0,
      `the file is ${foreign.name} text${
        foreign.bom ? " (it starts with a byte-order mark)" : ""
      }, not UTF-8`,
      `moat reads config files as UTF-8. Convert it:  iconv -f ${foreign.iconv} -t UTF-8 ${file} > ${to} && mv ${to} ${file}`,
    );
  }
  const nul = bytes.indexOf(0);
  if (nul !== -1) {
    fail(
      nul,
      "the file holds a NUL byte, which YAML text cannot contain",
      "Remove that byte, or save the config again as plain UTF-8 text",
    );
  }
  const bad = firstInvalidUtf8(bytes);
  if (bad !== -1) {
    const to = `${file}.utf8`;
    fail(
      bad,
      `the file is not UTF-8 text: byte 0x${
        bytes[bad]!.toString(16).padStart(2, "0")
      } here does not belong to a UTF-8 character`,
      `Save it as UTF-8; from Latin-1, for example:  iconv -f LATIN1 -t UTF-8 ${file} > ${to} && mv ${to} ${file}`,
    );
  }
  // Valid UTF-8 by now; a UTF-8 byte-order mark is dropped here (the YAML parser would skip it too).
  return new TextDecoder().decode(bytes);
}

/** Line and column (from 1; the column counts UTF-16 code units, as the YAML parser's positions do). */
function bytePosition(bytes: Uint8Array, offset: number): { line: number; col: number } {
  const end = Math.min(offset, bytes.length);
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < end; i++) {
    if (bytes[i] === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  const col = new TextDecoder().decode(bytes.subarray(lineStart, end)).length + 1;
  return { line, col };
}

interface Foreign {
  /** The encoding's name in messages. */
  name: string;
  /** Its name for `iconv -f`: with a byte-order mark, iconv reads the byte order from it (and drops it). */
  iconv: string;
  bom: boolean;
}

/**
 * UTF-16 or UTF-32 by its byte-order mark, or without one by the NUL bytes that an ASCII first character has
 * in those encodings (a UTF-8 config has no NUL bytes at all).
 */
function foreignEncoding(b: Uint8Array): Foreign | undefined {
  const [b0, b1, b2, b3] = [b[0], b[1], b[2], b[3]];
  const bom = (name: string, iconv: string) => ({ name, iconv, bom: true });
  const bare = (name: string) => ({ name, iconv: name, bom: false });
  if (b0 === 0x00 && b1 === 0x00 && b2 === 0xfe && b3 === 0xff) return bom("UTF-32BE", "UTF-32");
  if (b0 === 0xff && b1 === 0xfe && b2 === 0x00 && b3 === 0x00) return bom("UTF-32LE", "UTF-32");
  if (b0 === 0xfe && b1 === 0xff) return bom("UTF-16BE", "UTF-16");
  if (b0 === 0xff && b1 === 0xfe) return bom("UTF-16LE", "UTF-16");
  if (b.length >= 4 && b0 !== 0x00 && b1 === 0x00 && b2 === 0x00 && b3 === 0x00) return bare("UTF-32LE");
  if (b.length >= 4 && b0 === 0x00 && b1 === 0x00 && b2 === 0x00 && b3 !== 0x00) return bare("UTF-32BE");
  if (b.length >= 2 && b0 !== 0x00 && b1 === 0x00) return bare("UTF-16LE");
  if (b.length >= 2 && b0 === 0x00 && b1 !== 0x00) return bare("UTF-16BE");
  return undefined;
}

/**
 * Offset of the first byte that is not part of a well-formed UTF-8 sequence (the Unicode standard's table
 * 3-7: no overlong forms, no surrogates, nothing above U+10FFFF), or -1.
 */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let more: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) more = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      more = 2;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      more = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= more; k++) {
      const d = b[i + k];
      if (d === undefined || d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) return i;
    }
    i += more + 1;
  }
  return -1;
}
