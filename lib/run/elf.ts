/**
 * The soname of a shared library (its `DT_SONAME`), read from its ELF file: the name the dynamic loader looks
 * for. A run's relay (lib/run/relay_plan.ts) binds the libraries moat runs with into its container under
 * these names: on some systems a library's file is not named by its soname (Fedora's
 * `libgcc_s-13-20230614.so.1` for `libgcc_s.so.1`, reached through a symbolic link), and the loader would
 * not find it under its file name. Only 64-bit little-endian ELF (what Deno runs on: x86-64 and AArch64).
 *
 *   ELF header     e_ident "\x7fELF", class 2 (64-bit), data 1 (little-endian); e_phoff at 32 (8 bytes),
 *                  e_phentsize at 54 and e_phnum at 56 (2 bytes each)
 *   program header p_type at 0 (4), p_offset at 8, p_vaddr at 16, p_filesz at 32 (8 each): PT_LOAD 1,
 *                  PT_DYNAMIC 2
 *   dynamic entry  d_tag, d_val (8 bytes each): DT_NULL 0, DT_STRTAB 5 (an address), DT_SONAME 14 (an
 *                  offset in the string table)
 */

/** Reads `length` bytes of the file at `offset` (fewer at its end). */
export type ReadAt = (offset: number, length: number) => Uint8Array;

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const DT_NULL = 0n;
const DT_STRTAB = 5n;
const DT_SONAME = 14n;
/** Most program headers read, and most dynamic entries: far more than any library has. */
const MAX_HEADERS = 256;
const MAX_DYNAMIC = 4096;
/** Longest soname read. */
const MAX_NAME = 255;

/** The library's soname; `undefined` when the file is not a 64-bit little-endian ELF that has one. Pure. */
export function elfSoname(read: ReadAt): string | undefined {
  const head = read(0, 64);
  if (head.byteLength < 64 || head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c || head[3] !== 0x46) {
    return undefined;
  }
  if (head[4] !== 2 || head[5] !== 1) return undefined;
  const h = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const phoff = Number(h.getBigUint64(32, true));
  const phentsize = h.getUint16(54, true);
  const phnum = h.getUint16(56, true);
  if (phentsize < 56 || phnum === 0 || phnum > MAX_HEADERS) return undefined;
  const table = read(phoff, phentsize * phnum);
  if (table.byteLength < phentsize * phnum) return undefined;
  const t = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const loads: Array<{ offset: number; vaddr: number; size: number }> = [];
  let dynamic: { offset: number; size: number } | undefined;
  for (let i = 0; i < phnum; i++) {
    const at = i * phentsize;
    const type = t.getUint32(at, true);
    const offset = Number(t.getBigUint64(at + 8, true));
    const vaddr = Number(t.getBigUint64(at + 16, true));
    const size = Number(t.getBigUint64(at + 32, true));
    if (type === PT_LOAD) loads.push({ offset, vaddr, size });
    if (type === PT_DYNAMIC) dynamic = { offset, size };
  }
  if (!dynamic) return undefined;
  const entries = Math.min(Math.floor(dynamic.size / 16), MAX_DYNAMIC);
  const dyn = read(dynamic.offset, entries * 16);
  const d = new DataView(dyn.buffer, dyn.byteOffset, dyn.byteLength);
  let strtab: number | undefined;
  let soname: number | undefined;
  for (let i = 0; i + 16 <= dyn.byteLength; i += 16) {
    const tag = d.getBigUint64(i, true);
    if (tag === DT_NULL) break;
    if (tag === DT_STRTAB) strtab = Number(d.getBigUint64(i + 8, true));
    if (tag === DT_SONAME) soname = Number(d.getBigUint64(i + 8, true));
  }
  if (strtab === undefined || soname === undefined) return undefined;
  // The string table is named by its address when loaded: its place in the file is in the segment holding it.
  const load = loads.find((l) => strtab! >= l.vaddr && strtab! < l.vaddr + l.size);
  if (!load) return undefined;
  const bytes = read(load.offset + (strtab - load.vaddr) + soname, MAX_NAME + 1);
  const end = bytes.indexOf(0);
  if (end <= 0) return undefined;
  const name = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, end));
  return /^[A-Za-z0-9._+-]+$/.test(name) ? name : undefined;
}

/** The soname of the library at `path` (the edge behind `elfSoname`); `undefined` when it has none. */
export function sonameOf(path: string): string | undefined {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path);
  } catch {
    return undefined;
  }
  try {
    return elfSoname((offset, length) => {
      const buf = new Uint8Array(length);
      file.seekSync(offset, Deno.SeekMode.Start);
      let got = 0;
      while (got < length) {
        const n = file.readSync(buf.subarray(got));
        if (n === null || n === 0) break;
        got += n;
      }
      return buf.subarray(0, got);
    });
  } catch {
    return undefined;
  } finally {
    file.close();
  }
}
