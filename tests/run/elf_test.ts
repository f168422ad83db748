/** A library's soname read from its ELF file: real ones of this process, and made-up files (tables). */
import assert from "node:assert/strict";
import { elfSoname, type ReadAt, sonameOf } from "../../lib/run/elf.ts";
import { librariesOf, mappedLibraries } from "../../lib/run/relay_plan.ts";

/** A minimal 64-bit little-endian ELF: one PT_LOAD at address 0x1000, a PT_DYNAMIC, a string table. */
function elf(
  opts: { soname?: string; class?: number; data?: number; dynamic?: boolean; strtabAt?: number } = {},
) {
  const buf = new Uint8Array(512);
  const v = new DataView(buf.buffer);
  buf.set([0x7f, 0x45, 0x4c, 0x46, opts.class ?? 2, opts.data ?? 1, 1], 0);
  v.setBigUint64(32, 64n, true); // e_phoff
  v.setUint16(54, 56, true); // e_phentsize
  v.setUint16(56, opts.dynamic === false ? 1 : 2, true); // e_phnum
  // PT_LOAD: the whole file, at address 0x1000.
  v.setUint32(64, 1, true);
  v.setBigUint64(64 + 8, 0n, true);
  v.setBigUint64(64 + 16, 0x1000n, true);
  v.setBigUint64(64 + 32, 512n, true);
  // PT_DYNAMIC at 200, three entries.
  v.setUint32(120, 2, true);
  v.setBigUint64(120 + 8, 200n, true);
  v.setBigUint64(120 + 32, 48n, true);
  const strtab = 300;
  v.setBigUint64(200, 5n, true); // DT_STRTAB
  v.setBigUint64(208, BigInt(opts.strtabAt ?? 0x1000 + strtab), true);
  if (opts.soname !== undefined) {
    v.setBigUint64(216, 14n, true); // DT_SONAME
    v.setBigUint64(224, 1n, true);
  }
  buf.set(new TextEncoder().encode(`\0${opts.soname ?? ""}\0`), strtab);
  const read: ReadAt = (offset, length) => buf.slice(offset, offset + length);
  return read;
}

Deno.test("elfSoname reads DT_SONAME, whatever the file is called; undefined for what it cannot read", () => {
  assert.equal(elfSoname(elf({ soname: "libgcc_s.so.1" })), "libgcc_s.so.1");
  const cases: Array<[string, ReadAt]> = [
    ["not ELF", () => new TextEncoder().encode("#!/bin/sh\n".padEnd(64))],
    ["too short", () => new Uint8Array([0x7f, 0x45, 0x4c, 0x46])],
    ["32-bit", elf({ soname: "x.so.1", class: 1 })],
    ["big-endian", elf({ soname: "x.so.1", data: 2 })],
    ["no dynamic segment", elf({ soname: "x.so.1", dynamic: false })],
    ["no soname", elf({})],
    ["a string table outside every loaded segment", elf({ soname: "x.so.1", strtabAt: 0x9000 })],
    ["a name that is not a file name", elf({ soname: "../../etc/passwd" })],
  ];
  for (const [name, read] of cases) assert.equal(elfSoname(read), undefined, name);
});

Deno.test("the libraries this process runs with have sonames, which name them as the loader looks for them", () => {
  const paths = mappedLibraries(Deno.readTextFileSync("/proc/self/maps"));
  const libc = paths.find((p) => /\/libc\.so\.6$/.test(p));
  assert.ok(libc, `libc among ${paths}`);
  assert.equal(sonameOf(libc), "libc.so.6");
  const libs = librariesOf(paths, sonameOf);
  assert.ok(libs.every((l) => /^[A-Za-z0-9._+-]+\.so(\.\d+)*$/.test(l.name)), JSON.stringify(libs));
  assert.equal(sonameOf("/nonexistent/libx.so.1"), undefined);
  assert.deepEqual(librariesOf(["/a/libweird-1.2.so.1"], () => "libweird.so.1"), [
    { path: "/a/libweird-1.2.so.1", name: "libweird.so.1" },
  ]);
  assert.deepEqual(librariesOf(["/a/libplain.so.2"], () => undefined), [{
    path: "/a/libplain.so.2",
    name: "libplain.so.2",
  }]);
});
