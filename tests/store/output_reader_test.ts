import assert from "node:assert/strict";
import { OutputDecoder, OutputFormatError, type OutputPiece } from "../../lib/store/output_reader.ts";
import { concat } from "../fake_engine.ts";
import { outFrame } from "./output_frames.ts";

const dec = new TextDecoder();

/** Push `segments` through one decoder, reusing one scratch buffer that is scribbled over after each push. */
function run(
  segments: Uint8Array[],
  d = new OutputDecoder(),
): { pieces: OutputPiece[]; decoder: OutputDecoder } {
  const pieces: OutputPiece[] = [];
  const scratch = new Uint8Array(Math.max(1, ...segments.map((s) => s.byteLength)));
  for (const seg of segments) {
    scratch.set(seg);
    for (const p of d.push(scratch.subarray(0, seg.byteLength))) {
      assert.ok(p.data.byteLength > 0, "no empty pieces");
      pieces.push({ ...p, data: p.data.slice() });
    }
    scratch.fill(0xee);
  }
  return { pieces, decoder: d };
}

/** Per stream text, and the sequence of (stream, time) of the frames, adjacent pieces merged. */
function summary(pieces: OutputPiece[]) {
  const streams: Record<number, string> = {};
  const frames: string[] = [];
  for (const p of pieces) {
    streams[p.stream] = (streams[p.stream] ?? "") + dec.decode(p.data);
    const key = `${p.stream}@${p.timeMs}#${p.frame}`;
    if (frames.at(-1) !== key) frames.push(key);
  }
  return { streams, frames };
}

function cutAt(all: Uint8Array, cuts: number[]): Uint8Array[] {
  const bounds = [0, ...cuts, all.byteLength];
  return bounds.slice(1).map((end, i) => all.subarray(bounds[i]!, end));
}

const FILE = concat(
  outFrame(1, "out one\n", 1000),
  outFrame(2, "err\n", 2000.5),
  outFrame(1, "", 3000),
  outFrame(3, "engine says no\n", 4000),
  outFrame(0, "echo", 5000),
);
const WHOLE = summary(run([FILE]).pieces);

Deno.test("the output decoder reads a whole file: streams, times and frame offsets", () => {
  assert.deepEqual(WHOLE.streams, { 0: "echo", 1: "out one\n", 2: "err\n", 3: "engine says no\n" });
  assert.deepEqual(WHOLE.frames, ["1@1000#0", "2@2000.5#24", "3@4000#60", "0@5000#91"]);
});

Deno.test("the output decoder gives the same result split at every single byte offset", () => {
  for (let cut = 1; cut < FILE.byteLength; cut++) {
    const { pieces, decoder } = run(cutAt(FILE, [cut]));
    assert.deepEqual(summary(pieces), WHOLE, `split at ${cut}`);
    assert.ok(decoder.atBoundary, `boundary after split at ${cut}`);
    assert.equal(decoder.position, FILE.byteLength);
  }
});

Deno.test("the output decoder gives the same result at every pair of split points", () => {
  for (let a = 1; a < FILE.byteLength; a++) {
    for (let b = a + 1; b < FILE.byteLength; b++) {
      assert.deepEqual(summary(run(cutAt(FILE, [a, b])).pieces), WHOLE, `split at ${a} and ${b}`);
    }
  }
});

Deno.test("the output decoder reads one byte at a time", () => {
  const segments = Array.from(FILE, (b) => new Uint8Array([b]));
  assert.deepEqual(summary(run(segments).pieces), WHOLE);
});

Deno.test("piece offsets say where each piece sits in its frame's payload", () => {
  const { pieces } = run(cutAt(FILE, [16 + 3, 16 + 5]));
  assert.deepEqual(
    pieces.slice(0, 3).map((p) => [p.frame, p.offset, dec.decode(p.data)]),
    [[0, 0, "out"], [0, 3, " o"], [0, 5, "ne\n"]],
  );
});

Deno.test("a decoder started at a frame's offset reports absolute positions", () => {
  const second = 24;
  const { pieces, decoder } = run([FILE.subarray(second)], new OutputDecoder(second));
  assert.deepEqual(pieces[0]!.frame, second);
  assert.equal(decoder.position, FILE.byteLength);
});

Deno.test("a trailing partial frame yields what arrived and resumes when the rest is appended", () => {
  const last = outFrame(1, "growing line\n", 6000);
  const d = new OutputDecoder();
  const first = run([FILE, last.subarray(0, 20)], d);
  assert.equal(first.pieces.at(-1)!.stream, 1);
  assert.equal(dec.decode(first.pieces.at(-1)!.data), "grow");
  assert.equal(d.atBoundary, false);
  assert.deepEqual(d.next, { frame: FILE.byteLength, offset: 4 });
  const rest = run([last.subarray(20)], d);
  assert.equal(dec.decode(concat(...rest.pieces.map((p) => p.data))), "ing line\n");
  assert.ok(d.atBoundary);
});

Deno.test("a partial header is not a piece, and `next` points at its frame", () => {
  const d = new OutputDecoder();
  run([FILE, outFrame(2, "x", 1).subarray(0, 7)], d);
  assert.deepEqual(d.next, { frame: FILE.byteLength, offset: 0 });
  assert.equal(d.position, FILE.byteLength + 7);
});

const bad: [string, number[]][] = [
  ["a stream byte above 3", [4, 0, 0, 0, 0, 0, 0, 1]],
  ["non-zero padding", [1, 0, 1, 0, 0, 0, 0, 1]],
];
for (const [label, head] of bad) {
  Deno.test(`the output decoder refuses a header with ${label}`, () => {
    const junk = concat(head, new Uint8Array(8), "x");
    const d = new OutputDecoder();
    d.push(FILE);
    assert.throws(
      () => d.push(junk),
      (err: unknown) => err instanceof OutputFormatError && /at byte 111/.test(err.message),
    );
  });
}

Deno.test("a damaged header after good frames: the good pieces come first, then the error", () => {
  const d = new OutputDecoder();
  const pieces = d.push(concat(FILE, [9, 0, 0, 0], new Uint8Array(12)));
  assert.equal(dec.decode(concat(...pieces.filter((p) => p.stream === 1).map((p) => p.data))), "out one\n");
  assert.throws(() => d.check(), OutputFormatError);
  assert.throws(() => d.push(new Uint8Array([1])), OutputFormatError);
});
