/**
 * Reading a run's `output.bin` incrementally (format in records.ts: a 16-byte header
 * `[stream u8][0 0 0][size u32 BE][time ms f64 BE]`, then the payload). The file is read in chunks of any
 * size, so a frame — header or payload — may straddle reads at any byte, and the file may still be growing
 * (a run in progress appends to it). Like `Demuxer`, the state is "how much of the current frame is still
 * owed". Pure: bytes in, payload pieces out.
 */
import { OUTPUT_HEADER_SIZE } from "./records.ts";

/** A position in the output: the frame's header offset in the file, and a byte offset in its payload. */
export interface OutputPosition {
  frame: number;
  offset: number;
}

/** One payload piece. `data` may be a view into the caller's buffer: consume it before the next push. */
export interface OutputPiece {
  /** 0 stdin echo, 1 stdout, 2 stderr, 3 the engine's own error output. */
  stream: number;
  /** When moat read the chunk (Unix ms). */
  timeMs: number;
  data: Uint8Array;
  /** Where `data[0]` is: its frame's header offset and its offset in that frame's payload. */
  frame: number;
  offset: number;
}

/** The file is not in the output format (a header with a stream byte above 3 or non-zero padding). */
export class OutputFormatError extends Error {
  override name = "OutputFormatError";
}

/** Incremental decoder. `start` is the file offset of the first byte pushed, which must begin a frame. */
export class OutputDecoder {
  #header = new Uint8Array(OUTPUT_HEADER_SIZE);
  #headerHave = 0;
  #frame: number;
  #stream = 1;
  #timeMs = 0;
  #size = 0;
  #owed = 0;
  #pos: number;
  #failed: OutputFormatError | undefined;

  constructor(start = 0) {
    this.#pos = start;
    this.#frame = start;
  }

  /** File offset of the next byte to push. */
  get position(): number {
    return this.#pos;
  }

  /** True when the bytes so far end exactly on a frame boundary. */
  get atBoundary(): boolean {
    return this.#headerHave === 0 && this.#owed === 0;
  }

  /** Where the next payload byte will come from (a partial header counts as its frame's offset 0). */
  get next(): OutputPosition {
    if (this.#owed > 0) return { frame: this.#frame, offset: this.#size - this.#owed };
    return { frame: this.#headerHave > 0 ? this.#frame : this.#pos, offset: 0 };
  }

  /**
   * Decode the next bytes. A damaged header throws `OutputFormatError` — after the pieces before it were
   * returned: then this push returns them and the next `push` or `check` throws.
   */
  push(bytes: Uint8Array): OutputPiece[] {
    this.check();
    const out: OutputPiece[] = [];
    let i = 0;
    while (i < bytes.byteLength) {
      if (this.#owed > 0) {
        const n = Math.min(this.#owed, bytes.byteLength - i);
        out.push({
          stream: this.#stream,
          timeMs: this.#timeMs,
          data: bytes.subarray(i, i + n),
          frame: this.#frame,
          offset: this.#size - this.#owed,
        });
        this.#owed -= n;
        this.#pos += n;
        i += n;
        continue;
      }
      if (this.#headerHave === 0) this.#frame = this.#pos;
      const n = Math.min(OUTPUT_HEADER_SIZE - this.#headerHave, bytes.byteLength - i);
      this.#header.set(bytes.subarray(i, i + n), this.#headerHave);
      this.#headerHave += n;
      this.#pos += n;
      i += n;
      if (this.#headerHave < OUTPUT_HEADER_SIZE) break;
      this.#headerHave = 0;
      const h = this.#header;
      if (h[0]! > 3 || h[1] !== 0 || h[2] !== 0 || h[3] !== 0) {
        this.#failed = new OutputFormatError(
          `unrecognized frame header at byte ${this.#frame}: ${
            Array.from(h.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join(" ")
          }`,
        );
        if (out.length > 0) return out;
        throw this.#failed;
      }
      const dv = new DataView(h.buffer, h.byteOffset, OUTPUT_HEADER_SIZE);
      this.#stream = h[0]!;
      this.#size = dv.getUint32(4, false);
      this.#timeMs = dv.getFloat64(8, false);
      this.#owed = this.#size;
    }
    return out;
  }

  /** Throw the `OutputFormatError` a previous `push` found, if any (call it at the end of the input). */
  check(): void {
    if (this.#failed) throw this.#failed;
  }
}
