import assert from "node:assert/strict";
import { Demuxer, DemuxError, encodeFrame, type Frame, type StreamType } from "../../lib/docker/demux.ts";
import { concat as bytes } from "../fake_engine.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A frame built by hand (independent of `encodeFrame`, which is itself under test). */
function frame(type: number, payload: string | Uint8Array): Uint8Array {
  const data = typeof payload === "string" ? enc.encode(payload) : payload;
  const n = data.byteLength;
  return bytes([type, 0, 0, 0, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff], data);
}

interface Collected {
  /** Bytes per stream, reassembled. */
  streams: Record<StreamType, Uint8Array>;
  /** Streams in the order their bytes came out, adjacent pieces of one stream merged. */
  order: StreamType[];
  pieces: number;
}

/**
 * Push each segment through one demuxer. Like `BufferedReader`, every push reuses ONE scratch buffer that is
 * scribbled over after the push, so a demuxer that kept a view of old input instead of copying a partial
 * header would produce wrong bytes.
 */
function run(segments: Uint8Array[], d = new Demuxer()): Collected & { demuxer: Demuxer } {
  const parts: Record<StreamType, Uint8Array[]> = { 0: [], 1: [], 2: [], 3: [] };
  const order: StreamType[] = [];
  let pieces = 0;
  const scratch = new Uint8Array(Math.max(1, ...segments.map((s) => s.byteLength)));
  for (const seg of segments) {
    scratch.set(seg);
    const frames: Frame[] = d.push(scratch.subarray(0, seg.byteLength));
    for (const f of frames) {
      assert.ok(f.data.byteLength > 0, "no empty pieces");
      parts[f.stream].push(f.data.slice());
      if (order.at(-1) !== f.stream) order.push(f.stream);
      pieces++;
    }
    scratch.fill(0xee);
  }
  return {
    streams: { 0: bytes(...parts[0]), 1: bytes(...parts[1]), 2: bytes(...parts[2]), 3: bytes(...parts[3]) },
    order,
    pieces,
    demuxer: d,
  };
}

function cutAt(all: Uint8Array, cuts: number[]): Uint8Array[] {
  const bounds = [0, ...cuts, all.byteLength];
  return bounds.slice(1).map((end, i) => all.subarray(bounds[i]!, end));
}

function text(b: Uint8Array): string {
  return dec.decode(b);
}

// A stream with every type, an empty frame between two stdout frames, multi-byte UTF-8 split across frames.
const euro = enc.encode("€"); // e2 82 ac
const mixed = bytes(
  frame(1, "hello "),
  frame(0, "typed\n"),
  frame(1, ""),
  frame(2, "warn: x\n"),
  frame(1, bytes("price ", euro.subarray(0, 1))),
  frame(1, bytes(euro.subarray(1), "\n")),
  frame(2, ""),
  frame(3, "Error grabbing logs: boom"),
);
const mixedWant = {
  0: "typed\n",
  1: "hello price €\n",
  2: "warn: x\n",
  3: "Error grabbing logs: boom",
};
const mixedOrder: StreamType[] = [1, 0, 2, 1, 3];

function assertMixed(got: Collected, label: string) {
  for (const s of [0, 1, 2, 3] as const) {
    assert.equal(text(got.streams[s]), mixedWant[s], `${label}: stream ${s}`);
  }
  assert.deepEqual(got.order, mixedOrder, `${label}: order`);
}

Deno.test("demux reassembles types 0 to 3 from a stream split at every byte", () => {
  assertMixed(run([mixed]), "one push");
  for (let i = 1; i < mixed.byteLength; i++) {
    const got = run(cutAt(mixed, [i]));
    assertMixed(got, `split at ${i}`);
    assert.equal(got.demuxer.atBoundary, true);
    assert.deepEqual(got.demuxer.end(), { truncated: false }, `split at ${i}`);
  }
});

Deno.test("demux reassembles a stream split at every pair of points", () => {
  for (let i = 1; i < mixed.byteLength; i++) {
    for (let j = i + 1; j < mixed.byteLength; j++) {
      assertMixed(run(cutAt(mixed, [i, j])), `split at ${i}, ${j}`);
    }
  }
});

Deno.test("demux reassembles a stream pushed one byte at a time", () => {
  const got = run(cutAt(mixed, Array.from({ length: mixed.byteLength - 1 }, (_, i) => i + 1)));
  assertMixed(got, "byte by byte");
  assert.deepEqual(got.demuxer.end(), { truncated: false });
});

Deno.test("demux returns every frame of a push that holds several frames", () => {
  const d = new Demuxer();
  const frames = d.push(bytes(frame(1, "a"), frame(2, "bb"), frame(1, "ccc"), frame(0, "dddd")));
  assert.deepEqual(
    frames.map((f) => [f.stream, text(f.data)]),
    [[1, "a"], [2, "bb"], [1, "ccc"], [0, "dddd"]],
  );
  assert.equal(d.atBoundary, true);
});

Deno.test("demux skips empty-payload frames without losing its place", () => {
  const wire = bytes(frame(1, ""), frame(2, ""), frame(1, "x"), frame(0, ""), frame(2, "y"), frame(1, ""));
  for (let i = 0; i <= wire.byteLength; i++) {
    const got = run(i === 0 ? [wire] : cutAt(wire, [i]));
    assert.equal(text(got.streams[1]), "x", `split at ${i}`);
    assert.equal(text(got.streams[2]), "y", `split at ${i}`);
    assert.equal(got.pieces, 2, `split at ${i}`);
    assert.equal(got.demuxer.atBoundary, true, `split at ${i}`);
  }
  // A stream of nothing but an empty frame ends on a boundary.
  const d = new Demuxer();
  assert.deepEqual(d.push(frame(2, "")), []);
  assert.deepEqual(d.end(), { truncated: false });
});

Deno.test("demux keeps a frame split across three reads", () => {
  const payload = "0123456789abcdef";
  const wire = bytes(frame(2, payload), frame(1, "next"));
  // header split 3|5, payload split, then the rest together with the next frame
  const d = new Demuxer();
  const a = d.push(wire.subarray(0, 3));
  assert.deepEqual(a, []);
  assert.equal(d.atBoundary, false);
  const b = d.push(wire.subarray(3, 14));
  assert.deepEqual(b.map((f) => [f.stream, text(f.data)]), [[2, "012345"]]);
  const c = d.push(wire.subarray(14));
  assert.deepEqual(c.map((f) => [f.stream, text(f.data)]), [[2, "6789abcdef"], [1, "next"]]);
  assert.equal(d.atBoundary, true);
});

Deno.test("demux carries frames larger than 64 KiB across many reads", () => {
  const big1 = new Uint8Array(70_000).map((_, i) => i & 0xff);
  const big2 = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
  const wire = bytes(frame(1, big1), frame(2, big2), frame(1, "tail"));
  for (const size of [1_000, 4_096, 65_536, 65_537, wire.byteLength]) {
    const cuts: number[] = [];
    for (let at = size; at < wire.byteLength; at += size) cuts.push(at);
    const got = run(cutAt(wire, cuts));
    assert.deepEqual(got.streams[1], bytes(big1, "tail"), `reads of ${size}`);
    assert.deepEqual(got.streams[2], big2, `reads of ${size}`);
    assert.deepEqual(got.order, [1, 2, 1]);
  }
});

Deno.test("demux reads the size as unsigned 32-bit big-endian", () => {
  // Size 0x80000001: with a signed shift this would go negative and the next bytes would be taken as a
  // header (type 5 → DemuxError). They are payload.
  const d = new Demuxer();
  assert.deepEqual(d.push(new Uint8Array([1, 0, 0, 0, 0x80, 0, 0, 1])), []);
  const pieces = d.push(new Uint8Array(100).fill(5));
  assert.deepEqual(pieces.map((f) => [f.stream, f.data.byteLength]), [[1, 100]]);
  assert.deepEqual(d.end(), { truncated: true });
  // Each size byte has its own weight.
  const e = new Demuxer();
  const out = e.push(bytes([2, 0, 0, 0, 0, 0, 1, 2], new Uint8Array(258).fill(0x61), frame(1, "z")));
  assert.deepEqual(out.map((f) => [f.stream, f.data.byteLength]), [[2, 258], [1, 1]]);
});

Deno.test("demux refuses a type byte outside 0-3 or non-zero reserved bytes", () => {
  const bad = [
    [4, 0, 0, 0, 0, 0, 0, 1],
    [0xff, 0, 0, 0, 0, 0, 0, 1],
    [0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x0a, 0, 0], // "hello\n": a TTY stream that is not multiplexed
    [1, 1, 0, 0, 0, 0, 0, 1],
    [1, 0, 0, 1, 0, 0, 0, 1],
  ];
  for (const header of bad) {
    assert.throws(() => new Demuxer().push(new Uint8Array(header)), DemuxError, header.join(" "));
    // after a good frame in the same push
    assert.throws(() => new Demuxer().push(bytes(frame(1, "ok"), header)), DemuxError, header.join(" "));
    // with the bad header split across pushes: the push that completes it throws
    const d = new Demuxer();
    assert.deepEqual(d.push(new Uint8Array(header.slice(0, 5))), []);
    assert.throws(() => d.push(new Uint8Array(header.slice(5))), DemuxError, header.join(" "));
  }
});

Deno.test("demux end reports a stream cut inside a header or a payload", () => {
  const wire = bytes(frame(1, "abc"), frame(2, "defg"));
  for (let i = 0; i <= wire.byteLength; i++) {
    const d = new Demuxer();
    d.push(wire.subarray(0, i));
    const boundary = i === 0 || i === 11 || i === wire.byteLength;
    assert.deepEqual(d.end(), { truncated: !boundary }, `cut at ${i}`);
  }
});

Deno.test("demux delivers what arrived before a cut and starts afresh after end", () => {
  const d = new Demuxer();
  const got = d.push(bytes(frame(1, "hello"), frame(2, "wor").subarray(0, 10)));
  assert.deepEqual(got.map((f) => [f.stream, text(f.data)]), [[1, "hello"], [2, "wo"]]);
  assert.deepEqual(d.end(), { truncated: true });
  assert.deepEqual(d.push(frame(1, "again")).map((f) => [f.stream, text(f.data)]), [[1, "again"]]);
  assert.deepEqual(d.end(), { truncated: false });
});

Deno.test("demux decodes the test vectors of the reference doc", () => {
  // stdout "hi\n" and stderr "err", each an 8-byte header then the payload (swagger "Stream format").
  const stdout = new Uint8Array([0x01, 0, 0, 0, 0, 0, 0, 0x03, 0x68, 0x69, 0x0a]);
  const stderr = new Uint8Array([0x02, 0, 0, 0, 0, 0, 0, 0x03, 0x65, 0x72, 0x72]);
  const got = run([bytes(stdout, stderr)]);
  assert.equal(text(got.streams[1]), "hi\n");
  assert.equal(text(got.streams[2]), "err");
  assert.deepEqual(got.order, [1, 2]);
  assert.deepEqual(encodeFrame(1, enc.encode("hi\n")), stdout);
  assert.deepEqual(encodeFrame(2, enc.encode("err")), stderr);
});

Deno.test("encodeFrame writes type, three zero bytes and a big-endian length", () => {
  for (const [type, size] of [[0, 0], [1, 1], [2, 255], [3, 256], [1, 70_000]] as const) {
    const payload = new Uint8Array(size).fill(0x41);
    assert.deepEqual(encodeFrame(type, payload), frame(type, payload), `type ${type}, size ${size}`);
  }
});
